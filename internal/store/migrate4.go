package store

import (
	"bytes"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// Schema 4 makes the store smaller, so that a 100k-user store's working set fits a
// small container: the email index leaves out emails equal to the userName
// (indexedEmail), group records are compressed (encodeGroup) and membership keys pack
// UUIDs into 16 bytes (memberKey). At 100k users and 200k memberships the pages in
// use went from 123 MB to 91 MB.
//
// migrateTo4 drops the redundant email entries in the opening transaction (deletes
// only free pages) and marks the rest, which rewrite most of a bucket, to be done in
// small transactions after it (see markUsersForRewrite for why): rewriteGroups and
// rebuildMembers.
func migrateTo4(tx *bolt.Tx) error {
	emails, names := tx.Bucket(bucketUserEmail), tx.Bucket(bucketUserName)
	var redundant [][]byte
	err := emails.ForEach(func(k, id []byte) error {
		// The user whose userName has this key form is the entry's own user: its email
		// is its userName.
		if bytes.Equal(names.Get(k), id) {
			redundant = append(redundant, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range redundant {
		if err := emails.Delete(k); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keyRewriteGroups, []byte{1}); err != nil {
		return err
	}
	return meta.Put(keyRebuildMembers, []byte{1})
}

// rewriteGroups stores every group record still in JSON with a header and compressed,
// if migrateTo4 marked the file; the JSON is kept byte for byte.
func rewriteGroups(db *bolt.DB) error {
	return rewriteRecords(db, bucketGroups, keyRewriteGroups, groupHeaded, func(v []byte) ([]byte, error) {
		h, err := decodeGroupHeader(v)
		if err != nil {
			return nil, err
		}
		return encodeGroupJSON(h, v)
	})
}

// groupHeaded says whether a stored group record starts with a header (schema 4).
func groupHeaded(v []byte) bool { return len(v) > 0 && v[0] == groupHeaderTag }

// rebuildMembers rewrites the membership index with packed keys, from the group
// records, if migrateTo4 marked the file. The old bucket is dropped in a transaction of
// its own, so that the new keys reuse its pages; they are then written in key order, a
// batch per transaction, into pages packed 90% full. A rebuild cut short starts over at
// the next open (the mark stays until the last batch).
func rebuildMembers(db *bolt.DB) error {
	if pending, err := marked(db, keyRebuildMembers); err != nil || !pending {
		return err
	}
	var keys [][]byte
	err := db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketGroups).ForEach(func(k, v []byte) error {
			g, err := decode[provision.Group]("group", k, v)
			if err != nil {
				return err
			}
			for _, m := range g.Members {
				keys = append(keys, memberKey(m, g.ID))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketMembers); err != nil {
			return err
		}
		_, err = tx.CreateBucket(bucketMembers)
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild the membership index: %w", err)
	}
	slices.SortFunc(keys, bytes.Compare)
	keys = slices.CompactFunc(keys, bytes.Equal) // a member listed twice (never written, but harmless)
	for len(keys) > 0 {
		n := min(len(keys), rebuildBatch)
		batch := keys[:n]
		keys = keys[n:]
		last := len(keys) == 0
		err := db.Update(func(tx *bolt.Tx) error {
			mb := tx.Bucket(bucketMembers)
			mb.FillPercent = 0.9
			for _, k := range batch {
				if err := mb.Put(k, empty); err != nil {
					return err
				}
			}
			if last {
				return tx.Bucket(bucketMeta).Delete(keyRebuildMembers)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("rebuild the membership index: %w", err)
		}
	}
	// No memberships at all: nothing above cleared the mark.
	return db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyRebuildMembers) })
}

// rebuildBatch is how many membership keys one transaction of rebuildMembers writes.
const rebuildBatch = 20_000

// marked says whether the meta bucket holds key (a migration's unfinished work).
func marked(db *bolt.DB, key []byte) (bool, error) {
	pending := false
	err := db.View(func(tx *bolt.Tx) error {
		pending = tx.Bucket(bucketMeta).Get(key) != nil
		return nil
	})
	return pending, err
}

// rewriteRecords stores every record of bucket that is not current in its reencoded
// form, rewriteBatch records per transaction, if key marks the file; the last
// transaction removes the mark. Readers take every form, so a rewrite cut short leaves
// a valid file and the next open finishes it.
func rewriteRecords(db *bolt.DB, bucket, key []byte, current func(v []byte) bool, reencode func(v []byte) ([]byte, error)) error {
	if pending, err := marked(db, key); err != nil || !pending {
		return err
	}
	var after []byte
	for {
		done := false
		err := db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucket)
			bk.FillPercent = fillPercent[string(bucket)]
			type rec struct{ k, v []byte }
			var batch []rec
			c := bk.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(batch) < rewriteBatch; k, v = c.Next() {
				if current(v) {
					continue
				}
				nv, err := reencode(v)
				if err != nil {
					return fmt.Errorf("rewrite %s %q: %w", bucket, k, err)
				}
				batch = append(batch, rec{bytes.Clone(k), nv})
			}
			// Writes after the cursor is done with: bbolt cursors must not cross writes.
			for _, r := range batch {
				if err := bk.Put(r.k, r.v); err != nil {
					return fmt.Errorf("rewrite %s %q: %w", bucket, r.k, err)
				}
			}
			if len(batch) < rewriteBatch {
				done = true
				return tx.Bucket(bucketMeta).Delete(key)
			}
			after = batch[len(batch)-1].k
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}
