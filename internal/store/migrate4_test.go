package store

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

func TestMemberKey(t *testing.T) {
	const u = "018f3173-7000-7daf-a706-dd2f4d197e6f"
	// The packed form is on disk: it must never change.
	if got, want := hex.EncodeToString(memberKey(u, "g-1")), "00018f317370007dafa706dd2f4d197e6f672d3100"; got != want {
		t.Errorf("memberKey = %s, want %s", got, want)
	}
	ids := []string{
		u, strings.ToUpper(u), "{" + u + "}", "urn:uuid:" + u, // only the canonical form packs
		"g", "u-000001", "0123456789abcdef", strings.Repeat("x", 36), "018f3173-7000-7daf-a706-dd2f4d197e6", // 35 chars
	}
	for _, a := range ids {
		for _, b := range ids {
			k := memberKey(a, b)
			ga, gb, err := splitMemberKey(k)
			if err != nil || ga != a || gb != b {
				t.Errorf("splitMemberKey(memberKey(%q, %q)) = %q, %q, %v", a, b, ga, gb, err)
			}
			for _, c := range ids {
				if got := bytes.HasPrefix(k, packID(nil, c)); got != (c == a) {
					t.Errorf("key of (%q, %q) starts with the packed %q: %v", a, b, c, got)
				}
			}
		}
	}
	if _, ok := parseUUID(strings.ToUpper(u)); ok {
		t.Error("an upper-case UUID packed: it would come back lower-case")
	}
	for _, bad := range [][]byte{nil, {0}, {0, 1, 2}, []byte("no terminator"), append(memberKey(u, u), 'x'), packID(nil, u)} {
		if _, _, err := splitMemberKey(bad); !errors.Is(err, errBadMemberKey) {
			t.Errorf("splitMemberKey(%x) = %v, want errBadMemberKey", bad, err)
		}
	}
}

// FuzzMemberKey: any two ids round-trip, and a user's prefix matches only its keys.
func FuzzMemberKey(f *testing.F) {
	f.Add("018f3173-7000-7daf-a706-dd2f4d197e6f", "g", "u")
	f.Add("a", "ab", "a\x01")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		if checkID("", a) != nil || checkID("", b) != nil || checkID("", c) != nil {
			return
		}
		k := memberKey(a, b)
		if ga, gb, err := splitMemberKey(k); err != nil || ga != a || gb != b {
			t.Fatalf("(%q, %q) came back as (%q, %q), %v", a, b, ga, gb, err)
		}
		if bytes.HasPrefix(k, packID(nil, c)) != (a == c) {
			t.Fatalf("key of (%q, %q) and the prefix of %q", a, b, c)
		}
	})
}

// The email index leaves out emails equal to the userName; lookups and uniqueness
// behave as if it did not.
func TestEmailIndexLeavesOutUserName(t *testing.T) {
	s := openTemp(t, Options{NoSync: true})
	defer s.Close()
	put := func(u provision.User) error {
		return s.Update(bg, func(tx provision.Tx) error { return tx.PutUser(u) })
	}
	user := func(id, userName, email string) provision.User {
		return provision.User{ID: id, UserName: userName, Email: email, Active: true, Version: 1}
	}
	byEmail := func(email string) string {
		t.Helper()
		var id string
		err := s.View(bg, func(tx provision.ReadTx) error {
			u, err := tx.UserByEmail(email)
			id = u.ID
			return err
		})
		if errors.Is(err, ErrNotFound) {
			return "none"
		} else if err != nil {
			t.Fatal(err)
		}
		return id
	}
	entries := func() []string {
		var out []string
		_ = s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUserEmail).ForEach(func(k, v []byte) error {
				out = append(out, string(k)+"="+mustUnpack(t, v))
				return nil
			})
		})
		return out
	}
	step := func(what string, err, wantErr error, wantEntries ...string) {
		t.Helper()
		if !errors.Is(err, wantErr) || (err != nil && wantErr == nil) {
			t.Fatalf("%s: %v, want %v", what, err, wantErr)
		}
		if got := entries(); !slices.Equal(got, wantEntries) {
			t.Fatalf("%s: email index %q, want %q", what, got, wantEntries)
		}
		if err := s.Verify(bg); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	step("a: email is the userName", put(user("a", "Ada@example.com", "ada@EXAMPLE.com")), nil)
	if got := byEmail("ADA@example.com"); got != "a" {
		t.Errorf("by email: %s", got)
	}
	step("b takes a's email", put(user("b", "bob@example.com", "ada@example.com")), ErrConflict)
	step("c: another email", put(user("c", "carol", "carol@example.com")), nil, "carol@example.com=c")
	if got := byEmail("Carol@example.com"); got != "c" {
		t.Errorf("by email: %s", got)
	}
	step("d takes c's email", put(user("d", "dan@example.com", "CAROL@example.com")), ErrConflict, "carol@example.com=c")
	// e's userName looks like an email but its email is another: that address is free.
	step("e", put(user("e", "eve@example.com", "eve@corp.example")), nil, "carol@example.com=c", "eve@corp.example=e")
	step("f takes e's userName as email", put(user("f", "frank", "eve@example.com")), nil,
		"carol@example.com=c", "eve@corp.example=e", "eve@example.com=f")
	if got := byEmail("eve@example.com"); got != "f" {
		t.Errorf("by email: %s", got)
	}
	if got := byEmail("nobody@example.com"); got != "none" {
		t.Errorf("by email: %s", got)
	}
	// a moves to another email: its old one is free, the new one indexed.
	step("a changes email", put(user("a", "Ada@example.com", "ada@corp.example")), nil,
		"ada@corp.example=a", "carol@example.com=c", "eve@corp.example=e", "eve@example.com=f")
	if got := byEmail("ada@example.com"); got != "none" {
		t.Errorf("by email after a changed it: %s", got)
	}
	step("b takes a's old email", put(user("b", "bob@example.com", "ada@example.com")), nil,
		"ada@corp.example=a", "ada@example.com=b", "carol@example.com=c", "eve@corp.example=e", "eve@example.com=f")
	// c's userName becomes its email: the entry goes, the lookup still finds c.
	step("c's userName becomes its email", put(user("c", "carol@example.com", "carol@example.com")), nil,
		"ada@corp.example=a", "ada@example.com=b", "eve@corp.example=e", "eve@example.com=f")
	if got := byEmail("carol@example.com"); got != "c" {
		t.Errorf("by email: %s", got)
	}
	step("delete c", s.Update(bg, func(tx provision.Tx) error { return tx.DeleteUser("c") }), nil,
		"ada@corp.example=a", "ada@example.com=b", "eve@corp.example=e", "eve@example.com=f")
	if got := byEmail("carol@example.com"); got != "none" {
		t.Errorf("by email after delete: %s", got)
	}
	step("d takes c's email now", put(user("d", "dan@example.com", "CAROL@example.com")), nil,
		"ada@corp.example=a", "ada@example.com=b", "carol@example.com=d", "eve@corp.example=e", "eve@example.com=f")
}

func TestMigrationTo4(t *testing.T) {
	for _, from := range []string{"schema 3", "interrupted"} {
		t.Run(from, func(t *testing.T) { testMigrationTo4(t, from) })
	}
}

// testMigrationTo4 writes a store with the current code, turns it back into what schema
// 3 wrote (every email indexed, groups as JSON, membership keys as text), or into a
// file whose rebuild was cut short, and opens it.
func testMigrationTo4(t *testing.T, from string) {
	path := filepath.Join(t.TempDir(), "old.db")
	s := mustOpen(t, path, Options{NoSync: true})
	const users, groups = 1_500, 40
	id := func(i int) string {
		if i%10 == 9 {
			return fmt.Sprintf("u-%d", i) // not a UUID: stored unpacked
		}
		return fmt.Sprintf("018f0000-0000-7000-8000-%012x", i*7919)
	}
	gid := func(g int) string {
		if g%4 == 3 {
			return fmt.Sprintf("group-%d", g)
		}
		return fmt.Sprintf("018f0000-0000-7000-9000-%012x", g*104729)
	}
	pantherID := func(i int) string {
		if i%7 == 3 {
			return fmt.Sprintf("p-%d", i)
		}
		return fmt.Sprintf("11110000-0000-4000-8000-%012x", i*31)
	}
	var want []provision.Group
	err := s.Update(bg, func(tx provision.Tx) error {
		for i := range users {
			u := provision.User{ID: id(i), UserName: fmt.Sprintf("user%d@example.com", i), Email: fmt.Sprintf("User%d@example.com", i),
				Active: true, Version: 1, Created: time.Unix(1700000000, 0).UTC(), LastModified: time.Unix(1700000000, 0).UTC()}
			if i%5 == 0 {
				u.Email = fmt.Sprintf("u%d@corp.example", i) // not the userName: stays indexed
			}
			u.Panther.ID = pantherID(i)
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		for g := range groups {
			grp := provision.Group{ID: gid(g), DisplayName: fmt.Sprintf("Team %d", g), Version: 1,
				Created: time.Unix(1700000000, 0).UTC(), LastModified: time.Unix(1700000000, 0).UTC()}
			if g%2 == 0 {
				grp.ExternalID = fmt.Sprintf("00g%d", g)
			}
			for m := range 60 + g*7 {
				grp.Members = append(grp.Members, id((g*131+m*17)%users))
			}
			want = append(want, grp)
			if err := tx.PutGroup(grp); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantGroupsOf := map[string][]string{}
	for _, g := range want {
		for _, m := range g.Members {
			wantGroupsOf[m] = append(wantGroupsOf[m], g.ID)
		}
	}
	for _, ids := range wantGroupsOf {
		slices.Sort(ids)
	}

	err = s.db.Update(func(tx *bolt.Tx) error {
		if from == "interrupted" {
			// migrateTo4 marked the work and the rebuild was cut short: half of each
			// index written, a third of the groups compressed.
			for _, name := range rebuiltIndexes {
				if err := dropEveryOther(tx.Bucket(name)); err != nil {
					return err
				}
			}
			for gi, g := range want {
				if data, _ := json.Marshal(g); gi%3 != 0 {
					if err := tx.Bucket(bucketGroups).Put([]byte(g.ID), data); err != nil {
						return err
					}
				}
			}
			meta := tx.Bucket(bucketMeta)
			if err := meta.Put(keyRewriteGroups, []byte{1}); err != nil {
				return err
			}
			return meta.Put(keyRebuildIndexes, []byte{1})
		}
		// What schema 3 wrote: ids as they are in index values and Panther id keys,
		// every email indexed, membership keys as text, groups as JSON.
		for _, ix := range []uniqueIndex{idxUserName, idxEmail, idxPantherID, idxDisplayName} {
			bk := tx.Bucket(ix.bucket)
			var old []kv
			err := bk.ForEach(func(k, v []byte) error {
				id, err := unpackValue(v)
				if bytes.Equal(ix.bucket, bucketUserPantherID) { // its key is packed too
					k = []byte(mustUnpack(t, k))
				}
				old = append(old, kv{bytes.Clone(k), []byte(id)})
				return err
			})
			if err != nil {
				return err
			}
			if err := tx.DeleteBucket(ix.bucket); err != nil {
				return err
			}
			bk, _ = tx.CreateBucket(ix.bucket)
			for _, e := range old {
				if err := bk.Put(e.k, e.v); err != nil {
					return err
				}
			}
		}
		for i := range users {
			if i%5 != 0 {
				if err := tx.Bucket(bucketUserEmail).Put(fold(fmt.Sprintf("User%d@example.com", i)), []byte(id(i))); err != nil {
					return err
				}
			}
		}
		if err := tx.DeleteBucket(bucketMembers); err != nil {
			return err
		}
		mb, _ := tx.CreateBucket(bucketMembers)
		for _, g := range want {
			data, _ := json.Marshal(g)
			if err := tx.Bucket(bucketGroups).Put([]byte(g.ID), data); err != nil {
				return err
			}
			for _, m := range g.Members {
				if err := mb.Put(pairKey(m, g.ID), empty); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, u64(3))
	})
	if err != nil {
		t.Fatal(err)
	}
	s = reopenMigrated(t, s, path)
	defer s.Close()
	err = s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{keyRewriteGroups, keyRebuildIndexes} {
			if meta.Get(k) != nil {
				t.Errorf("mark %s still set", k)
			}
		}
		_ = tx.Bucket(bucketGroups).ForEach(func(k, v []byte) error {
			if !groupHeaded(v) {
				t.Errorf("group %s not rewritten", k)
			}
			return nil
		})
		// Redundant email entries dropped; the others kept.
		if n := tx.Bucket(bucketUserEmail).Stats().KeyN; n != users/5 {
			t.Errorf("%d email entries after migration, want %d", n, users/5)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(bg); err != nil {
		t.Errorf("verify after migration: %v", err)
	}
	err = s.View(bg, func(tx provision.ReadTx) error {
		for _, g := range want {
			if got, err := tx.GroupByDisplayName(strings.ToUpper(g.DisplayName)); err != nil || got.ID != g.ID {
				return fmt.Errorf("group %s by displayName: %q, %v", g.ID, got.ID, err)
			}
			got, err := tx.Group(g.ID)
			if err != nil {
				return err
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(g)
			if !bytes.Equal(a, b) {
				return fmt.Errorf("group %s after migration:\n%s\nwant\n%s", g.ID, a, b)
			}
			h, err := tx.GroupHeader(g.ID)
			if err != nil || h != (provision.GroupHeader{ID: g.ID, DisplayName: g.DisplayName, ExternalID: g.ExternalID}) {
				return fmt.Errorf("group %s header %+v, %v", g.ID, h, err)
			}
		}
		for i := range users {
			got, err := tx.GroupIDsOfUser(id(i))
			if err != nil {
				return err
			}
			if !slices.Equal(got, wantGroupsOf[id(i)]) {
				return fmt.Errorf("groups of %s: %q, want %q", id(i), got, wantGroupsOf[id(i)])
			}
			u, err := tx.UserByEmail(fmt.Sprintf("USER%d@example.com", i))
			if i%5 == 0 {
				u, err = tx.UserByEmail(fmt.Sprintf("u%d@corp.example", i))
			}
			if err != nil || u.ID != id(i) {
				return fmt.Errorf("user %d by email: %q, %v", i, u.ID, err)
			}
			if u, err = tx.UserByPantherID(pantherID(i)); err != nil || u.ID != id(i) {
				return fmt.Errorf("user %d by Panther id: %q, %v", i, u.ID, err)
			}
			if u, err = tx.UserByUserName(fmt.Sprintf("USER%d@example.com", i)); err != nil || u.ID != id(i) {
				return fmt.Errorf("user %d by userName: %q, %v", i, u.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A group record's header is on disk: its layout must never change.
func TestGroupHeaderIsStable(t *testing.T) {
	v, err := encodeGroupJSON(provision.GroupHeader{DisplayName: "Security", ExternalID: "00g1"}, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(v[:15]), "020853656375726974790430306731"; got != want {
		t.Errorf("header %s, want %s", got, want)
	}
	for _, bad := range [][]byte{{groupHeaderTag}, {groupHeaderTag, 5, 'a'}, {groupHeaderTag, 0x80, 0x00, 0}, {groupHeaderTag, 1, 'a', 9}} {
		if _, _, err := splitGroupHeader(bad); err == nil {
			t.Errorf("splitGroupHeader(%x) accepted", bad)
		}
		if _, err := decodeGroupHeader(bad); err == nil {
			t.Errorf("decodeGroupHeader(%x) accepted", bad)
		}
		if _, _, err := plain(bad); err == nil {
			t.Errorf("plain(%x) accepted", bad)
		}
	}
}

// FuzzGroupRecord: no stored group value makes a reader panic, and a header that parses
// is written back the same way.
func FuzzGroupRecord(f *testing.F) {
	good, _ := encodeGroupJSON(provision.GroupHeader{DisplayName: "Security", ExternalID: "00g1"}, []byte(`{"id":"g","displayName":"Security","members":["a"]}`))
	for _, seed := range [][]byte{good, good[:12], {groupHeaderTag}, []byte(`{"displayName":"x"}`)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if h, rest, err := splitGroupHeader(v); err == nil {
			again, err := encodeGroupJSON(h, nil)
			if err != nil {
				t.Fatal(err)
			}
			if head := v[:len(v)-len(rest)]; !bytes.HasPrefix(again, head) {
				t.Fatalf("header %x parsed as %+v, written back as %x", head, h, again)
			}
		}
		_, _ = decodeGroupHeader(v)
		if data, release, err := plain(v); err == nil {
			var g provision.Group
			_ = json.Unmarshal(data, &g)
			release()
		}
	})
}

// dropEveryOther deletes every other entry of bk, as a rebuild cut short leaves it.
func dropEveryOther(bk *bolt.Bucket) error {
	var doomed [][]byte
	i := 0
	_ = bk.ForEach(func(k, _ []byte) error {
		if i++; i%2 == 0 {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range doomed {
		if err := bk.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func mustUnpack(t *testing.T, k []byte) string {
	t.Helper()
	id, err := unpackValue(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// testdata/schema3.db.gz is a store written by the schema 3 release (commit af43231)
// with what schema3User and schema3Group describe: emails equal to the userName and
// not, Panther links and not, ids that are UUIDs and not. Opening it runs the real
// upgrade on a file the old code wrote, not on this test's idea of one.
func TestOpenSchema3File(t *testing.T) {
	gz, err := os.ReadFile(filepath.Join("testdata", "schema3.db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "schema3.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	err = func() error {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			return err
		}
		defer db.Close()
		return db.View(func(tx *bolt.Tx) error {
			if v, _ := readU64(tx.Bucket(bucketMeta).Get(keySchema)); v != 3 {
				return fmt.Errorf("testdata store is schema %d", v)
			}
			return nil
		})
	}()
	if err != nil {
		t.Fatal(err)
	}

	s := mustOpen(t, path, Options{})
	defer s.Close()
	if err := s.Verify(bg); err != nil {
		t.Fatalf("verify after the upgrade: %v", err)
	}
	groupsOfUser := map[string][]string{}
	for g := range 5 {
		for _, m := range schema3Group(g).Members {
			groupsOfUser[m] = append(groupsOfUser[m], schema3Group(g).ID)
		}
	}
	err = s.View(bg, func(tx provision.ReadTx) error {
		if n, _ := tx.UserCount(); n != 30 {
			return fmt.Errorf("%d users", n)
		}
		for i := range 30 {
			want := schema3User(i)
			got, err := tx.UserByUserName(strings.ToUpper(want.UserName))
			if err != nil {
				return err
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(want)
			if !bytes.Equal(a, b) {
				return fmt.Errorf("user %d:\n%s\nwant\n%s", i, a, b)
			}
			if u, err := tx.UserByEmail(strings.ToLower(want.Email)); err != nil || u.ID != want.ID {
				return fmt.Errorf("user %d by email: %q, %v", i, u.ID, err)
			}
			if want.Panther.ID != "" {
				if u, err := tx.UserByPantherID(want.Panther.ID); err != nil || u.ID != want.ID {
					return fmt.Errorf("user %d by Panther id: %q, %v", i, u.ID, err)
				}
			}
			if us, err := tx.UsersByExternalID(want.ExternalID); err != nil || len(us) != 1 || us[0].ID != want.ID {
				return fmt.Errorf("user %d by externalId: %v, %v", i, us, err)
			}
			gids, err := tx.GroupIDsOfUser(want.ID)
			if err != nil {
				return err
			}
			slices.Sort(groupsOfUser[want.ID])
			if !slices.Equal(gids, groupsOfUser[want.ID]) {
				return fmt.Errorf("groups of user %d: %q, want %q", i, gids, groupsOfUser[want.ID])
			}
		}
		for g := range 5 {
			want := schema3Group(g)
			got, err := tx.GroupByDisplayName(want.DisplayName)
			if err != nil {
				return err
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(want)
			if !bytes.Equal(a, b) {
				return fmt.Errorf("group %d:\n%s\nwant\n%s", g, a, b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketUserEmail).Stats().KeyN; n != 10 {
			t.Errorf("%d email entries, want the 10 that differ from the userName", n)
		}
		return nil
	})
}

func schema3UserID(i int) string {
	if i%5 == 4 {
		return fmt.Sprintf("u-%d", i)
	}
	return fmt.Sprintf("018f0000-0000-7000-8000-%012x", i)
}

func schema3User(i int) provision.User {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	u := provision.User{ID: schema3UserID(i), UserName: fmt.Sprintf("user%d@example.com", i), Email: fmt.Sprintf("User%d@Example.com", i),
		ExternalID: fmt.Sprintf("00u%d", i), Active: i%4 != 3, Version: 1, Created: t0, LastModified: t0,
		Attributes: map[string]any{"displayName": fmt.Sprintf("User %d", i)}}
	if i%3 == 0 {
		u.Email = fmt.Sprintf("u%d@corp.example", i)
	}
	if i%2 == 0 {
		u.Panther = provision.PantherLink{ID: fmt.Sprintf("11110000-0000-4000-8000-%012x", i), Email: u.Email, RoleID: "r-1"}
	}
	return u
}

func schema3Group(g int) provision.Group {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	grp := provision.Group{ID: fmt.Sprintf("018f0000-0000-7000-9000-%012x", g), DisplayName: fmt.Sprintf("Team %d", g), Version: 1, Created: t0, LastModified: t0}
	if g == 4 {
		grp.ID = "group-4"
	}
	if g%2 == 0 {
		grp.ExternalID = fmt.Sprintf("00g%d", g)
	}
	for k := range 5 + g*2 {
		// Listed as the old code was given them; it stored a repeated member once.
		if m := schema3UserID((g*7 + k*3) % 30); !slices.Contains(grp.Members, m) {
			grp.Members = append(grp.Members, m)
		}
	}
	return grp
}
