# Repeated failed SCIM authentications from one address: a misconfigured or rotated
# IdP token, or someone guessing. Each auth.failed event stands for auth.count
# failures; Threshold (the YAML) counts events per address in the dedup period.


def rule(event):
    return event.get("action") == "auth.failed"


def title(event):
    return f"panther-scim: repeated SCIM authentication failures from {event.get('sourceIP') or 'many addresses'}"


def dedup(event):
    return f"pantherscim-auth-failures-{event.get('sourceIP') or 'various'}"


def severity(event):
    # Already over the bridge's failure limit: not an IdP retrying now and then.
    if event.deep_get("auth", "limited") is True:
        return "HIGH"
    return "MEDIUM"


def alert_context(event):
    return {
        "sourceIP": event.get("sourceIP"),
        "reason": event.deep_get("auth", "reason"),
        "count": event.deep_get("auth", "count"),
        "limited": event.deep_get("auth", "limited"),
    }
