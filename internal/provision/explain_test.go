package provision_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/mappings"
)

func TestExplain(t *testing.T) {
	p := newFake()
	// Panther's own administrator, so that Ada, an Admin, may be deactivated below.
	p.add(provision.InviteInput{Email: "root@x.io", GivenName: "R", FamilyName: "O", Role: provision.RoleRef{ByID: true, Value: "r-admin"}})
	m := mappings.Mapping{
		Rules: []mappings.Rule{
			{Group: "Admins", Role: "Admin"},
			{ExternalID: "ext-analysts", Role: "Analyst"},
		},
		DefaultRole: "AnalystReadOnly",
	}
	svc := newService(t, p, provision.Options{Mapping: m})
	ctx := context.Background()
	f := fields("ada@x.io")
	f.Attributes["emails"] = []any{map[string]any{"value": "ada@x.io", "primary": true}, map[string]any{"value": "ada@home.example"}}
	ada, err := svc.CreateUser(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := svc.CreateUser(ctx, fields("bob@x.io"))
	if err != nil {
		t.Fatal(err)
	}
	// Ada joins the externalId-mapped group first, then Admins, which comes first in the rules.
	if _, err := svc.CreateGroup(ctx, provision.GroupFields{DisplayName: "Analysts", ExternalID: "ext-analysts", Members: []string{ada.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateGroup(ctx, provision.GroupFields{DisplayName: "Admins", Members: []string{ada.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateGroup(ctx, provision.GroupFields{DisplayName: "Unmapped", Members: []string{ada.ID}}); err != nil {
		t.Fatal(err)
	}

	for _, who := range []string{ada.ID, "ADA@x.io", "ada@x.io"} {
		ex, err := svc.Explain(ctx, who, 0)
		if err != nil {
			t.Fatalf("Explain(%q): %v", who, err)
		}
		if ex.User.ID != ada.ID || ex.Role != "Admin" || ex.MatchedRule == nil || ex.MatchedRule.Number != 1 ||
			ex.MatchedRule.Group != "Admins" || ex.MatchedRule.Role != "Admin" || ex.MatchedRule.MatchedGroup != "Admins" {
			t.Errorf("Explain(%q) = %+v, matched %+v", who, ex, ex.MatchedRule)
		}
		if ex.PantherRole != "Admin" || ex.Panther == nil || !ex.Panther.Linked || ex.Panther.ID != ex.User.PantherID {
			t.Errorf("Panther side %+v, role %q, err %q", ex.Panther, ex.PantherRole, ex.PantherError)
		}
	}
	ex, _ := svc.Explain(ctx, ada.ID, 0)
	rules := map[string]int{}
	for _, g := range ex.Groups {
		rules[g.DisplayName] = g.Rule
	}
	if len(ex.Groups) != 3 || rules["Admins"] != 1 || rules["Analysts"] != 2 || rules["Unmapped"] != 0 {
		t.Errorf("groups %+v", ex.Groups)
	}
	if fmt.Sprint(ex.User.Emails) != "[ada@x.io ada@home.example]" || !ex.User.Active {
		t.Errorf("user %+v", ex.User)
	}
	if len(ex.PendingIntents) != 0 {
		t.Errorf("pending %+v", ex.PendingIntents)
	}
	var actions []string
	for _, e := range ex.Audit {
		if e.ID != ada.ID {
			t.Errorf("audit entry about %s: %+v", e.ID, e)
		}
		actions = append(actions, e.Action)
	}
	if len(actions) == 0 || actions[0] != "user.create" {
		t.Errorf("audit %v", actions)
	}
	if ex, _ := svc.Explain(ctx, ada.ID, 1); len(ex.Audit) != 1 || ex.Audit[0].Action != actions[len(actions)-1] {
		t.Errorf("audit limited to 1: %+v, want the newest of %v", ex.Audit, actions)
	}

	// The rule on externalId, once Ada leaves Admins... through Bob here: in no group, the default role.
	ex, err = svc.Explain(ctx, "bob@x.io", 0)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Role != "AnalystReadOnly" || ex.MatchedRule != nil || ex.Reason != "no rule matches the user's groups: the default role" || len(ex.Groups) != 0 {
		t.Errorf("bob: %+v", ex)
	}
	_ = bob

	// Inactive: no access, and the rule does not apply.
	if _, err := svc.UpdateUser(ctx, ada.ID, 0, func(u provision.User) (provision.UserFields, error) {
		return provision.UserFields{UserName: u.UserName, Active: false, Attributes: u.Attributes}, nil
	}); err != nil {
		t.Fatal(err)
	}
	ex, _ = svc.Explain(ctx, ada.ID, 0)
	if ex.Role != "" || ex.MatchedRule != nil || ex.Reason != "inactive (active=false): no Panther access" || ex.Panther != nil {
		t.Errorf("inactive ada: %+v", ex)
	}

	// Panther failing: the explanation still comes, saying so.
	p.failAll = fmt.Errorf("down: %w", provision.ErrUnavailable)
	ex, err = svc.Explain(ctx, "bob@x.io", 0)
	if err != nil || ex.PantherError == "" || ex.Role != "AnalystReadOnly" {
		t.Errorf("with Panther down: %+v, %v", ex, err)
	}
	p.failAll = nil

	if _, err := svc.Explain(ctx, "nobody@x.io", 0); provision.ErrorCode(err) != provision.CodeNotFound || !errors.Is(err, provision.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
}

func TestExplainNoAccess(t *testing.T) {
	p := newFake()
	svc := newService(t, p, provision.Options{Mapping: mappings.Mapping{Rules: []mappings.Rule{{ExternalID: "ext-a", Role: "Admin"}}}})
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, fields("cy@x.io"))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := svc.Explain(ctx, u.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Role != "" || ex.MatchedRule != nil || ex.Reason != "no access: no rule matches the user's groups and there is no default role" || ex.Panther != nil || ex.PantherError != "" {
		t.Errorf("no access: %+v", ex)
	}
	if _, err := svc.CreateGroup(ctx, provision.GroupFields{DisplayName: "Anything", ExternalID: "ext-a", Members: []string{u.ID}}); err != nil {
		t.Fatal(err)
	}
	ex, _ = svc.Explain(ctx, u.ID, 0)
	if ex.Role != "Admin" || ex.MatchedRule == nil || ex.MatchedRule.ExternalID != "ext-a" || ex.MatchedRule.Group != "" || ex.PantherRole != "Admin" {
		t.Errorf("by externalId: %+v %+v", ex, ex.MatchedRule)
	}
}
