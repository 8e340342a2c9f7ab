package store

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// ScanUserIdentities gives each user as ScanUsers does, but with only the attributes
// a Panther identity comes from; DeriveIdentity finds the same identity in both,
// whatever form the attributes take, from a checksummed record, one without a
// checksum and a plain JSON one alike; a damaged record (a failing checksum, or a
// record without one that a read cannot decode) is skipped and reported.
func TestScanUserIdentities(t *testing.T) {
	s := openTemp(t, Options{NoSync: true})
	defer s.Close()
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 2, 3, 4, 5, time.UTC)
	users := []provision.User{
		{ID: "u1", UserName: "ada@example.com", Email: "ada@example.com", Active: true, ExternalID: "00u1",
			Attributes: map[string]any{
				"name":         map[string]any{"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
				"emails":       []any{map[string]any{"value": "ada@example.com", "primary": true, "type": "work"}},
				"displayName":  "Ada L.",
				"title":        "Countess",
				"phoneNumbers": []any{map[string]any{"value": "+44 1"}},
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "Maths"},
			},
			Panther: provision.PantherLink{ID: "p1", Email: "ada@example.com", GivenName: "Ada", FamilyName: "Lovelace", RoleID: "r1"},
			Created: at, LastModified: at.Add(time.Hour), Version: 3},
		{ID: "u2", UserName: "grace", Email: "grace@example.com", Active: false,
			Attributes: map[string]any{"displayName": "Grace Brewster \"Amazing\" Hopper <&>",
				"emails": []any{map[string]any{"value": "other@example.com"}, map[string]any{"value": "grace@example.com", "type": "work", "primary": "True"}}}},
		{ID: "u3", UserName: "alan.turing@example.com", Email: "alan.turing@example.com", Active: true},
		{ID: "u4", UserName: "odd@example.com", Email: "odd@example.com", Active: true,
			Attributes: map[string]any{"name": "not an object", "emails": "not a list", "displayName": 7.5,
				"panther": map[string]any{"id": "not the link"}, "id": "not the id"}},
		{ID: "u5", UserName: "émilie\u2028@exämple.com", Email: "émilie@exämple.com", Active: true,
			Attributes: map[string]any{"name": map[string]any{"givenName": "Émilie", "familyName": 12, "extra": []any{1, true, nil}},
				"emails": []any{"not an object", map[string]any{"value": " spaced@example.com ", "type": "WORK"}}}},
		{ID: "u6", UserName: "legacy@example.com", Email: "legacy@example.com", Active: true, ExternalID: "x6",
			Attributes: map[string]any{"name": map[string]any{"givenName": "Leg", "familyName": "Acy"}, "title": "kept out"},
			Panther:    provision.PantherLink{ID: "p6"}},
		{ID: "u7", UserName: "plain@example.com", Email: "plain@example.com", Active: true,
			Attributes: map[string]any{"displayName": "Plain Json", "nickName": "kept out"}},
		{ID: "u8", UserName: "damaged@example.com", Email: "damaged@example.com"},
	}
	if err := s.Update(ctx, func(tx provision.Tx) error {
		for _, u := range users {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// u6 as a frame without a checksum, u7 as plain JSON (both read with encoding/json),
	// u8 damaged (its checksum fails).
	noCRC, err := zstd.NewWriter(nil, zstd.WithEncoderDictRaw(userDictID, []byte(userDict)), zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		v := b.Get([]byte("u6"))
		frame := userFrame(v)
		data, release, err := plain(v)
		if err != nil {
			return err
		}
		legacy := append(slices.Clone(v[:len(v)-len(frame)]), noCRC.EncodeAll(data, nil)...)
		release()
		if err := b.Put([]byte("u6"), legacy); err != nil {
			return err
		}
		js, err := json.Marshal(users[6])
		if err != nil {
			return err
		}
		if err := b.Put([]byte("u7"), js); err != nil {
			return err
		}
		d := slices.Clone(b.Get([]byte("u8")))
		d[len(d)-6] ^= 0x55
		if err := b.Put([]byte("u8"), d); err != nil {
			return err
		}
		return b.Put([]byte("u9"), []byte(`{"id":"u9","userName":"nine@example.com","active":true,"version":"one"}`))
	}); err != nil {
		t.Fatal(err)
	}
	if checksummed(userFrame(users6(t, s))) {
		t.Fatal("u6 still has a checksum")
	}
	var full, light []provision.User
	if err := s.View(ctx, func(tx provision.ReadTx) error {
		if err := tx.ScanUsers(0, func(u provision.User) bool { full = append(full, u); return true }); err != nil {
			return err
		}
		return tx.ScanUserIdentities(func(u provision.User) bool { light = append(light, u); return true })
	}); err != nil {
		t.Fatal(err)
	}
	if len(full) != len(users)-1 || len(light) != len(users)-1 {
		t.Fatalf("%d and %d users scanned, want %d (the damaged ones skipped)", len(full), len(light), len(users)-1)
	}
	if h := s.Health(); h.DamagedRecords != 2 {
		t.Errorf("damaged records reported: %+v", h)
	}
	for i := range full {
		f, l := full[i], light[i]
		for k := range l.Attributes {
			if k != "name" && k != "displayName" && k != "emails" {
				t.Errorf("%s: %s decoded", l.ID, k)
			}
		}
		for _, k := range []string{"name", "displayName", "emails"} {
			if !reflect.DeepEqual(f.Attributes[k], l.Attributes[k]) {
				t.Errorf("%s: %s is %#v in the record, %#v in the identity scan", f.ID, k, f.Attributes[k], l.Attributes[k])
			}
		}
		fa, la := f.Attributes, l.Attributes
		f.Attributes, l.Attributes = nil, nil
		if !reflect.DeepEqual(f, l) {
			t.Errorf("user %s: scanned %+v, identity scan %+v", f.ID, f, l)
		}
		fi, ferr := provision.DeriveIdentity(f.UserName, fa)
		li, lerr := provision.DeriveIdentity(l.UserName, la)
		if fi != li || (ferr == nil) != (lerr == nil) {
			t.Errorf("user %s: identity %+v (%v) from the record, %+v (%v) from the identity scan", f.ID, fi, ferr, li, lerr)
		}
	}
}

// users6 returns the stored value of user u6.
func users6(t *testing.T, s *Bolt) []byte {
	t.Helper()
	var v []byte
	_ = s.db.View(func(tx *bolt.Tx) error {
		v = slices.Clone(tx.Bucket(bucketUsers).Get([]byte("u6")))
		return nil
	})
	return v
}

// decodeIdentity reads a checksummed record in place, in the pooled buffer it was
// decompressed into: nothing it returns may point into that buffer, nor into the
// record it was given (a page of the store's map), both reused once it returns.
func TestDecodeIdentityKeepsNoneOfItsBuffers(t *testing.T) {
	s := openTemp(t, Options{NoSync: true})
	defer s.Close()
	at := time.Date(2026, 5, 1, 2, 3, 4, 5, time.UTC)
	u := provision.User{ID: "u1", UserName: "ada@example.com", Email: "ada@example.com", Active: true, ExternalID: "00u1",
		Attributes: map[string]any{
			"name":        map[string]any{"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
			"emails":      []any{map[string]any{"value": "ada@example.com", "primary": true, "type": "work"}},
			"displayName": "Ada L.",
			"title":       "Countess",
		},
		Panther: provision.PantherLink{ID: "p1", Email: "ada@example.com", GivenName: "Ada", FamilyName: "Lovelace", RoleID: "r1"},
		Created: at, LastModified: at.Add(time.Hour), Version: 3}
	if err := s.Update(context.Background(), func(tx provision.Tx) error { return tx.PutUser(u) }); err != nil {
		t.Fatal(err)
	}
	var v []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		v = slices.Clone(tx.Bucket(bucketUsers).Get([]byte("u1")))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !checksummed(userFrame(v)) {
		t.Fatal("the record has no checksum: the test would not reach the gjson path")
	}
	got, err := decodeIdentity([]byte("u1"), v)
	if err != nil {
		t.Fatal(err)
	}
	before, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	// Scribble over the record and over every buffer the pool hands out (the one the
	// record was decompressed into among them).
	for i := range v {
		v[i] = 'X'
	}
	var bufs []*[]byte
	for range 8 {
		b := plainBufs.Get().(*[]byte)
		full := (*b)[:cap(*b)]
		for i := range full {
			full[i] = 'X'
		}
		bufs = append(bufs, b)
	}
	for _, b := range bufs {
		plainBufs.Put(b)
	}
	after, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("the decoded user changed with its buffers:\nbefore %s\nafter  %s", before, after)
	}
	if !strings.Contains(string(before), `"givenName":"Ada"`) || !strings.Contains(string(before), `"id":"p1"`) {
		t.Errorf("decoded user lacks its attributes or link: %s", before)
	}
}
