# Mass deprovisioning through panther-scim: many Panther users losing access in a
# short time. A reorganisation can do it; so can a compromised IdP or SCIM token.
# Threshold and DedupPeriodMinutes (the YAML) make "more than N in M minutes".

DEPROVISIONING = {"user.deactivate", "user.delete"}


def rule(event):
    action = event.get("action")
    if action in DEPROVISIONING:
        return True
    # A group change that took a member's access away is a deprovisioning too.
    return action == "user.role" and event.get("previousAccess") is True and event.get("access") is False


def title(event):
    return f"panther-scim: mass deprovisioning of Panther users by {event.get('actor') or 'an unknown client'}"


def dedup(event):
    # One alert per SCIM client (token or OAuth client) doing it.
    return f"pantherscim-mass-deprovisioning-{event.get('actor') or 'unknown'}"


def alert_context(event):
    return {
        "actor": event.get("actor"),
        "action": event.get("action"),
        "email": event.get("email"),
        "previousRole": event.get("previousRole"),
        "requestId": event.get("requestId"),
    }
