package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// ScanUserIdentities calls fn for every user in id order, as ScanUsers does but with
// only the attributes a user's Panther identity comes from (name, displayName,
// emails: see provision.DeriveIdentity): the scans of every user that compare
// nothing else (the reconciler's, the start-up requeue's). At 100,000 users decoding
// whole records built a map of every attribute of every user, half of a reconcile's
// CPU and most of what it allocated, and the collector that allocation kept busy
// slowed the SCIM requests running beside it.
//
// A record whose frame carries a checksum (see checkUser) is read with gjson: its
// JSON is what json.Marshal wrote from a provision.User, and the fields are taken as
// encoding/json would decode them (the attributes kept as gjson's Value gives them:
// objects as map[string]any, arrays as []any, numbers as float64, as encoding/json's
// any). Any other record is decoded with encoding/json, its other attributes skipped.
func (r *readTx) ScanUserIdentities(fn func(provision.User) bool) error {
	c := r.bucket(bucketUsers).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		u, err := decodeIdentity(k, v)
		if err != nil {
			r.dmg.record("user", k, err)
			continue
		}
		if !fn(u) {
			return nil
		}
	}
	return nil
}

// identityAttributes are the attributes decodeIdentity keeps.
var identityAttributes = [...]string{"name", "displayName", "emails"}

// decodeIdentity decodes a stored user record for ScanUserIdentities.
func decodeIdentity(k, v []byte) (provision.User, error) {
	data, release, err := plain(v)
	if err != nil {
		return provision.User{}, fmt.Errorf("decode user %q: %w", k, err)
	}
	defer release()
	if !checksummed(userFrame(v)) {
		var x identityRecord
		if err := json.Unmarshal(data, &x); err != nil {
			return provision.User{}, fmt.Errorf("decode user %q: %w", k, err)
		}
		return x.user(), nil
	}
	// Every string kept is cloned out of data (see parseInPlace), and an identity
	// attribute is parsed from a clone of its own JSON alone.
	var (
		u       provision.User
		timeErr error
	)
	parseInPlace(data).ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "id":
			u.ID = strings.Clone(value.String())
		case "userName":
			u.UserName = strings.Clone(value.String())
		case "externalId":
			u.ExternalID = strings.Clone(value.String())
		case "active":
			u.Active = value.Bool()
		case "email":
			u.Email = strings.Clone(value.String())
		case "attributes":
			value.ForEach(func(key, value gjson.Result) bool {
				for _, a := range identityAttributes {
					if key.Str == a {
						if x := gjson.Parse(strings.Clone(value.Raw)).Value(); x != nil {
							if u.Attributes == nil {
								u.Attributes = make(map[string]any, len(identityAttributes))
							}
							u.Attributes[a] = x
						}
					}
				}
				return true
			})
		case "created":
			timeErr = parseTime(&u.Created, value.Raw, timeErr)
		case "lastModified":
			timeErr = parseTime(&u.LastModified, value.Raw, timeErr)
		case "version":
			u.Version = value.Int()
		case "panther":
			value.ForEach(func(key, value gjson.Result) bool {
				s := strings.Clone(value.String())
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
		return provision.User{}, fmt.Errorf("decode user %q: %w", k, timeErr)
	}
	return u, nil
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

func (x identityRecord) user() provision.User {
	u := provision.User{ID: x.ID, UserName: x.UserName, ExternalID: x.ExternalID, Active: x.Active, Email: x.Email,
		Created: x.Created, LastModified: x.LastModified, Version: x.Version, Panther: x.Panther}
	for i, raw := range [...]json.RawMessage{x.Attributes.Name, x.Attributes.DisplayName, x.Attributes.Emails} {
		var v any
		if len(raw) == 0 || json.Unmarshal(raw, &v) != nil || v == nil {
			continue
		}
		if u.Attributes == nil {
			u.Attributes = make(map[string]any, len(identityAttributes))
		}
		u.Attributes[identityAttributes[i]] = v
	}
	return u
}
