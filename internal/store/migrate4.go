package store

import (
	"bytes"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// Schema 4 makes the store smaller, so that a 100k-user store's working set fits a
// small container: group records are compressed (encodeGroup), the email index leaves
// out emails equal to the userName (indexedEmail), and ids are packed (packID) in
// membership keys, in unique index values and in Panther id keys. At 100k users, 2,000
// groups and 200k memberships, written as an import writes them, the pages in use went
// from 123 MB to 82.5 MB.
//
// migrateTo4 only marks the work, which is done after the opening transaction in small
// ones (see markUsersForRewrite for why): rewriteGroups, then rebuildIndexes.
func migrateTo4(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keyRewriteGroups, []byte{1}); err != nil {
		return err
	}
	return meta.Put(keyRebuildIndexes, []byte{1})
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

// rebuiltIndexes are the buckets rebuildIndexes writes anew from the records.
var rebuiltIndexes = [][]byte{bucketUserName, bucketUserEmail, bucketUserPantherID, bucketGroupName, bucketMembers}

// rebuildIndexes writes the unique indexes and the membership index again from the
// user and group records, in schema 4's form, if migrateTo4 marked the file. The old
// buckets are dropped in a transaction of their own, so that the new entries reuse
// their pages; the entries are then written in key order, a batch per transaction,
// into pages packed 90% full (the indexes of an import fill theirs to about 69%). A
// rebuild cut short starts over from the records at the next open: the mark stays
// until the last batch.
func rebuildIndexes(db *bolt.DB) error {
	if pending, err := marked(db, keyRebuildIndexes); err != nil || !pending {
		return err
	}
	entries := map[string][]kv{}
	add := func(bucket []byte, k, v []byte) {
		entries[string(bucket)] = append(entries[string(bucket)], kv{k, v})
	}
	err := db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			u, err := decode[provision.User]("user", k, v)
			if err != nil {
				return err
			}
			id := packID(nil, u.ID)
			add(bucketUserName, idxUserName.key(u.UserName), id)
			if e := indexedEmail(u.UserName, u.Email); e != "" {
				add(bucketUserEmail, idxEmail.key(e), id)
			}
			if u.Panther.ID != "" {
				add(bucketUserPantherID, idxPantherID.key(u.Panther.ID), id)
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketGroups).ForEach(func(k, v []byte) error {
			g, err := decode[provision.Group]("group", k, v)
			if err != nil {
				return err
			}
			add(bucketGroupName, idxDisplayName.key(g.DisplayName), packID(nil, g.ID))
			for _, m := range g.Members {
				add(bucketMembers, memberKey(m, g.ID), empty)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, name := range rebuiltIndexes {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild the indexes: %w", err)
	}
	for _, name := range rebuiltIndexes {
		es := entries[string(name)]
		slices.SortFunc(es, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
		for len(es) > 0 {
			batch := es[:min(len(es), rebuildBatch)]
			es = es[len(batch):]
			err := db.Update(func(tx *bolt.Tx) error {
				bk := tx.Bucket(name)
				bk.FillPercent = 0.9
				for _, e := range batch {
					if err := bk.Put(e.k, e.v); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("rebuild the indexes: %w", err)
			}
		}
	}
	return db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyRebuildIndexes) })
}

type kv struct{ k, v []byte }

// rebuildBatch is how many entries one transaction of rebuildIndexes writes.
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
			if fp, ok := fillPercent[string(bucket)]; ok {
				bk.FillPercent = fp
			}
			var batch []kv
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
				batch = append(batch, kv{bytes.Clone(k), nv})
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
