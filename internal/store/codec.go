package store

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

// User records are stored as zstd frames compressed against a fixed dictionary (the key
// skeleton of a user record): a 756-byte record becomes about 225 bytes, and decoding
// one takes about 3 µs. With 100k users that takes the users bucket from ~98 MB to
// ~30 MB of pages, which is what keeps the store's working set (the pages a polling
// IdP touches) inside a small container's memory. Other records stay plain JSON.
//
// A stored value is self-describing: JSON starts with '{', a zstd frame with its magic
// number, and the frame names its dictionary. userDict must therefore never change:
// a new dictionary gets a new id and the old one stays registered for decoding.

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
		zstd.WithEncoderCRC(false),               // bbolt pages have no checksum either; JSON decoding checks the result
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

// compressUser returns the stored form of a user record's JSON.
func compressUser(data []byte) ([]byte, error) {
	c, err := recordCodecs()
	if err != nil {
		return nil, err
	}
	return c.enc.EncodeAll(data, make([]byte, 0, len(data)/2)), nil
}

// plain returns the JSON of a stored value (the value itself when it is JSON, else the
// decompressed frame) and a function that gives its buffer back for reuse: call it once
// the JSON has been decoded (encoding/json copies what it keeps), and never use the
// JSON after that. Reads of compressed records then allocate nothing to decompress.
func plain(v []byte) ([]byte, func(), error) {
	if !bytes.HasPrefix(v, zstdMagic) {
		return v, func() {}, nil
	}
	c, err := recordCodecs()
	if err != nil {
		return nil, nil, err
	}
	buf := plainBufs.Get().(*[]byte)
	out, err := c.dec.DecodeAll(v, (*buf)[:0])
	if err != nil {
		plainBufs.Put(buf)
		return nil, nil, fmt.Errorf("decompress: %w", err)
	}
	return out, func() {
		if cap(out) <= 64<<10 { // a rare huge record is left to the collector
			*buf = out
			plainBufs.Put(buf)
		}
	}, nil
}

var plainBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// startCompression is the migration from schema 1 to 2. Rewriting 100k users in the
// opening transaction would free their old pages only at its commit, so the new ones
// would all be allocated at the end of the file (197 -> 292 MB at 100k users, a file
// bbolt never shrinks, with a freelist written by every later commit). The migration
// therefore only marks the work; finishCompression does it in transactions of a
// thousand users, each reusing the pages the ones before it freed. Readers take both
// forms, so a file left half done by a crash is valid and the next open finishes it;
// schema 2 from the start keeps releases that cannot read compressed records away.
func startCompression(tx *bolt.Tx) error {
	return tx.Bucket(bucketMeta).Put(keyCompressing, []byte{1})
}

// compressBatch is how many users one transaction of finishCompression rewrites.
const compressBatch = 1000

// finishCompression compresses the user records that startCompression marked, if any.
func finishCompression(db *bolt.DB) error {
	pending := false
	if err := db.View(func(tx *bolt.Tx) error {
		pending = tx.Bucket(bucketMeta).Get(keyCompressing) != nil
		return nil
	}); err != nil || !pending {
		return err
	}
	var after []byte
	for {
		done := false
		err := db.Update(func(tx *bolt.Tx) error {
			users := tx.Bucket(bucketUsers)
			users.FillPercent = fillPercent[string(bucketUsers)]
			type rec struct{ k, v []byte }
			var batch []rec
			c := users.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(batch) < compressBatch; k, v = c.Next() {
				if bytes.HasPrefix(v, zstdMagic) {
					continue
				}
				z, err := compressUser(v)
				if err != nil {
					return fmt.Errorf("compress user %q: %w", k, err)
				}
				batch = append(batch, rec{bytes.Clone(k), z})
			}
			// Writes after the cursor is done with: bbolt cursors must not cross writes.
			for _, r := range batch {
				if err := users.Put(r.k, r.v); err != nil {
					return fmt.Errorf("compress user %q: %w", r.k, err)
				}
			}
			if len(batch) < compressBatch {
				done = true
				return tx.Bucket(bucketMeta).Delete(keyCompressing)
			}
			after = batch[len(batch)-1].k
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}
