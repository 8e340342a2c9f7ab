package provision

import (
	"context"
	"strconv"
)

// PermissionUserModify is the Panther permission to manage users ("Manage Users"): a
// role holding it can give itself or anyone any access, so granting it is what an
// escalation detection watches for.
const PermissionUserModify = "UserModify"

// withAccess adds to an audit entry's field map the Panther access the user has under
// the rules: "access" (true or false), "role" (the role's name; empty without access)
// and, when the role's permissions are known from an earlier lookup, "roleUserModify".
// A nil map stays nil.
func (s *Service) withAccess(m map[string]string, d desired) map[string]string {
	if m == nil {
		return nil
	}
	m["access"] = strconv.FormatBool(d.Access)
	if !d.Access {
		m["role"], m["roleUserModify"] = "", "false"
		return m
	}
	m["role"] = d.Role
	if r, ok := s.knownRole(d.Role); ok {
		m["role"] = r.Name
		m["roleUserModify"] = strconv.FormatBool(r.Administrator())
	}
	return m
}

// accessOf is the desired access of a user given its active flag and link, for the
// audit trail: an error reading its groups leaves the fields out rather than fail
// the change being recorded.
func (s *Service) accessOf(tx ReadTx, refs *groupRefCache, id string, active, linked bool, m map[string]string) map[string]string {
	d, err := s.desiredOf(tx, refs, id, active, linked)
	if err != nil {
		return m
	}
	return s.withAccess(m, d)
}

// ActorReconciler is the actor of the audit entries the reconciler writes.
const ActorReconciler = "reconciler"

// auditDrift records each difference the reconciler found, and what its repair did,
// as a drift.detected audit entry: Panther access changed behind the IdP's back is
// what a security team wants to hear about even when it is repaired at once.
func (s *Service) auditDrift(ctx context.Context, drift []Drift, repaired map[string]bool) error {
	if len(drift) == 0 {
		return nil
	}
	ctx = WithActor(ctx, ActorReconciler)
	return s.store.Update(ctx, func(tx Tx) error {
		for _, d := range drift {
			result := "failed"
			if repaired[d.UserID] {
				result = "repaired"
			}
			for _, f := range d.Diffs {
				after := map[string]string{
					"userName": d.UserName, "email": d.Email, "field": f.Field,
					"found": f.Found, "expected": f.Expected, "repair": d.Action + ": " + result,
				}
				if err := tx.AppendAudit(s.auditEntry(ctx, "drift.detected", "User", d.UserID, nil, after, result)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
