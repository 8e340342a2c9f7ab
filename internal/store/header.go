package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// GroupHeader returns the id, displayName and externalId of a group, or ErrNotFound.
// It decodes the record only up to its member list, so its cost does not grow with
// the group's size: role resolution reads the groups of every user it syncs, and one
// large group ("All employees") would otherwise be decoded whole for each of them.
func (r *readTx) GroupHeader(id string) (provision.GroupHeader, error) {
	v := r.bucket(bucketGroups).Get([]byte(id))
	if v == nil {
		return provision.GroupHeader{}, fmt.Errorf("group %q: %w", id, ErrNotFound)
	}
	h, err := decodeGroupHeader(v)
	if err != nil {
		err = fmt.Errorf("decode group %q: %w", id, err)
		r.dmg.record("group", []byte(id), err)
		return provision.GroupHeader{}, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	h.ID = id
	return h, nil
}

// UserState returns a user's id, userName, active flag and whether it is linked, or
// ErrNotFound. It reads the record's header (codec.go), not the record: a group change
// resolves the role of each member it touches, and a group response names every member.
// A record from before schema 3 (until the migration at open has rewritten it) is
// decoded without its attributes.
func (r *readTx) UserState(id string) (provision.UserState, error) {
	v := r.bucket(bucketUsers).Get([]byte(id))
	if v == nil {
		return provision.UserState{}, fmt.Errorf("user %q: %w", id, ErrNotFound)
	}
	st, err := storedState(v)
	if err != nil {
		err = fmt.Errorf("decode user %q: %w", id, err)
		r.dmg.record("user", []byte(id), err)
		return provision.UserState{}, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return provision.UserState{ID: id, UserName: st.userName, Active: st.active, Linked: st.linked}, nil
}

// decodeGroupHeader reads displayName and externalId from a group record: from its
// header (schema 4), or from a JSON record written before, stopping at "members".
// Group records are provision.Group encoded by encoding/json, which writes
// fields in declaration order: displayName and externalId (when set) come before
// members (TestGroupFieldOrder checks it), so an absent externalId is an empty one.
func decodeGroupHeader(v []byte) (provision.GroupHeader, error) {
	if groupHeaded(v) {
		h, _, err := splitGroupHeader(v)
		return h, err
	}
	var h provision.GroupHeader
	dec := json.NewDecoder(bytes.NewReader(v))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return h, fmt.Errorf("not a JSON object: %v", err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return h, err
		}
		switch key, _ := t.(string); key {
		case "displayName":
			err = dec.Decode(&h.DisplayName)
		case "externalId":
			err = dec.Decode(&h.ExternalID)
		case "members":
			return h, nil
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return h, err
		}
	}
	return h, nil
}
