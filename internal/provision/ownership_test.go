package provision_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/mappings"
)

// recordingPanther checks, at each inviteUser call, that the store already records
// the invite of that email in the user's intent.
type recordingPanther struct {
	*fakePanther
	svc      func() *provision.Service
	problems []string
}

func (p *recordingPanther) InviteUser(ctx context.Context, in provision.InviteInput) (provision.PantherUser, error) {
	recorded, durable := false, true
	_ = p.svc().Store().View(ctx, func(tx provision.ReadTx) error {
		u, err := tx.UserByEmail(in.Email)
		if err != nil {
			return err
		}
		it, err := tx.Intent(u.ID)
		if err != nil {
			return err
		}
		for _, a := range it.Invites {
			recorded = recorded || provision.SameEmail(a.Email, in.Email)
		}
		// And in the email's invite record, which outlives the intent.
		if r, err := tx.Invite(in.Email); err != nil || r.UserID != u.ID {
			durable = false
		}
		return nil
	})
	if !recorded {
		p.problems = append(p.problems, fmt.Sprintf("inviteUser %s sent before its invite was recorded", in.Email))
	}
	if !durable {
		p.problems = append(p.problems, fmt.Sprintf("inviteUser %s sent before its invite record was written", in.Email))
	}
	return p.fakePanther.InviteUser(ctx, in)
}

// Ownership is durable: every invite is recorded in the user's intent and in the
// email's invite record, in the store, before inviteUser is sent, whichever change leads to it (a create, which records it
// in its own transaction, or joining a mapped group under an empty default role).
func TestInviteRecordedBeforeItIsSent(t *testing.T) {
	ctx := context.Background()
	for name, m := range map[string]mappings.Mapping{
		"create":                 {Rules: []mappings.Rule{{Group: "Admins", Role: "Admin"}}, DefaultRole: "AnalystReadOnly"},
		"joining a mapped group": {Rules: []mappings.Rule{{Group: "Admins", Role: "Admin"}}},
	} {
		t.Run(name, func(t *testing.T) {
			var svc *provision.Service
			p := &recordingPanther{fakePanther: newFake(), svc: func() *provision.Service { return svc }}
			svc = newService(t, p, provision.Options{Mapping: m})
			u, err := svc.CreateUser(ctx, fields("ann@x.io"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.CreateGroup(ctx, provision.GroupFields{DisplayName: "Admins", Members: []string{u.ID}}); err != nil {
				t.Fatal(err)
			}
			if p.count("inviteUser") != 1 || len(p.problems) > 0 {
				t.Errorf("%d invites; %v", p.count("inviteUser"), p.problems)
			}
		})
	}
}

// loseUpdates is a Panther whose next updateUser answers are lost after the update
// was applied.
type loseUpdates struct {
	*fakePanther
	lose int
}

func (p *loseUpdates) UpdateUser(ctx context.Context, in provision.UpdateInput) (provision.PantherUser, error) {
	u, err := p.fakePanther.UpdateUser(ctx, in)
	if err == nil && p.lose > 0 {
		p.lose--
		return provision.PantherUser{}, fmt.Errorf("updateUser: answer lost: %w", provision.ErrUnavailable)
	}
	return u, err
}

// An email change Panther applied but whose answer was lost leaves the Panther user
// with the new email while the link records the old one: the user is still
// panther-scim's (its email is the one the record asks for), so the retry finishes the
// change and links the new email instead of refusing the user as changed in Panther.
func TestLostEmailChangeIsStillOurs(t *testing.T) {
	p := &loseUpdates{fakePanther: newFake()}
	svc := newService(t, p, provision.Options{})
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, fields("old@x.io"))
	if err != nil {
		t.Fatal(err)
	}
	p.lose = 1
	_, err = svc.UpdateUser(ctx, u.ID, 0, func(provision.User) (provision.UserFields, error) { return fields("new@x.io"), nil })
	if provision.ErrorCode(err) != provision.CodeUnavailable {
		t.Fatalf("update with its answer lost: %v, want CodeUnavailable", err)
	}
	if err := svc.SyncUser(ctx, u.ID, true); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	got, err := svc.GetUser(ctx, u.ID)
	if err != nil || got.Panther.ID != u.Panther.ID || got.Panther.Email != "new@x.io" {
		t.Errorf("link %+v (%v), want %s with new@x.io", got.Panther, err, u.Panther.ID)
	}
}
