package provision_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
	_, users := adminGroup(t, svc, emails...)
	return users
}

// adminGroup creates the group mapped to Admin with a new SCIM user for each email,
// and returns the group and the users' records.
func adminGroup(t *testing.T, svc *provision.Service, emails ...string) (provision.Group, []provision.User) {
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
	g, err := svc.CreateGroup(ctx, provision.GroupFields{DisplayName: "Admins", Members: ids})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		u, err := svc.GetUser(ctx, id)
		if err != nil || u.Panther.ID == "" {
			t.Fatalf("%s: %+v, %v", id, u.Panther, err)
		}
		users = append(users, u)
	}
	return g, users
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

// consoleChanges are what an administrator may do in Panther's console to "root", the
// administrator the check remembers: refused says whether the removal of the other one
// must then be refused (no enabled administrator would be left).
var consoleChanges = map[string]struct {
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
}

// A remembered administrator that is no longer one in Panther (demoted, disabled or
// deleted in the console) is not counted: the check falls back to listing Panther's
// users, and refuses the removal when no other enabled administrator is there (or lets
// it through when one, unknown until then, is).
func TestLastAdminCheckStaleMemory(t *testing.T) {
	ctx := context.Background()
	for name, tc := range consoleChanges {
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
	*pairGate
}

func (p *heldRemovals) DeleteUser(ctx context.Context, id string) error {
	if err := p.pass(ctx); err != nil {
		return err
	}
	return p.fakePanther.DeleteUser(ctx, id)
}

// pairGate holds the first call that passes it until open is called or a second call
// arrives.
type pairGate struct {
	mu      sync.Mutex
	arrived int
	gate    chan struct{}
	once    sync.Once
}

func newPairGate() *pairGate { return &pairGate{gate: make(chan struct{})} }

func (g *pairGate) open() { g.once.Do(func() { close(g.gate) }) }

// pass returns when the gate is open, opening it itself when it is the second call;
// ctx ends the wait (the request's sync timeout: the test then fails, it does not hang).
func (g *pairGate) pass(ctx context.Context) error {
	g.mu.Lock()
	g.arrived++
	second := g.arrived > 1
	g.mu.Unlock()
	if second {
		g.open()
	}
	select {
	case <-g.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Two administrators removed at once, the last two Panther has: one removal goes
// through, the other is refused (409 last_admin), and Panther keeps one administrator.
func TestLastTwoAdminsRemovedAtOnce(t *testing.T) {
	for how, remove := range removals {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			p := &heldRemovals{fakePanther: newFake(), pairGate: newPairGate()}
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

// removeMembers is a PATCH of a group that removes the given users from it.
func removeMembers(ctx context.Context, svc *provision.Service, groupID string, users ...provision.User) (provision.Group, error) {
	return svc.UpdateGroup(ctx, groupID, 0, func(g provision.Group) (provision.GroupFields, error) {
		members := slices.DeleteFunc(slices.Clone(g.Members), func(id string) bool {
			return slices.ContainsFunc(users, func(u provision.User) bool { return u.ID == id })
		})
		return provision.GroupFields{DisplayName: g.DisplayName, ExternalID: g.ExternalID, Members: members}, nil
	})
}

// demotedInPanther fails unless Panther holds u's user, enabled, without UserModify.
func demotedInPanther(t *testing.T, p *fakePanther, u provision.User) {
	t.Helper()
	if pu, ok := p.has(u.Panther.ID); !ok || pu.Admin || !pu.Enabled {
		t.Errorf("%s's Panther user %+v (kept %v): want it kept, enabled, no longer an administrator", u.UserName, pu, ok)
	}
}

// groupUnchanged fails unless the group, its removed members' records and Panther
// users are as they were before a refused change, with nothing queued.
func groupUnchanged(t *testing.T, svc *provision.Service, p *fakePanther, g provision.Group, members ...provision.User) {
	t.Helper()
	ctx := context.Background()
	if now, err := svc.GetGroup(ctx, g.ID); err != nil || now.Version != g.Version || !slices.Equal(now.Members, g.Members) {
		t.Errorf("group %+v (%v): want it unchanged, %v at version %d", now, err, g.Members, g.Version)
	}
	for _, u := range members {
		if pu, ok := p.has(u.Panther.ID); !ok || !pu.Admin || !pu.Enabled {
			t.Errorf("%s's Panther user %+v (kept %v): want it kept, an enabled administrator", u.UserName, pu, ok)
		}
		if _, ok := intentOf(t, svc, u.ID); ok {
			t.Errorf("%s: a change is queued for a refused group change", u.UserName)
		}
	}
}

// A group change that takes an administrator out of the group mapped to Admin (Okta
// or Entra removing someone from "Panther Admins") lists no Panther users when another
// administrator is known: it reads the member's Panther user by id and confirms the
// other one, as a single user's removal does.
func TestGroupChangeListsNoUsers(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		opts  provision.Options
		setup func(t *testing.T, p *fakePanther, svc *provision.Service) (provision.Group, provision.User)
	}{
		"remembered from a reconcile": {setup: func(t *testing.T, p *fakePanther, svc *provision.Service) (provision.Group, provision.User) {
			consoleAdmin(p, "root", "root@x.io")
			g, users := adminGroup(t, svc, "ann@x.io")
			if _, err := svc.Reconcile(ctx, true); err != nil {
				t.Fatal(err)
			}
			return g, users[0]
		}},
		"a protected administrator": {opts: provision.Options{ProtectedEmails: []string{"root@x.io"}}, setup: func(t *testing.T, p *fakePanther, svc *provision.Service) (provision.Group, provision.User) {
			consoleAdmin(p, "root", "root@x.io")
			g, users := adminGroup(t, svc, "ann@x.io")
			return g, users[0]
		}},
		"another member of the group": {setup: func(t *testing.T, p *fakePanther, svc *provision.Service) (provision.Group, provision.User) {
			g, users := adminGroup(t, svc, "ann@x.io", "bob@x.io")
			return g, users[0]
		}},
	} {
		t.Run(name, func(t *testing.T) {
			p := newFake()
			svc := newService(t, p, tc.opts)
			g, ann := tc.setup(t, p, svc)
			p.resetCalls()
			if _, err := removeMembers(ctx, svc, g.ID, ann); err != nil {
				t.Fatalf("remove ann from the group: %v", err)
			}
			demotedInPanther(t, p, ann)
			if n := p.count("users"); n != 0 {
				t.Errorf("%d listings of Panther's users (calls %v), want none", n, p.calls)
			}
		})
	}
}

// A remembered administrator that is no longer one in Panther is not counted by a
// group change either: it falls back to listing Panther's users, and refuses the
// change, writing nothing, when no other enabled administrator is there (or lets it
// through when one, unknown until then, is).
func TestGroupChangeStaleMemory(t *testing.T) {
	ctx := context.Background()
	for name, tc := range consoleChanges {
		t.Run(name, func(t *testing.T) {
			p := newFake()
			svc := newService(t, p, provision.Options{})
			consoleAdmin(p, "root", "root@x.io")
			g, users := adminGroup(t, svc, "ann@x.io")
			ann := users[0]
			if _, err := svc.Reconcile(ctx, true); err != nil { // remembers root
				t.Fatal(err)
			}
			g, err := svc.GetGroup(ctx, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			tc.console(p)
			p.mu.Unlock()
			p.resetCalls()
			_, err = removeMembers(ctx, svc, g.ID, ann)
			if n := p.count("users"); n != 1 {
				t.Errorf("%d listings of Panther's users, want 1 (the fallback)", n)
			}
			if !tc.refused {
				if err != nil {
					t.Fatalf("remove ann: %v", err)
				}
				demotedInPanther(t, p, ann)
				return
			}
			r, ok := asRefusal(err)
			if !ok || r.Reason != provision.RefuseLastAdmin || r.Code != provision.CodeConflict {
				t.Fatalf("remove ann: %v, want the last_admin refusal", err)
			}
			if !strings.Contains(r.Detail, "UserModify away from ann@x.io, the only enabled Panther administrator(s)") {
				t.Errorf("detail: %s", r.Detail)
			}
			groupUnchanged(t, svc, p, g, ann)
		})
	}
}

// A group change that demotes more members than it would read one by one lists
// Panther's users once instead (and reads none of them), whether it is let through
// or refused; the refusal names every administrator it would have demoted.
func TestGroupChangeDemotingManyListsOnce(t *testing.T) {
	ctx := context.Background()
	var emails []string
	for i := range 10 {
		emails = append(emails, fmt.Sprintf("admin%d@x.io", i))
	}
	t.Run("let through", func(t *testing.T) {
		p := newFake()
		svc := newService(t, p, provision.Options{})
		g, users := adminGroup(t, svc, emails...)
		p.resetCalls()
		if _, err := removeMembers(ctx, svc, g.ID, users[1:]...); err != nil {
			t.Fatalf("remove 9 of 10 administrators: %v", err)
		}
		if n := p.count("users"); n != 1 {
			t.Errorf("%d listings of Panther's users, want 1 (calls %v)", n, p.calls)
		}
		for _, u := range users[1:] {
			demotedInPanther(t, p, u)
		}
		if pu, ok := p.has(users[0].Panther.ID); !ok || !pu.Admin {
			t.Errorf("the administrator left in the group: %+v (kept %v)", pu, ok)
		}
	})
	t.Run("refused", func(t *testing.T) {
		p := newFake()
		svc := newService(t, p, provision.Options{})
		g, users := adminGroup(t, svc, emails[:9]...)
		p.resetCalls()
		err := svc.DeleteGroup(ctx, g.ID, 0)
		r, ok := asRefusal(err)
		if !ok || r.Reason != provision.RefuseLastAdmin || r.Code != provision.CodeConflict {
			t.Fatalf("delete the group: %v, want the last_admin refusal", err)
		}
		if want := "UserModify away from " + strings.Join(emails[:9], ", ") + ", the only"; !strings.Contains(r.Detail, want) {
			t.Errorf("detail: %s\nwant it to contain %q", r.Detail, want)
		}
		if got := strings.Join(p.calls, " "); got != "users" {
			t.Errorf("Panther calls %q, want one listing", got)
		}
		groupUnchanged(t, svc, p, g, users...)
	})
}

// heldUpdates is a Panther that, once armed, holds the first update of a user until
// the test opens the gate (when one of two requests has returned) or a second update
// arrives: so the second of two group changes is checked while the first one's
// demotion is let through but not yet made in Panther.
type heldUpdates struct {
	*fakePanther
	*pairGate
	armed atomic.Bool
}

func (p *heldUpdates) UpdateUser(ctx context.Context, in provision.UpdateInput) (provision.PantherUser, error) {
	if p.armed.Load() {
		if err := p.pass(ctx); err != nil {
			return provision.PantherUser{}, err
		}
	}
	return p.fakePanther.UpdateUser(ctx, in)
}

// Two group changes at once, each taking one of the last two administrators out of
// the group mapped to Admin: one goes through, the other is refused (409 last_admin)
// with nothing written, since the first one's member stays reserved until its sync is
// over. Panther keeps one administrator and the group keeps the refused one's member.
func TestGroupChangesRemovingLastTwoAdminsAtOnce(t *testing.T) {
	ctx := context.Background()
	p := &heldUpdates{fakePanther: newFake(), pairGate: newPairGate()}
	svc := newService(t, p, provision.Options{})
	g, both := adminGroup(t, svc, "ann@x.io", "bob@x.io")
	p.armed.Store(true)
	errs := make([]error, len(both))
	var wg sync.WaitGroup
	for i, u := range both {
		wg.Go(func() {
			defer p.open()
			_, errs[i] = removeMembers(ctx, svc, g.ID, u)
		})
	}
	wg.Wait()
	var kept []string
	for i, err := range errs {
		if r, ok := asRefusal(err); ok && r.Reason == provision.RefuseLastAdmin && r.Code == provision.CodeConflict {
			kept = append(kept, both[i].ID)
		} else if err != nil {
			t.Errorf("remove %s: %v", both[i].UserName, err)
		}
	}
	admins := 0
	for _, u := range both {
		if pu, ok := p.has(u.Panther.ID); ok && pu.Admin && pu.Enabled {
			admins++
		}
	}
	now, err := svc.GetGroup(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || admins != 1 || !slices.Equal(now.Members, kept) {
		t.Errorf("%d refused, %d administrators left in Panther, group members %v; want 1, 1 and the refused one's member (errors %v)",
			len(kept), admins, now.Members, errs)
	}
}

// The check is made for the members the change demotes when it is written: a change
// whose demoted members differ from those checked (the group was changed in between)
// is checked again, and one whose members keep changing is answered 503, with
// nothing written, rather than let through unchecked.
func TestGroupChangeCheckedAgainWhenMembersChange(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		removes func(run int) int // the member the run'th run of the change removes
		stable  bool
	}{
		"changed once":   {removes: func(run int) int { return min(run, 1) }, stable: true},
		"keeps changing": {removes: func(run int) int { return run % 2 }},
	} {
		t.Run(name, func(t *testing.T) {
			p := newFake()
			svc := newService(t, p, provision.Options{})
			g, both := adminGroup(t, svc, "ann@x.io", "bob@x.io")
			runs := 0
			_, err := svc.UpdateGroup(ctx, g.ID, 0, func(g provision.Group) (provision.GroupFields, error) {
				gone := both[tc.removes(runs)].ID
				runs++
				return provision.GroupFields{DisplayName: g.DisplayName, Members: slices.DeleteFunc(slices.Clone(g.Members), func(id string) bool { return id == gone })}, nil
			})
			if !tc.stable {
				if provision.ErrorCode(err) != provision.CodeUnavailable {
					t.Fatalf("update: %v, want CodeUnavailable", err)
				}
				groupUnchanged(t, svc, p, g, both...)
				return
			}
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			demotedInPanther(t, p, both[1])
			if now, _ := svc.GetGroup(ctx, g.ID); !slices.Equal(now.Members, []string{both[0].ID}) {
				t.Errorf("members %v, want ann's only", now.Members)
			}
			if runs != 3 {
				t.Errorf("%d runs of the change, want 3 (ann checked, bob checked, written)", runs)
			}
		})
	}
}

// While Panther cannot be asked, a group change is never held up by the check: it is
// written and its members' changes queued, and their syncs check for another
// administrator once Panther answers (the last one keeps its role).
func TestGroupChangeWhilePantherIsDown(t *testing.T) {
	ctx := context.Background()
	p := newFake()
	svc := newService(t, p, provision.Options{})
	g, users := adminGroup(t, svc, "ann@x.io")
	ann := users[0]
	p.mu.Lock()
	p.failAll = fmt.Errorf("down: %w", provision.ErrUnavailable)
	p.mu.Unlock()
	_, err := removeMembers(ctx, svc, g.ID, ann)
	if provision.ErrorCode(err) != provision.CodeUnavailable {
		t.Errorf("remove ann while Panther is down: %v, want the change accepted and its sync unavailable", err)
	}
	if now, err := svc.GetGroup(ctx, g.ID); err != nil || len(now.Members) != 0 {
		t.Fatalf("group %+v (%v): want the change written", now, err)
	}
	if _, ok := intentOf(t, svc, ann.ID); !ok {
		t.Fatal("ann's change is not queued")
	}
	p.mu.Lock()
	p.failAll = nil
	p.mu.Unlock()
	err = svc.SyncUser(ctx, ann.ID, false)
	if r, ok := asRefusal(err); !ok || r.Reason != provision.RefuseLastAdmin {
		t.Errorf("ann's sync: %v, want the last_admin refusal", err)
	}
	if pu, ok := p.has(ann.Panther.ID); !ok || !pu.Admin || !pu.Enabled {
		t.Errorf("ann's Panther user %+v (kept %v): want it kept, an enabled administrator", pu, ok)
	}
}
