# Panther access changed behind the IdP's back: the reconciler found a managed user
# whose Panther account differs from what the IdP says (an admin's console edit, a
# script with an API token, a user deleted by hand), and repaired it.

FIELDS = {
    "account": "account",
    "role": "role",
    "email": "email",
    "givenName": "first name",
    "familyName": "last name",
}


def rule(event):
    return event.get("action") == "drift.detected"


def title(event):
    field = event.deep_get("drift", "field")
    who = event.get("email") or event.get("resourceId")
    if field == "account":
        if event.deep_get("drift", "expected") == "absent":
            return f"panther-scim: {who} holds a Panther account the IdP says it should not"
        return f"panther-scim: {who}'s Panther account was deleted outside SCIM"
    return (
        f"panther-scim: {who}'s Panther {FIELDS.get(field, field)} changed outside SCIM "
        f"({event.deep_get('drift', 'found')} instead of {event.deep_get('drift', 'expected')})"
    )


def dedup(event):
    return f"pantherscim-drift-{event.get('resourceId')}-{event.deep_get('drift', 'field')}"


def severity(event):
    field = event.deep_get("drift", "field")
    # Access granted or widened outside the IdP matters most.
    if field == "role" or (field == "account" and event.deep_get("drift", "expected") == "absent"):
        return "HIGH"
    # A repair that failed leaves the difference in place.
    if str(event.deep_get("drift", "repair", default="")).endswith("failed"):
        return "HIGH"
    return "MEDIUM"


def alert_context(event):
    return {
        "email": event.get("email"),
        "field": event.deep_get("drift", "field"),
        "found": event.deep_get("drift", "found"),
        "expected": event.deep_get("drift", "expected"),
        "repair": event.deep_get("drift", "repair"),
    }
