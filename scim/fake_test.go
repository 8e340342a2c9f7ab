package scim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// fakeDirectory is an in-memory Service and Records for handler tests, with none of
// the provisioning rules (no Panther, no roles) and no bbolt file: it keeps records,
// versions and the uniqueness of userName and displayName. fail, when set, is the
// error of every write.
type fakeDirectory struct {
	mu     sync.Mutex
	users  map[string]provision.User
	groups map[string]provision.Group
	next   int
	fail   error
}

var (
	_ Service = (*fakeDirectory)(nil)
	_ Records = (*fakeDirectory)(nil)
)

func newFakeDirectory() *fakeDirectory {
	return &fakeDirectory{users: map[string]provision.User{}, groups: map[string]provision.Group{}}
}

// newFakeServer is the SCIM handler over a fakeDirectory.
func newFakeServer(t testing.TB) (*testServer, *fakeDirectory) {
	t.Helper()
	d := newFakeDirectory()
	h, err := NewHandler(d, d, Options{BaseURL: "https://scim.example.com/scim/v2"})
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{t: t, h: h}, d
}

var fakeEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (d *fakeDirectory) id() string {
	d.next++
	return fmt.Sprintf("0190a000-0000-7000-8000-%012d", d.next)
}

func notFound(kind, id string) error {
	return &provision.Error{Code: provision.CodeNotFound, Detail: kind + " " + id + " not found", Err: provision.ErrNotFound}
}

func taken(what string) error {
	return &provision.Error{Code: provision.CodeUniqueness, Detail: what + " is already taken"}
}

func stale(id string, expect int64, version int64) error {
	return &provision.Error{Code: provision.CodePrecondition, Detail: fmt.Sprintf("%s is at version %d, not %d", id, version, expect)}
}

func (d *fakeDirectory) userNamed(name, except string) bool {
	for _, u := range d.users {
		if u.ID != except && strings.EqualFold(u.UserName, name) {
			return true
		}
	}
	return false
}

func (d *fakeDirectory) CreateUser(_ context.Context, f provision.UserFields) (provision.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return provision.User{}, d.fail
	}
	if d.userNamed(f.UserName, "") {
		return provision.User{}, taken("userName " + f.UserName)
	}
	u := provision.User{ID: d.id(), UserName: f.UserName, ExternalID: f.ExternalID, Active: f.Active, Attributes: f.Attributes,
		Email: strings.ToLower(f.UserName), Created: fakeEpoch, LastModified: fakeEpoch, Version: 1}
	d.users[u.ID] = u
	return u, nil
}

func (d *fakeDirectory) GetUser(_ context.Context, id string) (provision.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[id]
	if !ok {
		return u, notFound("User", id)
	}
	return u, nil
}

func (d *fakeDirectory) UpdateUser(_ context.Context, id string, expect int64, mutate func(provision.User) (provision.UserFields, error)) (provision.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[id]
	switch {
	case !ok:
		return u, notFound("User", id)
	case expect != 0 && expect != u.Version:
		return u, stale(id, expect, u.Version)
	case d.fail != nil:
		return u, d.fail
	}
	f, err := mutate(u)
	if err != nil {
		return provision.User{}, err
	}
	if d.userNamed(f.UserName, id) {
		return provision.User{}, taken("userName " + f.UserName)
	}
	u.UserName, u.ExternalID, u.Active, u.Attributes = f.UserName, f.ExternalID, f.Active, f.Attributes
	u.Version++
	d.users[id] = u
	return u, nil
}

func (d *fakeDirectory) DeleteUser(_ context.Context, id string, expect int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[id]
	switch {
	case !ok:
		return notFound("User", id)
	case expect != 0 && expect != u.Version:
		return stale(id, expect, u.Version)
	case d.fail != nil:
		return d.fail
	}
	delete(d.users, id)
	for gid, g := range d.groups {
		g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == id })
		d.groups[gid] = g
	}
	return nil
}

func (d *fakeDirectory) CreateGroup(_ context.Context, f provision.GroupFields) (provision.Group, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return provision.Group{}, d.fail
	}
	if _, err := d.groupByName(f.DisplayName); err == nil {
		return provision.Group{}, taken("displayName " + f.DisplayName)
	}
	g := provision.Group{ID: d.id(), DisplayName: f.DisplayName, ExternalID: f.ExternalID, Members: f.Members,
		Created: fakeEpoch, LastModified: fakeEpoch, Version: 1}
	d.groups[g.ID] = g
	return g, nil
}

func (d *fakeDirectory) GetGroup(_ context.Context, id string) (provision.Group, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.groups[id]
	if !ok {
		return g, notFound("Group", id)
	}
	return g, nil
}

func (d *fakeDirectory) UpdateGroup(_ context.Context, id string, expect int64, mutate func(provision.Group) (provision.GroupFields, error)) (provision.Group, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.groups[id]
	switch {
	case !ok:
		return g, notFound("Group", id)
	case expect != 0 && expect != g.Version:
		return g, stale(id, expect, g.Version)
	case d.fail != nil:
		return g, d.fail
	}
	f, err := mutate(g)
	if err != nil {
		return provision.Group{}, err
	}
	g.DisplayName, g.ExternalID, g.Members = f.DisplayName, f.ExternalID, f.Members
	g.Version++
	d.groups[id] = g
	return g, nil
}

func (d *fakeDirectory) DeleteGroup(_ context.Context, id string, expect int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.groups[id]
	switch {
	case !ok:
		return notFound("Group", id)
	case expect != 0 && expect != g.Version:
		return stale(id, expect, g.Version)
	}
	delete(d.groups, id)
	return nil
}

// View runs fn on the records as they are, the directory locked.
func (d *fakeDirectory) View(_ context.Context, fn func(RecordsTx) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fn(fakeTx{d})
}

// fakeTx reads a fakeDirectory; the caller holds its lock.
type fakeTx struct{ d *fakeDirectory }

func (tx fakeTx) User(id string) (provision.User, error) {
	if u, ok := tx.d.users[id]; ok {
		return u, nil
	}
	return provision.User{}, provision.ErrNotFound
}

func (tx fakeTx) UserByUserName(name string) (provision.User, error) {
	for _, u := range tx.d.users {
		if strings.EqualFold(u.UserName, name) {
			return u, nil
		}
	}
	return provision.User{}, provision.ErrNotFound
}

func (tx fakeTx) UsersByExternalID(ext string) ([]provision.User, error) {
	var out []provision.User
	for _, id := range sortedIDs(tx.d.users) {
		if u := tx.d.users[id]; u.ExternalID == ext {
			out = append(out, u)
		}
	}
	return out, nil
}

func (tx fakeTx) UserByEmail(email string) (provision.User, error) {
	for _, u := range tx.d.users {
		if strings.EqualFold(u.Email, email) {
			return u, nil
		}
	}
	return provision.User{}, provision.ErrNotFound
}

func (tx fakeTx) UserState(id string) (provision.UserState, error) {
	u, err := tx.User(id)
	return provision.UserState{ID: u.ID, UserName: u.UserName, Active: u.Active}, err
}

func (tx fakeTx) UserCount() (int, error) { return len(tx.d.users), nil }

func (tx fakeTx) ScanUsers(offset int, fn func(provision.User) bool) error {
	for _, id := range sortedIDs(tx.d.users)[min(offset, len(tx.d.users)):] {
		if !fn(tx.d.users[id]) {
			break
		}
	}
	return nil
}

func (tx fakeTx) ScanUserIdentities(fn func(provision.User, provision.IdentitySource) bool) error {
	return tx.ScanUsers(0, func(u provision.User) bool {
		src := provision.IdentitySourceOf(u.Attributes)
		u.Attributes = nil
		return fn(u, src)
	})
}

func (tx fakeTx) Group(id string) (provision.Group, error) {
	if g, ok := tx.d.groups[id]; ok {
		return g, nil
	}
	return provision.Group{}, provision.ErrNotFound
}

func (tx fakeTx) GroupByDisplayName(name string) (provision.Group, error) {
	return tx.d.groupByName(name)
}

func (d *fakeDirectory) groupByName(name string) (provision.Group, error) {
	for _, g := range d.groups {
		if strings.EqualFold(g.DisplayName, name) {
			return g, nil
		}
	}
	return provision.Group{}, provision.ErrNotFound
}

func (tx fakeTx) GroupsByExternalID(ext string) ([]provision.Group, error) {
	var out []provision.Group
	for _, id := range sortedIDs(tx.d.groups) {
		if g := tx.d.groups[id]; g.ExternalID == ext {
			out = append(out, g)
		}
	}
	return out, nil
}

func (tx fakeTx) GroupCount() (int, error) { return len(tx.d.groups), nil }

func (tx fakeTx) ScanGroups(offset int, fn func(provision.Group) bool) error {
	for _, id := range sortedIDs(tx.d.groups)[min(offset, len(tx.d.groups)):] {
		if !fn(tx.d.groups[id]) {
			break
		}
	}
	return nil
}

func (tx fakeTx) GroupIDsOfUser(userID string) ([]string, error) {
	var out []string
	for _, id := range sortedIDs(tx.d.groups) {
		if slices.Contains(tx.d.groups[id].Members, userID) {
			out = append(out, id)
		}
	}
	return out, nil
}

func (tx fakeTx) GroupHeader(id string) (provision.GroupHeader, error) {
	g, err := tx.Group(id)
	return provision.GroupHeader{ID: g.ID, DisplayName: g.DisplayName, ExternalID: g.ExternalID}, err
}

func sortedIDs[T any](m map[string]T) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
