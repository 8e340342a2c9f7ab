package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// maxBatch bounds the calls one batch transaction runs.
const maxBatch = 256

// errRunAlone tells a Batch caller that its fn failed inside a shared transaction
// and must run again on its own, so that its error (or panic) is its own.
var errRunAlone = errors.New("store: batch call must run alone")

// batcher is group commit for Batch: calls that arrive while a commit is under way
// queue up and share the next transaction.
type batcher struct {
	mu      sync.Mutex
	queue   []*batchCall
	running bool
}

type batchCall struct {
	fn   func(provision.Tx) error
	done chan error
}

// Batch runs fn in a read-write transaction that it may share with other concurrent
// Batch calls: one commit, and one fsync, for all of them. fn must have no effect but
// through tx and must tolerate running twice: when a shared transaction fails, the
// others are committed without the failing call, which then runs alone with Update,
// whose result Batch returns. A call that finds no commit under way starts one at
// once, so Batch adds no delay when there is no contention; under load (the
// saves of many concurrent Panther syncs) the single writer commits hundreds of
// changes per fsync instead of one. ctx is checked before fn is queued only.
func (b *Bolt) Batch(ctx context.Context, fn func(provision.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &batchCall{fn: fn, done: make(chan error, 1)}
	b.batch.mu.Lock()
	b.batch.queue = append(b.batch.queue, c)
	if !b.batch.running {
		b.batch.running = true
		go b.commitBatches()
	}
	b.batch.mu.Unlock()
	err := <-c.done
	if errors.Is(err, errRunAlone) {
		return b.Update(ctx, fn)
	}
	return err
}

// commitBatches commits what is queued, in transactions of up to maxBatch calls,
// until the queue is empty.
func (b *Bolt) commitBatches() {
	for {
		b.batch.mu.Lock()
		calls := b.batch.queue
		if len(calls) > maxBatch {
			calls, b.batch.queue = calls[:maxBatch:maxBatch], calls[maxBatch:]
		} else {
			b.batch.queue = nil
		}
		if len(calls) == 0 {
			b.batch.running = false
			b.batch.mu.Unlock()
			return
		}
		b.batch.mu.Unlock()
		b.commitBatch(calls)
	}
}

// commitBatch runs calls in one transaction. When one fails or panics, the
// transaction is rolled back, that call is told to run alone, and the rest are
// tried again together.
func (b *Bolt) commitBatch(calls []*batchCall) {
	for len(calls) > 0 {
		failed := -1
		err := b.batchUpdate(func(tx *bolt.Tx) error {
			w := &writeTx{readTx: readTx{tx: tx, keys: map[string]userKeys{}, dmg: &b.damage}, now: b.now}
			for i, c := range calls {
				if err := callSafely(c.fn, w); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			err = b.committed(err, false) // nil, or the commit's own failure
			for _, c := range calls {
				c.done <- err
			}
			return
		}
		calls[failed].done <- errRunAlone
		calls = append(calls[:failed:failed], calls[failed+1:]...)
	}
}

// batchUpdate is db.Update for commitBatch, which runs on a goroutine of its own: a
// panic bbolt raises on a damaged page is an error for the batch's callers rather
// than the end of the process.
func (b *Bolt) batchUpdate(fn func(*bolt.Tx) error) (err error) {
	defer b.recoverPage(&err)
	return b.db.Update(fn)
}

func callSafely(fn func(provision.Tx) error, tx provision.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in batch call: %v", p)
		}
	}()
	return fn(tx)
}
