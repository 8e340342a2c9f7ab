package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
	"github.com/panther-scim/panther-scim/mappings"
)

// Issue 14, case 5: look-alikes. An address with an invisible character is not a
// second account that looks like the first, and text that is not UTF-8 never reaches
// Panther as U+FFFD: both are 400 invalidValue, with no Panther call and no record.
func TestLookAlikesAreRefused(t *testing.T) {
	e := newEnv(t, withProtected("breakglass@corp.example"))
	if _, err := e.Fake.AddUser("breakglass@corp.example", "Break", "Glass", "Admin"); err != nil {
		t.Fatal(err)
	}
	e.Fake.ResetCalls()
	for name, body := range map[string]any{
		"zero-width space":   newUser("breakglass@corp.example\u200b", "Break", "Glass"),
		"zero-width joiner":  newUser("break\u200dglass@corp.example", "Break", "Glass"),
		"bidi override":      newUser("breakglass@corp.example\u202e", "Break", "Glass"),
		"soft hyphen":        newUser("break\u00adglass@corp.example", "Break", "Glass"),
		"control character":  newUser("breakglass@corp.example\u0007", "Break", "Glass"),
		"replacement char":   newUser("breakglass\ufffd@corp.example", "Break", "Glass"),
		"invisible in names": newUser("someone@corp.example", "Some\u200bone", "Else"),
		"invalid UTF-8 userName": `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bad` + "\xff\xfe" +
			`@corp.example","name":{"givenName":"B","familyName":"C"},"active":true}`,
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do("POST", "/Users", body)
			r.scimErr(t, http.StatusBadRequest, "invalidValue")
			if strings.Contains(r.Raw, "\ufffd") && name != "replacement char" {
				t.Errorf("the answer carries U+FFFD: %s", r.Raw)
			}
		})
	}
	if ops := callOps(e.Fake.Calls()); ops != "" {
		t.Errorf("Panther calls for refused input: %s", ops)
	}
	if list := e.do("GET", "/Users", nil).must(t, http.StatusOK); list.Body["totalResults"] != float64(0) {
		t.Errorf("records kept: %s", list.Raw)
	}

	// The protected list compares one canonical form: another case, or the same
	// letters composed differently, is the same address.
	e2 := newEnv(t, withProtected("josé@corp.example"))
	for _, email := range []string{"JOSÉ@corp.example", "jose\u0301@corp.example"} {
		r := e2.do("POST", "/Users", newUser(email, "Jo", "Se"))
		r.scimErr(t, http.StatusConflict, "uniqueness")
		if !strings.Contains(r.str("detail"), "protected") {
			t.Errorf("%q: %s", email, r.Raw)
		}
	}
	if ops := callOps(e2.Fake.Calls()); ops != "" {
		t.Errorf("Panther calls for a protected address: %s", ops)
	}
}

// Issue 14, case 6: a rule {group: Panther Admins} matches the group of that
// displayName, not a group whose externalId is "Panther Admins"; matching an
// externalId takes a rule of its own ({externalId: ...}).
func TestMappingRulesSayWhatTheyMatch(t *testing.T) {
	m := exampleMapping
	m.Rules = append(m.Rules, mappings.Rule{ExternalID: "entra-0b1d", Role: "Analyst"})
	e := newEnv(t, withMapping(m))
	mallory := e.createUser("mallory@example.com", "Mal", "Lory")
	carol := e.createUser("carol@example.com", "Ca", "Rol")
	body := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Contractors", "externalId": "Panther Admins", "members": []any{map[string]any{"value": mallory}}}
	e.do("POST", "/Groups", body).must(t, http.StatusCreated)
	if got := e.pantherRole("mallory@example.com"); got != "AnalystReadOnly" {
		t.Errorf("a group whose externalId is a rule's displayName gave role %q", got)
	}
	body = map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "SOC (Entra)", "externalId": "entra-0b1d", "members": []any{map[string]any{"value": carol}}}
	e.do("POST", "/Groups", body).must(t, http.StatusCreated)
	if got := e.pantherRole("carol@example.com"); got != "Analyst" {
		t.Errorf("the externalId rule gave role %q, want Analyst", got)
	}
}

// auditOf returns the audit entries of an action, oldest first.
func (e *env) auditOf(action string) []provision.AuditEntry {
	e.t.Helper()
	var out []provision.AuditEntry
	err := e.App.Store.View(context.Background(), func(tx provision.ReadTx) error {
		return tx.ScanAudit(time.Time{}, func(a provision.AuditEntry) bool {
			if a.Action == action {
				out = append(out, a)
			}
			return true
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// refusals returns the reasons of the audited refusals, in order.
func (e *env) refusals() []string {
	e.t.Helper()
	var out []string
	for _, a := range e.auditOf("user.refuse") {
		out = append(out, a.After["reason"])
	}
	return out
}

// counted returns a counter's value from /metrics.
func (e *env) counted(name string, labels map[string]string) float64 {
	e.t.Helper()
	_, ss := e.scrape()
	v, ok := metric(ss, name, labels)
	if !ok {
		e.t.Fatalf("no %s%v in /metrics", name, labels)
	}
	return v
}

// unchanged fails unless Panther still holds the user exactly as it was.
func (e *env) unchanged(before provision.PantherUser) {
	e.t.Helper()
	now, ok := e.Fake.UserByEmail(before.Email)
	if !ok || now != before {
		e.t.Errorf("Panther user %s was changed or deleted: %+v (was %+v)", before.Email, now, before)
	}
}

// Issue 14, case 3: adoption is a policy. Under the default (nonAdmin) a Panther
// administrator created in the console is not taken over: 409 naming the fix, nothing
// changed. Under all it is adopted, audited with its role before and after, logged and
// counted; under none no existing user is adopted.
func TestAdoptionPolicy(t *testing.T) {
	t.Run("nonAdmin", func(t *testing.T) {
		e := newEnv(t)
		admin, err := e.Fake.AddUser("boss@example.com", "Bo", "Ss", "Admin")
		if err != nil {
			t.Fatal(err)
		}
		r := e.do("POST", "/Users", newUser("boss@example.com", "Bo", "Ss"))
		r.scimErr(t, http.StatusConflict, "uniqueness")
		for _, want := range []string{"holds UserModify", "provisioning.protectedEmails", "provisioning.adopt: all"} {
			if !strings.Contains(r.str("detail"), want) {
				t.Errorf("detail lacks %q: %s", want, r.str("detail"))
			}
		}
		e.unchanged(admin)
		if e.recordCount() != 0 || e.pending() != 0 {
			t.Errorf("%d records, %d intents after a refused adoption", e.recordCount(), e.pending())
		}
		// A user that is not an administrator is adopted, and the adoption audited.
		ana, err := e.Fake.AddUser("ana@example.com", "An", "A", "Analyst")
		if err != nil {
			t.Fatal(err)
		}
		id := e.createUser("ana@example.com", "Ana", "Lyst")
		if pu, _ := e.Fake.UserByEmail("ana@example.com"); pu.ID != ana.ID || pu.RoleName != "AnalystReadOnly" {
			t.Errorf("adopted user %+v", pu)
		}
		ad := e.auditOf("user.adopt")
		if len(ad) != 1 || ad[0].ID != id || ad[0].Before["role"] != "Analyst" || ad[0].After["role"] != "AnalystReadOnly" || ad[0].Before["pantherId"] != ana.ID {
			t.Errorf("adoption audit %+v", ad)
		}
		if got := e.refusals(); len(got) != 1 || got[0] != provision.RefuseAdoptAdmin {
			t.Errorf("refusals audited %v", got)
		}
		if e.counted("panther_scim_adoptions_total", nil) != 1 || e.counted("panther_scim_refusals_total", map[string]string{"reason": "adopt_admin"}) != 1 ||
			e.counted("panther_scim_refusals_total", map[string]string{"reason": "last_admin"}) != 0 {
			t.Error("metrics do not count the adoption and the refusal")
		}
		if !strings.Contains(e.Logs.String(), `"msg":"adopted an existing Panther user"`) || !strings.Contains(e.Logs.String(), `"role_before":"Analyst"`) {
			t.Error("no warning for the adoption")
		}
	})
	t.Run("all", func(t *testing.T) {
		e := newEnv(t, func(o *app.Options) { o.Provision.Adopt = provision.AdoptAll })
		admin, err := e.Fake.AddUser("boss@example.com", "Bo", "Ss", "Admin")
		if err != nil {
			t.Fatal(err)
		}
		id := e.createUser("boss@example.com", "Bo", "Ss")
		if pu, _ := e.Fake.UserByEmail("boss@example.com"); pu.ID != admin.ID || pu.RoleName != "AnalystReadOnly" {
			t.Errorf("adopted admin %+v", pu)
		}
		if ad := e.auditOf("user.adopt"); len(ad) != 1 || ad[0].ID != id || ad[0].Before["role"] != "Admin" {
			t.Errorf("adoption audit %+v", ad)
		}
	})
	t.Run("none", func(t *testing.T) {
		e := newEnv(t, func(o *app.Options) { o.Provision.Adopt = provision.AdoptNone })
		ana, err := e.Fake.AddUser("ana@example.com", "An", "A", "AnalystReadOnly")
		if err != nil {
			t.Fatal(err)
		}
		r := e.do("POST", "/Users", newUser("ana@example.com", "An", "A"))
		r.scimErr(t, http.StatusConflict, "uniqueness")
		if !strings.Contains(r.str("detail"), "provisioning.adopt is none") {
			t.Errorf("detail: %s", r.Raw)
		}
		e.unchanged(ana)
		e.createUser("new@example.com", "Ne", "W") // a new person is invited as ever
	})
}

// Issue 16: Panther's words for "already exists" are not documented. An invite refused
// with a code and message the client cannot classify is followed by a lookup: the user
// Panther has is treated as a recognised duplicate, adopted or refused by the policy.
func TestAdoptionAfterAnUnrecognisedDuplicate(t *testing.T) {
	e := newEnv(t)
	ana, err := e.Fake.AddUser("ana@example.com", "An", "A", "Analyst")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := e.Fake.AddUser("boss@example.com", "Bo", "Ss", "Admin")
	if err != nil {
		t.Fatal(err)
	}
	e.Fake.SetDuplicateAnswer("E4711", "Operation could not be completed")
	e.Fake.ResetCalls()
	id := e.createUser("ana@example.com", "Ana", "Lyst")
	if got := callOps(e.Fake.Calls()); got != "inviteUser userByEmail updateUser" {
		t.Errorf("calls: %s", got)
	}
	u, _ := e.storedUser(id)
	if u.Panther.ID != ana.ID || len(e.auditOf("user.adopt")) != 1 {
		t.Errorf("not adopted: link %+v", u.Panther)
	}
	e.do("POST", "/Users", newUser("boss@example.com", "Bo", "Ss")).scimErr(t, http.StatusConflict, "uniqueness")
	e.unchanged(admin)
	// Without a user behind it, the unclassified refusal is what the IdP learns (an
	// opaque 500: Panther's words are not passed on), and nothing is kept.
	e.Fake.SetDuplicateAnswer("E4711", "Operation could not be completed")
	_, _ = e.Fake.AddUser("gone@example.com", "Go", "Ne", "Analyst")
	pu, _ := e.Fake.UserByEmail("gone@example.com")
	if err := e.Fake.RemoveUser(pu.ID); err != nil {
		t.Fatal(err)
	}
	e.Fake.FailNext("inviteUser", 1, http.StatusBadRequest)
	r := e.do("POST", "/Users", newUser("gone@example.com", "Go", "Ne"))
	if r.Status/100 == 2 || len(e.idsByUserName("gone@example.com")) != 0 {
		t.Errorf("a refused invite with no Panther user: %d, records %v", r.Status, e.idsByUserName("gone@example.com"))
	}
}

// Issue 14, case 2: an email change to an address another Panther user holds is
// refused (409) and not kept, and not queued; so a later re-invite can never adopt
// that account. The same in one step on a deactivated record.
func TestEmailChangeToAnotherAccountIsRefused(t *testing.T) {
	e := newEnv(t)
	admin, err := e.Fake.AddUser("boss@example.com", "Bo", "Ss", "Admin")
	if err != nil {
		t.Fatal(err)
	}
	id := e.createUser("eve@example.com", "Eve", "Il")
	before, _ := e.storedUser(id)
	toBoss := patchOp(map[string]any{"op": "replace", "path": "emails", "value": []any{map[string]any{"value": "boss@example.com", "primary": true}}})
	for try := 0; try < 2; try++ { // the IdP's retry gets the same answer
		r := e.do("PATCH", "/Users/"+id, toBoss)
		r.scimErr(t, http.StatusConflict, "uniqueness")
		if !strings.Contains(r.str("detail"), "boss@example.com") {
			t.Errorf("detail: %s", r.Raw)
		}
	}
	after, _ := e.storedUser(id)
	if after.Email != "eve@example.com" || after.Panther != before.Panther || e.pending() != 0 {
		t.Fatalf("the refused change was kept: email %q, link %+v, %d intents", after.Email, after.Panther, e.pending())
	}
	got := e.do("GET", "/Users/"+id, nil).must(t, http.StatusOK)
	if strings.Contains(got.Raw, "boss@example.com") {
		t.Errorf("the record shows the refused email: %s", got.Raw)
	}
	e.unchanged(admin)

	// Deactivated (its Panther user deleted), then reactivated with the admin's
	// email in one PATCH: refused, the record stays inactive with its own email.
	e.do("PATCH", "/Users/"+id, deactivateOp()).must(t, http.StatusOK)
	r := e.do("PATCH", "/Users/"+id, patchOp(
		map[string]any{"op": "replace", "path": "emails", "value": []any{map[string]any{"value": "boss@example.com", "primary": true}}},
		map[string]any{"op": "replace", "path": "active", "value": true}))
	r.scimErr(t, http.StatusConflict, "uniqueness")
	after, _ = e.storedUser(id)
	if after.Active || after.Email != "eve@example.com" || e.pending() != 0 {
		t.Errorf("the refused reactivation was kept: %+v, %d intents", after, e.pending())
	}
	e.unchanged(admin)
	e.do("DELETE", "/Users/"+id, nil).must(t, http.StatusNoContent)
	e.unchanged(admin)
	if got := e.refusals(); len(got) != 3 || got[0] != provision.RefuseEmailTaken || got[2] != provision.RefuseAdoptAdmin {
		t.Errorf("refusals audited %v", got)
	}
}

// Issue 14, case 4: protection and ownership are checked against Panther's current
// state. A managed user whose email was changed in Panther (to a protected address,
// or to anyone else's) is neither updated nor deleted.
func TestChangedInPantherIsNotOurs(t *testing.T) {
	e := newEnv(t, withProtected("root@example.com"))
	mallory := e.createUser("mallory@example.com", "Mal", "Lory")
	other := e.createUser("other@example.com", "Oth", "Er")
	pid := func(email string) string {
		pu, _ := e.Fake.UserByEmail(email)
		return pu.ID
	}
	if err := e.Fake.SetUserEmail(pid("mallory@example.com"), "root@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := e.Fake.SetUserEmail(pid("other@example.com"), "someone-else@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := e.Fake.SetUserRole(pid("root@example.com"), "Admin"); err != nil {
		t.Fatal(err)
	}
	root, _ := e.Fake.UserByEmail("root@example.com")
	elsewhere, _ := e.Fake.UserByEmail("someone-else@example.com")
	mutationsBefore := mutations(e)

	e.do("PATCH", "/Users/"+mallory, renameOp("Mal", "Icious")).scimErr(t, http.StatusConflict, "")
	e.do("PATCH", "/Users/"+other, renameOp("Oth", "Ers")).scimErr(t, http.StatusConflict, "")
	// A group change that moves them to Admin reaches neither.
	e.createGroup("Panther Admins", mallory, other)
	e.do("DELETE", "/Users/"+mallory, nil).must(t, http.StatusNoContent)
	e.do("DELETE", "/Users/"+other, nil).must(t, http.StatusNoContent)
	waitFor(t, "the removals to finish", func() bool { return e.pending() == 0 })
	if mutations(e) != mutationsBefore {
		t.Errorf("%d Panther changes to users that are no longer ours", mutations(e)-mutationsBefore)
	}
	e.unchanged(root)
	e.unchanged(elsewhere)
	reasons := strings.Join(e.refusals(), " ")
	if !strings.Contains(reasons, provision.RefuseProtected) || !strings.Contains(reasons, provision.RefuseNotOwned) {
		t.Errorf("refusals audited: %s", reasons)
	}
	plan, err := e.App.Service.Reconcile(context.Background(), true)
	if err != nil || len(plan.Drift) != 0 {
		t.Errorf("reconcile would touch them: %v\n%s", err, plan)
	}
}

// Never leave Panther without an administrator: deleting, deactivating or demoting
// the only enabled Panther user whose role holds UserModify is refused (409), audited,
// and changes nothing, in the store or in Panther. A disabled administrator does not
// count as another one.
func TestLastAdministratorIsKept(t *testing.T) {
	e := newEnv(t)
	e.removeConsoleAdmin()
	id := e.createUser("only@example.com", "On", "Ly")
	other := e.createUser("other@example.com", "Oth", "Er")
	g := e.createGroup("Panther Admins", id)
	if e.pantherRole("only@example.com") != "Admin" {
		t.Fatal("setup")
	}
	disabled, err := e.Fake.AddUser("away@example.com", "A", "Way", "Admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Fake.SetUserEnabled(disabled.ID, false); err != nil {
		t.Fatal(err)
	}
	only, _ := e.Fake.UserByEmail("only@example.com")
	rec, _ := e.storedUser(id)
	grp := e.do("GET", "/Groups/"+g, nil).must(t, http.StatusOK)

	for name, req := range map[string]func() resp{
		"delete":     func() resp { return e.do("DELETE", "/Users/"+id, nil) },
		"deactivate": func() resp { return e.do("PATCH", "/Users/"+id, deactivateOp()) },
		"leave the group": func() resp {
			return e.do("PATCH", "/Groups/"+g, patchOp(map[string]any{"op": "remove", "path": `members[value eq "` + id + `"]`}))
		},
		"delete the group": func() resp { return e.do("DELETE", "/Groups/"+g, nil) },
		"replace members": func() resp {
			return e.do("PATCH", "/Groups/"+g, patchOp(map[string]any{"op": "replace", "path": "members", "value": []any{map[string]any{"value": other}}}))
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := req()
			r.scimErr(t, http.StatusConflict, "")
			if !strings.Contains(r.str("detail"), "without an administrator") {
				t.Errorf("detail: %s", r.Raw)
			}
			e.unchanged(only)
			if now, ok := e.storedUser(id); !ok || now.Active != rec.Active || now.Panther != rec.Panther {
				t.Errorf("record changed: %+v", now)
			}
			if now := e.do("GET", "/Groups/"+g, nil).must(t, http.StatusOK); fmt.Sprint(now.Body["members"]) != fmt.Sprint(grp.Body["members"]) {
				t.Errorf("group changed: %s", now.Raw)
			}
			if e.pending() != 0 {
				t.Errorf("%d intents queued for a refused change", e.pending())
			}
		})
	}
	if n := e.counted("panther_scim_refusals_total", map[string]string{"reason": "last_admin"}); n != 5 {
		t.Errorf("last_admin refusals counted: %v", n)
	}
	if got := e.refusals(); len(got) != 5 {
		t.Errorf("refusals audited: %v", got)
	}
	// With another enabled administrator the deletion goes through.
	if err := e.Fake.SetUserEnabled(disabled.ID, true); err != nil {
		t.Fatal(err)
	}
	e.do("DELETE", "/Users/"+id, nil).must(t, http.StatusNoContent)
	waitFor(t, "the deletion", func() bool { _, ok := e.Fake.UserByEmail("only@example.com"); return !ok })
}

// Issue 14, case 1 (in process; the real binary's crash test is in cmd/panther-scim):
// a record that never asked for Panther access makes no Panther call, even when an
// intent of it is left pending by a crash; and a record whose recorded invite met an
// existing account never deletes that account.
func TestUncertainRecoveryNeverDeletesStrangers(t *testing.T) {
	e := newEnv(t)
	admin, err := e.Fake.AddUser("console@example.com", "Con", "Sole", "Admin")
	if err != nil {
		t.Fatal(err)
	}
	ana, err := e.Fake.AddUser("ana@example.com", "An", "A", "Analyst")
	if err != nil {
		t.Fatal(err)
	}
	inactive := newUser("console@example.com", "Con", "Sole")
	inactive["active"] = false
	quiet := e.do("POST", "/Users", inactive).must(t, http.StatusCreated).str("id")
	asked := e.createUser("ana@example.com", "An", "A") // adopted (nonAdmin)
	if err := e.App.Close(); err != nil {
		t.Fatal(err)
	}
	// What a kill after the store write leaves: intents pending for both. The second
	// records an invite made after the Panther user it met was created.
	st, err := store.Open(e.storePath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx provision.Tx) error {
		if err := tx.PutIntent(provision.Intent{UserID: quiet, Since: time.Now().UTC(), Gen: 1}); err != nil {
			return err
		}
		u, err := tx.User(asked)
		if err != nil {
			return err
		}
		// Deactivated, and never linked: its invite met the existing account (refused,
		// say, under another policy) and its removal is what is pending.
		u.Panther, u.Active = provision.PantherLink{}, false
		if err := tx.PutUser(u); err != nil {
			return err
		}
		return tx.PutIntent(provision.Intent{UserID: asked, Since: time.Now().UTC(), Gen: 1,
			Invites: []provision.InviteAttempt{{Email: "ana@example.com", At: ana.CreatedAt.Add(time.Millisecond)}}})
	})
	if err := errors.Join(err, st.Close()); err != nil {
		t.Fatal(err)
	}
	e.Fake.ResetCalls()
	e.metrics = app.NewMetrics()
	e.start()
	e.waitDrained()
	for _, c := range e.Fake.Calls() {
		if email, _ := c.Variables["email"].(string); strings.EqualFold(email, "console@example.com") {
			t.Errorf("a Panther call for a record that never asked for access: %s %v", c.Op, c.Variables)
		}
	}
	e.unchanged(admin)
	if _, ok := e.Fake.UserByEmail("ana@example.com"); !ok {
		t.Error("the account that existed before the recorded invite was deleted")
	}
	if got := e.refusals(); len(got) == 0 || got[len(got)-1] != provision.RefuseNotOwned {
		t.Errorf("refusals audited: %v", got)
	}
}

// A change Panther itself refuses (here an answer the client cannot classify) is not
// kept either: the record is put back and nothing is queued for a retry.
func TestChangePantherRefusesIsNotKept(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("kim@example.com", "Kim", "Ba")
	before, _ := e.storedUser(id)
	e.Fake.FailNext("updateUser", 1, http.StatusBadRequest)
	r := e.do("PATCH", "/Users/"+id, renameOp("Kimberly", "Ba"))
	if r.Status/100 == 2 || r.Status == http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", r.Status, r.Raw)
	}
	after, _ := e.storedUser(id)
	if g := after.Attributes["name"].(map[string]any)["givenName"]; g != "Kim" || after.Panther != before.Panther || e.pending() != 0 {
		t.Errorf("the refused change was kept: givenName %v, %d intents", g, e.pending())
	}
	if pu, _ := e.Fake.UserByEmail("kim@example.com"); pu.GivenName != "Kim" {
		t.Errorf("Panther user %+v", pu)
	}
	// The IdP's next attempt, once Panther accepts it, goes through.
	e.do("PATCH", "/Users/"+id, renameOp("Kimberly", "Ba")).must(t, http.StatusOK)
	if pu, _ := e.Fake.UserByEmail("kim@example.com"); pu.GivenName != "Kimberly" {
		t.Errorf("Panther user %+v", pu)
	}
}
