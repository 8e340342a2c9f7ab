package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

// goldenHeadedRecord is goldenUserJSON as schema 3 stores it: the state header (tag,
// length and userName, flags: active and linked) and then the frame.
const goldenHeadedRecord = "01" + "0f" + "616461406578616d706c652e636f6d" + "03" + goldenUserFrame

func TestUserHeaderIsStable(t *testing.T) {
	rec, err := hex.DecodeString(goldenHeadedRecord)
	if err != nil {
		t.Fatal(err)
	}
	st, frame, err := splitUserHeader(rec)
	if err != nil {
		t.Fatalf("a record written by an earlier build no longer parses: %v", err)
	}
	if st != (userState{userName: "ada@example.com", active: true, linked: true}) || hex.EncodeToString(frame) != goldenUserFrame {
		t.Fatalf("parsed %+v and a frame of %d bytes", st, len(frame))
	}
	got, release, err := plain(rec)
	if err != nil || string(got) != goldenUserJSON {
		t.Fatalf("plain = %q, %v", got, err)
	}
	release()
	// What this build writes for the same record has the same header.
	again, err := encodeUser(st, []byte(goldenUserJSON))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rec) - len(frame); !bytes.Equal(again[:n], rec[:n]) {
		t.Errorf("header written as %x, want %x", again[:n], rec[:n])
	}
}

// A damaged header is an error from every reader, never a panic or a wrong state.
func TestCorruptUserHeader(t *testing.T) {
	good, _ := hex.DecodeString(goldenHeadedRecord)
	for name, v := range map[string][]byte{
		"tag only":               {userHeaderTag},
		"userName overruns":      {userHeaderTag, 0x40, 'a'},
		"length overflows":       {userHeaderTag, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"no flags":               {userHeaderTag, 0x01, 'a'},
		"unknown flag":           {userHeaderTag, 0x01, 'a', 0x04},
		"length not shortest":    {userHeaderTag, 0x81, 0x00, 'a', 0x01},
		"header without a frame": good[:1+1+15+1],
		"frame cut short":        good[:len(good)-10],
	} {
		t.Run(name, func(t *testing.T) {
			s := mustOpen(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
			defer s.Close()
			const id = "018f0000-0000-7000-8000-000000000042"
			if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketUsers).Put([]byte(id), v) }); err != nil {
				t.Fatal(err)
			}
			err := s.View(bg, func(tx provision.ReadTx) error {
				_, err := tx.User(id)
				return err
			})
			if err == nil {
				t.Error("User read a damaged record without error")
			}
			if name != "header without a frame" && name != "frame cut short" {
				// The header alone is damaged: UserState, which reads only it, must say so.
				err = s.View(bg, func(tx provision.ReadTx) error {
					_, err := tx.UserState(id)
					return err
				})
				if err == nil {
					t.Error("UserState read a damaged header without error")
				}
			}
		})
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
		st, frame, err := splitUserHeader(v)
		if err != nil || st != (userState{userName: u.UserName, active: true}) {
			t.Errorf("stored header %+v, %v", st, err)
		}
		if !bytes.HasPrefix(frame, zstdMagic) || len(v) >= len(plainJSON) {
			t.Errorf("stored %d bytes (%x...), JSON is %d: not compressed", len(v), v[:8], len(plainJSON))
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
		v := tx.Bucket(bucketUsers).Get([]byte(u.ID))
		_, frame, _ := splitUserHeader(v)
		bad := append(bytes.Clone(v[:len(v)-len(frame)]), zstdMagic...)
		return tx.Bucket(bucketUsers).Put([]byte(u.ID), append(bad, 0xde, 0xad, 0xbe, 0xef))
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

// Files of schema 1 (plain JSON users) and 2 (bare compressed frames) are migrated at
// open: every user rewritten with its header, in transactions of a thousand that reuse
// the pages freed before them (the file does not grow), and everything reads as before.
// A migration cut short (the current schema already, the pending mark still set, users
// of every form) is finished by the next open.
func TestMigrationRewritesUsers(t *testing.T) {
	for _, from := range []string{"schema 1", "schema 2", "interrupted"} {
		t.Run(from, func(t *testing.T) { testMigration(t, from) })
	}
}

func testMigration(t *testing.T, from string) {
	path := filepath.Join(t.TempDir(), "old.db")
	s := mustOpen(t, path, Options{NoSync: true})
	const n = 2_345
	var want []provision.User
	err := s.Update(bg, func(tx provision.Tx) error {
		for i := range n {
			u := provision.User{ID: fmt.Sprintf("018f0000-0000-7000-8000-%012d", i), UserName: fmt.Sprintf("u%d@example.com", i),
				Email: fmt.Sprintf("u%d@example.com", i), ExternalID: fmt.Sprintf("ext%d", i), Active: i%2 == 0,
				Created: time.Unix(1700000000, 0).UTC(), LastModified: time.Unix(1700000000, 0).UTC(), Version: 1,
				Attributes: map[string]any{"title": fmt.Sprint("T", i)}}
			if i%3 == 0 {
				u.Panther = provision.PantherLink{ID: fmt.Sprintf("p-%d", i), Email: u.Email}
			}
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
	// Store the users as the old schema did: plain JSON (1) or a bare frame (2). Cut
	// short: the current schema and the pending mark, with a third of the users in
	// each form.
	c, err := recordCodecs()
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		for i, u := range want {
			data, _ := json.Marshal(u)
			switch {
			case from == "schema 1" || (from == "interrupted" && i%3 == 1):
			case from == "schema 2" || (from == "interrupted" && i%3 == 2):
				data = c.enc.EncodeAll(data, nil)
			default:
				continue // headed already
			}
			if err := b.Put([]byte(u.ID), data); err != nil {
				return err
			}
		}
		switch from {
		case "interrupted":
			if err := tx.Bucket(bucketMeta).Put(keyRewriteUsers, []byte{1}); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keySchema, u64(SchemaVersion))
		case "schema 1":
			return tx.Bucket(bucketMeta).Put(keySchema, u64(1))
		default:
			return tx.Bucket(bucketMeta).Put(keySchema, u64(2))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	s = reopenMigrated(t, s, path)
	defer s.Close()
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta).Get(keyRewriteUsers) != nil {
			t.Error("the pending mark is still set")
		}
		left := 0
		_ = tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
			if _, frame, err := splitUserHeader(v); err != nil || !bytes.HasPrefix(frame, zstdMagic) {
				left++
			}
			return nil
		})
		if left > 0 {
			t.Errorf("%d users left without a header or uncompressed", left)
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
			st, err := tx.UserState(u.ID)
			if err != nil {
				return err
			}
			if st != (provision.UserState{ID: u.ID, UserName: u.UserName, Active: u.Active, Linked: u.Panther.ID != ""}) {
				return fmt.Errorf("user %s state after migration: %+v", u.ID, st)
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

// reopenMigrated closes s and opens its file again, which runs the migration, and
// checks that the file did not grow and is now of the current schema.
func reopenMigrated(t *testing.T, s *Bolt, path string) *Bolt {
	t.Helper()
	s.Close()
	before := fileSize(t, path)
	s = mustOpen(t, path, Options{})
	if after := fileSize(t, path); after > before {
		t.Errorf("file grew from %d to %d bytes in the migration", before, after)
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		if v, _ := readU64(tx.Bucket(bucketMeta).Get(keySchema)); v != SchemaVersion {
			t.Errorf("schema %d after migration", v)
		}
		return nil
	})
	return s
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Verify compares each user's header with its record.
func TestVerifyChecksUserHeaders(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	defer s.Close()
	u := provision.User{ID: "018f0000-0000-7000-8000-000000000001", UserName: "ada@example.com", Active: true}
	if err := s.Update(bg, func(tx provision.Tx) error { return tx.PutUser(u) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(bg); err != nil {
		t.Fatalf("verify a sound store: %v", err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		data, _ := json.Marshal(u)
		rec, err := encodeUser(userState{userName: u.UserName, active: false}, data)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketUsers).Put([]byte(u.ID), rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(bg); err == nil || !strings.Contains(err.Error(), "header") {
		t.Errorf("verify a header that says inactive over an active record: %v", err)
	}
}

// FuzzUserRecord: no stored value makes a reader panic, and a header that parses
// is written back the same way. Seeds run in every `go test`; `-fuzz FuzzUserRecord`
// explores.
func FuzzUserRecord(f *testing.F) {
	good, _ := hex.DecodeString(goldenHeadedRecord)
	frame, _ := hex.DecodeString(goldenUserFrame)
	for _, seed := range [][]byte{good, frame, []byte(goldenUserJSON), {userHeaderTag}, {userHeaderTag, 0x00, 0x00}, good[:20]} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if st, rest, err := splitUserHeader(v); err == nil {
			again, err := encodeUser(st, nil)
			if err != nil {
				t.Fatal(err)
			}
			head := v[:len(v)-len(rest)]
			if !bytes.HasPrefix(again, head) {
				t.Fatalf("header %x parsed as %+v, written back as %x", head, st, again[:len(head)])
			}
		}
		if data, release, err := plain(v); err == nil {
			_, _ = stateOf(data)
			release()
		}
	})
}

// uvarintLen, which the header checks use to refuse a length not in its shortest form,
// is the length binary.AppendUvarint writes, at every width's edges.
func TestUvarintLen(t *testing.T) {
	ns := []uint64{0, math.MaxUint64}
	for s := 7; s < 64; s += 7 {
		ns = append(ns, 1<<s-1, 1<<s, 1<<s+1)
	}
	for _, n := range ns {
		if got, want := uvarintLen(n), len(binary.AppendUvarint(nil, n)); got != want {
			t.Errorf("uvarintLen(%d) = %d, want %d", n, got, want)
		}
	}
}
