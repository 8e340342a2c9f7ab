package provision_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
	"github.com/panther-scim/panther-scim/mappings"
)

// permsPanther is the fake Panther with permissions on its roles: Admin holds
// UserModify, the others do not.
type permsPanther struct{ *fakePanther }

func withPerms(r provision.PantherRole) provision.PantherRole {
	r.Permissions = []string{"UserRead"}
	if r.Name == "Admin" {
		r.Permissions = append(r.Permissions, provision.PermissionUserModify)
	}
	return r
}

func (p permsPanther) RoleByName(ctx context.Context, name string) (provision.PantherRole, error) {
	r, err := p.fakePanther.RoleByName(ctx, name)
	return withPerms(r), err
}

func (p permsPanther) RoleByID(ctx context.Context, id string) (provision.PantherRole, error) {
	r, err := p.fakePanther.RoleByID(ctx, id)
	return withPerms(r), err
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Now().UTC()} }
func auditOf(t *testing.T, svc *provision.Service, action string) []provision.AuditEntry {
	t.Helper()
	var out []provision.AuditEntry
	err := svc.Store().View(context.Background(), func(tx provision.ReadTx) error {
		return tx.ScanAudit(time.Time{}, func(e provision.AuditEntry) bool {
			if e.Action == action {
				out = append(out, e)
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fieldsOf picks keys of a field map, for compact comparison.
func fieldsOf(m map[string]string, keys ...string) string {
	var parts []string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// Every provisioning change records the Panther access it leads to: the role, and
// whether that role holds UserModify, before and after.
func TestAuditRecordsRoleAndUserModify(t *testing.T) {
	ctx := context.Background()
	p := newFake()
	// Panther's own administrator, so that Ed's Admin role may be taken away.
	p.add(provision.InviteInput{Email: "root@x.io", GivenName: "R", FamilyName: "O", Role: provision.RoleRef{ByID: true, Value: "r-admin"}})
	svc := newService(t, permsPanther{p}, provision.Options{})
	for _, r := range []string{"Admin", "AnalystReadOnly"} { // as the server does at start
		if _, err := svc.RoleFor(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	u, err := svc.CreateUser(ctx, fields("ed@x.io"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := svc.CreateGroup(ctx, provision.GroupFields{DisplayName: "Admins", Members: []string{u.ID}})
	if err != nil {
		t.Fatal(err)
	}
	deactivate := fields("ed@x.io")
	deactivate.Active = false
	if _, err := svc.UpdateUser(ctx, u.ID, 0, func(provision.User) (provision.UserFields, error) { return deactivate, nil }); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteUser(ctx, u.ID, 0); err != nil {
		t.Fatal(err)
	}
	keys := []string{"role", "access", "roleUserModify"}
	for _, tc := range []struct {
		action, before, after string
	}{
		{"user.create", "", "role=AnalystReadOnly access=true roleUserModify=false"},
		{"user.role", "role=AnalystReadOnly access=true roleUserModify=false", "role=Admin access=true roleUserModify=true"},
		{"user.deactivate", "role=Admin access=true roleUserModify=true", "role= access=false roleUserModify=false"},
		{"user.delete", "role= access=false roleUserModify=false", ""},
	} {
		es := auditOf(t, svc, tc.action)
		if len(es) != 1 {
			t.Fatalf("%s: %d entries", tc.action, len(es))
		}
		if got := fieldsOf(es[0].Before, keys...); got != tc.before {
			t.Errorf("%s before: %q, want %q", tc.action, got, tc.before)
		}
		if got := fieldsOf(es[0].After, keys...); got != tc.after {
			t.Errorf("%s after: %q, want %q", tc.action, got, tc.after)
		}
	}
	_ = g
}

// A role whose permissions were never looked up is named, without a guess about
// UserModify.
func TestAuditRoleUnknownPermissions(t *testing.T) {
	ctx := context.Background()
	p := newFake()
	p.failAll = fmt.Errorf("down: %w", provision.ErrUnavailable)
	svc := newService(t, permsPanther{p}, provision.Options{})
	f := fields("flo@x.io")
	_, _ = svc.CreateUser(ctx, f) // fails (Panther down) and rolls back; its audit entry stays
	es := auditOf(t, svc, "user.create")
	if len(es) == 0 {
		t.Fatal("no user.create entry")
	}
	if got := fieldsOf(es[0].After, "role", "access", "roleUserModify"); got != "role=AnalystReadOnly access=true" {
		t.Errorf("after = %q, want the role named and no roleUserModify", got)
	}
}

// The reconciler records each difference it finds and what its repair did; a dry run
// records nothing.
func TestReconcileAuditsDrift(t *testing.T) {
	ctx := context.Background()
	p := newFake()
	svc := newService(t, p, provision.Options{})
	u, err := svc.CreateUser(ctx, fields("gil@x.io"))
	if err != nil {
		t.Fatal(err)
	}
	// Behind the IdP's back: an admin in Panther's console.
	p.mu.Lock()
	pu := p.users[u.Panther.ID]
	pu.RoleID, pu.RoleName, pu.GivenName = "r-admin", "Admin", "Gilbert"
	p.users[pu.ID] = pu
	p.mu.Unlock()

	if _, err := svc.Reconcile(ctx, true); err != nil {
		t.Fatal(err)
	}
	if es := auditOf(t, svc, "drift.detected"); len(es) != 0 {
		t.Fatalf("a dry run recorded %d drift entries", len(es))
	}
	plan, err := svc.Reconcile(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Repaired != 1 || len(plan.Drift) != 1 || len(plan.Drift[0].Diffs) != 2 {
		t.Fatalf("plan = %+v", plan)
	}
	es := auditOf(t, svc, "drift.detected")
	var got []string
	for _, e := range es {
		if e.ID != u.ID || e.Actor != provision.ActorReconciler || e.Outcome != "repaired" {
			t.Errorf("entry %+v", e)
		}
		got = append(got, fieldsOf(e.After, "userName", "field", "found", "expected", "repair"))
	}
	slices.Sort(got)
	want := []string{
		"userName=gil@x.io field=givenName found=Gilbert expected=G repair=update: repaired",
		"userName=gil@x.io field=role found=Admin expected=AnalystReadOnly repair=update: repaired",
	}
	if !slices.Equal(got, want) {
		t.Errorf("drift entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A removal of access still pending after the alert delay is reported once per
// interval per user, for a deactivated, a deleted and an unmapped user; a restart
// remembers what was reported; a removal that succeeds is no longer reported.
func TestAlertDelayedDeprovisions(t *testing.T) {
	ctx := context.Background()
	p := newFake()
	clk := newClock()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := provision.Options{Now: clk.now, RequestSyncTimeout: time.Second,
		Mapping: mappings.Mapping{Rules: []mappings.Rule{{Group: "Staff", Role: "Analyst"}}}}
	svc := provision.New(st, p, opts)
	create := func(email string) provision.User {
		t.Helper()
		u, err := svc.CreateUser(ctx, fields(email))
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	dee, del, unm, ok := create("dee@x.io"), create("del@x.io"), create("unm@x.io"), create("ok@x.io")
	if _, err := svc.CreateGroup(ctx, provision.GroupFields{DisplayName: "Staff", Members: []string{dee.ID, del.ID, unm.ID, ok.ID}}); err != nil {
		t.Fatal(err)
	}
	if len(p.users) != 4 {
		t.Fatalf("Panther has %d users", len(p.users))
	}

	// Panther goes down; the leavers' removals are accepted and queued.
	p.failAll = fmt.Errorf("down: %w", provision.ErrUnavailable)
	off := fields("dee@x.io")
	off.Active = false
	if _, err := svc.UpdateUser(ctx, dee.ID, 0, func(provision.User) (provision.UserFields, error) { return off, nil }); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteUser(ctx, del.ID, 0); err != nil {
		t.Fatal(err)
	}
	// unm leaves the only mapped group (no default role): no access any more.
	_, _ = svc.UpdateGroup(ctx, groupID(t, svc, "Staff"), 0, func(g provision.Group) (provision.GroupFields, error) {
		return provision.GroupFields{DisplayName: g.DisplayName, Members: []string{dee.ID, ok.ID}}, nil
	})
	// ok's name changes: pending too, but not a removal.
	renamed := fields("ok@x.io")
	renamed.Attributes["name"] = map[string]any{"givenName": "Okay", "familyName": "F"}
	_, _ = svc.UpdateUser(ctx, ok.ID, 0, func(provision.User) (provision.UserFields, error) { return renamed, nil })

	alert := func(s *provision.Service) map[string]string {
		t.Helper()
		before := len(auditOf(t, s, provision.ActionDeprovisionDelayed))
		n, err := s.AlertDelayedDeprovisions(ctx, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		es := auditOf(t, s, provision.ActionDeprovisionDelayed)[before:]
		if len(es) != n {
			t.Fatalf("returned %d, wrote %d", n, len(es))
		}
		got := map[string]string{}
		for _, e := range es {
			got[e.ID] = e.After["reason"]
		}
		return got
	}
	clk.add(4 * time.Minute)
	if got := alert(svc); len(got) != 0 {
		t.Fatalf("reported before the delay: %v", got)
	}
	clk.add(2 * time.Minute)
	want := map[string]string{dee.ID: "deactivated", del.ID: "deleted", unm.ID: "unmapped"}
	if got := alert(svc); !mapsEqual(got, want) {
		t.Fatalf("reported %v, want %v", got, want)
	}
	e := auditOf(t, svc, provision.ActionDeprovisionDelayed)[0]
	if e.After["pendingSince"] == "" || e.After["attempts"] == "" || e.Outcome != "pending" {
		t.Errorf("entry %+v", e)
	}
	clk.add(time.Minute)
	if got := alert(svc); len(got) != 0 {
		t.Fatalf("reported again within the interval: %v", got)
	}
	// A restart remembers the reports (from the audit trail).
	restarted := provision.New(st, p, opts)
	if got := alert(restarted); len(got) != 0 {
		t.Fatalf("reported again after a restart within the interval: %v", got)
	}
	clk.add(5 * time.Minute)
	if got := alert(restarted); !mapsEqual(got, want) {
		t.Fatalf("after another interval: %v, want %v", got, want)
	}
	// Panther is back: the removals go through, nothing is pending, nothing reported.
	p.failAll = nil
	restarted.Replay(ctx, true)
	if _, err := restarted.RequeueChanged(ctx); err != nil {
		t.Fatal(err)
	}
	restarted.Replay(ctx, true)
	clk.add(10 * time.Minute)
	if got := alert(restarted); len(got) != 0 {
		t.Errorf("reported after the removals were applied: %v (Panther users %d)", got, len(p.users))
	}
	_ = st.Close()
}

func groupID(t *testing.T, svc *provision.Service, name string) string {
	t.Helper()
	var id string
	err := svc.Store().View(context.Background(), func(tx provision.ReadTx) error {
		g, err := tx.GroupByDisplayName(name)
		id = g.ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
