package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// ScanUserIdentities calls fn for every user in id order, as ScanUsers does but
// without the attributes: fn gets instead what the user's Panther identity comes from
// (name, displayName, emails: see provision.DeriveIdentityFrom), typed. These are the
// scans of every user that compare nothing else (the reconciler's, the start-up
// requeue's). At 100,000 users decoding whole records built a map of every attribute
// of every user, and then the identity's attributes alone still built a map of each
// user's name and of each of its emails: most of what a reconcile allocated, and the
// collector that allocation kept busy slowed the SCIM requests running beside it.
//
// A record whose frame carries a checksum (see checkUser) is read with gjson: its
// JSON is what json.Marshal wrote from a provision.User, and the fields are taken as
// encoding/json would decode them (provision.IdentitySourceOf of the attributes it
// would build). Any other record is decoded with encoding/json, its other attributes
// skipped.
func (r *readTx) ScanUserIdentities(fn func(provision.User, provision.IdentitySource) bool) error {
	c := r.bucket(bucketUsers).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		u, src, err := decodeIdentity(k, v)
		if err != nil {
			r.dmg.record("user", k, err)
			continue
		}
		if !fn(u, src) {
			return nil
		}
	}
	return nil
}

// decodeIdentity decodes a stored user record for ScanUserIdentities.
func decodeIdentity(k, v []byte) (provision.User, provision.IdentitySource, error) {
	data, release, err := plain(v)
	if err != nil {
		return provision.User{}, provision.IdentitySource{}, fmt.Errorf("decode user %q: %w", k, err)
	}
	defer release()
	if !checksummed(userFrame(v)) {
		var x identityRecord
		if err := json.Unmarshal(data, &x); err != nil {
			return provision.User{}, provision.IdentitySource{}, fmt.Errorf("decode user %q: %w", k, err)
		}
		u, src := x.user()
		return u, src, nil
	}
	// The strings point into data until own copies them out (see parseInPlace).
	var (
		u       provision.User
		src     provision.IdentitySource
		timeErr error
	)
	parseInPlace(data).ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "id":
			u.ID = value.String()
		case "userName":
			u.UserName = value.String()
		case "externalId":
			u.ExternalID = value.String()
		case "active":
			u.Active = value.Bool()
		case "email":
			u.Email = value.String()
		case "attributes":
			identitySource(value, &src)
		case "created":
			timeErr = parseTime(&u.Created, value.Raw, timeErr)
		case "lastModified":
			timeErr = parseTime(&u.LastModified, value.Raw, timeErr)
		case "version":
			u.Version = value.Int()
		case "panther":
			value.ForEach(func(key, value gjson.Result) bool {
				s := value.String()
				switch key.Str {
				case "id":
					u.Panther.ID = s
				case "email":
					u.Panther.Email = s
				case "givenName":
					u.Panther.GivenName = s
				case "familyName":
					u.Panther.FamilyName = s
				case "roleId":
					u.Panther.RoleID = s
				}
				return true
			})
		}
		return true
	})
	if timeErr != nil {
		return provision.User{}, provision.IdentitySource{}, fmt.Errorf("decode user %q: %w", k, timeErr)
	}
	own(&u.ID, &u.UserName, &u.ExternalID, &u.Email,
		&u.Panther.ID, &u.Panther.Email, &u.Panther.GivenName, &u.Panther.FamilyName, &u.Panther.RoleID,
		&src.GivenName, &src.FamilyName, &src.Formatted, &src.DisplayName,
		&src.PrimaryEmail, &src.WorkEmail, &src.FirstEmail)
	return u, src, nil
}

// own copies the strings of one record out of the buffer they were read in, into one
// new allocation: a string per field was most of the allocations of an identity scan
// (16 per user). A string equal to one before it shares its bytes (the email is
// often also the link's, the primary and the first). The bytes are never written
// again once a string points at them; a caller keeping any of the strings keeps them
// all, a few hundred bytes.
func own(ss ...*string) {
	// first[i] is the index of the first string equal to string i.
	var firstBuf [16]int
	first := firstBuf[:0]
	n := 0
	for i, s := range ss {
		j := slices.IndexFunc(ss[:i], func(p *string) bool { return *p == *s })
		if j < 0 {
			j = i
			n += len(*s)
		}
		first = append(first, j)
	}
	buf := make([]byte, 0, n)
	for i, s := range ss {
		switch {
		case len(*s) == 0:
			*s = ""
		case first[i] != i:
			*s = *ss[first[i]] // copied already
		default:
			at := len(buf)
			buf = append(buf, *s...) // within cap: buf never moves
			*s = unsafe.String(&buf[at], len(*s))
		}
	}
}

// identitySource reads into src, from a record's attributes object, what
// provision.IdentitySourceOf reads of the map encoding/json would decode it into:
// strings only where that map holds a string, an emails entry only where it holds an
// object, and, were a key repeated, its last value (encoding/json's rule). The
// strings point into attrs' JSON.
func identitySource(attrs gjson.Result, src *provision.IdentitySource) {
	attrs.ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "name":
			src.GivenName, src.FamilyName, src.Formatted = "", "", ""
			if !value.IsObject() {
				return true
			}
			value.ForEach(func(key, value gjson.Result) bool {
				switch key.Str {
				case "givenName":
					src.GivenName = jsonString(value)
				case "familyName":
					src.FamilyName = jsonString(value)
				case "formatted":
					src.Formatted = jsonString(value)
				}
				return true
			})
		case "displayName":
			src.DisplayName = jsonString(value)
		case "emails":
			src.PrimaryEmail, src.WorkEmail, src.FirstEmail = "", "", ""
			if !value.IsArray() {
				return true
			}
			value.ForEach(func(_, item gjson.Result) bool {
				if !item.IsObject() {
					return true
				}
				var v, t string
				var primary bool
				item.ForEach(func(key, value gjson.Result) bool {
					switch key.Str {
					case "value":
						v = jsonString(value)
					case "type":
						t = jsonString(value)
					case "primary":
						// provision's rule for primary: true, or "true" in any case.
						primary = value.Type == gjson.True || value.Type == gjson.String && strings.EqualFold(value.Str, "true")
					}
					return true
				})
				src.AddEmail(v, t, primary)
				return true
			})
		}
		return true
	})
}

// jsonString is the string a JSON value holds, "" when it is not a string.
func jsonString(v gjson.Result) string {
	if v.Type != gjson.String {
		return ""
	}
	return v.Str
}

// parseInPlace parses a record's JSON with gjson where it lies: gjson.ParseBytes would
// copy the whole record first (a third of what a reconcile allocated). data is a pooled
// buffer or a page of the store's map, both reused once the caller returns, so the
// caller clones every string it keeps of the result.
func parseInPlace(data []byte) gjson.Result {
	return gjson.Parse(unsafe.String(unsafe.SliceData(data), len(data)))
}

// parseTime decodes the JSON raw into t as encoding/json does, and returns the first
// error of err and its own.
func parseTime(t *time.Time, raw string, err error) error {
	// UnmarshalJSON only reads its argument: raw's bytes are lent, not copied.
	if perr := t.UnmarshalJSON(unsafe.Slice(unsafe.StringData(raw), len(raw))); err == nil {
		err = perr
	}
	return err
}

// identityRecord is a user record as ScanUserIdentities decodes one without a
// checksum: the attributes other than the identity's are skipped, not built.
type identityRecord struct {
	ID         string `json:"id"`
	UserName   string `json:"userName"`
	ExternalID string `json:"externalId"`
	Active     bool   `json:"active"`
	Email      string `json:"email"`
	Attributes struct {
		Name        json.RawMessage `json:"name"`
		DisplayName json.RawMessage `json:"displayName"`
		Emails      json.RawMessage `json:"emails"`
	} `json:"attributes"`
	Created      time.Time             `json:"created"`
	LastModified time.Time             `json:"lastModified"`
	Version      int64                 `json:"version"`
	Panther      provision.PantherLink `json:"panther"`
}

func (x identityRecord) user() (provision.User, provision.IdentitySource) {
	u := provision.User{ID: x.ID, UserName: x.UserName, ExternalID: x.ExternalID, Active: x.Active, Email: x.Email,
		Created: x.Created, LastModified: x.LastModified, Version: x.Version, Panther: x.Panther}
	attrs := map[string]any{}
	for name, raw := range map[string]json.RawMessage{"name": x.Attributes.Name, "displayName": x.Attributes.DisplayName, "emails": x.Attributes.Emails} {
		var v any
		if len(raw) != 0 && json.Unmarshal(raw, &v) == nil {
			attrs[name] = v
		}
	}
	return u, provision.IdentitySourceOf(attrs)
}
