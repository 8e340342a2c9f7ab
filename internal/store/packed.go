package store

import (
	"bytes"
	"errors"
	"slices"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// Packed ids (schema 4). A membership index key is the user id then the group id, each
// packed; a unique index entry's value is its record's packed id, and the Panther id
// index's key is the packed Panther id. An id in the canonical form the service mints
// (a lower-case UUID) packs to a zero byte and its 16 bytes, any other id to itself
// and a terminating zero byte (ids contain no NUL, so it cannot start with one). Both
// forms are self-delimiting, so the keys that start with a packed user id are exactly
// that user's memberships. With UUIDs a membership key is 34 bytes instead of 73:
// 200k memberships took 26 MB of pages as text and take 14 MB packed.

// packID appends the packed form of id to dst.
func packID(dst []byte, id string) []byte {
	if u, ok := parseUUID(id); ok {
		dst = append(dst, 0)
		return append(dst, u[:]...)
	}
	dst = append(dst, id...)
	return append(dst, 0)
}

// parseUUID parses id if it is a UUID written the way uuid.UUID.String writes it (36
// characters, lower-case hex digits, hyphens after the 8th, 12th, 16th and 20th): what
// uuid.Parse accepts and String gives back unchanged, without allocating, so that
// unpacking a packed id gives back the same string.
func parseUUID[T string | []byte](id T) (u uuid.UUID, ok bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return u, false
	}
	for i, at := range [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34} {
		hi, ok1 := lowerHex(id[at])
		lo, ok2 := lowerHex(id[at+1])
		if !ok1 || !ok2 {
			return uuid.UUID{}, false
		}
		u[i] = hi<<4 | lo
	}
	return u, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// packedLen is the length of the packed id at the start of b, or -1 if there is none.
func packedLen(b []byte) int {
	switch {
	case len(b) == 0:
		return -1
	case b[0] == 0:
		if len(b) < 17 {
			return -1
		}
		return 17
	}
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return -1
	}
	return i + 1
}

// packedIs says whether p is packID(nil, id), without building it.
func packedIs(p []byte, id string) bool {
	if u, ok := parseUUID(id); ok {
		return len(p) == 17 && p[0] == 0 && uuid.UUID(p[1:]) == u
	}
	return len(p) == len(id)+1 && string(p[:len(id)]) == id && p[len(id)] == 0
}

var (
	errBadMemberKey  = errors.New("malformed membership key")
	errBadIndexValue = errors.New("malformed index entry")
)

// unpackID reads one packed id from the start of b and returns the rest.
func unpackID(b []byte) (string, []byte, bool) {
	n := packedLen(b)
	switch {
	case n < 0:
		return "", nil, false
	case b[0] == 0:
		return uuid.UUID(b[1:n]).String(), b[n:], true
	}
	return string(b[:n-1]), b[n:], true
}

// unpackValue returns the id a unique index entry's value holds: packID's form, whole.
func unpackValue(v []byte) (string, error) {
	id, rest, ok := unpackID(v)
	if !ok || len(rest) != 0 {
		return "", errBadIndexValue
	}
	return id, nil
}

// memberKey is the membership index key of user userID in group groupID.
func memberKey(userID, groupID string) []byte {
	return packID(packID(make([]byte, 0, 34), userID), groupID)
}

// splitMemberKey returns the user and group ids of a membership key.
func splitMemberKey(k []byte) (userID, groupID string, err error) {
	userID, rest, ok := unpackID(k)
	if !ok {
		return "", "", errBadMemberKey
	}
	groupID, rest, ok = unpackID(rest)
	if !ok || len(rest) != 0 {
		return "", "", errBadMemberKey
	}
	return userID, groupID, nil
}

// groupsOf returns the ids of userID's groups, sorted as strings (the key order puts
// packed UUIDs before other ids), read with a cursor on the membership index. interned,
// when not nil, gives the id of a packed id read before and keeps the new ones.
func groupsOf(c *bolt.Cursor, userID string, interned map[string]string) ([]string, error) {
	var pbuf [17]byte
	prefix := packID(pbuf[:0], userID)
	var buf [8]string
	ids := buf[:0]
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		p := k[len(prefix):]
		if gid, ok := interned[string(p)]; ok {
			ids = append(ids, gid)
			continue
		}
		gid, rest, ok := unpackID(p)
		if !ok || len(rest) != 0 {
			return nil, errBadMemberKey
		}
		if interned != nil {
			interned[string(p)] = gid
		}
		ids = append(ids, gid)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	slices.Sort(ids)
	return slices.Clone(ids), nil
}
