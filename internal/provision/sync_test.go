package provision_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
	"github.com/panther-scim/panther-scim/mappings"
)

// fakePanther is a function-field Panther with a tiny in-memory user table.
type fakePanther struct {
	mu      sync.Mutex
	users   map[string]provision.PantherUser // by id
	calls   []string
	invite  func(in provision.InviteInput) (provision.PantherUser, error) // nil: succeed
	update  func(in provision.UpdateInput) error                          // nil: apply
	list    func() []provision.PantherUser                                // nil: the table
	failAll error
	next    int
}

var _ provision.Panther = (*fakePanther)(nil)

var roles = map[string]provision.PantherRole{
	"admin":           {ID: "r-admin", Name: "Admin", Permissions: []string{"UserModify", "UserRead"}},
	"analyst":         {ID: "r-analyst", Name: "Analyst", Permissions: []string{"AlertRead"}},
	"analystreadonly": {ID: "r-ro", Name: "AnalystReadOnly", Permissions: []string{"AlertRead"}},
}

func newFake() *fakePanther { return &fakePanther{users: map[string]provision.PantherUser{}} }

func (f *fakePanther) log(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op)
	return f.failAll
}

func (f *fakePanther) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == op {
			n++
		}
	}
	return n
}

func (f *fakePanther) Users(context.Context) ([]provision.PantherUser, error) {
	if err := f.log("users"); err != nil {
		return nil, err
	}
	if f.list != nil {
		return f.list(), nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []provision.PantherUser
	for _, u := range f.users {
		out = append(out, u)
	}
	return out, nil
}

func (f *fakePanther) UserByID(_ context.Context, id string) (provision.PantherUser, error) {
	if err := f.log("userById"); err != nil {
		return provision.PantherUser{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	if !ok {
		return u, provision.ErrNotFound
	}
	return u, nil
}

func (f *fakePanther) UserByEmail(_ context.Context, email string) (provision.PantherUser, error) {
	if err := f.log("userByEmail"); err != nil {
		return provision.PantherUser{}, err
	}
	return f.find(email)
}

func (f *fakePanther) find(email string) (provision.PantherUser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if strings.EqualFold(u.Email, email) {
			return u, nil
		}
	}
	return provision.PantherUser{}, provision.ErrNotFound
}

func (f *fakePanther) add(in provision.InviteInput) provision.PantherUser {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	r := roleByID(in.Role.Value)
	u := provision.PantherUser{ID: fmt.Sprintf("p%d", f.next), Email: in.Email, GivenName: in.GivenName, FamilyName: in.FamilyName,
		RoleID: r.ID, RoleName: r.Name, Admin: r.Administrator(), Enabled: true, CreatedAt: time.Now()}
	f.users[u.ID] = u
	return u
}

func roleByID(id string) provision.PantherRole {
	for _, r := range roles {
		if r.ID == id {
			return r
		}
	}
	return provision.PantherRole{}
}

func (f *fakePanther) InviteUser(_ context.Context, in provision.InviteInput) (provision.PantherUser, error) {
	if err := f.log("inviteUser"); err != nil {
		return provision.PantherUser{}, err
	}
	if f.invite != nil {
		return f.invite(in)
	}
	if _, err := f.find(in.Email); err == nil { // Panther refuses a second user with one email
		return provision.PantherUser{}, fmt.Errorf("a user with email %s already exists: %w", in.Email, provision.ErrConflict)
	}
	return f.add(in), nil
}

func (f *fakePanther) UpdateUser(_ context.Context, in provision.UpdateInput) (provision.PantherUser, error) {
	if err := f.log("updateUser"); err != nil {
		return provision.PantherUser{}, err
	}
	if f.update != nil {
		if err := f.update(in); err != nil {
			return provision.PantherUser{}, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[in.ID]
	if !ok {
		return u, provision.ErrNotFound
	}
	if in.Role != nil {
		r := roleByID(in.Role.Value)
		u.RoleID, u.RoleName, u.Admin = r.ID, r.Name, r.Administrator()
	}
	if in.GivenName != nil {
		u.GivenName = *in.GivenName
	}
	if in.FamilyName != nil {
		u.FamilyName = *in.FamilyName
	}
	if in.Email != nil {
		u.Email = *in.Email
	}
	f.users[in.ID] = u
	return u, nil
}

func (f *fakePanther) DeleteUser(_ context.Context, id string) error {
	if err := f.log("deleteUser"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[id]; !ok {
		return provision.ErrNotFound
	}
	delete(f.users, id)
	return nil
}

func (f *fakePanther) Roles(context.Context) ([]provision.PantherRole, error) {
	return nil, f.log("roles")
}
func (f *fakePanther) RoleByID(_ context.Context, id string) (provision.PantherRole, error) {
	if r := roleByID(id); r.ID != "" {
		return r, nil
	}
	return provision.PantherRole{}, provision.ErrNotFound
}
func (f *fakePanther) RoleByName(_ context.Context, name string) (provision.PantherRole, error) {
	if r, ok := roles[strings.ToLower(name)]; ok {
		return r, nil
	}
	return provision.PantherRole{}, provision.ErrNotFound
}

func newService(t *testing.T, p provision.Panther, opts provision.Options) *provision.Service {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if opts.Mapping.DefaultRole == "" && opts.Mapping.Rules == nil {
		opts.Mapping = mappings.Mapping{Rules: []mappings.Rule{{Group: "Admins", Role: "Admin"}}, DefaultRole: "AnalystReadOnly"}
	}
	return provision.New(st, p, opts)
}

func fields(email string) provision.UserFields {
	return provision.UserFields{UserName: email, Active: true, Attributes: map[string]any{
		"name": map[string]any{"givenName": "G", "familyName": "F"},
	}}
}

// A lost invite response (Panther created the user, we never heard): the create
// answers 503 and records nothing but its invite (InviteRecord), and the IdP's retry
// finds the user as panther-scim's own: its invite is refused as a duplicate, the
// lookup finds the user created after the recorded invite, and it is linked without an
// adoption, even under adopt: none. Once linked, the invite record is gone.
func TestLostInviteIsOursOnRetry(t *testing.T) {
	p := newFake()
	p.invite = func(in provision.InviteInput) (provision.PantherUser, error) {
		p.add(in)
		return provision.PantherUser{}, fmt.Errorf("connection reset: %w", provision.ErrUnavailable)
	}
	obs := &countingObserver{}
	svc := newService(t, p, provision.Options{Adopt: provision.AdoptNone, Observer: obs})
	ctx := context.Background()
	_, err := svc.CreateUser(ctx, fields("ann@x.io"))
	if provision.ErrorCode(err) != provision.CodeUnavailable {
		t.Fatalf("create: %v (code %v), want CodeUnavailable", err, provision.ErrorCode(err))
	}
	var pe *provision.Error
	if !errors.As(err, &pe) || pe.RetryAfter <= 0 {
		t.Fatalf("no Retry-After: %v", err)
	}
	if _, ok := inviteRecord(t, svc, "ANN@x.io"); !ok {
		t.Fatal("the rolled-back create left no invite record")
	}
	p.invite = nil
	u, err := svc.CreateUser(ctx, fields("ann@x.io"))
	if err != nil {
		t.Fatal(err)
	}
	if p.count("inviteUser") != 2 || p.count("userByEmail") != 1 || len(p.users) != 1 || u.Panther.ID != "p1" {
		t.Fatalf("invites %d, lookups %d, users %d, link %+v", p.count("inviteUser"), p.count("userByEmail"), len(p.users), u.Panther)
	}
	if obs.adopted != 0 || len(obs.refused) != 0 {
		t.Errorf("adoptions %d, refusals %v: panther-scim's own invitee is neither", obs.adopted, obs.refused)
	}
	if r, ok := inviteRecord(t, svc, "ann@x.io"); ok {
		t.Errorf("invite record kept after the link: %+v", r)
	}
}

// countingObserver counts adoptions and refusals.
type countingObserver struct {
	mu      sync.Mutex
	adopted int
	refused []string
}

func (o *countingObserver) Adopted() { o.mu.Lock(); o.adopted++; o.mu.Unlock() }
func (o *countingObserver) Refused(reason string) {
	o.mu.Lock()
	o.refused = append(o.refused, reason)
	o.mu.Unlock()
}

// inviteRecord reads the invite record of an email.
func inviteRecord(t *testing.T, svc *provision.Service, email string) (provision.InviteRecord, bool) {
	t.Helper()
	var r provision.InviteRecord
	err := svc.Store().View(context.Background(), func(tx provision.ReadTx) error {
		var err error
		r, err = tx.Invite(email)
		return err
	})
	if errors.Is(err, provision.ErrNotFound) {
		return r, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, true
}

// An invite record is bounded: kept for InviteRetention after the latest invite of its
// email, then pruned. Past that, a Panther user the lost invite created is an existing
// user like any other (the adoption policy decides), which is the documented bound.
func TestInviteRecordRetention(t *testing.T) {
	// The fake Panther stamps createdAt with the real clock: the service's starts there.
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	p := newFake()
	p.invite = func(in provision.InviteInput) (provision.PantherUser, error) {
		p.add(in)
		return provision.PantherUser{}, fmt.Errorf("connection reset: %w", provision.ErrUnavailable)
	}
	svc := newService(t, p, provision.Options{Adopt: provision.AdoptNone, Now: clock, InviteRetention: 48 * time.Hour})
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, fields("ann@x.io")); provision.ErrorCode(err) != provision.CodeUnavailable {
		t.Fatalf("create: %v", err)
	}
	first, ok := inviteRecord(t, svc, "ann@x.io")
	if !ok || !first.At.Equal(now) || !first.Last.Equal(now) {
		t.Fatalf("invite record %+v, %v", first, ok)
	}
	// A second attempt a day later keeps the first time and moves the retention on.
	now = now.Add(24 * time.Hour)
	if _, err := svc.CreateUser(ctx, fields("ann@x.io")); err == nil {
		t.Fatal("the second attempt was not refused by the fake")
	}
	second, _ := inviteRecord(t, svc, "ann@x.io")
	if !second.At.Equal(first.At) || !second.Last.Equal(now) {
		t.Errorf("after a second attempt: %+v, want At %v and Last %v", second, first.At, now)
	}
	now = now.Add(47 * time.Hour)
	if n, err := svc.PruneInvites(ctx); err != nil || n != 0 {
		t.Errorf("PruneInvites within the retention: %d, %v", n, err)
	}
	now = now.Add(2 * time.Hour)
	if n, err := svc.PruneInvites(ctx); err != nil || n != 1 {
		t.Errorf("PruneInvites past the retention: %d, %v", n, err)
	}
	if _, ok := inviteRecord(t, svc, "ann@x.io"); ok {
		t.Error("invite record kept past its retention")
	}
	p.invite = nil
	if _, err := svc.CreateUser(ctx, fields("ann@x.io")); provision.ErrorCode(err) != provision.CodeUniqueness {
		t.Errorf("after the retention, the Panther user is not panther-scim's: %v, want a refusal under adopt none", err)
	}
}

// A new person costs one Panther call, the invite; an invite Panther refuses for a
// reason other than a duplicate is looked up once and reported as Panther worded it,
// with nothing recorded.
func TestInviteComesFirst(t *testing.T) {
	p := newFake()
	svc := newService(t, p, provision.Options{})
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, fields("cy@x.io")); err != nil {
		t.Fatal(err)
	}
	if p.count("inviteUser") != 1 || p.count("userByEmail") != 0 {
		t.Fatalf("calls %v, want one inviteUser", p.calls)
	}

	p.invite = func(provision.InviteInput) (provision.PantherUser, error) {
		return provision.PantherUser{}, fmt.Errorf("email domain not allowed: %w", provision.ErrInvalid)
	}
	_, err := svc.CreateUser(ctx, fields("dee@x.io"))
	if provision.ErrorCode(err) != provision.CodeInvalid || !strings.Contains(err.Error(), "email domain not allowed") {
		t.Fatalf("create: %v (code %v), want Panther's refusal as CodeInvalid", err, provision.ErrorCode(err))
	}
	if p.count("userByEmail") != 1 || len(p.users) != 1 {
		t.Fatalf("lookups %d, users %d", p.count("userByEmail"), len(p.users))
	}
	err = svc.Store().View(ctx, func(tx provision.ReadTx) error {
		_, err := tx.UserByUserName("dee@x.io")
		return err
	})
	if !errors.Is(err, provision.ErrNotFound) {
		t.Fatalf("refused create left a record: %v", err)
	}
}

// The start-up replay takes what the previous run left pending (marked uncertain
// before any request is served), not the intents this run's requests have just
// written and are syncing themselves.
func TestStartupReplayLeavesFreshIntents(t *testing.T) {
	p := newFake()
	svc := newService(t, p, provision.Options{})
	ctx := context.Background()
	err := svc.Store().Update(ctx, func(tx provision.Tx) error {
		u := provision.User{ID: "u1", UserName: "fay@x.io", Email: "fay@x.io", Active: true, Attributes: fields("fay@x.io").Attributes}
		if err := tx.PutUser(u); err != nil {
			return err
		}
		// As a request writes it: due once the request has had its time to sync, with
		// the invite it is about to send recorded.
		return tx.PutIntent(provision.Intent{UserID: "u1", Since: time.Now(), Gen: 1, NextAttempt: time.Now().Add(time.Minute),
			Invites: []provision.InviteAttempt{{Email: "fay@x.io", At: time.Now()}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if done, failed := svc.Replay(ctx, true); done+failed != 0 || len(p.calls) != 0 {
		t.Fatalf("start-up replay took a fresh intent: done %d failed %d calls %v", done, failed, p.calls)
	}
	// Left by a previous run: marked at start, then replayed with a lookup first.
	if n, err := svc.MarkUncertain(ctx); n != 1 || err != nil {
		t.Fatalf("marked %d, %v", n, err)
	}
	if done, failed := svc.Replay(ctx, true); done != 1 || failed != 0 {
		t.Fatalf("replay done %d failed %d", done, failed)
	}
	if got := strings.Join(p.calls, " "); got != "userByEmail inviteUser" {
		t.Errorf("calls %q, want a lookup before the invite", got)
	}
}

// A no-op change calls nothing; a change of an attribute Panther does not hold
// makes no Panther call either.
func TestNoOpChangesMakeNoCalls(t *testing.T) {
	p := newFake()
	svc := newService(t, p, provision.Options{})
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, fields("bo@x.io"))
	if err != nil {
		t.Fatal(err)
	}
	before := len(p.calls)
	same := fields("bo@x.io")
	if _, err := svc.UpdateUser(ctx, u.ID, 0, func(provision.User) (provision.UserFields, error) { return same, nil }); err != nil {
		t.Fatal(err)
	}
	title := fields("bo@x.io")
	title.Attributes["title"] = "Engineer"
	got, err := svc.UpdateUser(ctx, u.ID, 0, func(provision.User) (provision.UserFields, error) { return title, nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(p.calls) != before {
		t.Errorf("calls %v after no-op changes", p.calls[before:])
	}
	if got.Version != u.Version+1 {
		t.Errorf("version %d, want %d", got.Version, u.Version+1)
	}
	// A stale If-Match fails without a change.
	_, err = svc.UpdateUser(ctx, u.ID, u.Version, func(provision.User) (provision.UserFields, error) { return same, nil })
	if provision.ErrorCode(err) != provision.CodePrecondition {
		t.Errorf("stale If-Match: %v", err)
	}
}

// Deactivation while Panther is down is accepted and queued; the replay removes
// the access once Panther answers.
func TestDeactivationQueuedWhilePantherDown(t *testing.T) {
	p := newFake()
	svc := newService(t, p, provision.Options{})
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, fields("cy@x.io"))
	if err != nil {
		t.Fatal(err)
	}
	p.failAll = provision.ErrUnavailable
	off := fields("cy@x.io")
	off.Active = false
	if _, err := svc.UpdateUser(ctx, u.ID, 0, func(provision.User) (provision.UserFields, error) { return off, nil }); err != nil {
		t.Fatalf("deactivation while down: %v", err)
	}
	if n, _, _ := svc.Pending(ctx); n != 1 {
		t.Fatalf("pending %d, want 1", n)
	}
	p.failAll = nil
	if done, failed := svc.Replay(ctx, true); done != 1 || failed != 0 {
		t.Fatalf("replay done %d failed %d", done, failed)
	}
	if len(p.users) != 0 {
		t.Fatalf("deactivated user still in Panther: %v", p.users)
	}
	if n, _, _ := svc.Pending(ctx); n != 0 {
		t.Fatalf("pending %d after replay", n)
	}
}

// A change that lands while a sync for the same user is running is not lost: the
// intent's generation tells the finishing sync to leave it.
func TestGroupChangeDuringSyncIsNotLost(t *testing.T) {
	p := newFake()
	svc := newService(t, p, provision.Options{})
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, fields("di@x.io"))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var g provision.Group
	var gerr error
	committed := make(chan struct{})
	done := make(chan struct{})
	// During the name update's Panther call, another request adds the user to the
	// Admins group: its store write commits while the first sync is in flight, and
	// its own sync waits for the user's lock.
	orig := fields("di@x.io")
	orig.Attributes["name"] = map[string]any{"givenName": "New", "familyName": "Name"}
	var svc2 *provision.Service
	wrapped := &hookPanther{fakePanther: p, onUpdate: func() {
		once.Do(func() {
			go func() {
				defer close(done)
				g, gerr = svc2.CreateGroup(ctx, provision.GroupFields{DisplayName: "Admins", Members: []string{u.ID}})
			}()
			// Wait until the group write is committed (its intent is in the store).
			for {
				var n int
				_ = svc2.Store().View(ctx, func(tx provision.ReadTx) error { n, _ = tx.GroupCount(); return nil })
				if n == 1 {
					close(committed)
					return
				}
				runtime.Gosched()
			}
		})
	}}
	svc2 = provision.New(svc.Store(), wrapped, provision.Options{Mapping: mappings.Mapping{Rules: []mappings.Rule{{Group: "Admins", Role: "Admin"}}, DefaultRole: "AnalystReadOnly"}})
	if _, err := svc2.UpdateUser(ctx, u.ID, 0, func(provision.User) (provision.UserFields, error) { return orig, nil }); err != nil {
		t.Fatal(err)
	}
	<-committed
	<-done
	if gerr != nil || g.ID == "" {
		t.Fatalf("group: %v", gerr)
	}
	pu, _ := p.UserByEmail(ctx, "di@x.io")
	if pu.RoleName != "Admin" || pu.GivenName != "New" {
		t.Fatalf("panther user %+v: the concurrent group change was lost", pu)
	}
}

type hookPanther struct {
	*fakePanther
	onUpdate func()
}

func (h *hookPanther) UpdateUser(ctx context.Context, in provision.UpdateInput) (provision.PantherUser, error) {
	h.onUpdate()
	return h.fakePanther.UpdateUser(ctx, in)
}

// A user invited after Panther's user list was taken is not drift: the reconciler
// looks a linked user missing from the list up once more before reporting it.
func TestReconcileRechecksUsersMissingFromAStaleList(t *testing.T) {
	p := newFake()
	svc := newService(t, p, provision.Options{})
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, fields("ed@x.io")); err != nil {
		t.Fatal(err)
	}
	p.list = func() []provision.PantherUser { return nil } // the listing predates the invite
	plan, err := svc.Reconcile(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Drift) != 0 {
		t.Fatalf("false drift: %+v", plan.Drift)
	}
	// Really gone: reported.
	p.mu.Lock()
	clear(p.users)
	p.mu.Unlock()
	if plan, err = svc.Reconcile(ctx, true); err != nil || len(plan.Drift) != 1 || plan.Drift[0].Action != "invite" {
		t.Fatalf("plan %+v, err %v", plan, err)
	}
}

// Creates share commits (Store.Batch): when many arrive at once, a create that
// conflicts with another in the same shared transaction still gets its own 409, and
// the others are recorded and invited exactly once.
func TestConcurrentCreatesShareCommits(t *testing.T) {
	p := newFake()
	svc := newService(t, p, provision.Options{})
	const names, tries = 40, 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := map[string][]string{}
	conflicts := 0
	for i := range names * tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := fmt.Sprintf("user%d@example.com", i%names)
			if i%tries == 1 {
				email = strings.ToUpper(email) // the same userName, in another case
			}
			u, err := svc.CreateUser(context.Background(), fields(email))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created[strings.ToLower(email)] = append(created[strings.ToLower(email)], u.ID)
			case provision.ErrorCode(err) == provision.CodeUniqueness:
				conflicts++
			default:
				t.Errorf("create %s: %v", email, err)
			}
		}()
	}
	wg.Wait()
	if len(created) != names || conflicts != names*(tries-1) {
		t.Fatalf("%d names created, %d conflicts; want %d and %d", len(created), conflicts, names, names*(tries-1))
	}
	for name, ids := range created {
		if len(ids) != 1 {
			t.Errorf("%s created %d times", name, len(ids))
		}
	}
	if n := p.count("inviteUser"); n != names {
		t.Errorf("%d invites for %d users", n, names)
	}
	if err := svc.Store().(interface{ Verify(context.Context) error }).Verify(context.Background()); err != nil {
		t.Errorf("store after concurrent creates: %v", err)
	}
	n, _, err := svc.Pending(context.Background())
	if err != nil || n != 0 {
		t.Errorf("%d intents left (%v)", n, err)
	}
}

// An invite Panther refuses, with no Panther user holding the email afterwards, created
// nothing: its invite is forgotten, in the intent and in the invite record. So a Panther
// user someone creates with the address later (in the console) is an existing user when
// the IdP pushes the email again, for the adoption policy to decide, not panther-scim's
// own invitee to update.
func TestRefusedInviteClaimsNothingLater(t *testing.T) {
	p := newFake()
	p.invite = func(provision.InviteInput) (provision.PantherUser, error) {
		return provision.PantherUser{}, fmt.Errorf("email domain not allowed: %w", provision.ErrInvalid)
	}
	obs := &countingObserver{}
	svc := newService(t, p, provision.Options{Adopt: provision.AdoptNone, Observer: obs})
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, fields("ann@x.io")); provision.ErrorCode(err) != provision.CodeInvalid {
		t.Fatalf("create: %v (code %v), want Panther's refusal", err, provision.ErrorCode(err))
	}
	if r, ok := inviteRecord(t, svc, "ann@x.io"); ok {
		t.Fatalf("the refused invite left an invite record: %+v", r)
	}

	// An administrator creates ann@x.io in Panther's console, after the refused invite.
	p.mu.Lock()
	addAdmin(p.users, "console", "ann@x.io")
	u := p.users["console"]
	u.CreatedAt = time.Now()
	p.users["console"] = u
	p.mu.Unlock()
	p.invite = nil
	p.resetCalls()
	_, err := svc.CreateUser(ctx, fields("ann@x.io"))
	if r, ok := asRefusal(err); !ok || r.Reason != provision.RefuseAdoptNone {
		t.Fatalf("second create: %v, want the adopt_none refusal", err)
	}
	if n := p.count("updateUser"); n != 0 {
		t.Errorf("%d updateUser calls to the console's user (calls %v)", n, p.calls)
	}
	if got, _ := p.has("console"); !got.Admin || got.GivenName != "Con" {
		t.Errorf("the console's user was changed: %+v", got)
	}
}

// sizingPanther is a fakePanther that records the listing sizes it is told.
type sizingPanther struct {
	*fakePanther
	hints []int
}

func (p *sizingPanther) ExpectUsers(n int) { p.hints = append(p.hints, n) }

// A listing is preceded by the number of users the store held at its last full scan
// (the start-up requeue's or a reconcile's), so that the Panther client makes room for
// the first listing at once; before any scan there is nothing to tell.
func TestListingsAreSizedByTheLastScan(t *testing.T) {
	ctx := context.Background()
	p := &sizingPanther{fakePanther: newFake()}
	svc := newService(t, p, provision.Options{})
	for _, email := range []string{"ann@x.io", "bob@x.io", "cy@x.io"} {
		if _, err := svc.CreateUser(ctx, fields(email)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Reconcile(ctx, true); err != nil {
		t.Fatal(err)
	}
	if len(p.hints) != 0 {
		t.Fatalf("hints %v before any scan of the store, want none", p.hints)
	}
	// The reconcile's scan saw 3 users.
	if _, err := svc.Reconcile(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.hints, []int{3}) {
		t.Fatalf("hints %v, want [3] (the first reconcile's scan)", p.hints)
	}
	// The requeue's scan, after a fourth, saw 4.
	if _, err := svc.CreateUser(ctx, fields("dee@x.io")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RequeueChanged(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Reconcile(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.hints, []int{3, 4}) {
		t.Fatalf("hints %v, want [3 4] (the requeue's scan)", p.hints)
	}
}
