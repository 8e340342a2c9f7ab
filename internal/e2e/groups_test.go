package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/panther-scim/panther-scim/mappings"
)

// TestOktaGroupPush drives the sequence Okta's Group Push sends and checks each
// member's Panther role after every step.
func TestOktaGroupPush(t *testing.T) {
	e := newEnv(t)
	ada := e.createUser("ada@example.com", "Ada", "Lovelace")
	bob := e.createUser("bob@example.com", "Bob", "Builder")
	roles := func(step, wantAda, wantBob string) {
		t.Helper()
		if got := e.pantherRole("ada@example.com"); got != wantAda {
			t.Errorf("%s: ada has %q, want %q", step, got, wantAda)
		}
		if got := e.pantherRole("bob@example.com"); got != wantBob {
			t.Errorf("%s: bob has %q, want %q", step, got, wantBob)
		}
	}
	roles("start", "AnalystReadOnly", "AnalystReadOnly")

	// Okta creates the group empty, then PATCHes members in.
	gid := e.createGroup("Panther Analysts")
	roles("empty group", "AnalystReadOnly", "AnalystReadOnly")
	e.do("PATCH", "/Groups/"+gid, patchOp(map[string]any{"op": "add", "path": "members",
		"value": []any{map[string]any{"value": ada, "display": "ada@example.com"}, map[string]any{"value": bob}}})).must(t, http.StatusNoContent)
	roles("add", "Analyst", "Analyst")

	// The user shows its groups, read-only.
	u := e.do("GET", "/Users/"+ada, nil).must(t, http.StatusOK)
	groups, _ := u.Body["groups"].([]any)
	if len(groups) != 1 || groups[0].(map[string]any)["value"] != gid || groups[0].(map[string]any)["display"] != "Panther Analysts" {
		t.Errorf("user groups: %s", u.Raw)
	}
	// Members carry value, display and $ref.
	g := e.do("GET", "/Groups/"+gid, nil).must(t, http.StatusOK)
	ms, _ := g.Body["members"].([]any)
	if len(ms) != 2 {
		t.Fatalf("members: %s", g.Raw)
	}
	m0 := ms[0].(map[string]any)
	if m0["display"] != "ada@example.com" || m0["$ref"] != e.Base+"/Users/"+ada {
		t.Errorf("member: %v", m0)
	}

	// Remove one member with a value filter.
	e.do("PATCH", "/Groups/"+gid, patchOp(map[string]any{"op": "remove", "path": fmt.Sprintf(`members[value eq "%s"]`, bob)})).must(t, http.StatusNoContent)
	roles("remove bob", "Analyst", "AnalystReadOnly")

	// Okta renames with a pathless replace that carries the read-only id.
	updates := e.Fake.Count("updateUser")
	e.do("PATCH", "/Groups/"+gid, patchOp(map[string]any{"op": "replace", "value": map[string]any{"id": gid, "displayName": "Panther Admins"}})).must(t, http.StatusNoContent)
	roles("rename", "Admin", "AnalystReadOnly")
	if e.Fake.Count("updateUser") != updates+1 {
		t.Errorf("rename made %d updateUser calls, want 1", e.Fake.Count("updateUser")-updates)
	}

	// A rename that keeps the mapping makes no Panther call.
	updates = e.Fake.Count("updateUser")
	e.do("PATCH", "/Groups/"+gid, patchOp(map[string]any{"op": "replace", "path": "displayName", "value": "panther admins"})).must(t, http.StatusNoContent)
	if e.Fake.Count("updateUser") != updates {
		t.Error("a case-only rename changed roles")
	}

	// Delete the group: members fall back to the default role.
	e.do("DELETE", "/Groups/"+gid, nil).must(t, http.StatusNoContent)
	roles("delete group", "AnalystReadOnly", "AnalystReadOnly")
	e.do("GET", "/Groups/"+gid, nil).scimErr(t, http.StatusNotFound, "")
	if e.pending() != 0 {
		t.Errorf("pending: %d", e.pending())
	}
}

func TestEntraGroupForms(t *testing.T) {
	e := newEnv(t)
	a := e.createUser("a@example.com", "A", "A")
	b := e.createUser("b@example.com", "B", "B")
	c := e.createUser("c@example.com", "C", "C")
	gid := e.createGroup("Panther Admins", a, b, c)
	for _, who := range []string{"a", "b", "c"} {
		if r := e.pantherRole(who + "@example.com"); r != "Admin" {
			t.Fatalf("%s: %q", who, r)
		}
	}
	// Entra reads groups without members.
	r := e.do("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "Panther Admins"`), nil).must(t, http.StatusOK)
	if strings.Contains(r.Raw, `"members"`) || r.Body["totalResults"] != float64(1) {
		t.Errorf("excludedAttributes=members: %s", r.Raw)
	}
	// Entra's Remove with a value list removes only the listed members.
	e.do("PATCH", "/Groups/"+gid, patchOp(map[string]any{"op": "Remove", "path": "members", "value": []any{map[string]any{"value": b}}})).must(t, http.StatusNoContent)
	g := e.do("GET", "/Groups/"+gid, nil).must(t, http.StatusOK)
	if ms, _ := g.Body["members"].([]any); len(ms) != 2 {
		t.Fatalf("Remove with value removed more than asked: %s", g.Raw)
	}
	if e.pantherRole("b@example.com") != "AnalystReadOnly" || e.pantherRole("a@example.com") != "Admin" {
		t.Error("roles after Entra remove")
	}
	// Several operations in one request, with a bad one: nothing applied.
	bad := patchOp(
		map[string]any{"op": "Add", "path": "members", "value": []any{map[string]any{"value": b}}},
		map[string]any{"op": "Add", "path": "members", "value": []any{map[string]any{"value": "no-such-user"}}},
	)
	resp := e.do("PATCH", "/Groups/"+gid, bad)
	resp.scimErr(t, http.StatusBadRequest, "invalidValue")
	if !strings.Contains(resp.str("detail"), "no-such-user") {
		t.Errorf("detail does not name the member: %s", resp.Raw)
	}
	if e.pantherRole("b@example.com") != "AnalystReadOnly" {
		t.Error("half-applied PATCH")
	}
	// Replace members.
	e.do("PATCH", "/Groups/"+gid, patchOp(map[string]any{"op": "Replace", "path": "members", "value": []any{map[string]any{"value": c}}})).must(t, http.StatusNoContent)
	if e.pantherRole("a@example.com") != "AnalystReadOnly" || e.pantherRole("c@example.com") != "Admin" {
		t.Error("roles after replace members")
	}
	// Filter by member.
	f := e.do("GET", "/Groups?filter="+url.QueryEscape(fmt.Sprintf(`members[value eq "%s"]`, c)), nil).must(t, http.StatusOK)
	if f.Body["totalResults"] != float64(1) {
		t.Errorf("members filter: %s", f.Raw)
	}
	// displayName is unique.
	e.do("POST", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "PANTHER ADMINS"}).scimErr(t, http.StatusConflict, "uniqueness")
	// Deleting a user removes it from the group.
	e.do("DELETE", "/Users/"+c, nil).must(t, http.StatusNoContent)
	g = e.do("GET", "/Groups/"+gid, nil).must(t, http.StatusOK)
	if _, ok := g.Body["members"]; ok {
		t.Errorf("deleted user still a member: %s", g.Raw)
	}
}

func TestFirstRuleWinsAndEmptyDefault(t *testing.T) {
	rules := append(append([]mappings.Rule{}, exampleMapping.Rules...), mappings.Rule{ExternalID: "00gSecurity", Role: "Admin"})
	e := newEnv(t, withMapping(mappings.Mapping{Rules: rules}))
	u := e.createUser("dana@example.com", "Dana", "Scully")
	if _, ok := e.Fake.UserByEmail("dana@example.com"); ok {
		t.Fatal("a user with no mapped group and no default role was invited")
	}
	analysts := e.createGroup("Panther Analysts", u)
	if e.pantherRole("dana@example.com") != "Analyst" {
		t.Fatal("not invited on joining a mapped group")
	}
	// In two mapped groups: the first rule (Admins) wins, whatever the group order.
	admins := e.createGroup("Panther Admins", u)
	if e.pantherRole("dana@example.com") != "Admin" {
		t.Fatalf("two groups: %q", e.pantherRole("dana@example.com"))
	}
	e.do("DELETE", "/Groups/"+admins, nil).must(t, http.StatusNoContent)
	if e.pantherRole("dana@example.com") != "Analyst" {
		t.Fatal("back to Analyst")
	}
	// Leaving the last mapped group removes Panther access; the record stays.
	e.do("PATCH", "/Groups/"+analysts, patchOp(map[string]any{"op": "remove", "path": fmt.Sprintf(`members[value eq "%s"]`, u)})).must(t, http.StatusNoContent)
	if _, ok := e.Fake.UserByEmail("dana@example.com"); ok {
		t.Fatal("still in Panther after leaving the last mapped group")
	}
	e.do("GET", "/Users/"+u, nil).must(t, http.StatusOK)
	// A group matched by an externalId rule.
	ext := e.do("POST", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Security Team", "externalId": "00gSecurity", "members": []any{map[string]any{"value": u}}}).must(t, http.StatusCreated)
	if e.pantherRole("dana@example.com") != "Admin" {
		t.Fatalf("externalId match: %q (%s)", e.pantherRole("dana@example.com"), ext.Raw)
	}
}
