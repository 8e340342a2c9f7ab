package store

import (
	"context"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Probe proves the store takes a write: it commits a timestamp to the meta bucket
// (fsync included). /readyz calls it.
func (b *Bolt) Probe(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte("probe"), []byte(strconv.FormatInt(time.Now().UnixNano(), 10)))
	})
}
