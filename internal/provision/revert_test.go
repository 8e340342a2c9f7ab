package provision_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// A change queued while Panther could not be reached, and refused when the sync
// meets Panther later, is put back, never kept: these are the refusals the
// background sync meets, each with what must stand afterwards.

// set returns a mutate function that gives the user these fields.
func set(f provision.UserFields) func(provision.User) (provision.UserFields, error) {
	return func(provision.User) (provision.UserFields, error) { return f, nil }
}

// intentOf returns the user's pending intent, if any.
func intentOf(t *testing.T, svc *provision.Service, id string) (provision.Intent, bool) {
	t.Helper()
	var in provision.Intent
	err := svc.Store().View(context.Background(), func(tx provision.ReadTx) error {
		var err error
		in, err = tx.Intent(id)
		return err
	})
	if errors.Is(err, provision.ErrNotFound) {
		return in, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return in, true
}

// rolledBack reports whether the audit trail holds a rollback of the user.
func rolledBack(t *testing.T, svc *provision.Service, id string) bool {
	t.Helper()
	found := false
	_ = svc.Store().View(context.Background(), func(tx provision.ReadTx) error {
		return tx.ScanAudit(time.Time{}, func(e provision.AuditEntry) bool {
			found = found || (e.ID == id && strings.HasPrefix(e.Outcome, "rolled back: refused"))
			return true
		})
	})
	return found
}

func TestQueuedChangeRefusedLaterIsPutBack(t *testing.T) {
	ctx := context.Background()
	down := fmt.Errorf("down: %w", provision.ErrUnavailable)

	t.Run("reactivation whose address was taken before its invite", func(t *testing.T) {
		p := newFake()
		svc := newService(t, p, provision.Options{})
		u, err := svc.CreateUser(ctx, fields("ann@x.io"))
		if err != nil {
			t.Fatal(err)
		}
		off := fields("ann@x.io")
		off.Active = false
		if _, err := svc.UpdateUser(ctx, u.ID, 0, set(off)); err != nil {
			t.Fatal(err)
		}
		inactive, _ := svc.GetUser(ctx, u.ID)
		// The check finds the address free; the invite cannot be sent.
		p.invite = func(provision.InviteInput) (provision.PantherUser, error) { return provision.PantherUser{}, down }
		if _, err := svc.UpdateUser(ctx, u.ID, 0, set(fields("ann@x.io"))); provision.ErrorCode(err) != provision.CodeUnavailable {
			t.Fatalf("reactivation while invites fail: %v", err)
		}
		// An administrator with the address appears in Panther, created before the
		// invite the reactivation recorded.
		p.mu.Lock()
		admin := provision.PantherUser{ID: "console", Email: "ann@x.io", RoleID: "r-admin", RoleName: "Admin", Admin: true, Enabled: true,
			CreatedAt: time.Now().Add(-time.Hour)}
		p.users[admin.ID] = admin
		p.mu.Unlock()
		p.invite = nil
		err = svc.SyncUser(ctx, u.ID, false)
		if r, ok := asRefusal(err); !ok || r.Reason != provision.RefuseAdoptAdmin {
			t.Fatalf("sync: %v, want the adopt_admin refusal", err)
		}
		got, _ := svc.GetUser(ctx, u.ID)
		if got.Active || got.Version != inactive.Version+2 || got.Panther.ID != "" {
			t.Errorf("record %+v: want inactive again at version %d, unlinked", got, inactive.Version+2)
		}
		if in, ok := intentOf(t, svc, u.ID); ok {
			t.Errorf("intent kept: %+v", in)
		}
		if !rolledBack(t, svc, u.ID) {
			t.Error("the rollback is not audited")
		}
		if now, _ := p.find("ann@x.io"); now != admin {
			t.Errorf("administrator changed: %+v", now)
		}
	})

	t.Run("deactivation of the last administrator", func(t *testing.T) {
		p := newFake()
		svc := newService(t, p, provision.Options{})
		u, err := svc.CreateUser(ctx, fields("boss@x.io"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateGroup(ctx, provision.GroupFields{DisplayName: "Admins", Members: []string{u.ID}}); err != nil {
			t.Fatal(err)
		}
		p.failAll = down
		off := fields("boss@x.io")
		off.Active = false
		if _, err := svc.UpdateUser(ctx, u.ID, 0, set(off)); err != nil {
			t.Fatalf("a deactivation while Panther is down is accepted: %v", err)
		}
		p.failAll = nil
		err = svc.SyncUser(ctx, u.ID, false)
		if r, ok := asRefusal(err); !ok || r.Reason != provision.RefuseLastAdmin {
			t.Fatalf("sync: %v, want the last_admin refusal", err)
		}
		got, _ := svc.GetUser(ctx, u.ID)
		if !got.Active || got.Version != 3 {
			t.Errorf("record active %v at version %d: the refused deactivation must be put back (version 3)", got.Active, got.Version)
		}
		if _, ok := intentOf(t, svc, u.ID); ok {
			t.Error("the refused deactivation is still queued")
		}
		if len(p.users) != 1 {
			t.Error("the last administrator was deleted")
		}
	})

	t.Run("change Panther finds invalid, with earlier work pending", func(t *testing.T) {
		p := newFake()
		svc := newService(t, p, provision.Options{})
		u, err := svc.CreateUser(ctx, fields("kim@x.io"))
		if err != nil {
			t.Fatal(err)
		}
		// Work already queued for the user before the change (a group change's, say).
		if err := svc.Store().Update(ctx, func(tx provision.Tx) error {
			return tx.PutIntent(provision.Intent{UserID: u.ID, Since: time.Now().UTC(), Gen: 1})
		}); err != nil {
			t.Fatal(err)
		}
		renamed := fields("kim@x.io")
		renamed.Attributes["name"] = map[string]any{"givenName": "Kimberly", "familyName": "F"}
		p.failAll = down
		if _, err := svc.UpdateUser(ctx, u.ID, 0, set(renamed)); provision.ErrorCode(err) != provision.CodeUnavailable {
			t.Fatalf("rename while Panther is down: %v", err)
		}
		p.failAll = nil
		p.update = func(in provision.UpdateInput) error {
			if in.GivenName != nil && *in.GivenName == "Kimberly" {
				return fmt.Errorf("givenName not allowed: %w", provision.ErrInvalid)
			}
			return nil
		}
		if err := svc.SyncUser(ctx, u.ID, false); !errors.Is(err, provision.ErrInvalid) {
			t.Fatalf("sync: %v, want Panther's refusal", err)
		}
		got, _ := svc.GetUser(ctx, u.ID)
		if g := got.Attributes["name"].(map[string]any)["givenName"]; g != "G" || got.Version != 3 {
			t.Errorf("givenName %v at version %d: the refused rename must be put back (version 3)", g, got.Version)
		}
		// The work pending before is queued again, without the refused change.
		in, ok := intentOf(t, svc, u.ID)
		if !ok || in.Revert != nil {
			t.Fatalf("intent after the rollback: %+v, %v; want one without Revert", in, ok)
		}
		if err := svc.SyncUser(ctx, u.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, ok := intentOf(t, svc, u.ID); ok {
			t.Error("intent kept after the pending work was done")
		}
	})

	t.Run("deactivation of a Panther user changed in Panther", func(t *testing.T) {
		p := newFake()
		svc := newService(t, p, provision.Options{})
		u, err := svc.CreateUser(ctx, fields("mal@x.io"))
		if err != nil {
			t.Fatal(err)
		}
		p.failAll = down
		off := fields("mal@x.io")
		off.Active = false
		if _, err := svc.UpdateUser(ctx, u.ID, 0, set(off)); err != nil {
			t.Fatal(err)
		}
		p.failAll = nil
		p.mu.Lock()
		pu := p.users[u.Panther.ID]
		pu.Email = "someone-else@x.io"
		p.users[pu.ID] = pu
		p.mu.Unlock()
		err = svc.SyncUser(ctx, u.ID, false)
		if r, ok := asRefusal(err); !ok || r.Reason != provision.RefuseNotOwned {
			t.Fatalf("sync: %v, want not_owned", err)
		}
		// The record says what the IdP wants; Panther's user is left alone.
		if got, _ := svc.GetUser(ctx, u.ID); got.Active || got.Version != 2 {
			t.Errorf("record active %v at version %d: the deactivation must stand", got.Active, got.Version)
		}
		if _, ok := intentOf(t, svc, u.ID); ok {
			t.Error("the refused removal is still queued")
		}
	})
}

// asRefusal returns the refusal err carries.
func asRefusal(err error) (*provision.Error, bool) {
	var e *provision.Error
	if errors.As(err, &e) && e.Reason != "" {
		return e, true
	}
	return nil, false
}
