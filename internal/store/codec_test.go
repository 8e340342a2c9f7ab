package store

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

const goldenUserJSON = `{"id":"018f0000-0000-7000-8000-000000000042","userName":"ada@example.com","externalId":"00u42","active":true,"email":"ada@example.com","attributes":{"displayName":"Ada Lovelace","name":{"familyName":"Lovelace","givenName":"Ada"}},"created":"2024-05-01T00:00:00Z","lastModified":"2024-05-01T00:00:00Z","version":3,"panther":{"id":"p-42","email":"ada@example.com","givenName":"Ada","familyName":"Lovelace","roleId":"r-1"}}`

// goldenUserFrame is goldenUserJSON as this store first wrote it. Files in the field
// hold frames like it: if this test fails, the dictionary or the decoder changed in a
// way that makes those files unreadable.
const goldenUserFrame = "28b52ffd410001a400050400a2040f17904109d68ea517930832320676d3b08924830e290ca3036b99e97258453077b8789f6542a68c44542029824ce810f099f2f0ff4f7fa2fffd3f8e391700a45ba06806706e071b43c06c1e282e83c09fe12a22690d7cdb01b03d90dcca14b0380c3580fd553f096102081e082116e52047385fdd68202427f378703110"

func TestUserDictIsStable(t *testing.T) {
	frame, err := hex.DecodeString(goldenUserFrame)
	if err != nil {
		t.Fatal(err)
	}
	got, release, err := plain(frame)
	if err != nil {
		t.Fatalf("a frame written by an earlier build no longer decodes: %v", err)
	}
	if string(got) != goldenUserJSON {
		t.Fatalf("decoded\n%s\nwant\n%s", got, goldenUserJSON)
	}
	release()
	if len(frame) > len(goldenUserJSON)/2 {
		t.Errorf("frame of %d bytes for %d bytes of JSON: the dictionary is not helping", len(frame), len(goldenUserJSON))
	}
}

// User records are stored compressed and read back equal; a corrupt frame is an
// error, not a panic or a wrong record.
func TestUserRecordsAreCompressed(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	defer s.Close()
	u := provision.User{ID: "018f0000-0000-7000-8000-000000000001", UserName: "ada@example.com", Email: "ada@example.com", Active: true,
		Attributes: map[string]any{"displayName": "Ada Lovelace", "name": map[string]any{"givenName": "Ada", "familyName": "Lovelace"}}}
	if err := s.Update(bg, func(tx provision.Tx) error { return tx.PutUser(u) }); err != nil {
		t.Fatal(err)
	}
	plainJSON, _ := json.Marshal(u)
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUsers).Get([]byte(u.ID))
		if !bytes.HasPrefix(v, zstdMagic) || len(v) >= len(plainJSON) {
			t.Errorf("stored %d bytes (%x...), JSON is %d: not compressed", len(v), v[:4], len(plainJSON))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got provision.User
	var st provision.UserState
	err = s.View(bg, func(tx provision.ReadTx) error {
		var err error
		if got, err = tx.User(u.ID); err != nil {
			return err
		}
		st, err = tx.UserState(u.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.UserName != u.UserName || fmt.Sprint(got.Attributes) != fmt.Sprint(u.Attributes) || st.UserName != u.UserName || !st.Active {
		t.Errorf("read back %+v / %+v", got, st)
	}

	// Corrupt the frame behind the store's back.
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).Put([]byte(u.ID), append(bytes.Clone(zstdMagic), 0xde, 0xad, 0xbe, 0xef))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(bg, func(tx provision.ReadTx) error {
		_, err1 := tx.User(u.ID)
		_, err2 := tx.UserState(u.ID)
		return errors.Join(err1, err2)
	})
	if err == nil || !strings.Contains(err.Error(), u.ID) {
		t.Errorf("a corrupt record read as %v", err)
	}
}

// A schema 1 file (plain JSON users) is migrated at open: every user compressed, in
// transactions of a thousand that reuse the pages freed before them (the file does not
// grow), and everything reads as before. A migration cut short (schema 2 already, the
// pending mark still set, some users plain) is finished by the next open.
func TestMigrationCompressesUsers(t *testing.T) {
	for _, interrupted := range []bool{false, true} {
		t.Run(fmt.Sprintf("interrupted=%v", interrupted), func(t *testing.T) { testMigration(t, interrupted) })
	}
}

func testMigration(t *testing.T, interrupted bool) {
	path := filepath.Join(t.TempDir(), "v1.db")
	s := mustOpen(t, path, Options{NoSync: true})
	const n = 2_345
	var want []provision.User
	err := s.Update(bg, func(tx provision.Tx) error {
		for i := range n {
			u := provision.User{ID: fmt.Sprintf("018f0000-0000-7000-8000-%012d", i), UserName: fmt.Sprintf("u%d@example.com", i),
				Email: fmt.Sprintf("u%d@example.com", i), ExternalID: fmt.Sprintf("ext%d", i), Active: i%2 == 0,
				Created: time.Unix(1700000000, 0).UTC(), LastModified: time.Unix(1700000000, 0).UTC(), Version: 1,
				Attributes: map[string]any{"title": fmt.Sprint("T", i)}}
			want = append(want, u)
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Make it a schema 1 file: users as plain JSON. Cut short: schema 2 and the pending
	// mark, with every other user compressed already.
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		for i, u := range want {
			if interrupted && i%2 == 1 {
				continue
			}
			data, _ := json.Marshal(u)
			if err := b.Put([]byte(u.ID), data); err != nil {
				return err
			}
		}
		if interrupted {
			if err := tx.Bucket(bucketMeta).Put(keyCompressing, []byte{1}); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keySchema, u64(2))
		}
		return tx.Bucket(bucketMeta).Put(keySchema, u64(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	before := fileSize(t, path)

	s = mustOpen(t, path, Options{})
	defer s.Close()
	if after := fileSize(t, path); after > before {
		t.Errorf("file grew from %d to %d bytes in the migration", before, after)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if v, _ := readU64(tx.Bucket(bucketMeta).Get(keySchema)); v != SchemaVersion {
			t.Errorf("schema %d after migration", v)
		}
		if tx.Bucket(bucketMeta).Get(keyCompressing) != nil {
			t.Error("the pending mark is still set")
		}
		plainLeft := 0
		_ = tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
			if !bytes.HasPrefix(v, zstdMagic) {
				plainLeft++
			}
			return nil
		})
		if plainLeft > 0 {
			t.Errorf("%d users left uncompressed", plainLeft)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(bg, func(tx provision.ReadTx) error {
		if c, _ := tx.UserCount(); c != n {
			t.Errorf("count %d", c)
		}
		for _, u := range want {
			got, err := tx.UserByUserName(strings.ToUpper(u.UserName))
			if err != nil {
				return err
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(u)
			if !bytes.Equal(a, b) {
				return fmt.Errorf("user %s after migration:\n%s\nwant\n%s", u.ID, a, b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(bg); err != nil {
		t.Errorf("verify after migration: %v", err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
