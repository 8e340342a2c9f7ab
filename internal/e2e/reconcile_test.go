package e2e

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/mappings"
)

// mutations counts the Panther calls that change users.
func mutations(e *env) int {
	return e.Fake.Count("inviteUser") + e.Fake.Count("updateUser") + e.Fake.Count("deleteUser")
}

// driftOf returns the plan's entry for a user.
func driftOf(p provision.Plan, userID string) (provision.Drift, bool) {
	i := slices.IndexFunc(p.Drift, func(d provision.Drift) bool { return d.UserID == userID })
	if i < 0 {
		return provision.Drift{}, false
	}
	return p.Drift[i], true
}

// hasField reports whether a drift lists a field difference starting with prefix.
func hasField(d provision.Drift, prefix string) bool {
	return slices.ContainsFunc(d.Fields, func(f string) bool { return strings.HasPrefix(f, prefix) })
}

// TestReconcileRepairsDrift: Panther is changed behind the bridge's back. The dry run
// lists each drift with the user and the field and changes nothing; the repair fixes
// it; a Panther user the store does not manage is left alone.
func TestReconcileRepairsDrift(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	roleID := e.createUser("role@example.com", "Ro", "Le")
	goneID := e.createUser("gone@example.com", "Go", "Ne")
	namesID := e.createUser("names@example.com", "Na", "Mes")
	fineID := e.createUser("fine@example.com", "Fi", "Ne")
	e.createGroup("Panther Analysts", roleID)
	if e.pantherRole("role@example.com") != "Analyst" {
		t.Fatalf("setup: role %q", e.pantherRole("role@example.com"))
	}

	pid := func(email string) string {
		pu, ok := e.Fake.UserByEmail(email)
		if !ok {
			t.Fatalf("%s not in Panther", email)
		}
		return pu.ID
	}
	if err := e.Fake.SetUserRole(pid("role@example.com"), "Admin"); err != nil {
		t.Fatal(err)
	}
	if err := e.Fake.RemoveUser(pid("gone@example.com")); err != nil {
		t.Fatal(err)
	}
	if err := e.Fake.SetUserNames(pid("names@example.com"), "Changed", "Behind"); err != nil {
		t.Fatal(err)
	}
	stranger, err := e.Fake.AddUser("stranger@example.com", "Str", "Anger", "Admin")
	if err != nil {
		t.Fatal(err)
	}
	before := e.Fake.Users()
	calls := mutations(e)

	plan, err := e.App.Service.Reconcile(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Drift) != 3 || plan.Unmanaged != 2 || plan.Repaired+plan.Failed != 0 { // the stranger and the console's admin
		t.Errorf("dry-run plan:\n%s", plan)
	}
	if d, ok := driftOf(plan, roleID); !ok || d.Action != "update" || d.Email != "role@example.com" || !hasField(d, "role: Admin -> Analyst") {
		t.Errorf("role drift: %+v", d)
	}
	if d, ok := driftOf(plan, goneID); !ok || d.Action != "invite" || d.Email != "gone@example.com" {
		t.Errorf("deleted user drift: %+v", d)
	}
	if d, ok := driftOf(plan, namesID); !ok || d.Action != "update" ||
		!hasField(d, "givenName: Changed -> Na") || !hasField(d, "familyName: Behind -> Mes") || len(d.Fields) != 2 {
		t.Errorf("names drift: %+v", d)
	}
	if _, ok := driftOf(plan, fineID); ok {
		t.Error("a user without drift is in the plan")
	}
	out := plan.String()
	for _, want := range []string{"role@example.com", "gone@example.com", "names@example.com", "role: Admin -> Analyst",
		"2 Panther users not managed here"} {
		if !strings.Contains(out, want) {
			t.Errorf("printed plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "stranger@example.com") {
		t.Errorf("the plan touches the unmanaged user:\n%s", out)
	}
	if mutations(e) != calls || !slices.Equal(e.Fake.Users(), before) || e.pending() != 0 {
		t.Fatal("the dry run changed something")
	}

	plan, err = e.App.Service.Reconcile(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Repaired != 3 || plan.Failed != 0 {
		t.Errorf("repair:\n%s", plan)
	}
	for email, want := range map[string]string{"role@example.com": "Analyst", "gone@example.com": "AnalystReadOnly",
		"names@example.com": "AnalystReadOnly", "fine@example.com": "AnalystReadOnly"} {
		if got := e.pantherRole(email); got != want {
			t.Errorf("%s: role %q, want %q", email, got, want)
		}
	}
	if pu, _ := e.Fake.UserByEmail("names@example.com"); pu.GivenName != "Na" || pu.FamilyName != "Mes" {
		t.Errorf("names not repaired: %+v", pu)
	}
	if u, _ := e.storedUser(goneID); u.Panther.ID != pid("gone@example.com") {
		t.Errorf("re-invited user's link %+v", u.Panther)
	}
	if pu, ok := e.Fake.UserByEmail("stranger@example.com"); !ok || pu != stranger {
		t.Errorf("unmanaged user touched: %+v, was %+v", pu, stranger)
	}
	if e.pending() != 0 {
		t.Errorf("%d intents left", e.pending())
	}
	plan, err = e.App.Service.Reconcile(ctx, true)
	if err != nil || len(plan.Drift) != 0 || plan.Unmanaged != 2 {
		t.Errorf("after the repair: %v\n%s", err, plan)
	}
}

// TestMappingChangeAcrossRestart: after the mapping changes in the config, a restart
// moves every affected user to their new role (or out of Panther), and leaves the
// others alone.
func TestMappingChangeAcrossRestart(t *testing.T) {
	e := newEnv(t)
	analyst := e.createUser("analyst@example.com", "An", "Alyst")
	secu := e.createUser("secu@example.com", "Se", "Cu")
	plain := e.createUser("plain@example.com", "Pl", "Ain")
	admin := e.createUser("admin@example.com", "Ad", "Min")
	e.createGroup("Panther Analysts", analyst)
	e.createGroup("Security", secu)
	e.createGroup("Panther Admins", admin)
	for email, want := range map[string]string{"analyst@example.com": "Analyst", "secu@example.com": "AnalystReadOnly",
		"plain@example.com": "AnalystReadOnly", "admin@example.com": "Admin"} {
		if got := e.pantherRole(email); got != want {
			t.Fatalf("setup: %s has role %q, want %q", email, got, want)
		}
	}
	adminPanther, _ := e.Fake.UserByEmail("admin@example.com")

	e.opts.Provision.Mapping = mappings.Mapping{
		Rules: []mappings.Rule{
			{Group: "Panther Admins", Role: "Admin"},
			{Group: "Security", Role: "Admin"},
			{Group: "Panther Analysts", Role: "AnalystReadOnly"},
		},
		DefaultRole: "", // users in no mapped group lose access
	}
	e.Fake.ResetCalls()
	e.restart()
	want := map[string]string{"analyst@example.com": "AnalystReadOnly", "secu@example.com": "Admin",
		"plain@example.com": "", "admin@example.com": "Admin"}
	waitFor(t, "roles to follow the new mapping", func() bool {
		for email, role := range want {
			if e.pantherRole(email) != role {
				return false
			}
		}
		return e.pending() == 0
	})
	if e.Fake.Count("inviteUser") != 0 || e.Fake.Count("updateUser") != 2 || e.Fake.Count("deleteUser") != 1 {
		t.Errorf("calls after the restart: invite %d, update %d, delete %d; want 0, 2, 1",
			e.Fake.Count("inviteUser"), e.Fake.Count("updateUser"), e.Fake.Count("deleteUser"))
	}
	if pu, _ := e.Fake.UserByEmail("admin@example.com"); pu != adminPanther {
		t.Errorf("an unaffected user was changed: %+v", pu)
	}
	if u, ok := e.storedUser(plain); !ok || !u.Active || u.Panther.ID != "" {
		t.Errorf("the user without access: record %+v %v", u, ok)
	}
	e.do("GET", "/Users/"+plain, nil).must(t, http.StatusOK)
	plan, err := e.App.Service.Reconcile(context.Background(), true)
	if err != nil || len(plan.Drift) != 0 {
		t.Errorf("drift after the restart: %v\n%s", err, plan)
	}
}

// TestMappingChangeWhilePantherDown: the bridge restarts with a new mapping and a queued
// deletion while Panther is down; once Panther is back both reach it.
func TestMappingChangeWhilePantherDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	leaver := e.createUser("leaver@example.com", "Lea", "Ver")
	e.createUser("moved@example.com", "Mo", "Ved")
	e.Fake.SetRateLimitRate(0, -1)
	e.Fake.Down(true)
	e.do("DELETE", "/Users/"+leaver, nil).must(t, http.StatusNoContent)

	e.opts.Provision.Mapping = mappings.Mapping{DefaultRole: "Analyst"}
	e.restart()
	if rz := e.readyState(); rz.Status != http.StatusServiceUnavailable || rz.Body["pendingIntents"] != float64(1) {
		t.Errorf("readyz after a restart while down: %d %s", rz.Status, rz.Raw)
	}
	// Let the start-up work fail first: the replay of the deletion, and the comparison
	// with the new mapping, which needs Panther to resolve the roles.
	waitFor(t, "the start-up work to fail", func() bool {
		ps := e.pendingList()
		return len(ps) == 1 && ps[0].Attempts >= 2 && strings.Contains(e.Logs.String(), "could not compare users with the current mapping")
	})
	e.Fake.Down(false)
	waitFor(t, "the deletion and the new role to reach Panther", func() bool {
		return pantherCopies(e.Fake, "leaver@example.com") == 0 && e.pantherRole("moved@example.com") == "Analyst" && e.pending() == 0
	})
	if appliedCalls(e.Fake, "inviteUser") != 2 {
		t.Errorf("inviteUser applied %d times, want 2", appliedCalls(e.Fake, "inviteUser"))
	}
}

// TestReconcileRepairsConcurrently: the repairs of a reconcile go to Panther
// provisioning.syncConcurrency at a time (8 by default), not one after the other; each
// repaired user costs its ownership check and its update, nothing more.
func TestReconcileRepairsConcurrently(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 24
	var emails []string
	for i := range n {
		email := "drift" + string(rune('a'+i)) + "@example.com"
		e.createUser(email, "Dr", "Ift")
		emails = append(emails, email)
	}
	for _, email := range emails {
		pu, _ := e.Fake.UserByEmail(email)
		if err := e.Fake.SetUserRole(pu.ID, "Analyst"); err != nil {
			t.Fatal(err)
		}
	}
	e.Fake.ResetCalls()
	e.Fake.SetLatency(30*time.Millisecond, 0) // long enough for calls sent together to overlap
	plan, err := e.App.Service.Reconcile(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	e.Fake.SetLatency(0, 0)
	if plan.Repaired != n || plan.Failed != 0 {
		t.Fatalf("repaired %d, failed %d; want %d and 0", plan.Repaired, plan.Failed, n)
	}
	for _, email := range emails {
		if r := e.pantherRole(email); r != "AnalystReadOnly" {
			t.Errorf("%s: role %q after the repair", email, r)
		}
	}
	if got := e.Fake.CallCounts(); got["users"] != 1 || got["userById"] != n || got["updateUser"] != n || len(got) != 3 {
		t.Errorf("calls %v, want 1 users and %d userById and updateUser", got, n)
	}
	if m := e.Fake.MaxInFlight(); m < 2 {
		t.Errorf("at most %d Panther call in flight during the repairs: they went one after the other", m)
	}
}
