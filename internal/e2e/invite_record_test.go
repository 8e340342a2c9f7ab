package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/provision"
)

// Issue 14, "ownership is explicit and durable": a POST whose invite reached Panther
// but whose answer was lost, and whose follow-up lookup failed, is answered 503 and not
// kept; the invite it recorded is. The IdP's retry finds the Panther user that invite
// created and links it as panther-scim's own: no adoption (none counted or audited),
// whatever the adoption policy, even when the default role holds UserModify.
func TestInviteOutlivesRolledBackCreate(t *testing.T) {
	adminDefault := exampleMapping
	adminDefault.DefaultRole = "Admin"
	for _, tc := range []struct {
		name string
		opts []option
	}{
		{name: "adopt none", opts: []option{func(o *app.Options) { o.Provision.Adopt = provision.AdoptNone }}},
		{name: "nonAdmin"},
		{name: "nonAdmin, default role Admin", opts: []option{withMapping(adminDefault)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			e.Fake.DropNext("inviteUser", 1)
			e.Fake.FailNext("userByEmail", 1000, http.StatusBadGateway)
			body := newUser("nina@example.com", "Ni", "Na")
			e.do("POST", "/Users", body).scimErr(t, http.StatusServiceUnavailable, "")
			created, ok := e.Fake.UserByEmail("nina@example.com")
			if !ok || e.recordCount() != 0 {
				t.Fatalf("setup: Panther user %v, %d records", ok, e.recordCount())
			}
			e.Fake.ClearFaults()

			r := e.do("POST", "/Users", body).must(t, http.StatusCreated)
			u, _ := e.storedUser(r.str("id"))
			if u.Panther.ID != created.ID {
				t.Errorf("linked to %q, want the user the first invite created (%s)", u.Panther.ID, created.ID)
			}
			if got := e.auditOf("user.adopt"); len(got) != 0 {
				t.Errorf("panther-scim's own invitee was adopted: %+v", got)
			}
			if got := e.refusals(); len(got) != 0 {
				t.Errorf("refusals %v", got)
			}
			if n := e.counted("panther_scim_adoptions_total", nil); n != 0 {
				t.Errorf("adoptions counted: %v", n)
			}
			if n := len(e.Fake.Users()); n != 2 { // the console admin and nina
				t.Errorf("%d Panther users", n)
			}
			if e.pending() != 0 {
				t.Errorf("%d intents", e.pending())
			}
			if err := e.App.Store.View(context.Background(), func(tx provision.ReadTx) error {
				_, err := tx.Invite("nina@example.com")
				return err
			}); !errors.Is(err, provision.ErrNotFound) {
				t.Errorf("invite record once linked: %v, want none", err)
			}
		})
	}
}
