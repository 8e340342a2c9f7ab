package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// The export queue of the audit trail (the audit/outbox bucket) holds, in append
// order, the entries not yet acknowledged by the export to Panther: its key is the
// entry's sequence number, its value the entry's key in the audit bucket. While the
// export is on, AppendAudit queues each entry in the transaction that appends it,
// so an entry is queued if and only if it is committed; the exporter reads the
// oldest entries (NextExport), sends them, and removes them once Panther has
// answered (AckExport). A crash between the two sends them again: delivery is at
// least once, and each entry's EventID lets a reader drop the second copy.
//
// The sequence numbers come from the audit bucket's own sequence, which only a
// committed write transaction advances and which bbolt's single writer hands out in
// commit order. The queue is therefore in commit order even when entry times are
// not (a clock stepped back), which the audit bucket's time order could not give.

// QueuedAudit is one entry of the export queue.
type QueuedAudit struct {
	// Seq is the entry's place in the queue; AckExport(Seq) removes it and every
	// entry before it.
	Seq uint64
	// Entry is the audit entry. It is the zero value when Pruned.
	Entry provision.AuditEntry
	// Pruned says the entry was deleted from the trail after it was queued (by a
	// release without the export queue, whose retention does not know about it):
	// there is nothing to send, but its place must be acknowledged all the same.
	Pruned bool
	// Damaged says the entry is in the trail but does not decode (Entry is the zero
	// value): there is nothing that can be sent, and its place must be acknowledged
	// too, or the export would stop there for good. It is reported as every damaged
	// record is (Options.OnDamagedRecord once, Health.DamagedRecords).
	Damaged bool
}

// SetAuditExport turns the export queue on or off. From the commit on, every entry
// appended while it is on is queued until acknowledged. Turning it off empties the
// queue and returns how many entries were dropped from it (they stay in the audit
// trail); turning it on when it is on changes nothing.
func (b *Bolt) SetAuditExport(on bool) (dropped int, err error) {
	err = b.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if on {
			if meta.Get(keyAuditExport) != nil {
				return nil
			}
			return meta.Put(keyAuditExport, []byte("panther"))
		}
		n, _ := readU64(meta.Get(keyCountOutbox))
		dropped = int(n)
		if err := tx.DeleteBucket(bucketOutbox); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketOutbox); err != nil {
			return err
		}
		if err := meta.Delete(keyCountOutbox); err != nil {
			return err
		}
		return meta.Delete(keyAuditExport)
	})
	if err != nil {
		return 0, fmt.Errorf("set audit export: %w", err)
	}
	return dropped, nil
}

// NextExport returns up to max of the oldest queued entries, in queue order. An
// empty result means the queue is empty. An entry that does not decode is returned
// as Damaged, in its place, rather than as an error: the scans of the store skip a
// damaged record the same way.
func (b *Bolt) NextExport(ctx context.Context, max int) ([]QueuedAudit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []QueuedAudit
	err := b.db.View(func(tx *bolt.Tx) error {
		audit := tx.Bucket(bucketAudit)
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			seq, ok := readU64(k)
			if !ok {
				return fmt.Errorf("export queue key %x is not a sequence number", k)
			}
			q := QueuedAudit{Seq: seq}
			data := audit.Get(v)
			if data == nil {
				q.Pruned = true
			} else if e, err := decode[provision.AuditEntry]("audit entry", v, data); err != nil {
				b.damage.record("audit entry", v, err)
				q.Damaged = true
			} else {
				q.Entry = e
			}
			out = append(out, q)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read export queue: %w", err)
	}
	return out, nil
}

// AckExport removes from the export queue every entry up to and including seq, and
// records seq as the last acknowledged one. Acknowledging again, or less far, is a
// no-op.
func (b *Bolt) AckExport(ctx context.Context, seq uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketOutbox)
		bk.FillPercent = fillPercent[string(bucketOutbox)]
		limit := u64(seq)
		var done [][]byte
		c := bk.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, limit) <= 0; k, _ = c.Next() {
			done = append(done, bytes.Clone(k))
		}
		for _, k := range done {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if len(done) > 0 {
			n, _ := readU64(meta.Get(keyCountOutbox))
			if err := meta.Put(keyCountOutbox, u64(n-min(n, uint64(len(done))))); err != nil {
				return err
			}
		}
		if last, _ := readU64(meta.Get(keyExportAcked)); seq > last {
			return meta.Put(keyExportAcked, u64(seq))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("acknowledge export through %d: %w", seq, err)
	}
	return nil
}

// ExportBacklog reports the entries waiting in the export queue and the time of the
// oldest (zero when none), without decoding any entry.
func (b *Bolt) ExportBacklog(ctx context.Context) (n int, oldest time.Time, err error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, err
	}
	err = b.db.View(func(tx *bolt.Tx) error {
		count, _ := readU64(tx.Bucket(bucketMeta).Get(keyCountOutbox))
		n = int(count)
		if _, v := tx.Bucket(bucketOutbox).Cursor().First(); v != nil {
			oldest = auditKeyTime(v)
		}
		return nil
	})
	return n, oldest, err
}

// ExportAcked is the sequence number of the last entry the export acknowledged (0
// before the first).
func (b *Bolt) ExportAcked() (uint64, error) {
	var seq uint64
	err := b.db.View(func(tx *bolt.Tx) error {
		seq, _ = readU64(tx.Bucket(bucketMeta).Get(keyExportAcked))
		return nil
	})
	return seq, err
}
