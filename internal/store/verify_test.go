package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// checkUser picks out of a record what a read decodes from it, whatever the values
// hold (escapes, HTML characters, invalid UTF-8, an attribute named like a field),
// from a checksummed frame and from a record without a checksum alike.
func TestCheckUserAsRead(t *testing.T) {
	users := []provision.User{
		{ID: "u1", UserName: "ada@example.com", Email: "ada@example.com", Active: true, ExternalID: "00u1",
			Panther: provision.PantherLink{ID: "p-1", Email: "ada@example.com", RoleID: "r"}},
		{ID: "u2", UserName: `quote"back\slash`, Email: "<b>&amp;</b>@example.com", ExternalID: "line\u2028sep\ttab",
			Attributes: map[string]any{
				"panther": map[string]any{"id": "not this one"}, "email": "nor this", "id": "x", "userName": "y",
				"emails": []any{map[string]any{"value": "e@example.com", "primary": true}},
			}},
		{ID: "u3", UserName: "bad\xffutf8 and \U0001F600", Email: "", Active: false},
		{ID: "0190c2a0-0000-7000-8000-000000000001", UserName: "Mixed.Case@Example.com", Email: "other@example.com",
			Panther: provision.PantherLink{ID: "0190c2a0-0000-7000-8000-0000000000aa"}},
	}
	noCRC, err := zstd.NewWriter(nil, zstd.WithEncoderDictRaw(userDictID, []byte(userDict)), zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		data, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		var read provision.User // what a read gets
		if err := json.Unmarshal(data, &read); err != nil {
			t.Fatal(err)
		}
		want := userFacts{userName: read.UserName, email: read.Email, pantherID: read.Panther.ID, externalID: read.ExternalID}
		st := userState{userName: read.UserName, active: read.Active, linked: read.Panther.ID != ""}
		current, err := encodeUser(st, data)
		if err != nil {
			t.Fatal(err)
		}
		header, _, _ := splitUserHeader(current)
		headerBytes := current[:len(current)-len(userFrame(current))]
		legacy := append(slices.Clone(headerBytes), noCRC.EncodeAll(data, nil)...)
		for _, c := range []struct {
			name     string
			v        []byte
			checksum bool
		}{{"checksummed frame", current, true}, {"frame without a checksum", legacy, false}, {"plain JSON", data, false}} {
			if got := checksummed(userFrame(c.v)); got != c.checksum {
				t.Errorf("%s: checksummed = %v", c.name, got)
			}
			var got userFacts
			r := checkUser([]byte(read.ID), c.v, &got)
			if r != (recordCheck{}) || got != want {
				t.Errorf("%s of %s: checkUser = %+v, %+v, want %+v (header %+v)", c.name, u.ID, r, got, want, header)
			}
			if r := checkUser([]byte("other"), c.v, &got); r.otherID == nil || *r.otherID != read.ID {
				t.Errorf("%s of %s under another key: %+v", c.name, u.ID, r)
			}
		}
	}
}

// A record without a checksum is decoded as a read decodes it: one a read cannot
// decode is damaged, attributes that are no object included.
func TestCheckUserUndecodable(t *testing.T) {
	for _, v := range []string{
		`{"id":"u1","userName":"a","attributes":"not an object"}`,
		`{"id":"u1","userName":"a","attributes":[1]}`,
		`{"id":"u1","userName":"a","version":"one"}`,
		`{"id":"u1","userName":"a","created":"yesterday"}`,
		`{"id":"u1","userName":"a"`,
	} {
		var u provision.User
		if json.Unmarshal([]byte(v), &u) == nil {
			t.Fatalf("%s decodes as a user", v)
		}
		if r := checkUser([]byte("u1"), []byte(v), new(userFacts)); r.err == nil {
			t.Errorf("checkUser(%s) found no damage", v)
		}
	}
	if r := checkUser([]byte("u1"), []byte(`{"id":"u1","userName":"a","attributes":null}`), new(userFacts)); r.err != nil {
		t.Errorf("null attributes: %v", r.err)
	}
}

// parseUUID takes exactly what uuid.Parse takes and String writes back unchanged.
func FuzzParseUUID(f *testing.F) {
	for _, s := range []string{
		"0190c2a0-0000-7000-8000-000000000001", "0190C2A0-0000-7000-8000-000000000001",
		"{0190c2a0-0000-7000-8000-000000000001}", "urn:uuid:0190c2a0-0000-7000-8000-000000000001",
		"0190c2a000007000800000000000000001", "0190c2a0-0000-7000-8000-00000000000g", "0190c2a0+0000-7000-8000-000000000001",
		"u-000001", "", uuid.NewString(),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := uuid.Parse(s)
		want := err == nil && u.String() == s
		got, ok := parseUUID(s)
		gotb, okb := parseUUID([]byte(s))
		if ok != want || okb != want || (ok && (got != u || gotb != u)) {
			t.Errorf("parseUUID(%q) = %v, %v; uuid.Parse: %v, %v", s, got, ok, u, err)
		}
	})
}

// The check shares its work between cores in chunks: damage in the first and last
// record of a chunk and on either side of a boundary is found, and reported in key
// order, the same at every run.
func TestInspectAcrossChunks(t *testing.T) {
	s := openTemp(t, Options{NoSync: true})
	defer s.Close()
	const n = 3*chunkSize + 10
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
	}
	slices.Sort(ids)
	err := s.Update(bg, func(tx provision.Tx) error {
		for i, id := range ids {
			u := provision.User{ID: id, UserName: fmt.Sprintf("user%d@example.com", i), Email: fmt.Sprintf("user%d@example.com", i),
				ExternalID: fmt.Sprintf("ext%d", i), Active: true, Panther: provision.PantherLink{ID: uuid.NewString()}}
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return tx.PutGroup(provision.Group{ID: uuid.NewString(), DisplayName: "G", Members: ids[:chunkSize+2]})
	})
	if err != nil {
		t.Fatal(err)
	}
	damaged := []int{0, chunkSize - 1, chunkSize, 2*chunkSize - 1, n - 1}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		for _, i := range damaged {
			v := slices.Clone(b.Get([]byte(ids[i])))
			v[len(v)-6] ^= 0x55 // in the frame: its checksum fails
			if err := b.Put([]byte(ids[i]), v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, i := range damaged {
		want = append(want, ids[i])
	}
	var first Report
	for run := range 3 {
		rep, err := s.Inspect(bg)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Complete || rep.Users != n || len(rep.Problems) != 0 || rep.DamagedCount != len(damaged) {
			t.Fatalf("Inspect = %+v", rep)
		}
		for i, d := range rep.Damaged {
			if !strings.Contains(d, want[i]) {
				t.Errorf("damaged record %d reported: %s, want %s", i, d, want[i])
			}
		}
		if run == 0 {
			first = rep
		} else if !slices.Equal(rep.Damaged, first.Damaged) {
			t.Errorf("run %d reported %v, the first %v", run, rep.Damaged, first.Damaged)
		}
	}
}
