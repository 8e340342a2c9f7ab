package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// Sentinel errors, the same values as provision's so that errors.Is works either way.
var (
	// ErrNotFound: the record does not exist.
	ErrNotFound = provision.ErrNotFound
	// ErrConflict: a unique attribute belongs to another record.
	ErrConflict = provision.ErrConflict
	// ErrLocked: another process holds the data file (bbolt allows one writer process).
	ErrLocked = errors.New("store file is locked by another process")
)

// SchemaVersion is the version of the file layout this build writes (see doc.go).
const SchemaVersion = 4

// defaultOpenTimeout bounds the wait for the file lock when Options.OpenTimeout is zero.
const defaultOpenTimeout = time.Second

// Options tune Open. The zero value is right for production.
type Options struct {
	// OpenTimeout is how long Open waits for another process to release the file
	// before it fails with ErrLocked; zero or less means one second.
	OpenTimeout time.Duration
	// NoSync skips fsync on commit: a crash can lose or corrupt the file.
	// For benchmarks and throwaway test stores only.
	NoSync bool
	// Now is the clock for the times the store writes itself (a group's LastModified
	// when DeleteUser removes a member; an audit entry without a Time). Default time.Now.
	Now func() time.Time
	// Init accepts an existing empty (0-byte) file as a new store; without it such a
	// file is ErrEmpty.
	Init bool
	// OnDamagedRecord, when set, is told of each record that fails to decode, the
	// first time it is met (reads skip such records in scans and fail on them alone).
	OnDamagedRecord func(kind, key string, err error)
}

// Bolt is the bbolt implementation of provision.Store. It is safe for concurrent use;
// reads run in parallel, writes one at a time. As with bbolt itself, a goroutine must
// not start a transaction (View or Update) inside another one: that can deadlock.
type Bolt struct {
	db     *bolt.DB
	now    func() time.Time
	batch  batcher // Batch's group commit
	health health  // commit failures, for Health
	damage damage  // records that did not decode, a damaged page met
}

var _ provision.Store = (*Bolt)(nil)

// Open opens the store file at path, creating it (mode 0600) with the current schema
// when absent. A file that another process holds fails after opts.OpenTimeout with an
// error wrapping ErrLocked; a file written by a newer release is refused. Before it
// writes anything it checks the file (preflight): an existing empty file is ErrEmpty
// unless opts.Init, and a damaged one (cut short, or failing bbolt's own consistency
// check) is an error wrapping ErrDamaged that says how to recover, never a panic.
func Open(path string, opts Options) (*Bolt, error) {
	if err := withFaults(func() error { return preflight(path, opts) }); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	var b *Bolt
	err := withFaults(func() (err error) {
		var db *bolt.DB
		defer func() {
			if p := recover(); p != nil {
				if db != nil {
					_ = db.Close()
				}
				err = fmt.Errorf("%w: reading %s failed (%v). %s", ErrDamaged, path, p, RestoreAdvice(path))
			}
		}()
		db, err = openDB(path, opts)
		if err != nil {
			return err
		}
		now := opts.Now
		if now == nil {
			now = time.Now
		}
		b = &Bolt{db: db, now: now}
		b.damage.onRecord = opts.OnDamagedRecord
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return b, nil
}

// openDB opens the bbolt file and brings it to the current schema.
func openDB(path string, opts Options) (*bolt.DB, error) {
	timeout := opts.OpenTimeout
	if timeout <= 0 {
		timeout = defaultOpenTimeout
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: timeout,
		NoSync:  opts.NoSync,
		// The array freelist (bbolt's default) measured faster than the hashmap one
		// for our small transactions: the hashmap sorts every free page id at each
		// commit to write the freelist.
		FreelistType: bolt.FreelistArrayType,
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: another panther-scim is probably running with this data file (gave up after %s): %w",
			ErrLocked, timeout, err)
	}
	if err != nil {
		return nil, err
	}
	if err := db.Update(prepare); err != nil {
		_ = db.Close()
		return nil, err
	}
	for _, finish := range []func(*bolt.DB) error{rewriteUsers, rewriteGroups, rebuildIndexes} {
		if err := finish(db); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return db, nil
}

// migrations[v] upgrades a file from schema v to v+1. Each runs inside the opening
// write transaction, so a failed migration leaves the file as it was.
var migrations = map[uint64]func(tx *bolt.Tx) error{
	1: markUsersForRewrite, // users compressed
	2: markUsersForRewrite, // a state header before each user's frame
	3: migrateTo4,          // compressed groups, a smaller email index, packed ids in the indexes
}

// prepare creates the buckets of a new file, or checks (and migrates) an existing one.
func prepare(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		// A file without meta is ours only if it is empty: never adopt somebody
		// else's bbolt file and write into it.
		if k, _ := tx.Cursor().First(); k != nil {
			return fmt.Errorf("not a panther-scim store (it has bucket %q but no %q)", k, bucketMeta)
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, u64(SchemaVersion))
	}
	v, ok := readU64(meta.Get(keySchema))
	if !ok {
		return fmt.Errorf("schema version missing or malformed in bucket %q", bucketMeta)
	}
	if v > SchemaVersion {
		return fmt.Errorf("store schema version %d is newer than this panther-scim supports (%d): use a newer release, or restore a backup made by this one", v, SchemaVersion)
	}
	for ; v < SchemaVersion; v++ {
		m := migrations[v]
		if m == nil {
			return fmt.Errorf("no migration from store schema version %d", v)
		}
		if err := m(tx); err != nil {
			return fmt.Errorf("migrate store schema %d to %d: %w", v, v+1, err)
		}
		if err := meta.Put(keySchema, u64(v+1)); err != nil {
			return err
		}
	}
	for _, name := range addedBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("store is missing bucket %q", name)
		}
	}
	return nil
}

// Close closes the file, waiting for open transactions to finish.
func (b *Bolt) Close() error { return b.db.Close() }

// Path is the file the store was opened from.
func (b *Bolt) Path() string { return b.db.Path() }

// View runs fn in a read-only transaction, a consistent snapshot. It returns ctx.Err()
// without calling fn when ctx is done, and fn's error as is.
func (b *Bolt) View(ctx context.Context, fn func(provision.ReadTx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer b.recoverPage(&err)
	return b.db.View(func(tx *bolt.Tx) error {
		return fn(&readTx{tx: tx, dmg: &b.damage})
	})
}

// Update runs fn in a read-write transaction and commits it when fn returns nil. An
// error (or panic) from fn rolls everything back and is returned (re-raised) as is; a
// commit that fails (disk full, I/O error) is an error wrapping ErrWriteFailed.
// When ctx is done before fn starts, including while Update waits for the single
// writer lock, it returns ctx.Err() without calling fn.
func (b *Bolt) Update(ctx context.Context, fn func(provision.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer b.recoverPage(&err)
	fnFailed := false
	err = b.db.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			fnFailed = true
			return err
		}
		err := fn(&writeTx{readTx: readTx{tx: tx, keys: map[string]userKeys{}, dmg: &b.damage}, now: b.now})
		fnFailed = err != nil
		return err
	})
	return b.committed(err, fnFailed)
}

// Backup writes a consistent copy of the whole store to w while other transactions go
// on, and returns the number of bytes written. The copy is a store file Open accepts.
func (b *Bolt) Backup(w io.Writer) (n int64, err error) {
	defer b.recoverPage(&err)
	err = b.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// BackupFile writes a consistent copy of the store to path (mode 0600). It writes a
// temporary file in the same directory, syncs it and renames it over path, so path
// holds either its old content or the complete copy.
func (b *Bolt) BackupFile(path string) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*") // created 0600
	if err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			err = fmt.Errorf("backup to %s: %w", path, err)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = b.Backup(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename itself durable.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
