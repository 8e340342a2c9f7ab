package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/panther-scim/panther-scim/mappings"
)

// Explanation says why a user has the Panther access they have: the record, its groups,
// the mapping rule that decides the role (or the default role, or none), the Panther user
// it is linked to with its role in Panther now, the pending intents and the last audit
// entries. `panther-scim explain` prints it; its JSON form is the /admin/explain answer.
type Explanation struct {
	User   ExplainedUser    `json:"user"`
	Groups []ExplainedGroup `json:"groups"`
	// MatchedRule is the first rule matching one of the user's groups, which gives the
	// role; null when none does (DefaultRole applies) or the user is inactive.
	MatchedRule *MatchedRule `json:"matchedRule"`
	// Role is the Panther role (a mapping role name or id) the rules give the user now; ""
	// means no Panther access.
	Role string `json:"role"`
	// Reason says in words where Role comes from.
	Reason string `json:"reason"`
	// Panther is the Panther user as Panther reports it now: the linked one, else one that
	// has the user's email without being linked; null when there is none or Panther could
	// not be asked (PantherError says why).
	Panther *ExplainedPanther `json:"panther"`
	// PantherRole is the name of Panther's current role of that user ("" when none).
	PantherRole    string       `json:"pantherRole"`
	PantherError   string       `json:"pantherError,omitempty"`
	PendingIntents []Intent     `json:"pendingIntents"`
	Audit          []AuditEntry `json:"audit"`
}

// ExplainedUser is the part of the record that decides access.
type ExplainedUser struct {
	ID         string   `json:"id"`
	UserName   string   `json:"userName"`
	ExternalID string   `json:"externalId,omitempty"`
	Active     bool     `json:"active"`
	Emails     []string `json:"emails"`
	// Email is the address the user has (or would have) in Panther.
	Email string `json:"email"`
	// PantherID is the Panther user the record is linked to ("" none).
	PantherID string `json:"pantherId,omitempty"`
}

// ExplainedGroup is one of the user's groups, with the first rule that names it.
type ExplainedGroup struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId,omitempty"`
	// Rule is the 1-based number of the first mapping rule matching this group, 0 none.
	Rule int `json:"rule"`
}

// MatchedRule is a mapping rule as the config writes it, with its 1-based number and the
// user's group it matched.
type MatchedRule struct {
	Number       int    `json:"number"`
	Group        string `json:"group,omitempty"`
	ExternalID   string `json:"externalId,omitempty"`
	Role         string `json:"role"`
	MatchedGroup string `json:"matchedGroup"`
}

// ExplainedPanther is a Panther user as Panther reports it.
type ExplainedPanther struct {
	ID     string `json:"id"`
	Email  string `json:"email"`
	Role   string `json:"role"`
	Status string `json:"status,omitempty"`
	// Linked is false for a Panther user that has the email but that the record does not
	// link (panther-scim does not manage it yet).
	Linked bool `json:"linked"`
}

// DefaultExplainAudit is how many audit entries Explain returns when asked for none.
const DefaultExplainAudit = 20

// Explain finds the user by SCIM id, userName or email and explains their access. It asks
// Panther for the user's current role; a Panther failure is reported in PantherError, not
// returned. audit bounds the audit entries (the newest; DefaultExplainAudit when <= 0).
// A CodeNotFound error when no record matches who.
func (s *Service) Explain(ctx context.Context, who string, audit int) (Explanation, error) {
	if audit <= 0 {
		audit = DefaultExplainAudit
	}
	var ex Explanation
	var u User
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		u, err = findUser(tx, who)
		if err != nil {
			return err
		}
		ex.User = ExplainedUser{ID: u.ID, UserName: u.UserName, ExternalID: u.ExternalID, Active: u.Active,
			Emails: emailValues(u.Attributes), Email: u.Email, PantherID: u.Panther.ID}
		ids, err := tx.GroupIDsOfUser(u.ID)
		if err != nil {
			return err
		}
		var refs []mappings.GroupRef
		for _, id := range ids {
			g, err := tx.GroupHeader(id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			ref := mappings.GroupRef{DisplayName: g.DisplayName, ExternalID: g.ExternalID}
			refs = append(refs, ref)
			ex.Groups = append(ex.Groups, ExplainedGroup{ID: g.ID, DisplayName: g.DisplayName, ExternalID: g.ExternalID,
				Rule: s.opts.Mapping.RuleFor(ref) + 1})
		}
		// The role as sync computes it, so that the explanation cannot disagree with it.
		want, err := s.desiredFor(tx, newGroupRefCache(tx), u)
		if err != nil {
			return err
		}
		if want.Access {
			ex.Role = want.Role
		}
		ex.Reason = s.reason(&ex, u, refs)
		if in, err := tx.Intent(u.ID); err == nil {
			ex.PendingIntents = append(ex.PendingIntents, in)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		return tx.ScanAudit(time.Time{}, func(e AuditEntry) bool {
			if auditAbout(e, u) {
				ex.Audit = append(ex.Audit, e)
				if len(ex.Audit) > audit {
					ex.Audit = ex.Audit[1:]
				}
			}
			return true
		})
	})
	if errors.Is(err, ErrNotFound) {
		return ex, newError(CodeNotFound, err, "no user with the id, userName or email %q", who)
	}
	if err != nil {
		return ex, err
	}
	if ex.Groups == nil {
		ex.Groups = []ExplainedGroup{}
	}
	if ex.PendingIntents == nil {
		ex.PendingIntents = []Intent{}
	}
	if ex.Audit == nil {
		ex.Audit = []AuditEntry{}
	}
	s.explainPanther(ctx, &ex, u)
	return ex, nil
}

// reason fills MatchedRule and says where Role comes from.
func (s *Service) reason(ex *Explanation, u User, refs []mappings.GroupRef) string {
	m := s.opts.Mapping
	if !u.Active {
		if ex.Role != "" {
			return fmt.Sprintf("inactive (active=false): moved to the deactivation role %q", ex.Role)
		}
		return "inactive (active=false): no Panther access"
	}
	rule, group := m.Match(refs)
	if rule >= 0 {
		r := m.Rules[rule]
		ex.MatchedRule = &MatchedRule{Number: rule + 1, Group: r.Group, ExternalID: r.ExternalID, Role: r.Role,
			MatchedGroup: refs[group].DisplayName}
		return fmt.Sprintf("rule %d (%s) is the first rule matching one of the user's groups", rule+1, r.Key())
	}
	if m.DefaultRole != "" {
		return "no rule matches the user's groups: the default role"
	}
	return "no access: no rule matches the user's groups and there is no default role"
}

// explainPanther asks Panther for the linked user (or one with the user's email).
func (s *Service) explainPanther(ctx context.Context, ex *Explanation, u User) {
	if s.panther == nil {
		ex.PantherError = "Panther not consulted"
		return
	}
	var pu PantherUser
	var err error
	linked := u.Panther.ID != ""
	if linked {
		pu, err = s.panther.UserByID(ctx, u.Panther.ID)
	} else if u.Email != "" {
		pu, err = s.panther.UserByEmail(ctx, u.Email)
	}
	switch {
	case !linked && (u.Email == "" || errors.Is(err, ErrNotFound)):
		// Not linked, and Panther has no one with the email: nothing to show.
	case errors.Is(err, ErrNotFound):
		ex.PantherError = fmt.Sprintf("the linked Panther user %s no longer exists in Panther", u.Panther.ID)
	case err != nil:
		ex.PantherError = "could not ask Panther: " + err.Error()
	default:
		ex.Panther = &ExplainedPanther{ID: pu.ID, Email: pu.Email, Role: pu.RoleName, Status: pu.Status, Linked: linked}
		ex.PantherRole = pu.RoleName
	}
}

// findUser finds a record by SCIM id, userName (any case) or email.
func findUser(tx ReadTx, who string) (User, error) {
	who = strings.TrimSpace(who)
	if who == "" {
		return User{}, ErrNotFound
	}
	u, err := tx.User(who)
	if !errors.Is(err, ErrNotFound) {
		return u, err
	}
	u, err = tx.UserByUserName(who)
	if !errors.Is(err, ErrNotFound) {
		return u, err
	}
	return tx.UserByEmail(who)
}

// AuditAbout reports whether an audit entry concerns who: a SCIM id, or a userName or
// email (any case) before or after the change (a deleted record's entries keep them).
func AuditAbout(e AuditEntry, who string) bool {
	if e.ID == who {
		return true
	}
	for _, m := range []map[string]string{e.Before, e.After} {
		if strings.EqualFold(m["userName"], who) || strings.EqualFold(m["email"], who) {
			return true
		}
	}
	return false
}

// auditAbout reports whether an audit entry concerns the user, by id, userName or email.
func auditAbout(e AuditEntry, u User) bool {
	return AuditAbout(e, u.ID) || AuditAbout(e, u.UserName) || (u.Email != "" && AuditAbout(e, u.Email))
}

// emailValues lists the values of the record's emails attribute, in order.
func emailValues(attrs map[string]any) []string {
	out := []string{}
	list, _ := attrs["emails"].([]any)
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			if v, ok := m["value"].(string); ok && v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}
