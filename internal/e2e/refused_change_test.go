package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/provision"
)

// emailsOp replaces a user's emails with one primary address.
func emailsOp(email string) map[string]any {
	return map[string]any{"op": "replace", "path": "emails", "value": []any{map[string]any{"value": email, "primary": true}}}
}

// Issue 14, "a change Panther refuses is not kept", while Panther is down: an email
// change to the address of another Panther user cannot be checked then, so it is
// answered 503 and not recorded (as a POST is); the IdP's retry, once Panther answers,
// is refused 409. At no point does the store hold the other user's address, nor is
// anything queued. The same for an inactive record reactivated with that address in
// one step.
func TestEmailChangeDuringOutageIsNotKept(t *testing.T) {
	for _, tc := range []struct {
		name       string
		deactivate bool // the record is inactive (its Panther user deleted) before the change
		reason     string
	}{
		{name: "linked user", reason: provision.RefuseEmailTaken},
		{name: "inactive record reactivated", deactivate: true, reason: provision.RefuseAdoptAdmin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			admin, err := e.Fake.AddUser("boss@example.com", "Bo", "Ss", "Admin")
			if err != nil {
				t.Fatal(err)
			}
			id := e.createUser("eve@example.com", "Eve", "Il")
			change := patchOp(emailsOp("boss@example.com"))
			if tc.deactivate {
				e.do("PATCH", "/Users/"+id, deactivateOp()).must(t, http.StatusOK)
				change = patchOp(emailsOp("boss@example.com"), map[string]any{"op": "replace", "path": "active", "value": true})
			}
			before, _ := e.storedUser(id)

			e.Fake.SetRateLimitRate(0, -1)
			e.Fake.Down(true)
			r := e.do("PATCH", "/Users/"+id, change)
			r.scimErr(t, http.StatusServiceUnavailable, "")
			if r.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if now, _ := e.storedUser(id); now.Email != "eve@example.com" || now.Version != before.Version || e.pending() != 0 {
				t.Errorf("a change Panther could not check was recorded: email %q, version %d (was %d), %d intents",
					now.Email, now.Version, before.Version, e.pending())
			}
			e.Fake.Down(false)
			e.App.Service.PantherAnswered()
			e.waitDrained()

			// The IdP retries the same PATCH: refused now that Panther can be asked.
			e.do("PATCH", "/Users/"+id, change).scimErr(t, http.StatusConflict, "uniqueness")
			after, _ := e.storedUser(id)
			if after.Email != "eve@example.com" || after.Active != before.Active || after.Panther != before.Panther || e.pending() != 0 {
				t.Errorf("the refused change was kept: email %q, active %v, link %+v, %d intents", after.Email, after.Active, after.Panther, e.pending())
			}
			e.unchanged(admin)
			if got := e.refusals(); len(got) == 0 || got[len(got)-1] != tc.reason {
				t.Errorf("refusals audited %v, want the last %s", got, tc.reason)
			}
		})
	}
}

// Issue 14, the race the check before an email change leaves: the address is free when
// the PATCH checks it, the update cannot reach Panther (503, queued), and another
// Panther user takes the address before the queued change reaches Panther. The worker
// then meets the refusal: it puts the record's email back (version bumped, so the IdP
// sees it), audits the refusal and queues nothing; the IdP's retry is refused 409.
func TestEmailTakenWhileQueuedIsRolledBack(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("eve@example.com", "Eve", "Il")
	before, _ := e.storedUser(id)
	evePanther, _ := e.Fake.UserByEmail("eve@example.com")

	e.Fake.FailNext("updateUser", 1000, http.StatusBadGateway)
	change := patchOp(emailsOp("new-boss@example.com"), map[string]any{"op": "replace", "path": "name.givenName", "value": "Evelyn"})
	e.do("PATCH", "/Users/"+id, change).scimErr(t, http.StatusServiceUnavailable, "")
	if queued, _ := e.storedUser(id); queued.Email != "new-boss@example.com" || e.pending() != 1 {
		t.Fatalf("setup: the change was not queued: %q, %d intents", queued.Email, e.pending())
	}
	// Taken in Panther's console while the change waits.
	boss, err := e.Fake.AddUser("new-boss@example.com", "New", "Boss", "Admin")
	if err != nil {
		t.Fatal(err)
	}
	e.Fake.ClearFaults()
	e.App.Service.PantherAnswered()
	e.waitDrained()

	after, _ := e.storedUser(id)
	if after.Email != "eve@example.com" {
		t.Errorf("the record keeps the email Panther refused: %q", after.Email)
	}
	if after.Version <= before.Version+1 {
		t.Errorf("version %d: the rollback must be a new version (the change was %d)", after.Version, before.Version+1)
	}
	if after.Panther.ID != evePanther.ID || !strings.EqualFold(after.Panther.Email, "eve@example.com") {
		t.Errorf("link %+v", after.Panther)
	}
	e.unchanged(boss)
	if pu, _ := e.Fake.UserByEmail("eve@example.com"); pu.ID != evePanther.ID {
		t.Errorf("eve's Panther user %+v", pu)
	}
	if got := e.refusals(); len(got) != 1 || got[0] != provision.RefuseEmailTaken {
		t.Errorf("refusals audited %v", got)
	}
	rolled := false
	for _, a := range e.auditOf("user.update") {
		if a.ID == id && strings.HasPrefix(a.Outcome, "rolled back") {
			rolled = true
		}
	}
	if !rolled {
		t.Error("the rollback is not in the audit trail")
	}
	got := e.do("GET", "/Users/"+id, nil).must(t, http.StatusOK)
	if strings.Contains(got.Raw, "new-boss@example.com") {
		t.Errorf("the record shows the refused email: %s", got.Raw)
	}
	// The IdP retries the PATCH it was answered 503 for: refused, nothing kept.
	e.do("PATCH", "/Users/"+id, change).scimErr(t, http.StatusConflict, "uniqueness")
	if now, _ := e.storedUser(id); now.Email != "eve@example.com" || e.pending() != 0 {
		t.Errorf("after the retry: email %q, %d intents", now.Email, e.pending())
	}
	e.unchanged(boss)
}

// A deactivation is never held up, and never undone by what else its PATCH asked: in
// role mode, `active: false` with another Panther user's email, sent while Panther is
// down, is accepted (200) without the email check; when Panther answers, the email is
// refused and put back, and the deactivation still reaches Panther (the no-access role).
func TestDeactivationStandsWhenItsEmailIsRefused(t *testing.T) {
	e := newEnv(t, func(o *app.Options) {
		o.Provision.Deactivation = provision.DeactivateRole
		o.Provision.DeactivationRole = "NoAccess"
	})
	if _, err := e.Fake.AddRole("NoAccess", nil); err != nil {
		t.Fatal(err)
	}
	admin, err := e.Fake.AddUser("boss@example.com", "Bo", "Ss", "Admin")
	if err != nil {
		t.Fatal(err)
	}
	id := e.createUser("leaver@example.com", "Lea", "Ver")
	e.Fake.SetRateLimitRate(0, -1)
	e.Fake.Down(true)
	e.do("PATCH", "/Users/"+id, patchOp(emailsOp("boss@example.com"), map[string]any{"op": "replace", "path": "active", "value": false})).must(t, http.StatusOK)
	e.Fake.Down(false)
	e.App.Service.PantherAnswered()
	e.waitDrained()

	if got := e.pantherRole("leaver@example.com"); got != "NoAccess" {
		t.Errorf("the leaver's Panther role is %q, want NoAccess", got)
	}
	e.unchanged(admin)
	after, _ := e.storedUser(id)
	if after.Active || after.Email != "leaver@example.com" {
		t.Errorf("record: active %v, email %q; want inactive with its own email", after.Active, after.Email)
	}
	if got := e.refusals(); len(got) != 1 || got[0] != provision.RefuseEmailTaken {
		t.Errorf("refusals audited %v", got)
	}
}
