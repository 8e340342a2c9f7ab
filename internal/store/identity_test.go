package store

import (
	"context"
	"encoding/json"
	"fmt"
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
	type scanned struct {
		u   provision.User
		src provision.IdentitySource
	}
	var full []provision.User
	var light []scanned
	if err := s.View(ctx, func(tx provision.ReadTx) error {
		if err := tx.ScanUsers(0, func(u provision.User) bool { full = append(full, u); return true }); err != nil {
			return err
		}
		return tx.ScanUserIdentities(func(u provision.User, src provision.IdentitySource) bool {
			light = append(light, scanned{u, src})
			return true
		})
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
		if l.u.Attributes != nil {
			t.Errorf("%s: attributes decoded: %v", l.u.ID, l.u.Attributes)
		}
		if want := provision.IdentitySourceOf(f.Attributes); l.src != want {
			t.Errorf("%s: identity source %+v, want %+v (from the record's attributes)", f.ID, l.src, want)
		}
		fa := f.Attributes
		f.Attributes = nil
		if !reflect.DeepEqual(f, l.u) {
			t.Errorf("user %s: scanned %+v, identity scan %+v", f.ID, f, l.u)
		}
		fi, ferr := provision.DeriveIdentity(f.UserName, fa)
		li, lerr := provision.DeriveIdentityFrom(l.u.UserName, l.src)
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
	got, src, err := decodeIdentity([]byte("u1"), v)
	if err != nil {
		t.Fatal(err)
	}
	before, err := json.Marshal([]any{got, src})
	if err != nil {
		t.Fatal(err)
	}
	// Scribble over the record and over every buffer the pool hands out (the one the
	// record was decompressed into among them).
	for i := range v {
		v[i] = 'X'
	}
	var bufs []*plainBuf
	for range 8 {
		b := plainBufs.Get().(*plainBuf)
		full := b.b[:cap(b.b)]
		for i := range full {
			full[i] = 'X'
		}
		bufs = append(bufs, b)
	}
	for _, b := range bufs {
		plainBufs.Put(b)
	}
	after, err := json.Marshal([]any{got, src})
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("the decoded user changed with its buffers:\nbefore %s\nafter  %s", before, after)
	}
	if !strings.Contains(string(before), `"GivenName":"Ada"`) || !strings.Contains(string(before), `"DisplayName":"Ada L."`) ||
		!strings.Contains(string(before), `"PrimaryEmail":"ada@example.com"`) || !strings.Contains(string(before), `"id":"p1"`) {
		t.Errorf("decoded user lacks its attributes or link: %s", before)
	}
}

// The identity scan reads a checksummed record's attributes with gjson; what it hands
// over is what provision.IdentitySourceOf reads of the attributes encoding/json
// decodes from the same JSON (ScanUsers), whatever JSON the attributes hold: values
// of the wrong type, escapes, repeated keys (the last wins in encoding/json),
// primaries and work emails in any place.
func TestScanUserIdentitiesReadsAsEncodingJSON(t *testing.T) {
	cases := []struct{ name, userName, attrs string }{
		{"none", "ada@example.com", `{}`},
		{"null attributes", "ada@example.com", `null`},
		{"primary not first", "u", `{"emails":[{"value":"h@x.io","type":"home"},{"value":"w@x.io","type":"work"},{"type":"other","primary":true,"value":"p@x.io"}]}`},
		{"two primaries", "u", `{"emails":[{"value":"p1@x.io","primary":true},{"value":"p2@x.io","primary":true}]}`},
		{"primary as text", "u", `{"emails":[{"value":"y@x.io","primary":"yes"},{"value":"one@x.io","primary":1},{"value":"t@x.io","primary":"TRUE"}]}`},
		{"primary false, null, escaped", "u", `{"emails":[{"value":"f@x.io","primary":false},{"value":"n@x.io","primary":null},{"value":"e@x.io","primary":"tru\u0065"}]}`},
		{"empty primary", "u", `{"emails":[{"value":"  ","primary":true},{"value":"w@x.io","type":"WORK"}]}`},
		{"work types", "u", `{"emails":[{"value":"o@x.io","type":"work "},{"value":"w1@x.io","type":"Work"},{"value":"w2@x.io","type":"work"}]}`},
		{"type not text", "u", `{"emails":[{"value":"f@x.io"},{"value":"w@x.io","type":["work"]},{"value":"v@x.io","type":{"work":1}}]}`},
		{"odd entries", "u", `{"emails":["w@x.io",null,3,[{"value":"nested@x.io"}],{"value":7,"primary":true},{"value":{"value":"deep@x.io"}},{"primary":true},{"value":"\t first@x.io \n","type":"home"}]}`},
		{"emails not a list", "u@x.io", `{"emails":{"value":"obj@x.io","primary":true}}`},
		{"emails null", "u@x.io", `{"emails":null,"displayName":null,"name":null}`},
		{"keys case-sensitive", "u@x.io", `{"Emails":[{"value":"E@x.io"}],"emails":[{"Value":"v@x.io","Primary":true}],"Name":{"givenName":"No"},"DisplayName":"Not"}`},
		{"names", "u@x.io", `{"name":{"givenName":" Ada ","familyName":"Lovelace","formatted":"X Y","middleName":"Z"}}`},
		{"names not text", "first.last@x.io", `{"name":{"givenName":1,"familyName":null,"formatted":true,"extra":[1,{"a":null}]},"displayName":7.5}`},
		{"blank formatted", "u@x.io", `{"name":{"givenName":"Ada","formatted":"\n\t"},"displayName":"Ada Lovelace"}`},
		{"name not an object", "x_y@x.io", `{"name":"Ada Lovelace","displayName":"Single"}`},
		{"name a list", "x_y@x.io", `{"name":[{"givenName":"Ada"}],"displayName":"Grace_Brewster.Hopper"}`},
		{"escapes", "u", `{"emails":[{"value":"jose\u0301@corp.example","primary":"True"}],"name":{"givenName":"\"Zo\u00eb\" \u003c\u0026\u003e","familyName":"\u00dcnal\\ \/ \ud83d\ude00"}}`},
		{"escaped keys", "u@x.io", `{"n\u0061me":{"given\u004eame":"Esc","familyName":"Aped"},"display\u004eame":"D N"}`},
		{"repeated name: the last whole", "u@x.io", `{"name":{"givenName":"First","familyName":"One"},"name":{"formatted":"Second Two"}}`},
		{"repeated name part", "u@x.io", `{"name":{"givenName":"First","givenName":5,"familyName":"F"}}`},
		{"repeated emails: the last whole", "u", `{"emails":[{"value":"p@x.io","primary":true}],"emails":[{"value":"w@x.io","type":"work"}]}`},
		{"repeated email fields", "u", `{"emails":[{"value":"a@x.io","value":"b@x.io","type":"work","type":"home","primary":true,"primary":false}]}`},
		{"repeated displayName", "u@x.io", `{"displayName":"First Shown","displayName":null}`},
		{"other attributes around", "u", `{"title":"T","emails":[{"value":"e@x.io","display":"x","$ref":"r"}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"name":{"givenName":"Not This"},"emails":[{"value":"not@x.io","primary":true}]},"displayName":"Dee Enn"}`},
	}
	s := openTemp(t, Options{NoSync: true})
	defer s.Close()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		for i, c := range cases {
			id := fmt.Sprintf("u%02d", i)
			data := fmt.Sprintf(`{"id":%q,"userName":%q,"active":true,"email":"e%d@x.io","attributes":%s,"created":"2026-05-01T02:03:04Z","lastModified":"2026-05-01T02:03:04Z","version":1,"panther":{}}`,
				id, c.userName, i, c.attrs)
			if !json.Valid([]byte(data)) {
				return fmt.Errorf("%s: invalid JSON %s", c.name, data)
			}
			v, err := encodeUser(userState{userName: c.userName, active: true}, []byte(data))
			if err != nil {
				return err
			}
			if !checksummed(userFrame(v)) {
				return fmt.Errorf("%s: no checksum, the identity scan would not read it with gjson", c.name)
			}
			if err := tx.Bucket(bucketUsers).Put([]byte(id), v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var full []provision.User
	var srcs []provision.IdentitySource
	if err := s.View(context.Background(), func(tx provision.ReadTx) error {
		if err := tx.ScanUsers(0, func(u provision.User) bool { full = append(full, u); return true }); err != nil {
			return err
		}
		return tx.ScanUserIdentities(func(_ provision.User, src provision.IdentitySource) bool {
			srcs = append(srcs, src)
			return true
		})
	}); err != nil {
		t.Fatal(err)
	}
	if len(full) != len(cases) || len(srcs) != len(cases) {
		t.Fatalf("scanned %d and %d users, want %d", len(full), len(srcs), len(cases))
	}
	for i, c := range cases {
		want := provision.IdentitySourceOf(full[i].Attributes)
		if srcs[i] != want {
			t.Errorf("%s: identity scan %+v, encoding/json's attributes give %+v", c.name, srcs[i], want)
		}
		wi, werr := provision.DeriveIdentity(c.userName, full[i].Attributes)
		gi, gerr := provision.DeriveIdentityFrom(c.userName, srcs[i])
		if gi != wi || (gerr == nil) != (werr == nil) {
			t.Errorf("%s: identity %+v (%v), from the attributes %+v (%v)", c.name, gi, gerr, wi, werr)
		}
	}
}
