package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// Bucket names; doc.go describes their keys and values.
var (
	bucketMeta           = []byte("meta")
	bucketUsers          = []byte("users")
	bucketGroups         = []byte("groups")
	bucketUserName       = []byte("idx/user/userName")
	bucketUserEmail      = []byte("idx/user/email")
	bucketUserPantherID  = []byte("idx/user/pantherId")
	bucketUserExternalID = []byte("idx/user/externalId")
	bucketGroupName      = []byte("idx/group/displayName")
	bucketGroupExtID     = []byte("idx/group/externalId")
	bucketMembers        = []byte("members")
	bucketIntents        = []byte("intents")
	bucketAudit          = []byte("audit")
	bucketOutbox         = []byte("audit/outbox")
	bucketInvites        = []byte("invites")

	allBuckets = [][]byte{
		bucketMeta, bucketUsers, bucketGroups,
		bucketUserName, bucketUserEmail, bucketUserPantherID, bucketUserExternalID,
		bucketGroupName, bucketGroupExtID, bucketMembers, bucketIntents, bucketAudit,
		bucketOutbox, bucketInvites,
	}

	// addedBuckets were added to schema 4 after its release, without a version
	// change: Open creates them in a file that lacks them, and an older release
	// ignores them (see doc.go).
	addedBuckets = [][]byte{bucketOutbox, bucketInvites}
)

// Keys in the meta bucket.
var (
	keySchema         = []byte("schema")
	keyRewriteUsers   = []byte("pending/compress-users")  // set while a migration's rewrite of user records (schema 2, 3) is unfinished
	keyRewriteGroups  = []byte("pending/compress-groups") // the same for group records (schema 4)
	keyRebuildIndexes = []byte("pending/rebuild-indexes") // set until the indexes are rebuilt with packed ids (schema 4)
	keyCountUsers     = []byte("count/users")
	keyCountGroups    = []byte("count/groups")
	keyCountIntents   = []byte("count/intents")
	keyCountOutbox    = []byte("count/outbox") // entries in the audit/outbox bucket
	keyAuditExport    = []byte("audit/export") // present while the export of the audit trail is on
	keyExportAcked    = []byte("export/acked") // the sequence number of the last entry the export acknowledged
	keyProbe          = []byte("probe")        // written by Check only while commits are failing
)

const sep = "\x00"

// errBadID rejects ids that would break composite keys.
var errBadID = errors.New("must be non-empty and contain no NUL byte")

func checkID(kind, id string) error {
	if id == "" || strings.Contains(id, sep) {
		return fmt.Errorf("%s id %q: %w", kind, id, errBadID)
	}
	return nil
}

// fold is the key form of the case-insensitive attributes (userName, email, displayName).
func fold(s string) []byte { return []byte(strings.ToLower(s)) }

// inviteKey is the key of an email's invite record: its canonical form
// (provision.EmailKey), in which every ownership rule compares emails.
func inviteKey(email string) []byte { return []byte(provision.EmailKey(email)) }

// pairKey is a key of the non-unique (externalId) indexes: a "\x00" b.
func pairKey(a, b string) []byte {
	k := make([]byte, 0, len(a)+1+len(b))
	k = append(k, a...)
	k = append(k, sep...)
	return append(k, b...)
}

// scanPairs calls fn with the second half of each key a "\x00" b in bucket bk, in key
// order. Ids contain no NUL, so a remainder with a NUL belongs to a longer first half
// ("a\x00b" + "\x00" + id) and is skipped.
func scanPairs(bk *bolt.Bucket, a string, fn func(b string) error) error {
	prefix := pairKey(a, "")
	c := bk.Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		rest := k[len(prefix):]
		if bytes.IndexByte(rest, 0) >= 0 {
			continue
		}
		if err := fn(string(rest)); err != nil {
			return err
		}
	}
	return nil
}

func hasPrefix(k, prefix []byte) bool {
	return bytes.HasPrefix(k, prefix)
}

func u64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

func readU64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// auditKey orders audit entries by time, then by append order. Flipping the sign bit
// makes the unsigned big-endian order of the nanoseconds match their signed order.
func auditKey(t time.Time, seq uint64) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(unixNano(t))^(1<<63))
	return binary.BigEndian.AppendUint64(k, seq)
}

// auditSeq is the sequence number part of an audit key, as the key of its place in
// the export queue (audit/outbox).
func auditSeq(k []byte) []byte {
	if len(k) != 16 {
		return nil
	}
	return k[8:]
}

// auditKeyTime is the time an audit key starts with.
func auditKeyTime(k []byte) time.Time {
	if len(k) < 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k)^(1<<63))).UTC()
}

// Bounds of the times UnixNano can represent.
var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// unixNano is t.UnixNano clamped to int64, so that the zero time (a natural "since the
// beginning") sorts first instead of overflowing.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minNanoTime):
		return math.MinInt64
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}
