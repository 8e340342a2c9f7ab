# A user given a Panther role that holds UserModify ("Manage Users"): whoever holds
# it can change anyone's access, their own included. Through panther-scim that
# happens when the IdP puts someone in a group mapped to such a role.


def rule(event):
    if not str(event.get("action", "")).startswith("user."):
        return False
    if event.get("access") is not True or event.get("roleHasUserModify") is not True:
        return False
    # Only a change that grants it: the user did not hold it before (a new user, a
    # reactivation, a group change); a name change of an admin is not an escalation.
    return event.get("previousRoleHasUserModify") is not True or event.get("previousAccess") is not True


def title(event):
    return (
        f"panther-scim: {event.get('email') or event.get('userName')} was given Panther role "
        f"{event.get('role')}, which can manage users"
    )


def dedup(event):
    return f"pantherscim-usermodify-{event.get('resourceId')}"


def severity(event):
    # An account created straight into such a role skips the usual review of a change.
    if event.get("action") == "user.create":
        return "CRITICAL"
    return "HIGH"


def alert_context(event):
    return {
        "email": event.get("email"),
        "role": event.get("role"),
        "previousRole": event.get("previousRole"),
        "action": event.get("action"),
        "actor": event.get("actor"),
        "requestId": event.get("requestId"),
    }
