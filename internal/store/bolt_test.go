package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) provision.Store {
		path := filepath.Join(t.TempDir(), "store.db")
		// Runs after Run has closed the store: reopen the file and check that every
		// index still agrees with the records, which the API alone cannot show.
		t.Cleanup(func() { verifyFile(t, path) })
		return mustOpen(t, path, Options{})
	})
}

func verifyFile(t *testing.T, path string) {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Errorf("reopen for Verify: %v", err)
		return
	}
	defer s.Close()
	if err := s.Verify(bg); err != nil {
		t.Error(err)
	}
}

func openTemp(t testing.TB, opts Options) *Bolt {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "store.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustOpen(t *testing.T, path string, opts Options) *Bolt {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var bg = context.Background()

func testUser(n int) provision.User {
	return provision.User{
		ID:       fmt.Sprintf("u-%06d", n),
		UserName: fmt.Sprintf("user%d@example.com", n),
		Email:    fmt.Sprintf("user%d@example.com", n),
		Active:   true,
		Version:  1,
	}
}

func TestOpenLockedFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := mustOpen(t, path, Options{})
	defer s.Close()

	// bbolt's flock is per open file description, so a second Open in the same process
	// contends exactly as a second panther-scim process would.
	start := time.Now()
	_, err := Open(path, Options{OpenTimeout: 100 * time.Millisecond})
	took := time.Since(start)
	if !errors.Is(err, ErrLocked) || !errors.Is(err, bolt.ErrTimeout) {
		t.Fatalf("second Open = %v, want ErrLocked wrapping bbolt's timeout", err)
	}
	for _, want := range []string{path, "another panther-scim"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if took > 2*time.Second {
		t.Errorf("second Open took %v; it should give up after about its timeout", took)
	}

	// Once the holder closes, the file opens.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, path, Options{OpenTimeout: 100 * time.Millisecond}).Close()
}

func TestOpenDefaultTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := mustOpen(t, path, Options{})
	defer s.Close()
	start := time.Now()
	_, err := Open(path, Options{})
	if took := time.Since(start); !errors.Is(err, ErrLocked) || took < 500*time.Millisecond || took > 3*time.Second {
		t.Errorf("Open with the default timeout: %v after %v; want ErrLocked after about 1s", err, took)
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	mustOpen(t, path, Options{}).Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("store file mode = %o, want 600", mode)
	}
}

func TestReopenPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := mustOpen(t, path, Options{})
	err := s.Update(bg, func(tx provision.Tx) error {
		for n := 0; n < 3; n++ {
			if err := tx.PutUser(testUser(n)); err != nil {
				return err
			}
		}
		if err := tx.PutGroup(provision.Group{ID: "g-1", DisplayName: "Admins", Members: []string{"u-000002", "u-000000"}}); err != nil {
			return err
		}
		if err := tx.PutIntent(provision.Intent{UserID: "u-000001"}); err != nil {
			return err
		}
		return tx.AppendAudit(provision.AuditEntry{Action: "create"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, path, Options{})
	defer s.Close()
	err = s.View(bg, func(tx provision.ReadTx) error {
		u, err := tx.UserByUserName("USER1@example.com")
		if err != nil || u.ID != "u-000001" {
			return fmt.Errorf("UserByUserName after reopen = %+v, %v", u, err)
		}
		if n, _ := tx.UserCount(); n != 3 {
			return fmt.Errorf("UserCount after reopen = %d", n)
		}
		if n, _ := tx.GroupCount(); n != 1 {
			return fmt.Errorf("GroupCount after reopen = %d", n)
		}
		if n, _ := tx.IntentCount(); n != 1 {
			return fmt.Errorf("IntentCount after reopen = %d", n)
		}
		if ids, _ := tx.GroupIDsOfUser("u-000002"); len(ids) != 1 {
			return fmt.Errorf("GroupIDsOfUser after reopen = %v", ids)
		}
		audits := 0
		_ = tx.ScanAudit(time.Time{}, func(provision.AuditEntry) bool { audits++; return true })
		if audits != 1 {
			return fmt.Errorf("%d audit entries after reopen", audits)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	mustOpen(t, path, Options{}).Close()

	// A new file says the current version.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var v uint64
	_ = db.View(func(tx *bolt.Tx) error {
		v, _ = readU64(tx.Bucket(bucketMeta).Get(keySchema))
		return nil
	})
	if v != SchemaVersion || SchemaVersion != 4 {
		t.Errorf("schema version on a new file = %d, want 4", v)
	}

	// A file from a newer release is refused, and left as it was.
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, u64(SchemaVersion+1))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(path, Options{})
	if err == nil {
		t.Fatal("Open accepted a file with a newer schema version")
	}
	for _, want := range []string{path, "schema version 5", "newer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The refusal released the lock.
	if db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second}); err != nil {
		t.Fatalf("file still locked after the refused Open: %v", err)
	}
	db.Close()
}

func TestMigrationHook(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	mustOpen(t, path, Options{}).Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, u64(0)) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// Without a migration from 0, Open refuses.
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "no migration from store schema version 0") {
		t.Fatalf("Open without a migration = %v", err)
	}
	// With one, it runs and the version moves on.
	ran := false
	migrations[0] = func(*bolt.Tx) error { ran = true; return nil }
	defer delete(migrations, 0)
	s := mustOpen(t, path, Options{})
	defer s.Close()
	if !ran {
		t.Error("migration did not run")
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		if v, _ := readU64(tx.Bucket(bucketMeta).Get(keySchema)); v != SchemaVersion {
			t.Errorf("version after migration = %d, want %d", v, SchemaVersion)
		}
		return nil
	})
}

func TestOpenRefusesForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("somebody-else"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "not a panther-scim store") {
		t.Errorf("Open(foreign bbolt file) = %v", err)
	}
}

func TestInvalidInput(t *testing.T) {
	s := openTemp(t, Options{NoSync: true})
	defer s.Close()
	long := strings.Repeat("x", bolt.MaxKeySize)
	for _, tc := range []struct {
		name string
		fn   func(tx provision.Tx) error
	}{
		{"empty user id", func(tx provision.Tx) error { return tx.PutUser(provision.User{UserName: "a"}) }},
		{"user id with NUL", func(tx provision.Tx) error { return tx.PutUser(provision.User{ID: "a\x00b", UserName: "a"}) }},
		{"empty userName", func(tx provision.Tx) error { return tx.PutUser(provision.User{ID: "u"}) }},
		{"userName too long", func(tx provision.Tx) error { return tx.PutUser(provision.User{ID: "u", UserName: long}) }},
		{"externalId too long", func(tx provision.Tx) error {
			return tx.PutUser(provision.User{ID: "u", UserName: "a", ExternalID: long})
		}},
		{"empty group id", func(tx provision.Tx) error { return tx.PutGroup(provision.Group{DisplayName: "g"}) }},
		{"empty displayName", func(tx provision.Tx) error { return tx.PutGroup(provision.Group{ID: "g"}) }},
		{"intent without user", func(tx provision.Tx) error { return tx.PutIntent(provision.Intent{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(bg, tc.fn)
			if err == nil || errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
				t.Errorf("err = %v, want a plain validation error", err)
			}
		})
	}
}

// TestDeleteUserBumpsGroupClock pins the time DeleteUser writes into the groups it edits.
func TestDeleteUserBumpsGroupClock(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := openTemp(t, Options{NoSync: true, Now: func() time.Time { return now }})
	defer s.Close()
	err := s.Update(bg, func(tx provision.Tx) error {
		if err := tx.PutUser(testUser(1)); err != nil {
			return err
		}
		if err := tx.PutGroup(provision.Group{ID: "g", DisplayName: "G", Members: []string{"u-000001"}, Version: 7}); err != nil {
			return err
		}
		return tx.DeleteUser("u-000001")
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.View(bg, func(tx provision.ReadTx) error {
		g, err := tx.Group("g")
		if err != nil || g.Version != 8 || !g.LastModified.Equal(now) || g.Members != nil {
			t.Errorf("group after DeleteUser = %+v, %v; want version 8, lastModified %v, no members", g, err, now)
		}
		return nil
	})
}

// TestUpdateCancelledWhileWaiting: an Update whose context ends while it waits for the
// single writer does not run its fn once it gets the lock.
func TestUpdateCancelledWhileWaiting(t *testing.T) {
	s := openTemp(t, Options{NoSync: true})
	defer s.Close()
	holding, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.Update(bg, func(provision.Tx) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error)
	ran := false
	go func() {
		done <- s.Update(ctx, func(provision.Tx) error { ran = true; return nil })
	}()
	cancel()
	close(release)
	if err := <-done; !errors.Is(err, context.Canceled) || ran {
		t.Errorf("Update = %v, ran = %v; want context.Canceled without running", err, ran)
	}
}

func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, filepath.Join(dir, "store.db"), Options{NoSync: true})
	defer s.Close()

	// Writers keep adding a user and its membership in one group, one transaction each;
	// any consistent copy has exactly as many users as the group has members.
	const groupID = "g-all"
	if err := s.Update(bg, func(tx provision.Tx) error {
		return tx.PutGroup(provision.Group{ID: groupID, DisplayName: "All"})
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			err := s.Update(bg, func(tx provision.Tx) error {
				u := testUser(n)
				if err := tx.PutUser(u); err != nil {
					return err
				}
				g, err := tx.Group(groupID)
				if err != nil {
					return err
				}
				g.Members = append(g.Members, u.ID)
				return tx.PutGroup(g)
			})
			if err != nil {
				writeErr = err
				return
			}
		}
	}()

	// Let some writes land before each copy.
	waitForUsers := func(min int) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var n int
			_ = s.View(bg, func(tx provision.ReadTx) error { n, _ = tx.UserCount(); return nil })
			if n >= min || time.Now().After(deadline) {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitForUsers(50)
	var buf bytes.Buffer
	n, err := s.Backup(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup = %d, %v (buffer %d bytes)", n, err, buf.Len())
	}
	waitForUsers(100)
	copyPath := filepath.Join(dir, "sub", "backup.db")
	if err := os.Mkdir(filepath.Dir(copyPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyPath, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.BackupFile(copyPath); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatal(writeErr)
	}

	fromBuf := filepath.Join(dir, "from-writer.db")
	if err := os.WriteFile(fromBuf, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fromBuf, copyPath} {
		c := mustOpen(t, path, Options{})
		err := c.View(bg, func(tx provision.ReadTx) error {
			users, _ := tx.UserCount()
			g, err := tx.Group(groupID)
			if err != nil {
				return err
			}
			if users == 0 || users != len(g.Members) {
				return fmt.Errorf("copy has %d users and %d members", users, len(g.Members))
			}
			scanned := 0
			if err := tx.ScanUsers(0, func(provision.User) bool { scanned++; return true }); err != nil {
				return err
			}
			if scanned != users {
				return fmt.Errorf("copy: scanned %d users, count says %d", scanned, users)
			}
			for _, id := range g.Members {
				if ids, _ := tx.GroupIDsOfUser(id); len(ids) != 1 {
					return fmt.Errorf("copy: member %s has groups %v", id, ids)
				}
			}
			return nil
		})
		c.Close()
		if err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}

	fi, err := os.Stat(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("BackupFile mode = %o, want 600", mode)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(copyPath), ".*tmp*"))
	if len(left) != 0 {
		t.Errorf("BackupFile left temporary files: %v", left)
	}
}

func TestBackupFileFailureLeavesTarget(t *testing.T) {
	s := openTemp(t, Options{NoSync: true})
	defer s.Close()
	if err := s.BackupFile(filepath.Join(t.TempDir(), "missing-dir", "b.db")); err == nil {
		t.Error("BackupFile into a missing directory succeeded")
	}
}

func TestAuditKeyOrder(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, -1),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := auditKey(times[i-1], 5), auditKey(times[i], 0)
		if bytes.Compare(a, b) >= 0 && unixNano(times[i-1]) != unixNano(times[i]) {
			t.Errorf("key of %v does not sort before key of %v", times[i-1], times[i])
		}
	}
}

// moveMembership moves the membership index entry of user 2 in group g to user 1,
// who is not a member: the index has as many entries as the group's member list.
func moveMembership(tx *bolt.Tx) error {
	if err := tx.Bucket(bucketMembers).Delete(memberKey("u-000002", "g")); err != nil {
		return err
	}
	return tx.Bucket(bucketMembers).Put(memberKey("u-000001", "g"), empty)
}

func TestVerify(t *testing.T) {
	seed := func(t *testing.T) *Bolt {
		s := openTemp(t, Options{NoSync: true})
		err := s.Update(bg, func(tx provision.Tx) error {
			for n := 0; n < 3; n++ {
				u := testUser(n)
				u.ExternalID = "ext"
				u.Panther.ID = fmt.Sprintf("p-%d", n)
				if err := tx.PutUser(u); err != nil {
					return err
				}
			}
			if err := tx.PutIntent(provision.Intent{UserID: "u-000001"}); err != nil {
				return err
			}
			return tx.PutGroup(provision.Group{ID: "g", DisplayName: "G", ExternalID: "gx", Members: []string{"u-000000", "u-000002"}})
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(bg); err != nil {
			t.Fatalf("Verify on a sound store: %v", err)
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		damage func(tx *bolt.Tx) error
		want   string
	}{
		{"userName entry lost", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUserName).Delete([]byte("user1@example.com"))
		}, `userName "user1@example.com" not indexed`},
		{"stale email entry", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUserEmail).Put([]byte("old@example.com"), packID(nil, "u-000001"))
		}, `email index: "old@example.com" points to record "u-000001"`},
		{"entry for a missing user", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUserPantherID).Put(packID(nil, "p-9"), packID(nil, "u-000009"))
		}, "missing record"},
		{"unpacked id in an index", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUserName).Put([]byte("user1@example.com"), []byte("u-000001"))
		}, `userName index: "user1@example.com": malformed index entry`},
		{"stale externalId pair", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUserExternalID).Put(pairKey("other", "u-000001"), empty)
		}, "stale entry"},
		{"membership entry without member", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMembers).Put(memberKey("u-000001", "g"), empty)
		}, "membership index has 3 entries, group member lists 2"},
		{"membership entry lost", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMembers).Delete(memberKey("u-000002", "g"))
		}, `member "u-000002" missing from the membership index`},
		// As many entries as memberships, but not the same ones.
		{"membership entry moved to a non-member", moveMembership, `group "g" does not list member "u-000001"`},
		{"membership entry moved away from a member", moveMembership, `member "u-000002" missing from the membership index`},
		{"userName entry pointing to another user", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUserName).Put([]byte("user2@example.com"), packID(nil, "u-000001"))
		}, `record "u-000002": userName "user2@example.com" not indexed to it`},
		{"externalId entry moved to another user", func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketUserExternalID).Delete(pairKey("ext", "u-000002")); err != nil {
				return err
			}
			return tx.Bucket(bucketUserExternalID).Put(pairKey("ext2", "u-000001"), empty)
		}, `user "u-000002": externalId "ext" not indexed`},
		{"redundant email entry", func(tx *bolt.Tx) error {
			// user1's email is its userName: the index leaves it out.
			return tx.Bucket(bucketUserEmail).Put([]byte("user1@example.com"), packID(nil, "u-000001"))
		}, `email index: "user1@example.com" points to record "u-000001"`},
		{"malformed membership key", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMembers).Put([]byte("u-000001"), empty)
		}, "malformed membership key"},
		{"group header disagrees", func(tx *bolt.Tx) error {
			g := tx.Bucket(bucketGroups)
			data, release, err := plain(g.Get([]byte("g")))
			if err != nil {
				return err
			}
			defer release()
			v, err := encodeGroupJSON(provision.GroupHeader{DisplayName: "Other", ExternalID: "gx"}, data)
			if err != nil {
				return err
			}
			return g.Put([]byte("g"), v)
		}, `group "g": header`},
		{"group externalId lost", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketGroupExtID).Delete(pairKey("gx", "g"))
		}, `externalId "gx" not indexed`},
		{"counter off", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyCountIntents, u64(5))
		}, "counter count/intents = 5, records 1"},
		{"invite record under another key", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketInvites).Put([]byte("someone@example.com"), []byte(`{"email":"other@example.com","at":"2026-01-01T00:00:00Z","last":"2026-01-01T00:00:00Z"}`))
		}, `invite record under key "someone@example.com" is for "other@example.com"`},
		{"invite record that does not decode", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketInvites).Put([]byte("someone@example.com"), []byte(`{"email":`))
		}, `decode invite of "someone@example.com"`},
		{"invites bucket missing", func(tx *bolt.Tx) error {
			return tx.DeleteBucket(bucketInvites)
		}, `bucket "invites" is missing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := seed(t)
			defer s.Close()
			if err := s.db.Update(tc.damage); err != nil {
				t.Fatal(err)
			}
			err := s.Verify(bg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify = %v, want a problem mentioning %q", err, tc.want)
			}
		})
	}
}

// TestScanSkipsWithoutDecoding: records before the offset are stepped over, not
// decoded, so an undecodable one there does not matter (and costs nothing).
func TestScanSkipsWithoutDecoding(t *testing.T) {
	s := openTemp(t, Options{NoSync: true})
	defer s.Close()
	err := s.Update(bg, func(tx provision.Tx) error {
		for n := 0; n < 5; n++ {
			if err := tx.PutUser(testUser(n)); err != nil {
				return err
			}
			g := provision.Group{ID: fmt.Sprintf("g-%d", n), DisplayName: fmt.Sprint(n)}
			if err := tx.PutGroup(g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketUsers).Put([]byte("u-000001"), []byte("not json")); err != nil {
			return err
		}
		return tx.Bucket(bucketGroups).Put([]byte("g-1"), []byte("not json"))
	}); err != nil {
		t.Fatal(err)
	}
	_ = s.View(bg, func(tx provision.ReadTx) error {
		var ids []string
		if err := tx.ScanUsers(2, func(u provision.User) bool { ids = append(ids, u.ID); return true }); err != nil {
			t.Errorf("ScanUsers(2) decoded a skipped record: %v", err)
		}
		if len(ids) != 3 || ids[0] != "u-000002" {
			t.Errorf("ScanUsers(2) = %v", ids)
		}
		if err := tx.ScanGroups(2, func(provision.Group) bool { return true }); err != nil {
			t.Errorf("ScanGroups(2) decoded a skipped record: %v", err)
		}
		if h := s.Health(); h.DamagedRecords != 0 {
			t.Errorf("records stepped over were decoded: %+v", h)
		}
		// From the start, the bad record is reached, skipped and reported with its key,
		// once however often it is met.
		for range 2 {
			ids = nil
			err := tx.ScanUsers(0, func(u provision.User) bool { ids = append(ids, u.ID); return true })
			if err != nil || len(ids) != 4 || ids[1] != "u-000002" {
				t.Errorf("ScanUsers(0) = %v, %v; want the 4 good records", ids, err)
			}
		}
		if h := s.Health(); h.DamagedRecords != 1 || !strings.Contains(h.LastDamagedRecord, `"u-000001"`) {
			t.Errorf("health after meeting the bad record: %+v", h)
		}
		// Read alone, it is an ErrDamaged error.
		if _, err := tx.User("u-000001"); !errors.Is(err, ErrDamaged) {
			t.Errorf("User(u-000001) = %v, want ErrDamaged", err)
		}
		return nil
	})
}
