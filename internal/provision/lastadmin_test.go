package provision_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// consoleAdmin adds to the fake a Panther administrator created in the console (no
// SCIM record).
func consoleAdmin(p *fakePanther, id, email string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	addAdmin(p.users, id, email)
}

func addAdmin(users map[string]provision.PantherUser, id, email string) {
	r := roles["admin"]
	users[id] = provision.PantherUser{ID: id, Email: email, GivenName: "Con", FamilyName: "Sole", RoleID: r.ID, RoleName: r.Name,
		Admin: true, Enabled: true, CreatedAt: time.Now().Add(-time.Hour)}
}

// adminOf creates a SCIM user whose Panther user is an administrator (a member of the
// group mapped to Admin), and returns its record.
func adminOf(t *testing.T, svc *provision.Service, emails ...string) []provision.User {
	t.Helper()
	ctx := context.Background()
	var users []provision.User
	var ids []string
	for _, e := range emails {
		u, err := svc.CreateUser(ctx, fields(e))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	if _, err := svc.CreateGroup(ctx, provision.GroupFields{DisplayName: "Admins", Members: ids}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		u, err := svc.GetUser(ctx, id)
		if err != nil || u.Panther.ID == "" {
			t.Fatalf("%s: %+v, %v", id, u.Panther, err)
		}
		users = append(users, u)
	}
	return users
}

func (f *fakePanther) resetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

func (f *fakePanther) has(id string) (provision.PantherUser, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	return u, ok
}

// removals are the two ways the IdP takes a user's Panther access away.
var removals = map[string]func(ctx context.Context, svc *provision.Service, id string) error{
	"deactivate": func(ctx context.Context, svc *provision.Service, id string) error {
		_, err := svc.UpdateUser(ctx, id, 0, func(u provision.User) (provision.UserFields, error) {
			f := fields(u.UserName)
			f.Active = false
			return f, nil
		})
		return err
	},
	"delete": func(ctx context.Context, svc *provision.Service, id string) error {
		return svc.DeleteUser(ctx, id, 0)
	},
}

// The last-administrator check costs no listing of Panther's users when another
// administrator is known: one remembered from the latest listing (here a reconcile's),
// a protected (break-glass) account, or another member of a group mapped to an
// administrator role. It is confirmed against Panther's current state with one
// userById (or userByEmail) call.
func TestLastAdminCheckListsNoUsers(t *testing.T) {
	ctx := context.Background()
	for name, setup := range map[string]struct {
		opts  provision.Options
		setup func(t *testing.T, p *fakePanther, svc *provision.Service) provision.User
	}{
		"remembered from a reconcile": {setup: func(t *testing.T, p *fakePanther, svc *provision.Service) provision.User {
			consoleAdmin(p, "root", "root@x.io")
			ann := adminOf(t, svc, "ann@x.io")[0]
			if _, err := svc.Reconcile(ctx, true); err != nil {
				t.Fatal(err)
			}
			return ann
		}},
		"a protected administrator": {opts: provision.Options{ProtectedEmails: []string{"Root@X.io"}}, setup: func(t *testing.T, p *fakePanther, svc *provision.Service) provision.User {
			consoleAdmin(p, "root", "root@x.io")
			return adminOf(t, svc, "ann@x.io")[0]
		}},
		"another member of an administrators' group": {setup: func(t *testing.T, p *fakePanther, svc *provision.Service) provision.User {
			return adminOf(t, svc, "ann@x.io", "bob@x.io")[0]
		}},
	} {
		for how, remove := range removals {
			t.Run(name+"/"+how, func(t *testing.T) {
				p := newFake()
				svc := newService(t, p, setup.opts)
				ann := setup.setup(t, p, svc)
				p.resetCalls()
				if err := remove(ctx, svc, ann.ID); err != nil {
					t.Fatalf("%s: %v", how, err)
				}
				if _, ok := p.has(ann.Panther.ID); ok {
					t.Error("the administrator was not removed from Panther")
				}
				if n := p.count("users"); n != 0 {
					t.Errorf("%d listings of Panther's users (calls %v), want none", n, p.calls)
				}
			})
		}
	}
}

// A remembered administrator that is no longer one in Panther (demoted, disabled or
// deleted in the console) is not counted: the check falls back to listing Panther's
// users, and refuses the removal when no other enabled administrator is there (or lets
// it through when one, unknown until then, is).
func TestLastAdminCheckStaleMemory(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		console func(p *fakePanther) // run with p.mu held
		refused bool
	}{
		"demoted": {console: func(p *fakePanther) {
			u := p.users["root"]
			u.RoleID, u.RoleName, u.Admin = roles["analyst"].ID, roles["analyst"].Name, false
			p.users["root"] = u
		}, refused: true},
		"disabled": {console: func(p *fakePanther) {
			u := p.users["root"]
			u.Enabled = false
			p.users["root"] = u
		}, refused: true},
		"deleted":  {console: func(p *fakePanther) { delete(p.users, "root") }, refused: true},
		"replaced": {console: func(p *fakePanther) { delete(p.users, "root"); addAdmin(p.users, "new", "new@x.io") }},
	} {
		for how, remove := range removals {
			t.Run(name+"/"+how, func(t *testing.T) {
				p := newFake()
				svc := newService(t, p, provision.Options{})
				consoleAdmin(p, "root", "root@x.io")
				ann := adminOf(t, svc, "ann@x.io")[0]
				if _, err := svc.Reconcile(ctx, true); err != nil { // remembers root
					t.Fatal(err)
				}
				p.mu.Lock()
				tc.console(p)
				p.mu.Unlock()
				p.resetCalls()
				err := remove(ctx, svc, ann.ID)
				if n := p.count("users"); n != 1 {
					t.Errorf("%d listings of Panther's users, want 1 (the fallback)", n)
				}
				_, kept := p.has(ann.Panther.ID)
				if !tc.refused {
					if err != nil || kept {
						t.Errorf("%s: %v, Panther user kept %v; want it removed", how, err, kept)
					}
					return
				}
				if r, ok := asRefusal(err); !ok || r.Reason != provision.RefuseLastAdmin || r.Code != provision.CodeConflict {
					t.Fatalf("%s: %v, want the last_admin refusal", how, err)
				}
				if !kept {
					t.Error("the last administrator was removed from Panther")
				}
				if got, err := svc.GetUser(ctx, ann.ID); err != nil || !got.Active {
					t.Errorf("record %+v (%v): want it kept, active", got, err)
				}
			})
		}
	}
}

// heldRemovals is a Panther that holds the first deletion of a user until the test
// opens the gate (when one of the two removals has returned) or a second deletion
// arrives. So the second check is made while the first administrator is still in
// Panther, its removal let through but not yet made, however the goroutines are
// scheduled: a check that lets both through deletes both, every time; a check that
// refuses one (it waits for nothing) opens the gate by returning.
type heldRemovals struct {
	*fakePanther
	mu      sync.Mutex
	arrived int
	gate    chan struct{}
	once    sync.Once
}

func (p *heldRemovals) open() { p.once.Do(func() { close(p.gate) }) }

func (p *heldRemovals) DeleteUser(ctx context.Context, id string) error {
	p.mu.Lock()
	p.arrived++
	second := p.arrived > 1
	p.mu.Unlock()
	if second {
		p.open()
	}
	select {
	case <-p.gate:
	case <-ctx.Done(): // the request's sync timeout: the test then fails, it does not hang
		return ctx.Err()
	}
	return p.fakePanther.DeleteUser(ctx, id)
}

// Two administrators removed at once, the last two Panther has: one removal goes
// through, the other is refused (409 last_admin), and Panther keeps one administrator.
func TestLastTwoAdminsRemovedAtOnce(t *testing.T) {
	for how, remove := range removals {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			p := &heldRemovals{fakePanther: newFake(), gate: make(chan struct{})}
			svc := newService(t, p, provision.Options{})
			both := adminOf(t, svc, "ann@x.io", "bob@x.io")
			errs := make([]error, len(both))
			var wg sync.WaitGroup
			for i, u := range both {
				wg.Go(func() {
					defer p.open()
					errs[i] = remove(ctx, svc, u.ID)
				})
			}
			wg.Wait()
			refused, admins := 0, 0
			for _, err := range errs {
				if r, ok := asRefusal(err); ok && r.Reason == provision.RefuseLastAdmin && r.Code == provision.CodeConflict {
					refused++
				} else if err != nil {
					t.Errorf("%s: %v", how, err)
				}
			}
			for _, u := range both {
				if pu, ok := p.has(u.Panther.ID); ok && pu.Admin && pu.Enabled {
					admins++
				}
			}
			if refused != 1 || admins != 1 {
				t.Errorf("%d refused, %d administrators left in Panther; want 1 and 1 (errors %v)", refused, admins, errs)
			}
		})
	}
}

// A deletion let through by its request's check stays reserved until its sync is
// over: another administrator's deletion meanwhile (here from the first one's
// AfterStoreWrite hook, between its store write and its sync) is refused at the
// request, 409, rather than accepted and then refused by its sync.
func TestDeletionReservedUntilItsSync(t *testing.T) {
	ctx := context.Background()
	p := newFake()
	var (
		armed    atomic.Bool
		svc      *provision.Service
		bob      provision.User
		bobErr   error
		hookRuns atomic.Int32
	)
	svc = newService(t, p, provision.Options{Hooks: provision.Hooks{AfterStoreWrite: func() {
		if armed.Load() && hookRuns.Add(1) == 1 {
			bobErr = svc.DeleteUser(ctx, bob.ID, 0)
		}
	}}})
	both := adminOf(t, svc, "ann@x.io", "bob@x.io")
	ann := both[0]
	bob = both[1]
	armed.Store(true)
	if err := svc.DeleteUser(ctx, ann.ID, 0); err != nil {
		t.Fatalf("delete ann: %v", err)
	}
	if hookRuns.Load() == 0 {
		t.Fatal("the hook did not run: bob's deletion was not tried")
	}
	if r, ok := asRefusal(bobErr); !ok || r.Reason != provision.RefuseLastAdmin || r.Code != provision.CodeConflict {
		t.Errorf("bob's deletion during ann's: %v, want the last_admin refusal", bobErr)
	}
	if _, ok := p.has(ann.Panther.ID); ok {
		t.Error("ann's Panther user was not deleted")
	}
	if pu, ok := p.has(bob.Panther.ID); !ok || !pu.Admin || !pu.Enabled {
		t.Errorf("bob's Panther user %+v (kept %v): want it kept, an enabled administrator", pu, ok)
	}
}

// failingDeletes is a Panther whose user deletions fail (Panther unavailable) while
// fail is set.
type failingDeletes struct {
	*fakePanther
	fail atomic.Bool
}

func (p *failingDeletes) DeleteUser(ctx context.Context, id string) error {
	if p.fail.Load() {
		return fmt.Errorf("connection reset: %w", provision.ErrUnavailable)
	}
	return p.fakePanther.DeleteUser(ctx, id)
}

// A removal let through by the check and then not made (the request fails, or Panther
// does not answer) releases its reservation: the other administrator's removal is not
// refused afterwards on its account, the first being an administrator still.
func TestLastAdminReservationReleased(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		pantherFails bool
		remove       func(ctx context.Context, svc *provision.Service, id string) error
	}{
		"delete at the wrong version": {remove: func(ctx context.Context, svc *provision.Service, id string) error {
			if _, err := svc.GetUser(ctx, id); err != nil {
				return err
			}
			if err := svc.DeleteUser(ctx, id, 99); err == nil {
				return fmt.Errorf("deleted at version 99")
			}
			return nil
		}},
		"delete, Panther fails":     {pantherFails: true, remove: removals["delete"]},
		"deactivate, Panther fails": {pantherFails: true, remove: removals["deactivate"]},
	} {
		t.Run(name, func(t *testing.T) {
			p := &failingDeletes{fakePanther: newFake()}
			svc := newService(t, p, provision.Options{})
			both := adminOf(t, svc, "ann@x.io", "bob@x.io")
			p.fail.Store(tc.pantherFails)
			if err := tc.remove(ctx, svc, both[0].ID); err != nil {
				t.Fatalf("ann's removal: %v", err)
			}
			if pu, ok := p.has(both[0].Panther.ID); !ok || !pu.Admin || !pu.Enabled {
				t.Fatalf("ann's Panther user %+v (kept %v): want it kept, not removed yet", pu, ok)
			}
			p.fail.Store(false)
			if err := svc.DeleteUser(ctx, both[1].ID, 0); err != nil {
				t.Fatalf("bob's deletion: %v, want it let through (ann is an administrator)", err)
			}
			if _, ok := p.has(both[1].Panther.ID); ok {
				t.Error("bob's Panther user was not deleted")
			}
		})
	}
}
