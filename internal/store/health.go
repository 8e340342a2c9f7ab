package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// ErrWriteFailed wraps a commit the store could not make (disk full, an I/O error, a
// closed file): nothing of the transaction was written, and a later attempt may
// succeed. It is provision.ErrStoreWrite, so that callers outside can tell it apart.
var ErrWriteFailed = provision.ErrStoreWrite

// Health is what the store knows of its own state since it was opened, for /readyz
// and /metrics.
type Health struct {
	// WriteErrors counts the commits that failed (ErrWriteFailed).
	WriteErrors uint64
	// LastWriteError is the latest of them, and when it happened (zero: none).
	LastWriteError   string
	LastWriteErrorAt time.Time
	// WritesFailing says the latest commit failed: no commit has succeeded since.
	WritesFailing bool
	// DamagedRecords counts the records met that failed to decode (each once);
	// LastDamagedRecord is the latest one's error, which names it.
	DamagedRecords    int
	LastDamagedRecord string
	// DamagedPage is the first failure bbolt raised on a damaged page ("" when none):
	// from then on the store is reported as damaged.
	DamagedPage string
}

// health tracks commit failures. Its lock is never held across a transaction.
type health struct {
	mu          sync.Mutex
	writeErrors uint64
	lastErr     string
	lastErrAt   time.Time
	failing     bool
}

// Health returns the store's health counters.
func (b *Bolt) Health() Health {
	b.health.mu.Lock()
	h := Health{
		WriteErrors: b.health.writeErrors, LastWriteError: b.health.lastErr,
		LastWriteErrorAt: b.health.lastErrAt, WritesFailing: b.health.failing,
	}
	b.health.mu.Unlock()
	b.damage.mu.Lock()
	h.DamagedRecords, h.LastDamagedRecord = len(b.damage.records), b.damage.lastError
	if b.damage.pageErr != nil {
		h.DamagedPage = b.damage.pageErr.Error()
	}
	b.damage.mu.Unlock()
	return h
}

// committed records how a write transaction ended: err is what db.Update returned and
// fnFailed whether the transaction's own function failed (an error of the caller's,
// not of the store). A failure of the commit itself is counted and returned wrapped in
// ErrWriteFailed.
func (b *Bolt) committed(err error, fnFailed bool) error {
	if fnFailed {
		return err
	}
	b.health.mu.Lock()
	defer b.health.mu.Unlock()
	if err == nil {
		b.health.failing = false
		return nil
	}
	b.health.writeErrors++
	b.health.lastErr = err.Error()
	b.health.lastErrAt = b.now().UTC()
	b.health.failing = true
	return fmt.Errorf("%w: %w", ErrWriteFailed, err)
}

// Check is the store's readiness check. It reads in a read transaction (no write and
// no fsync, so probing costs next to nothing) and, only while the latest commit has
// failed, tries a small write to learn whether writes work again: without it a store
// that stopped taking writes could stay "not ready" with nothing left to write.
func (b *Bolt) Check(ctx context.Context) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.damage.mu.Lock()
	pageErr := b.damage.pageErr
	b.damage.mu.Unlock()
	if pageErr != nil {
		return pageErr
	}
	defer b.recoverPage(&err)
	err = b.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("meta bucket missing")
		}
		if _, ok := readU64(meta.Get(keySchema)); !ok {
			return errors.New("schema version unreadable")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the store: %w", err)
	}
	if !b.Health().WritesFailing {
		return nil
	}
	err = b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyProbe, []byte(strconv.FormatInt(b.now().UnixNano(), 10)))
	})
	return b.committed(err, false)
}
