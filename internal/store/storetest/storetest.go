// Package storetest is the conformance suite for provision.Store implementations.
// A backend's test runs it in a few lines:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) provision.Store { return openEmpty(t) })
//	}
//
// Beyond what the provision interfaces say, the suite pins down these choices, which
// every backend must share:
//   - DeleteUser rewrites each group the user was in with Version+1 and a LastModified
//     not before the old one: the group's members changed, so its ETag must change;
//   - PutGroup stores Members de-duplicated, first occurrence kept;
//   - an empty externalId, email or Panther id is not indexed: lookups for "" find nothing;
//   - a write method that fails (ErrConflict, ErrNotFound) changes nothing, so the
//     caller may go on with the transaction;
//   - invite records are keyed by provision.EmailKey: another case or another Unicode
//     composition of an address finds the same record;
//   - ScanIntents and lists of ids come in id order; audit entries with the same time
//     come in append order; an AuditEntry without a Time gets one.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// Run runs every conformance test. open must return a new, empty store for each call;
// Run closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) provision.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s provision.Store)
	}{
		{"User/PutGet", testUserPutGet},
		{"User/NotFound", testUserNotFound},
		{"User/UserNameUniqueCaseInsensitive", testUserNameUnique},
		{"User/EmailUniqueCaseInsensitive", testEmailUnique},
		{"User/PantherIDUnique", testPantherIDUnique},
		{"User/EmptyOptionalNotIndexed", testEmptyNotIndexed},
		{"User/ConflictChangesNothing", testConflictChangesNothing},
		{"User/IndexesFollowChanges", testIndexesFollowChanges},
		{"User/IndexesFollowReadModifyWrite", testIndexesFollowReadModifyWrite},
		{"User/ExternalIDNotUnique", testUserExternalID},
		{"User/Delete", testUserDelete},
		{"User/DeleteCascadesMemberships", testDeleteCascades},
		{"User/CountAndScan", testUserScan},
		{"Group/PutGet", testGroupPutGet},
		{"Group/Header", testGroupHeader},
		{"User/State", testUserState},
		{"Group/DisplayNameUniqueCaseInsensitive", testDisplayNameUnique},
		{"Group/ExternalIDNotUnique", testGroupExternalID},
		{"Group/UnknownMember", testUnknownMember},
		{"Group/MembersDeduplicated", testMembersDeduplicated},
		{"Group/MembershipIndexFollowsMembers", testMembershipIndex},
		{"Group/MembershipReadsInOneTransaction", testMembershipReadsInOneTx},
		{"Group/Delete", testGroupDelete},
		{"Group/CountAndScan", testGroupScan},
		{"Intent/CRUD", testIntents},
		{"Invite/ByCanonicalEmail", testInvites},
		{"Audit/OrderAndPrune", testAudit},
		{"Tx/ReadYourWrites", testReadYourWrites},
		{"Tx/RollbackOnError", testRollbackOnError},
		{"Tx/RollbackOnPanic", testRollbackOnPanic},
		{"Tx/CancelledContext", testCancelledContext},
		{"Tx/ConcurrentUpdates", testConcurrentUpdates},
		{"Tx/Batch", testBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// --- helpers ---

var (
	ctx = context.Background()
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
)

// id returns a SCIM-like id whose order follows n, as UUIDv7 ids follow creation.
func id(prefix string, n int) string {
	return fmt.Sprintf("%s-0190a000-0000-7000-8000-%012d", prefix, n)
}

func user(n int) provision.User {
	return provision.User{
		ID:         id("u", n),
		UserName:   fmt.Sprintf("User%d@Example.com", n),
		ExternalID: fmt.Sprintf("ext-%d", n),
		Active:     true,
		Email:      fmt.Sprintf("User%d@Example.com", n),
		Attributes: map[string]any{
			"displayName": fmt.Sprintf("User %d", n),
			"name":        map[string]any{"givenName": "User", "familyName": fmt.Sprint(n)},
			"emails":      []any{map[string]any{"value": fmt.Sprintf("user%d@example.com", n), "primary": true}},
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "R&D"},
		},
		Created:      t0,
		LastModified: t0.Add(time.Minute),
		Version:      1,
		Panther:      provision.PantherLink{ID: fmt.Sprintf("panther-%d", n), Email: fmt.Sprintf("user%d@example.com", n), RoleID: "role-1"},
	}
}

func group(n int, members ...string) provision.Group {
	return provision.Group{
		ID:           id("g", n),
		DisplayName:  fmt.Sprintf("Group %d", n),
		ExternalID:   fmt.Sprintf("gext-%d", n),
		Members:      members,
		Created:      t0,
		LastModified: t0,
		Version:      1,
	}
}

func update(t *testing.T, s provision.Store, fn func(tx provision.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, s provision.Store, fn func(tx provision.ReadTx) error) {
	t.Helper()
	if err := s.View(ctx, fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func putUsers(t *testing.T, s provision.Store, us ...provision.User) {
	t.Helper()
	update(t, s, func(tx provision.Tx) error {
		for _, u := range us {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
}

func putGroups(t *testing.T, s provision.Store, gs ...provision.Group) {
	t.Helper()
	update(t, s, func(tx provision.Tx) error {
		for _, g := range gs {
			if err := tx.PutGroup(g); err != nil {
				return err
			}
		}
		return nil
	})
}

// normalise makes values that went through a store comparable with DeepEqual: times
// keep their instant but not their location or monotonic reading.
func normalise(v any) any {
	switch x := v.(type) {
	case provision.User:
		x.Created, x.LastModified = x.Created.UTC().Round(0), x.LastModified.UTC().Round(0)
		return x
	case provision.Group:
		x.Created, x.LastModified = x.Created.UTC().Round(0), x.LastModified.UTC().Round(0)
		return x
	case provision.Intent:
		x.Since, x.NextAttempt = x.Since.UTC().Round(0), x.NextAttempt.UTC().Round(0)
		return x
	case provision.AuditEntry:
		x.Time = x.Time.UTC().Round(0)
		return x
	}
	return v
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := normalise(got), normalise(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func wantErr(t *testing.T, what string, err, target error, mention string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v, want %v", what, err, target)
		return
	}
	if !strings.Contains(err.Error(), mention) {
		t.Errorf("%s: err %q does not mention %q", what, err, mention)
	}
}

func userIDs(us []provision.User) []string {
	var ids []string
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	return ids
}

func groupIDs(gs []provision.Group) []string {
	var ids []string
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	return ids
}

func counts(t *testing.T, s provision.Store) (users, groups, intents int) {
	t.Helper()
	view(t, s, func(tx provision.ReadTx) error {
		var err error
		if users, err = tx.UserCount(); err != nil {
			return err
		}
		if groups, err = tx.GroupCount(); err != nil {
			return err
		}
		intents, err = tx.IntentCount()
		return err
	})
	return
}

// --- users ---

func testUserPutGet(t *testing.T, s provision.Store) {
	u := user(1)
	putUsers(t, s, u)
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.User(u.ID)
		if err != nil {
			return err
		}
		equal(t, "User", got, u)
		for name, get := range map[string]func() (provision.User, error){
			"UserByUserName":  func() (provision.User, error) { return tx.UserByUserName(u.UserName) },
			"UserByEmail":     func() (provision.User, error) { return tx.UserByEmail(u.Email) },
			"UserByPantherID": func() (provision.User, error) { return tx.UserByPantherID(u.Panther.ID) },
		} {
			got, err := get()
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			equal(t, name, got, u)
		}
		return nil
	})

	// Replace: same id, new content.
	u2 := u
	u2.Active = false
	u2.Attributes = map[string]any{"title": "Boss"}
	u2.Version = 2
	u2.LastModified = t0.Add(time.Hour)
	putUsers(t, s, u2)
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.User(u.ID)
		equal(t, "replaced User", got, u2)
		return err
	})
	if n, _, _ := counts(t, s); n != 1 {
		t.Errorf("UserCount after replace = %d, want 1", n)
	}
}

func testUserNotFound(t *testing.T, s provision.Store) {
	putUsers(t, s, user(1))
	view(t, s, func(tx provision.ReadTx) error {
		_, err := tx.User(id("u", 9))
		wantErr(t, "User", err, provision.ErrNotFound, id("u", 9))
		_, err = tx.UserByUserName("nobody@example.com")
		wantErr(t, "UserByUserName", err, provision.ErrNotFound, "nobody@example.com")
		_, err = tx.UserByEmail("nobody@example.com")
		wantErr(t, "UserByEmail", err, provision.ErrNotFound, "nobody@example.com")
		_, err = tx.UserByPantherID("panther-9")
		wantErr(t, "UserByPantherID", err, provision.ErrNotFound, "panther-9")
		us, err := tx.UsersByExternalID("ext-9")
		if err != nil || len(us) != 0 {
			t.Errorf("UsersByExternalID(unknown) = %v, %v; want none", us, err)
		}
		return nil
	})
}

func testUserNameUnique(t *testing.T, s provision.Store) {
	a := user(1)
	putUsers(t, s, a)
	b := user(2)
	b.UserName = strings.ToUpper(a.UserName)
	err := s.Update(ctx, func(tx provision.Tx) error { return tx.PutUser(b) })
	wantErr(t, "PutUser with a taken userName in another case", err, provision.ErrConflict, "userName")
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.UserByUserName("uSeR1@eXaMpLe.CoM")
		if err != nil {
			return err
		}
		if got.ID != a.ID {
			t.Errorf("UserByUserName(any case) = %s, want %s", got.ID, a.ID)
		}
		return nil
	})
	// The same user may change the case of its own userName.
	a.UserName = strings.ToLower(a.UserName)
	putUsers(t, s, a)
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.UserByUserName("USER1@EXAMPLE.COM")
		if err == nil && got.UserName != a.UserName {
			t.Errorf("userName = %q, want %q", got.UserName, a.UserName)
		}
		return err
	})
}

func testEmailUnique(t *testing.T, s provision.Store) {
	a := user(1)
	putUsers(t, s, a)
	b := user(2)
	b.Email = strings.ToUpper(a.Email)
	err := s.Update(ctx, func(tx provision.Tx) error { return tx.PutUser(b) })
	wantErr(t, "PutUser with a taken email", err, provision.ErrConflict, "email")
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.UserByEmail("USER1@example.COM")
		if err == nil && got.ID != a.ID {
			t.Errorf("UserByEmail(any case) = %s, want %s", got.ID, a.ID)
		}
		return err
	})
}

func testPantherIDUnique(t *testing.T, s provision.Store) {
	a := user(1)
	putUsers(t, s, a)
	b := user(2)
	b.Panther.ID = a.Panther.ID
	err := s.Update(ctx, func(tx provision.Tx) error { return tx.PutUser(b) })
	wantErr(t, "PutUser with a taken Panther id", err, provision.ErrConflict, a.Panther.ID)
}

func testEmptyNotIndexed(t *testing.T, s provision.Store) {
	a, b := user(1), user(2)
	for _, u := range []*provision.User{&a, &b} {
		u.Email, u.Panther.ID, u.ExternalID = "", "", ""
	}
	putUsers(t, s, a, b) // two empty emails and Panther ids are no conflict
	view(t, s, func(tx provision.ReadTx) error {
		_, err := tx.UserByEmail("")
		wantErr(t, `UserByEmail("")`, err, provision.ErrNotFound, "email")
		_, err = tx.UserByPantherID("")
		wantErr(t, `UserByPantherID("")`, err, provision.ErrNotFound, "")
		us, err := tx.UsersByExternalID("")
		if err != nil || len(us) != 0 {
			t.Errorf(`UsersByExternalID("") = %v, %v; want none`, userIDs(us), err)
		}
		return nil
	})
}

func testConflictChangesNothing(t *testing.T, s provision.Store) {
	a, b := user(1), user(2)
	putUsers(t, s, a, b)
	// b tries to take a new userName and a's email at once: the conflict on email must
	// not leave the new userName half-indexed, even when the caller commits anyway.
	changed := b
	changed.UserName = "fresh@example.com"
	changed.Email = a.Email
	update(t, s, func(tx provision.Tx) error {
		err := tx.PutUser(changed)
		wantErr(t, "PutUser", err, provision.ErrConflict, "email")
		g := group(1, a.ID, "missing-user")
		err = tx.PutGroup(g)
		wantErr(t, "PutGroup", err, provision.ErrNotFound, "missing-user")
		return nil // commit whatever the failed calls left
	})
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.User(b.ID)
		equal(t, "b after failed PutUser", got, b)
		if _, err := tx.UserByUserName("fresh@example.com"); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("new userName of the failed PutUser is indexed: %v", err)
		}
		if _, err := tx.Group(id("g", 1)); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("group of the failed PutGroup exists: %v", err)
		}
		if ids, _ := tx.GroupIDsOfUser(a.ID); len(ids) != 0 {
			t.Errorf("failed PutGroup left memberships %v", ids)
		}
		return err
	})
	if _, n, _ := counts(t, s); n != 0 {
		t.Errorf("GroupCount = %d, want 0", n)
	}
}

// A user read and then written twice in one transaction, its indexed values changing
// each time: every index ends at the last values, and nothing of the first or second
// remains.
func testIndexesFollowReadModifyWrite(t *testing.T, s provision.Store) {
	a := user(1)
	putUsers(t, s, a)
	err := s.Update(ctx, func(tx provision.Tx) error {
		u, err := tx.User(a.ID)
		if err != nil {
			return err
		}
		for i, name := range []string{"second", "third"} {
			// Read before the first write only: the second write follows the first.
			u.UserName, u.Email, u.ExternalID = name+"@example.com", name+"@mail.example.com", "ext-"+name
			u.Panther.ID = fmt.Sprintf("p-new-%d", i)
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	view(t, s, func(tx provision.ReadTx) error {
		for _, old := range []string{a.UserName, "second@example.com"} {
			if _, err := tx.UserByUserName(old); !errors.Is(err, provision.ErrNotFound) {
				t.Errorf("userName %s still found: %v", old, err)
			}
		}
		for _, old := range []string{a.Email, "second@mail.example.com"} {
			if _, err := tx.UserByEmail(old); !errors.Is(err, provision.ErrNotFound) {
				t.Errorf("email %s still found: %v", old, err)
			}
		}
		for _, old := range []string{a.Panther.ID, "p-new-0"} {
			if _, err := tx.UserByPantherID(old); !errors.Is(err, provision.ErrNotFound) {
				t.Errorf("Panther id %s still found: %v", old, err)
			}
		}
		for _, old := range []string{a.ExternalID, "ext-second"} {
			if us, _ := tx.UsersByExternalID(old); len(us) != 0 {
				t.Errorf("externalId %s still finds %v", old, userIDs(us))
			}
		}
		u, err := tx.UserByUserName("third@example.com")
		if err != nil || u.ID != a.ID {
			t.Errorf("UserByUserName(third) = %v, %v", u.ID, err)
		}
		if u, err := tx.UserByEmail("third@mail.example.com"); err != nil || u.ID != a.ID {
			t.Errorf("UserByEmail(third) = %v, %v", u.ID, err)
		}
		if u, err := tx.UserByPantherID("p-new-1"); err != nil || u.ID != a.ID {
			t.Errorf("UserByPantherID(p-new-1) = %v, %v", u.ID, err)
		}
		if us, err := tx.UsersByExternalID("ext-third"); err != nil || len(us) != 1 {
			t.Errorf("UsersByExternalID(ext-third) = %v, %v", userIDs(us), err)
		}
		return nil
	})
}

func testIndexesFollowChanges(t *testing.T, s provision.Store) {
	a := user(1)
	putUsers(t, s, a)
	b := a
	b.UserName, b.Email, b.Panther.ID, b.ExternalID = "renamed@example.com", "moved@example.com", "panther-new", "ext-new"
	b.Version = 2
	putUsers(t, s, b)
	view(t, s, func(tx provision.ReadTx) error {
		if _, err := tx.UserByUserName(a.UserName); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("old userName still found: %v", err)
		}
		if _, err := tx.UserByEmail(a.Email); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("old email still found: %v", err)
		}
		if _, err := tx.UserByPantherID(a.Panther.ID); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("old Panther id still found: %v", err)
		}
		if us, _ := tx.UsersByExternalID(a.ExternalID); len(us) != 0 {
			t.Errorf("old externalId still finds %v", userIDs(us))
		}
		for name, get := range map[string]func() (provision.User, error){
			"UserByUserName":  func() (provision.User, error) { return tx.UserByUserName("RENAMED@example.com") },
			"UserByEmail":     func() (provision.User, error) { return tx.UserByEmail("Moved@Example.com") },
			"UserByPantherID": func() (provision.User, error) { return tx.UserByPantherID("panther-new") },
		} {
			got, err := get()
			if err != nil {
				t.Errorf("%s(new value): %v", name, err)
			} else {
				equal(t, name, got, b)
			}
		}
		us, err := tx.UsersByExternalID("ext-new")
		if err != nil || !slices.Equal(userIDs(us), []string{a.ID}) {
			t.Errorf("UsersByExternalID(new) = %v, %v", userIDs(us), err)
		}
		return nil
	})
	// The old values are free for another user now.
	c := user(3)
	c.UserName, c.Email, c.Panther.ID = a.UserName, a.Email, a.Panther.ID
	putUsers(t, s, c)

	// Clearing the optional attributes removes their entries.
	b.Email, b.Panther.ID, b.ExternalID = "", "", ""
	putUsers(t, s, b)
	d := user(4)
	d.Email, d.Panther.ID = "moved@example.com", "panther-new"
	putUsers(t, s, d)
	view(t, s, func(tx provision.ReadTx) error {
		if us, _ := tx.UsersByExternalID("ext-new"); len(us) != 0 {
			t.Errorf("cleared externalId still finds %v", userIDs(us))
		}
		return nil
	})
}

func testUserExternalID(t *testing.T, s provision.Store) {
	var us []provision.User
	for n := 1; n <= 5; n++ {
		u := user(n)
		u.ExternalID = "shared"
		us = append(us, u)
	}
	us[3].ExternalID = "SHARED" // exact match only
	us[4].ExternalID = "shared\x00tail"
	odd := user(6)
	odd.ExternalID = "sha" // a prefix of the others
	// Insert out of id order: the result is in id order anyway.
	putUsers(t, s, us[2], us[0], us[4], us[1], us[3], odd)
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.UsersByExternalID("shared")
		if err != nil {
			return err
		}
		if want := []string{us[0].ID, us[1].ID, us[2].ID}; !slices.Equal(userIDs(got), want) {
			t.Errorf(`UsersByExternalID("shared") = %v, want %v`, userIDs(got), want)
		}
		equal(t, "first user", got[0], us[0])
		for ext, want := range map[string][]string{
			"SHARED":         {us[3].ID},
			"shared\x00tail": {us[4].ID},
			"sha":            {odd.ID},
			"shar":           nil,
		} {
			got, err := tx.UsersByExternalID(ext)
			if err != nil || !slices.Equal(userIDs(got), want) {
				t.Errorf("UsersByExternalID(%q) = %v, %v; want %v", ext, userIDs(got), err, want)
			}
		}
		return nil
	})
}

func testUserDelete(t *testing.T, s provision.Store) {
	a, b := user(1), user(2)
	putUsers(t, s, a, b)
	update(t, s, func(tx provision.Tx) error { return tx.DeleteUser(a.ID) })
	err := s.Update(ctx, func(tx provision.Tx) error { return tx.DeleteUser(a.ID) })
	wantErr(t, "second DeleteUser", err, provision.ErrNotFound, a.ID)
	view(t, s, func(tx provision.ReadTx) error {
		if _, err := tx.User(a.ID); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("User after delete: %v", err)
		}
		for name, get := range map[string]func() (provision.User, error){
			"UserByUserName":  func() (provision.User, error) { return tx.UserByUserName(a.UserName) },
			"UserByEmail":     func() (provision.User, error) { return tx.UserByEmail(a.Email) },
			"UserByPantherID": func() (provision.User, error) { return tx.UserByPantherID(a.Panther.ID) },
		} {
			if _, err := get(); !errors.Is(err, provision.ErrNotFound) {
				t.Errorf("%s after delete: %v", name, err)
			}
		}
		if us, _ := tx.UsersByExternalID(a.ExternalID); len(us) != 0 {
			t.Errorf("UsersByExternalID after delete = %v", userIDs(us))
		}
		if _, err := tx.User(b.ID); err != nil {
			t.Errorf("other user: %v", err)
		}
		return nil
	})
	if n, _, _ := counts(t, s); n != 1 {
		t.Errorf("UserCount = %d, want 1", n)
	}
	// Its unique values can be taken again.
	c := user(3)
	c.UserName, c.Email, c.Panther.ID = a.UserName, a.Email, a.Panther.ID
	putUsers(t, s, c)
}

func testDeleteCascades(t *testing.T, s provision.Store) {
	a, b, c := user(1), user(2), user(3)
	putUsers(t, s, a, b, c)
	g1, g2, g3 := group(1, a.ID, b.ID, c.ID), group(2, b.ID), group(3, c.ID, b.ID)
	putGroups(t, s, g1, g2, g3)
	update(t, s, func(tx provision.Tx) error { return tx.DeleteUser(b.ID) })
	view(t, s, func(tx provision.ReadTx) error {
		for _, tc := range []struct {
			old     provision.Group
			members []string
		}{{g1, []string{a.ID, c.ID}}, {g2, nil}, {g3, []string{c.ID}}} {
			got, err := tx.Group(tc.old.ID)
			if err != nil {
				return err
			}
			if !slices.Equal(got.Members, tc.members) {
				t.Errorf("%s members = %v, want %v", tc.old.ID, got.Members, tc.members)
			}
			if got.Version != tc.old.Version+1 {
				t.Errorf("%s version = %d, want %d", tc.old.ID, got.Version, tc.old.Version+1)
			}
			if got.LastModified.Before(tc.old.LastModified) {
				t.Errorf("%s lastModified went back: %v", tc.old.ID, got.LastModified)
			}
		}
		ids, err := tx.GroupIDsOfUser(b.ID)
		if err != nil || len(ids) != 0 {
			t.Errorf("GroupIDsOfUser(deleted) = %v, %v", ids, err)
		}
		ids, err = tx.GroupIDsOfUser(c.ID)
		if want := []string{g1.ID, g3.ID}; err != nil || !slices.Equal(ids, want) {
			t.Errorf("GroupIDsOfUser(other) = %v, %v; want %v", ids, err, want)
		}
		return nil
	})
	// A group that never had the user is untouched.
	putGroups(t, s, group(4, a.ID))
	update(t, s, func(tx provision.Tx) error { return tx.DeleteUser(c.ID) })
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.Group(id("g", 4))
		equal(t, "unrelated group", got, group(4, a.ID))
		return err
	})
}

func testUserScan(t *testing.T, s provision.Store) {
	const n = 25
	perm := []int{13, 2, 24, 7, 0, 19, 11, 5, 22, 16, 9, 3, 20, 14, 1, 8, 18, 23, 6, 10, 21, 4, 17, 12, 15}
	var us []provision.User
	for _, i := range perm {
		us = append(us, user(i))
	}
	putUsers(t, s, us...)
	if got, _, _ := counts(t, s); got != n {
		t.Fatalf("UserCount = %d, want %d", got, n)
	}
	collect := func(offset, limit int) []string {
		var ids []string
		view(t, s, func(tx provision.ReadTx) error {
			return tx.ScanUsers(offset, func(u provision.User) bool {
				ids = append(ids, u.ID)
				return len(ids) < limit
			})
		})
		return ids
	}
	want := func(from, to int) []string {
		var ids []string
		for i := from; i < to; i++ {
			ids = append(ids, id("u", i))
		}
		return ids
	}
	for _, tc := range []struct {
		name          string
		offset, limit int
		want          []string
	}{
		{"all", 0, 1000, want(0, n)},
		{"first page", 0, 10, want(0, 10)},
		{"middle page", 10, 10, want(10, 20)},
		{"last short page", 20, 10, want(20, n)},
		{"offset at end", n, 10, nil},
		{"offset past end", n + 5, 10, nil},
		{"negative offset", -3, 2, want(0, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := collect(tc.offset, tc.limit); !slices.Equal(got, tc.want) {
				t.Errorf("ScanUsers(%d) = %v, want %v", tc.offset, got, tc.want)
			}
		})
	}
	view(t, s, func(tx provision.ReadTx) error {
		return tx.ScanUsers(7, func(u provision.User) bool {
			equal(t, "scanned user", u, user(7))
			return false
		})
	})
}

// --- groups ---

func testGroupPutGet(t *testing.T, s provision.Store) {
	a, b := user(1), user(2)
	putUsers(t, s, a, b)
	g := group(1, b.ID, a.ID)
	putGroups(t, s, g)
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.Group(g.ID)
		if err != nil {
			return err
		}
		equal(t, "Group", got, g)
		got, err = tx.GroupByDisplayName("GROUP 1")
		if err != nil {
			return err
		}
		equal(t, "GroupByDisplayName", got, g)
		_, err = tx.Group(id("g", 9))
		wantErr(t, "Group(unknown)", err, provision.ErrNotFound, id("g", 9))
		_, err = tx.GroupByDisplayName("nope")
		wantErr(t, "GroupByDisplayName(unknown)", err, provision.ErrNotFound, "nope")
		return nil
	})
	g.DisplayName, g.Members, g.Version = "Renamed", nil, 2
	putGroups(t, s, g)
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.Group(g.ID)
		equal(t, "replaced Group", got, g)
		if _, err := tx.GroupByDisplayName("Group 1"); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("old displayName still found: %v", err)
		}
		return err
	})
	if _, n, _ := counts(t, s); n != 1 {
		t.Errorf("GroupCount = %d, want 1", n)
	}
}

func testUserState(t *testing.T, s provision.Store) {
	linked, inactive := user(1), user(2)
	linked.Panther = provision.PantherLink{ID: "p-1", Email: linked.Email, RoleID: "r"}
	inactive.Active = false
	putUsers(t, s, linked, inactive)
	view(t, s, func(tx provision.ReadTx) error {
		for _, u := range []provision.User{linked, inactive} {
			got, err := tx.UserState(u.ID)
			if err != nil {
				return err
			}
			equal(t, "UserState", got, provision.UserState{ID: u.ID, UserName: u.UserName, Active: u.Active, Linked: u.Panther.ID != ""})
		}
		_, err := tx.UserState(id("u", 9))
		wantErr(t, "UserState(unknown)", err, provision.ErrNotFound, id("u", 9))
		return nil
	})
	// Changes in the same transaction are seen.
	err := s.Update(ctx, func(tx provision.Tx) error {
		linked.Active, linked.Panther = false, provision.PantherLink{}
		if err := tx.PutUser(linked); err != nil {
			return err
		}
		got, err := tx.UserState(linked.ID)
		equal(t, "UserState after PutUser", got, provision.UserState{ID: linked.ID, UserName: linked.UserName})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testGroupHeader(t *testing.T, s provision.Store) {
	var ids []string
	var us []provision.User
	for n := range 300 {
		us = append(us, user(n))
		ids = append(ids, us[n].ID)
	}
	putUsers(t, s, us...)
	big, bare := group(1, ids...), group(2, ids[0])
	bare.ExternalID = ""
	putGroups(t, s, big, bare)
	check := func(tx provision.ReadTx, g provision.Group) {
		t.Helper()
		got, err := tx.GroupHeader(g.ID)
		if err != nil {
			t.Errorf("GroupHeader(%s): %v", g.ID, err)
			return
		}
		equal(t, "GroupHeader", got, provision.GroupHeader{ID: g.ID, DisplayName: g.DisplayName, ExternalID: g.ExternalID})
	}
	view(t, s, func(tx provision.ReadTx) error {
		check(tx, big)
		check(tx, bare)
		_, err := tx.GroupHeader(id("g", 9))
		wantErr(t, "GroupHeader(unknown)", err, provision.ErrNotFound, id("g", 9))
		return nil
	})
	// A write in the same transaction is seen, and a deleted group is gone.
	err := s.Update(ctx, func(tx provision.Tx) error {
		big.DisplayName, big.ExternalID, big.Members, big.Version = "Renamed", "new-ext", ids[:1], 2
		if err := tx.PutGroup(big); err != nil {
			return err
		}
		check(tx, big)
		if err := tx.DeleteGroup(bare.ID); err != nil {
			return err
		}
		_, err := tx.GroupHeader(bare.ID)
		wantErr(t, "GroupHeader(deleted)", err, provision.ErrNotFound, bare.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testDisplayNameUnique(t *testing.T, s provision.Store) {
	putGroups(t, s, group(1))
	g := group(2)
	g.DisplayName = "gRoUp 1"
	err := s.Update(ctx, func(tx provision.Tx) error { return tx.PutGroup(g) })
	wantErr(t, "PutGroup with a taken displayName", err, provision.ErrConflict, "displayName")
	// The group itself may change case.
	own := group(1)
	own.DisplayName = "GROUP 1"
	putGroups(t, s, own)
}

func testGroupExternalID(t *testing.T, s provision.Store) {
	var gs []provision.Group
	for n := 3; n >= 1; n-- {
		g := group(n)
		g.ExternalID = "okta-push"
		gs = append(gs, g)
	}
	putGroups(t, s, gs...)
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.GroupsByExternalID("okta-push")
		if want := []string{id("g", 1), id("g", 2), id("g", 3)}; err != nil || !slices.Equal(groupIDs(got), want) {
			t.Errorf("GroupsByExternalID = %v, %v; want %v", groupIDs(got), err, want)
		}
		for _, ext := range []string{"OKTA-PUSH", "okta", ""} {
			if got, err := tx.GroupsByExternalID(ext); err != nil || len(got) != 0 {
				t.Errorf("GroupsByExternalID(%q) = %v, %v; want none", ext, groupIDs(got), err)
			}
		}
		return nil
	})
	g := gs[0]
	g.ExternalID = "moved"
	putGroups(t, s, g)
	view(t, s, func(tx provision.ReadTx) error {
		got, _ := tx.GroupsByExternalID("okta-push")
		if want := []string{id("g", 1), id("g", 2)}; !slices.Equal(groupIDs(got), want) {
			t.Errorf("after change: %v, want %v", groupIDs(got), want)
		}
		got, _ = tx.GroupsByExternalID("moved")
		if want := []string{g.ID}; !slices.Equal(groupIDs(got), want) {
			t.Errorf("new externalId: %v, want %v", groupIDs(got), want)
		}
		return nil
	})
}

func testUnknownMember(t *testing.T, s provision.Store) {
	a := user(1)
	putUsers(t, s, a)
	g := group(1, a.ID)
	putGroups(t, s, g)
	bad := g
	bad.DisplayName = "Renamed"
	bad.Members = []string{a.ID, "ghost-1"}
	err := s.Update(ctx, func(tx provision.Tx) error { return tx.PutGroup(bad) })
	wantErr(t, "PutGroup with an unknown member", err, provision.ErrNotFound, "ghost-1")
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.Group(g.ID)
		equal(t, "group after failed PutGroup", got, g)
		return err
	})
	err = s.Update(ctx, func(tx provision.Tx) error { return tx.PutGroup(group(2, "")) })
	wantErr(t, "PutGroup with an empty member id", err, provision.ErrNotFound, "member")
}

func testMembersDeduplicated(t *testing.T, s provision.Store) {
	a, b, c := user(1), user(2), user(3)
	putUsers(t, s, a, b, c)
	putGroups(t, s, group(1, c.ID, a.ID, c.ID, b.ID, a.ID))
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.Group(id("g", 1))
		if want := []string{c.ID, a.ID, b.ID}; !slices.Equal(got.Members, want) {
			t.Errorf("members = %v, want %v", got.Members, want)
		}
		return err
	})
}

// A transaction that reads the groups of many users (the reconciler's does it for
// every user, between reads of other records) gets for each what a transaction of its
// own gets, whatever the form of the ids, and a writing transaction sees its own
// membership changes.
func testMembershipReadsInOneTx(t *testing.T, s provision.Store) {
	var us []provision.User
	for n := range 6 {
		us = append(us, user(n))
	}
	for n := range 3 { // ids in UUID form, which the store may keep packed
		u := user(10 + n)
		u.ID = fmt.Sprintf("0190a000-0000-7000-8000-%012d", 10+n)
		us = append(us, u)
	}
	putUsers(t, s, us...)
	uuidGroup := func(n int, last byte, members ...string) provision.Group {
		g := group(n, members...)
		g.ID = fmt.Sprintf("0190b000-0000-7000-8000-0000000000%02x", last) // differ in the last byte only
		return g
	}
	gs := []provision.Group{
		group(1, us[0].ID, us[1].ID, us[6].ID),
		uuidGroup(2, 0x10, us[1].ID, us[2].ID, us[7].ID),
		uuidGroup(3, 0x11, us[0].ID, us[7].ID, us[8].ID),
		group(4, us[8].ID, us[1].ID),
	}
	putGroups(t, s, gs...)
	own := func() map[string][]string { // each user's groups, read in a transaction of its own
		want := map[string][]string{}
		for _, u := range us {
			view(t, s, func(tx provision.ReadTx) error {
				ids, err := tx.GroupIDsOfUser(u.ID)
				want[u.ID] = ids
				return err
			})
		}
		return want
	}
	want := own()
	if g := want[us[7].ID]; !slices.Equal(g, []string{gs[1].ID, gs[2].ID}) {
		t.Fatalf("groups of %s = %v", us[7].ID, g)
	}
	check := func(tx provision.ReadTx, when string, want map[string][]string) {
		t.Helper()
		for round := range 2 {
			for i := range us {
				u := us[i]
				if round == 1 {
					u = us[len(us)-1-i]
				}
				got, err := tx.GroupIDsOfUser(u.ID)
				if err != nil || !slices.Equal(got, want[u.ID]) {
					t.Errorf("%s, round %d: GroupIDsOfUser(%s) = %v, %v; want %v", when, round, u.ID, got, err, want[u.ID])
				}
				// Reads of other buckets in between.
				if r, err := tx.User(u.ID); err != nil || r.ID != u.ID {
					t.Errorf("%s: User(%s) = %s, %v", when, u.ID, r.ID, err)
				}
				for _, gid := range got {
					if h, err := tx.GroupHeader(gid); err != nil || h.ID != gid {
						t.Errorf("%s: GroupHeader(%s) = %+v, %v", when, gid, h, err)
					}
				}
			}
		}
	}
	view(t, s, func(tx provision.ReadTx) error {
		check(tx, "one read", want)
		return nil
	})
	update(t, s, func(tx provision.Tx) error {
		check(tx, "one update", want)
		// us[7] leaves group 2, us[2] joins group 3, group 4 goes.
		g2, g3 := gs[1], gs[2]
		g2.Members = []string{us[1].ID, us[2].ID}
		g3.Members = append(slices.Clone(g3.Members), us[2].ID)
		for _, g := range []provision.Group{g2, g3} {
			if err := tx.PutGroup(g); err != nil {
				return err
			}
		}
		if err := tx.DeleteGroup(gs[3].ID); err != nil {
			return err
		}
		after := map[string][]string{}
		for id, g := range want {
			after[id] = slices.DeleteFunc(slices.Clone(g), func(gid string) bool { return gid == gs[3].ID })
			if len(after[id]) == 0 {
				after[id] = nil
			}
		}
		after[us[7].ID] = []string{g3.ID}
		after[us[2].ID] = []string{g2.ID, g3.ID}
		check(tx, "after the update's writes", after)
		want = after
		return nil
	})
	if got := own(); !reflect.DeepEqual(got, want) {
		t.Errorf("after the update: %v, want %v", got, want)
	}
}

func testMembershipIndex(t *testing.T, s provision.Store) {
	var us []provision.User
	var ids []string
	for n := 0; n < 6; n++ {
		us = append(us, user(n))
		ids = append(ids, id("u", n))
	}
	putUsers(t, s, us...)
	putGroups(t, s, group(2, ids[0], ids[1], ids[2]), group(1, ids[2], ids[3]))
	groupsOf := func(uid string) []string {
		var got []string
		view(t, s, func(tx provision.ReadTx) error {
			var err error
			got, err = tx.GroupIDsOfUser(uid)
			return err
		})
		return got
	}
	g1, g2 := id("g", 1), id("g", 2)
	for uid, want := range map[string][]string{ids[0]: {g2}, ids[2]: {g1, g2}, ids[3]: {g1}, ids[5]: nil, "nobody": nil} {
		if got := groupsOf(uid); !slices.Equal(got, want) {
			t.Errorf("GroupIDsOfUser(%s) = %v, want %v", uid, got, want)
		}
	}
	// Replace g2's members: ids[0] and ids[2] leave, ids[4] and ids[5] join, ids[1] stays.
	putGroups(t, s, group(2, ids[5], ids[1], ids[4]))
	for uid, want := range map[string][]string{ids[0]: nil, ids[1]: {g2}, ids[2]: {g1}, ids[4]: {g2}, ids[5]: {g2}} {
		if got := groupsOf(uid); !slices.Equal(got, want) {
			t.Errorf("after replace: GroupIDsOfUser(%s) = %v, want %v", uid, got, want)
		}
	}
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.Group(g2)
		if want := []string{ids[5], ids[1], ids[4]}; !slices.Equal(got.Members, want) {
			t.Errorf("members = %v, want %v (order kept)", got.Members, want)
		}
		return err
	})
}

func testGroupDelete(t *testing.T, s provision.Store) {
	a, b := user(1), user(2)
	putUsers(t, s, a, b)
	g := group(1, a.ID, b.ID)
	g.ExternalID = "gone"
	putGroups(t, s, g, group(2, a.ID))
	update(t, s, func(tx provision.Tx) error { return tx.DeleteGroup(g.ID) })
	err := s.Update(ctx, func(tx provision.Tx) error { return tx.DeleteGroup(g.ID) })
	wantErr(t, "second DeleteGroup", err, provision.ErrNotFound, g.ID)
	view(t, s, func(tx provision.ReadTx) error {
		if _, err := tx.Group(g.ID); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("Group after delete: %v", err)
		}
		if _, err := tx.GroupByDisplayName(g.DisplayName); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("GroupByDisplayName after delete: %v", err)
		}
		if gs, _ := tx.GroupsByExternalID("gone"); len(gs) != 0 {
			t.Errorf("GroupsByExternalID after delete: %v", groupIDs(gs))
		}
		if got, _ := tx.GroupIDsOfUser(a.ID); !slices.Equal(got, []string{id("g", 2)}) {
			t.Errorf("GroupIDsOfUser(a) = %v", got)
		}
		if got, _ := tx.GroupIDsOfUser(b.ID); len(got) != 0 {
			t.Errorf("GroupIDsOfUser(b) = %v", got)
		}
		if _, err := tx.User(b.ID); err != nil {
			t.Errorf("member user after DeleteGroup: %v", err)
		}
		return nil
	})
	if _, n, _ := counts(t, s); n != 1 {
		t.Errorf("GroupCount = %d, want 1", n)
	}
	putGroups(t, s, group(1)) // the displayName is free again
}

func testGroupScan(t *testing.T, s provision.Store) {
	for _, n := range []int{4, 0, 3, 1, 2} {
		putGroups(t, s, group(n))
	}
	if _, n, _ := counts(t, s); n != 5 {
		t.Errorf("GroupCount = %d, want 5", n)
	}
	for _, tc := range []struct {
		offset, limit int
		want          []string
	}{
		{0, 10, []string{id("g", 0), id("g", 1), id("g", 2), id("g", 3), id("g", 4)}},
		{1, 2, []string{id("g", 1), id("g", 2)}},
		{4, 2, []string{id("g", 4)}},
		{5, 2, nil},
	} {
		var got []string
		view(t, s, func(tx provision.ReadTx) error {
			return tx.ScanGroups(tc.offset, func(g provision.Group) bool {
				got = append(got, g.ID)
				return len(got) < tc.limit
			})
		})
		if !slices.Equal(got, tc.want) {
			t.Errorf("ScanGroups(%d) limit %d = %v, want %v", tc.offset, tc.limit, got, tc.want)
		}
	}
}

// --- intents and audit ---

func testIntents(t *testing.T, s provision.Store) {
	in1 := provision.Intent{UserID: id("u", 2), Since: t0}
	in2 := provision.Intent{
		UserID: id("u", 1), Since: t0.Add(time.Second),
		Remove:   &provision.PantherLink{ID: "panther-1", Email: "a@example.com"},
		Attempts: 3, NextAttempt: t0.Add(time.Minute), LastError: "unavailable",
	}
	update(t, s, func(tx provision.Tx) error {
		if err := tx.PutIntent(in1); err != nil {
			return err
		}
		return tx.PutIntent(in2)
	})
	view(t, s, func(tx provision.ReadTx) error {
		got, err := tx.Intent(in2.UserID)
		equal(t, "Intent", got, in2)
		_, err2 := tx.Intent(id("u", 9))
		wantErr(t, "Intent(unknown)", err2, provision.ErrNotFound, id("u", 9))
		return err
	})
	if _, _, n := counts(t, s); n != 2 {
		t.Errorf("IntentCount = %d, want 2", n)
	}
	// Replace keeps one intent per user.
	in1.Attempts = 1
	update(t, s, func(tx provision.Tx) error { return tx.PutIntent(in1) })
	if _, _, n := counts(t, s); n != 2 {
		t.Errorf("IntentCount after replace = %d, want 2", n)
	}
	var got []provision.Intent
	view(t, s, func(tx provision.ReadTx) error {
		return tx.ScanIntents(func(in provision.Intent) bool { got = append(got, in); return true })
	})
	if len(got) != 2 {
		t.Fatalf("ScanIntents = %d intents, want 2", len(got))
	}
	equal(t, "first scanned intent", got[0], in2)
	equal(t, "second scanned intent", got[1], in1)
	got = nil
	view(t, s, func(tx provision.ReadTx) error {
		return tx.ScanIntents(func(in provision.Intent) bool { got = append(got, in); return false })
	})
	if len(got) != 1 {
		t.Errorf("ScanIntents did not stop: %d", len(got))
	}

	update(t, s, func(tx provision.Tx) error {
		if err := tx.DeleteIntent(in1.UserID); err != nil {
			return err
		}
		return tx.DeleteIntent(id("u", 9)) // absent: no error
	})
	if _, _, n := counts(t, s); n != 1 {
		t.Errorf("IntentCount after delete = %d, want 1", n)
	}
	view(t, s, func(tx provision.ReadTx) error {
		_, err := tx.Intent(in1.UserID)
		wantErr(t, "deleted Intent", err, provision.ErrNotFound, in1.UserID)
		return nil
	})
}

func testAudit(t *testing.T, s provision.Store) {
	entry := func(min int, action string) provision.AuditEntry {
		return provision.AuditEntry{
			Time: t0.Add(time.Duration(min) * time.Minute), RequestID: "req-" + action, Actor: "okta",
			Action: action, Resource: "User", ID: id("u", min), Outcome: "ok",
			Before: map[string]string{"active": "true"}, After: map[string]string{"active": "false"},
		}
	}
	// Appended out of time order, and two at the same time.
	es := []provision.AuditEntry{entry(3, "c"), entry(1, "a"), entry(5, "e"), entry(2, "b1"), entry(2, "b2"), entry(4, "d")}
	update(t, s, func(tx provision.Tx) error {
		for _, e := range es[:3] {
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx provision.Tx) error {
		for _, e := range es[3:] {
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
		}
		return nil
	})
	actions := func(since time.Time, limit int) []string {
		var got []string
		view(t, s, func(tx provision.ReadTx) error {
			return tx.ScanAudit(since, func(e provision.AuditEntry) bool {
				got = append(got, e.Action)
				return len(got) < limit
			})
		})
		return got
	}
	for _, tc := range []struct {
		name  string
		since time.Time
		limit int
		want  []string
	}{
		{"zero since: everything", time.Time{}, 100, []string{"a", "b1", "b2", "c", "d", "e"}},
		{"since is inclusive", t0.Add(2 * time.Minute), 100, []string{"b1", "b2", "c", "d", "e"}},
		{"since between entries", t0.Add(2*time.Minute + 1), 100, []string{"c", "d", "e"}},
		{"stops when fn says so", time.Time{}, 2, []string{"a", "b1"}},
		{"since after the last", t0.Add(time.Hour), 100, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := actions(tc.since, tc.limit); !slices.Equal(got, tc.want) {
				t.Errorf("ScanAudit = %v, want %v", got, tc.want)
			}
		})
	}
	view(t, s, func(tx provision.ReadTx) error {
		return tx.ScanAudit(t0.Add(5*time.Minute), func(e provision.AuditEntry) bool {
			// The store names every entry it appends without an event id.
			if e.EventID == "" {
				t.Error("audit entry read back without an event id")
			}
			want := es[2]
			want.EventID = e.EventID
			equal(t, "audit entry", e, want)
			return true
		})
	})

	update(t, s, func(tx provision.Tx) error { return tx.PruneAudit(t0.Add(3 * time.Minute)) })
	if got, want := actions(time.Time{}, 100), []string{"c", "d", "e"}; !slices.Equal(got, want) {
		t.Errorf("after PruneAudit: %v, want %v", got, want)
	}

	// An entry without a time is stamped, so it is neither lost to a prune nor sorted first.
	update(t, s, func(tx provision.Tx) error { return tx.AppendAudit(provision.AuditEntry{Action: "stamped"}) })
	var last provision.AuditEntry
	view(t, s, func(tx provision.ReadTx) error {
		return tx.ScanAudit(time.Time{}, func(e provision.AuditEntry) bool { last = e; return true })
	})
	if last.Action != "stamped" || last.Time.IsZero() {
		t.Errorf("last entry = %q at %v, want the stamped one with a time", last.Action, last.Time)
	}
}

func testInvites(t *testing.T, s provision.Store) {
	a := provision.InviteRecord{Email: "José@Example.com", At: t0, Last: t0.Add(time.Hour), UserID: id("u", 1)}
	b := provision.InviteRecord{Email: "old@example.com", At: t0, Last: t0}
	update(t, s, func(tx provision.Tx) error {
		if err := tx.PutInvite(a); err != nil {
			return err
		}
		return tx.PutInvite(b)
	})
	view(t, s, func(tx provision.ReadTx) error {
		// One address in another case and another composition: the same record.
		got, err := tx.Invite("jose\u0301@EXAMPLE.com")
		equal(t, "Invite", got, a)
		_, err2 := tx.Invite("nobody@example.com")
		wantErr(t, "Invite(unknown)", err2, provision.ErrNotFound, "nobody@example.com")
		return err
	})
	// Replace keeps one record per address.
	a.Last = t0.Add(2 * time.Hour)
	update(t, s, func(tx provision.Tx) error { return tx.PutInvite(a) })
	var n int
	update(t, s, func(tx provision.Tx) error {
		var err error
		n, err = tx.PruneInvites(t0.Add(time.Minute))
		return err
	})
	if n != 1 {
		t.Errorf("PruneInvites deleted %d records, want 1", n)
	}
	view(t, s, func(tx provision.ReadTx) error {
		_, err := tx.Invite(b.Email)
		wantErr(t, "pruned Invite", err, provision.ErrNotFound, b.Email)
		got, err := tx.Invite(a.Email)
		equal(t, "kept Invite", got, a)
		return err
	})
	update(t, s, func(tx provision.Tx) error {
		if err := tx.DeleteInvite("JOSÉ@example.com"); err != nil {
			return err
		}
		return tx.DeleteInvite("nobody@example.com") // absent: no error
	})
	view(t, s, func(tx provision.ReadTx) error {
		_, err := tx.Invite(a.Email)
		wantErr(t, "deleted Invite", err, provision.ErrNotFound, a.Email)
		return nil
	})
}

// --- transactions ---

func testReadYourWrites(t *testing.T, s provision.Store) {
	a := user(1)
	update(t, s, func(tx provision.Tx) error {
		if err := tx.PutUser(a); err != nil {
			return err
		}
		if err := tx.PutGroup(group(1, a.ID)); err != nil {
			return err
		}
		if _, err := tx.UserByUserName(a.UserName); err != nil {
			t.Errorf("UserByUserName in the writing tx: %v", err)
		}
		if ids, _ := tx.GroupIDsOfUser(a.ID); len(ids) != 1 {
			t.Errorf("GroupIDsOfUser in the writing tx = %v", ids)
		}
		if n, _ := tx.UserCount(); n != 1 {
			t.Errorf("UserCount in the writing tx = %d", n)
		}
		return nil
	})
}

var errBoom = errors.New("boom")

func testRollbackOnError(t *testing.T, s provision.Store) {
	a := user(1)
	err := s.Update(ctx, func(tx provision.Tx) error {
		if err := tx.PutUser(a); err != nil {
			return err
		}
		if err := tx.PutGroup(group(1, a.ID)); err != nil {
			return err
		}
		if err := tx.PutIntent(provision.Intent{UserID: a.ID, Since: t0}); err != nil {
			return err
		}
		if err := tx.AppendAudit(provision.AuditEntry{Time: t0, Action: "create"}); err != nil {
			return err
		}
		return errBoom
	})
	if err != errBoom {
		t.Fatalf("Update returned %v, want errBoom itself", err)
	}
	assertEmpty(t, s)

	// The error a View callback returns comes back as is too.
	wrapped := fmt.Errorf("wrapped: %w", errBoom)
	if err := s.View(ctx, func(provision.ReadTx) error { return wrapped }); err != wrapped {
		t.Errorf("View returned %v, want the callback's error", err)
	}
}

func testRollbackOnPanic(t *testing.T, s provision.Store) {
	func() {
		defer func() {
			if r := recover(); r != errBoom {
				t.Errorf("recovered %v, want the callback's panic", r)
			}
		}()
		_ = s.Update(ctx, func(tx provision.Tx) error {
			if err := tx.PutUser(user(1)); err != nil {
				return err
			}
			panic(errBoom)
		})
	}()
	assertEmpty(t, s)
	putUsers(t, s, user(2)) // the store still works
}

func assertEmpty(t *testing.T, s provision.Store) {
	t.Helper()
	if u, g, i := counts(t, s); u+g+i != 0 {
		t.Errorf("counts after rollback = %d users, %d groups, %d intents; want none", u, g, i)
	}
	view(t, s, func(tx provision.ReadTx) error {
		if _, err := tx.User(id("u", 1)); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("rolled-back user exists: %v", err)
		}
		if _, err := tx.UserByUserName(user(1).UserName); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("rolled-back userName indexed: %v", err)
		}
		if ids, _ := tx.GroupIDsOfUser(id("u", 1)); len(ids) != 0 {
			t.Errorf("rolled-back membership: %v", ids)
		}
		n := 0
		_ = tx.ScanAudit(time.Time{}, func(provision.AuditEntry) bool { n++; return true })
		if n != 0 {
			t.Errorf("%d rolled-back audit entries", n)
		}
		return nil
	})
}

func testCancelledContext(t *testing.T, s provision.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	if err := s.View(c, func(provision.ReadTx) error { called = true; return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("View(cancelled) = %v", err)
	}
	if err := s.Update(c, func(tx provision.Tx) error { called = true; return tx.PutUser(user(1)) }); !errors.Is(err, context.Canceled) {
		t.Errorf("Update(cancelled) = %v", err)
	}
	if called {
		t.Error("fn ran under a cancelled context")
	}
	assertEmpty(t, s)
}

// testBatch checks that concurrent Batch calls all commit, that one failing or
// panicking call gets its own error (or panic) and leaves no write, without
// disturbing the others, and that read-modify-writes through Batch lose no update.
func testBatch(t *testing.T, s provision.Store) {
	shared := group(0)
	putGroups(t, s, shared)
	errFail := errors.New("this call fails")
	const calls = 60
	var wg sync.WaitGroup
	errs := make([]error, calls)
	panicked := make([]any, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panicked[i] = recover() }()
			errs[i] = s.Batch(ctx, func(tx provision.Tx) error {
				if err := tx.PutUser(user(i)); err != nil {
					return err
				}
				switch i {
				case 7:
					return errFail
				case 11:
					panic("boom")
				}
				g, err := tx.Group(shared.ID)
				if err != nil {
					return err
				}
				g.Members = append(g.Members, user(i).ID)
				g.Version++
				return tx.PutGroup(g)
			})
		}()
	}
	wg.Wait()
	for i := range calls {
		switch i {
		case 7:
			if !errors.Is(errs[i], errFail) {
				t.Errorf("failing call: err = %v, want its own error", errs[i])
			}
		case 11:
			if panicked[i] == nil {
				t.Error("a panic in a batch call did not reach its caller")
			}
		default:
			if errs[i] != nil || panicked[i] != nil {
				t.Errorf("call %d: err %v, panic %v", i, errs[i], panicked[i])
			}
		}
	}
	view(t, s, func(tx provision.ReadTx) error {
		g, err := tx.Group(shared.ID)
		if err != nil {
			return err
		}
		if len(g.Members) != calls-2 || g.Version != 1+calls-2 {
			t.Errorf("group has %d members at version %d, want %d at %d", len(g.Members), g.Version, calls-2, calls-1)
		}
		for _, i := range []int{7, 11} {
			if _, err := tx.User(user(i).ID); !errors.Is(err, provision.ErrNotFound) {
				t.Errorf("the write of failed call %d was kept: %v", i, err)
			}
		}
		if n, _ := tx.UserCount(); n != calls-2 {
			t.Errorf("UserCount = %d, want %d", n, calls-2)
		}
		return nil
	})
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Batch(cancelled, func(provision.Tx) error { t.Error("fn ran with a cancelled context"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Batch with a cancelled context: %v", err)
	}
}

func testConcurrentUpdates(t *testing.T, s provision.Store) {
	const writers, each = 8, 5
	shared := group(0)
	putGroups(t, s, shared)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+writers)
	for w := 0; w < writers; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				n := w*each + i
				// Read-modify-write of one group from many goroutines: no update may be lost.
				errs <- s.Update(ctx, func(tx provision.Tx) error {
					if err := tx.PutUser(user(n)); err != nil {
						return err
					}
					g, err := tx.Group(shared.ID)
					if err != nil {
						return err
					}
					g.Members = append(g.Members, user(n).ID)
					g.Version++
					return tx.PutGroup(g)
				})
			}
		}()
		go func() { // readers meanwhile always see a consistent state
			defer wg.Done()
			errs <- s.View(ctx, func(tx provision.ReadTx) error {
				g, err := tx.Group(shared.ID)
				if err != nil {
					return err
				}
				if n, _ := tx.UserCount(); n != len(g.Members) {
					return fmt.Errorf("reader saw %d users but %d members", n, len(g.Members))
				}
				return nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	view(t, s, func(tx provision.ReadTx) error {
		g, err := tx.Group(shared.ID)
		if err != nil {
			return err
		}
		if len(g.Members) != writers*each || g.Version != 1+writers*each {
			t.Errorf("group has %d members at version %d, want %d at %d", len(g.Members), g.Version, writers*each, 1+writers*each)
		}
		if n, _ := tx.UserCount(); n != writers*each {
			t.Errorf("UserCount = %d, want %d", n, writers*each)
		}
		for n := 0; n < writers*each; n++ {
			if ids, _ := tx.GroupIDsOfUser(id("u", n)); !slices.Equal(ids, []string{shared.ID}) {
				t.Errorf("GroupIDsOfUser(%d) = %v", n, ids)
			}
		}
		return nil
	})
}
