# A leaver who still holds Panther access: the IdP deactivated, deleted or unmapped
# the user, and panther-scim could not remove the access for longer than
# provisioning.deprovisionAlertAfter (it keeps retrying; the event repeats while it
# stays pending).

REASONS = {
    "deactivated": "was deactivated in the IdP",
    "deleted": "was deleted in the IdP",
    "unmapped": "left every mapped group",
}


def rule(event):
    return event.get("action") == "deprovision.delayed"


def title(event):
    reason = REASONS.get(event.deep_get("deprovision", "reason"), "lost access in the IdP")
    minutes = int(event.deep_get("deprovision", "pendingSeconds", default=0) or 0) // 60
    return (
        f"panther-scim: {event.get('email') or event.get('resourceId')} {reason} "
        f"{minutes} min ago but still holds Panther access"
    )


def dedup(event):
    return f"pantherscim-leaver-{event.get('resourceId')}"


def severity(event):
    # An hour and more: no longer a blip of Panther's API.
    if int(event.deep_get("deprovision", "pendingSeconds", default=0) or 0) >= 3600:
        return "CRITICAL"
    return "HIGH"


def alert_context(event):
    return {
        "email": event.get("email"),
        "reason": event.deep_get("deprovision", "reason"),
        "pendingSince": event.deep_get("deprovision", "pendingSince"),
        "attempts": event.deep_get("deprovision", "attempts"),
        "lastError": event.deep_get("deprovision", "lastError"),
    }
