package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// User records are stored as zstd frames compressed against a fixed dictionary (the key
// skeleton of a user record): a 756-byte record becomes about 225 bytes, and decoding
// one takes about 3 µs. With 100k users that takes the users bucket from ~98 MB to
// ~30 MB of pages, which is what keeps the store's working set (the pages a polling
// IdP touches) inside a small container's memory. Group records are compressed too
// (schema 4, below); intents and audit entries stay plain JSON.
//
// Since schema 3 the frame follows a short plain header with what UserState reads:
//
//	0x01 | uvarint length, userName | flags (bit 0: active, bit 1: linked to a Panther user) | zstd frame
//
// A group write resolves the role of each member it moves and a group response names
// every member: with the header neither decompresses nor decodes a record (13 µs each
// before, most of a large group's PATCH response).
//
// A stored value is self-describing: JSON starts with '{', a bare zstd frame (schema 2)
// with its magic number, a headed record with userHeaderTag (groupHeaderTag for a
// group), and the frame names its dictionary. userDict must therefore never change: a
// new dictionary gets a new id and the old one stays registered for decoding.

// userHeaderTag starts a user record with a state header; neither JSON nor a zstd frame
// can start with it.
const userHeaderTag = 0x01

// userDictID names userDict in every frame compressed with it.
const userDictID = 1

// userDict is raw content that user records share: their keys, in encoding/json's
// order, and common values. Never edit it (see above); TestUserDictIsStable holds it.
const userDict = `{"id":"","userName":"","externalId":"","active":true,"email":"@example.com",` +
	`"attributes":{"displayName":"","emails":[{"primary":true,"type":"work","value":""}],` +
	`"name":{"familyName":"","formatted":"","givenName":""},"title":"",` +
	`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"","employeeNumber":"","manager":{"value":""}}},` +
	`"created":"T00:00:00Z","lastModified":"T00:00:00Z","version":1,` +
	`"panther":{"id":"","email":"","givenName":"","familyName":"","roleId":""}}`

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

type codecs struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

var recordCodecs = sync.OnceValues(func() (codecs, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderDictRaw(userDictID, []byte(userDict)),
		zstd.WithEncoderLevel(zstd.SpeedFastest), // smaller and 2.5x faster than the default here
		// A checksum per record (4 bytes): bbolt pages have none, and a flipped byte in a
		// frame's literals decodes to valid JSON with a wrong value, which only the
		// checksum tells from the record written. Frames written without one (before)
		// still decode.
		zstd.WithEncoderCRC(true),
		zstd.WithWindowSize(1<<15))
	if err != nil {
		return codecs{}, err
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderDictRaw(userDictID, []byte(userDict)),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(maxRecordBytes))
	if err != nil {
		return codecs{}, err
	}
	return codecs{enc: enc, dec: dec}, nil
})

// maxRecordBytes bounds what one stored record may decompress to: a corrupt frame
// cannot make a read allocate without limit. A user record is a few KB; the request
// body limit is 1 MiB by default.
const maxRecordBytes = 64 << 20

// userState is what a user record's header holds.
type userState struct {
	userName string
	active   bool
	linked   bool
}

const (
	flagActive = 1 << iota
	flagLinked
)

// encodeUser returns the stored form of a user record: st's header, then data (the
// record's JSON) compressed.
func encodeUser(st userState, data []byte) ([]byte, error) {
	c, err := recordCodecs()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 4+len(st.userName)+len(data)/2)
	out = append(out, userHeaderTag)
	out = binary.AppendUvarint(out, uint64(len(st.userName)))
	out = append(out, st.userName...)
	var flags byte
	if st.active {
		flags |= flagActive
	}
	if st.linked {
		flags |= flagLinked
	}
	out = append(out, flags)
	return c.enc.EncodeAll(data, out), nil
}

// Group records (schema 4) are compressed too, after a plain header with what
// GroupHeader reads, so that role resolution never decompresses a large group:
//
//	0x02 | uvarint length, displayName | uvarint length, externalId | zstd frame
//
// A group's JSON is mostly its member ids; 2,000 groups of 100 members took 12 MB of
// pages as JSON (each record a little over a page) and take 4.2 MB this way.
const groupHeaderTag = 0x02

// encodeGroup returns the stored form of a group record.
func encodeGroup(g provision.Group) ([]byte, error) {
	data, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	return encodeGroupJSON(provision.GroupHeader{DisplayName: g.DisplayName, ExternalID: g.ExternalID}, data)
}

// encodeGroupJSON returns the stored form of a group record whose JSON is data.
func encodeGroupJSON(h provision.GroupHeader, data []byte) ([]byte, error) {
	c, err := recordCodecs()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 8+len(h.DisplayName)+len(h.ExternalID)+len(data)/2)
	out = append(out, groupHeaderTag)
	out = binary.AppendUvarint(out, uint64(len(h.DisplayName)))
	out = append(out, h.DisplayName...)
	out = binary.AppendUvarint(out, uint64(len(h.ExternalID)))
	out = append(out, h.ExternalID...)
	return c.enc.EncodeAll(data, out), nil
}

// splitGroupHeader parses the header of a group record stored with one and returns
// the frame after it.
func splitGroupHeader(v []byte) (provision.GroupHeader, []byte, error) {
	var h provision.GroupHeader
	if len(v) == 0 || v[0] != groupHeaderTag {
		return h, nil, errBadHeader
	}
	v = v[1:]
	for _, field := range []*string{&h.DisplayName, &h.ExternalID} {
		s, rest, ok := readString(v)
		if !ok {
			return provision.GroupHeader{}, nil, errBadHeader
		}
		*field, v = s, rest
	}
	return h, v, nil
}

// readString reads a uvarint length (in its shortest form) and that many bytes.
func readString(v []byte) (string, []byte, bool) {
	n, w := binary.Uvarint(v)
	if w <= 0 || w != uvarintLen(n) || n > uint64(len(v)-w) {
		return "", nil, false
	}
	v = v[w:]
	return string(v[:n]), v[n:], true
}

var errBadHeader = errors.New("malformed record header")

// uvarintLen is the length of n in its shortest uvarint form.
func uvarintLen(n uint64) int {
	return max(1, (bits.Len64(n)+6)/7)
}

// splitUserHeader parses the header of a headed user record and returns the frame after it.
func splitUserHeader(v []byte) (userState, []byte, error) {
	name, flags, frame, err := userHeader(v)
	if err != nil {
		return userState{}, nil, err
	}
	return userState{userName: string(name), active: flags&flagActive != 0, linked: flags&flagLinked != 0}, frame, nil
}

// userHeader is splitUserHeader that copies nothing: the userName is a part of v.
// Every read of a user record's JSON passes here, twice for the identity scan's.
func userHeader(v []byte) (name []byte, flags byte, frame []byte, err error) {
	if len(v) == 0 || v[0] != userHeaderTag {
		return nil, 0, nil, errBadHeader
	}
	n, w := binary.Uvarint(v[1:])
	if w <= 0 || w != uvarintLen(n) || n >= uint64(len(v)-1-w) {
		// Unreadable, not the shortest form (never written), or no room for the name
		// and the flags byte after it.
		return nil, 0, nil, errBadHeader
	}
	v = v[1+w:]
	name, v = v[:n], v[n:]
	flags = v[0]
	if flags&^(flagActive|flagLinked) != 0 {
		return nil, 0, nil, errBadHeader
	}
	return name, flags, v[1:], nil
}

// headed says whether a stored user record starts with a state header.
func headed(v []byte) bool { return len(v) > 0 && v[0] == userHeaderTag }

// groupHeaded says whether a stored group record starts with a header (schema 4).
func groupHeaded(v []byte) bool { return len(v) > 0 && v[0] == groupHeaderTag }

// storedState returns what a stored user record's header holds: from the header, or
// for a record written before schema 3, from its JSON.
func storedState(v []byte) (userState, error) {
	if headed(v) {
		st, _, err := splitUserHeader(v)
		return st, err
	}
	data, release, err := plain(v)
	if err != nil {
		return userState{}, err
	}
	defer release()
	return stateOf(data)
}

// stateOf reads a user record's header fields from its JSON without decoding its
// attributes.
func stateOf(data []byte) (userState, error) {
	var st struct {
		UserName string `json:"userName"`
		Active   bool   `json:"active"`
		Panther  struct {
			ID string `json:"id"`
		} `json:"panther"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return userState{}, err
	}
	return userState{userName: st.UserName, active: st.Active, linked: st.Panther.ID != ""}, nil
}

// plain returns the JSON of a stored value (the value itself when it is JSON, else the
// decompressed frame) and a function that gives its buffer back for reuse: call it once
// the JSON has been decoded (encoding/json copies what it keeps), and never use the
// JSON after that. Reads of compressed records then allocate nothing to decompress.
func plain(v []byte) ([]byte, func(), error) {
	switch {
	case headed(v):
		_, _, frame, err := userHeader(v)
		if err != nil {
			return nil, nil, err
		}
		v = frame
	case groupHeaded(v):
		_, frame, err := splitGroupHeader(v)
		if err != nil {
			return nil, nil, err
		}
		v = frame
	case !bytes.HasPrefix(v, zstdMagic):
		return v, func() {}, nil
	}
	c, err := recordCodecs()
	if err != nil {
		return nil, nil, err
	}
	buf := plainBufs.Get().(*plainBuf)
	out, err := c.dec.DecodeAll(v, buf.b[:0])
	if err != nil {
		plainBufs.Put(buf)
		return nil, nil, fmt.Errorf("decompress: %w", err)
	}
	buf.b = out
	return out, buf.release, nil
}

// plainBuf is a buffer of plainBufs with its release function, made once with it: a
// function made at each read was one more allocation per record read.
type plainBuf struct {
	b       []byte
	release func()
}

var plainBufs sync.Pool

func init() {
	// Set here: New's function refers to plainBufs.
	plainBufs.New = func() any {
		buf := &plainBuf{b: make([]byte, 0, 4<<10)}
		buf.release = func() {
			if cap(buf.b) <= 64<<10 { // a rare huge record is left to the collector
				plainBufs.Put(buf)
			}
		}
		return buf
	}
}

// markUsersForRewrite is the migration from schema 1 to 2 (users compressed) and from 2
// to 3 (a state header before the frame). Rewriting 100k users in the opening
// transaction would free their old pages only at its commit, so the new ones would all
// be allocated at the end of the file (197 -> 292 MB at 100k users, a file bbolt never
// shrinks, with a freelist written by every later commit). The migration therefore
// only marks the work; rewriteUsers does it in transactions of a thousand users, each
// reusing the pages the ones before it freed. Readers take every form, so a file left
// half done by a crash is valid and the next open finishes it; the schema number keeps
// releases that cannot read the new form away.
func markUsersForRewrite(tx *bolt.Tx) error {
	return tx.Bucket(bucketMeta).Put(keyRewriteUsers, []byte{1})
}

// rewriteBatch is how many users one transaction of rewriteUsers rewrites.
const rewriteBatch = 1000

// rewriteUsers stores every user record not yet in the current form (headed, compressed)
// in it, if markUsersForRewrite marked the file. The record's JSON is kept byte for byte.
func rewriteUsers(db *bolt.DB) error {
	return rewriteRecords(db, bucketUsers, keyRewriteUsers, headed, reencodeUser)
}

// reencodeUser turns a plain JSON or bare zstd user record into the current form.
func reencodeUser(v []byte) ([]byte, error) {
	data, release, err := plain(v)
	if err != nil {
		return nil, err
	}
	defer release()
	st, err := stateOf(data)
	if err != nil {
		return nil, err
	}
	return encodeUser(st, data)
}

// userFrame returns the zstd frame of a stored user record, or nil for a plain JSON
// record (or a header that does not parse).
func userFrame(v []byte) []byte {
	switch {
	case headed(v):
		_, _, frame, err := userHeader(v)
		if err != nil {
			return nil
		}
		return frame
	case bytes.HasPrefix(v, zstdMagic):
		return v
	}
	return nil
}

// checksummed says whether a zstd frame carries a checksum of its content (the
// Content_Checksum_flag of its header descriptor, RFC 8878 3.1.1.1.1), which
// decompressing it verifies.
func checksummed(frame []byte) bool {
	return len(frame) > len(zstdMagic) && bytes.HasPrefix(frame, zstdMagic) && frame[len(zstdMagic)]&(1<<2) != 0
}
