package store

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// ErrDamaged wraps every sign that the store file is damaged: a file bbolt's own
// check rejects, a file shorter than its pages, a page bbolt panics on, a record that
// does not decode.
var ErrDamaged = errors.New("store file damaged")

// ErrEmpty is the error of Open for an existing file of 0 bytes: a store that lost
// everything (a truncation, a full disk at the wrong moment) must not be taken for a
// new one, which would drop its records and pending deprovisionings silently.
// Options.Init accepts it as a new store.
var ErrEmpty = errors.New("store file is empty")

// RestoreAdvice says what an operator can do about a damaged store file at path.
func RestoreAdvice(path string) string {
	return fmt.Sprintf("To recover: stop panther-scim, keep the damaged file for support (mv %[1]s %[1]s.damaged), "+
		"then either restore the newest backup to %[1]s (panther-scim backup wrote it; keep mode 0600) and start again, "+
		"or start with an empty store (panther-scim serve --init) and have the IdP push every user and group again: "+
		"existing Panther users are adopted by email, but deprovisionings pending in the damaged file are lost, "+
		"so check Panther for people who left. `panther-scim verify --data FILE` lists what is wrong with a file", path)
}

// minFileSize is the size of the smallest store file bbolt writes (two meta pages, a
// freelist and a root leaf, at 4 KiB pages); anything shorter is a cut file.
const minFileSize = 4 * 4096

// preflight checks the file at path before Open writes to it, in a read-only open:
// an existing empty file is ErrEmpty (unless init), a file shorter than the pages its
// header counts is cut short, and bbolt's own consistency check (every page reachable
// once, keys in order, page types right) must pass. All of it reads the mapped file
// with faults turned into panics, and a panic from a damaged page into ErrDamaged, so
// that a damaged file is a clear refusal instead of a crash with a Go trace. It costs
// one pass over the pages (about 0.1 s at 100,000 users) and decodes no record.
func preflight(path string, opts Options) (err error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil // a new store
	case err != nil:
		return err
	case fi.Size() == 0 && opts.Init:
		return nil
	case fi.Size() == 0:
		return fmt.Errorf("%w: %s has 0 bytes. If this is a new deployment, start once with `panther-scim serve --init`; "+
			"if it held data, it was truncated: %s", ErrEmpty, path, RestoreAdvice(path))
	case fi.Size() < minFileSize:
		return fmt.Errorf("%w: %s has %d bytes, less than the smallest store file (%d): it was cut short. %s",
			ErrDamaged, path, fi.Size(), minFileSize, RestoreAdvice(path))
	}
	defer catchDamage(&err, path)
	timeout := opts.OpenTimeout
	if timeout <= 0 {
		timeout = defaultOpenTimeout
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil // locked by another process: Open reports it
	}
	if err != nil {
		return fmt.Errorf("%w: bbolt cannot open it: %w. %s", ErrDamaged, err, RestoreAdvice(path))
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if size := tx.Size(); size > fi.Size() {
			return fmt.Errorf("%w: %s has %d bytes but its pages reach %d: it was cut short. %s",
				ErrDamaged, path, fi.Size(), size, RestoreAdvice(path))
		}
		var problems []string
		for e := range tx.Check() {
			if len(problems) < 10 {
				problems = append(problems, e.Error())
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%w: bbolt's consistency check of %s failed: %s. %s",
				ErrDamaged, path, strings.Join(problems, "; "), RestoreAdvice(path))
		}
		return nil
	})
}

// catchDamage, deferred by a function that reads the store file outside any caller's
// transaction function, turns a panic (a damaged page bbolt asserts on, or a memory
// fault on a page past the end of the file) into an ErrDamaged error. The function
// sets the goroutine to panic on memory faults for its duration.
func catchDamage(err *error, path string) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: reading %s failed (%v). %s", ErrDamaged, path, p, RestoreAdvice(path))
	}
}

// withFaults runs fn with memory faults turned into panics (debug.SetPanicOnFault) on
// this goroutine: a store file cut shorter than its mapping makes reads fault, which
// otherwise kills the process with no way to recover.
func withFaults(fn func() error) error {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return fn()
}

// damage remembers the damage met while serving: the records that did not decode
// (each reported once) and the first panic bbolt raised on a damaged page.
type damage struct {
	mu        sync.Mutex
	records   map[string]bool // kind + " " + key of each record that failed to decode
	lastError string
	pageErr   error
	onRecord  func(kind, key string, err error)
}

// maxDamagedRecords bounds the records remembered, reported and counted one by one.
const maxDamagedRecords = 10000

// record notes a record that failed to decode; it reports it (onRecord) the first
// time only.
func (d *damage) record(kind string, key []byte, err error) {
	if d == nil {
		return
	}
	k := kind + " " + string(key)
	d.mu.Lock()
	if d.records[k] || len(d.records) >= maxDamagedRecords {
		d.mu.Unlock()
		return
	}
	if d.records == nil {
		d.records = map[string]bool{}
	}
	d.records[k] = true
	d.lastError = err.Error()
	report := d.onRecord
	d.mu.Unlock()
	if report != nil {
		report(kind, string(key), err)
	}
}

// page notes a panic bbolt raised on a damaged page.
func (d *damage) page(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pageErr == nil {
		d.pageErr = err
	}
}

// recoverPage, deferred around a bbolt call that runs a caller's function, turns a
// panic raised inside bbolt (a damaged page: "assertion failed", "invalid page type",
// an index out of range on a garbled page) into an ErrDamaged error, and lets any
// other panic, the caller's own, go on as it was.
func (b *Bolt) recoverPage(err *error) {
	p := recover()
	if p == nil {
		return
	}
	if !panickedIn("go.etcd.io/bbolt") {
		panic(p)
	}
	e := fmt.Errorf("%w: bbolt failed on a damaged page (%v). %s", ErrDamaged, p, RestoreAdvice(b.Path()))
	b.damage.page(e)
	*err = e
}

// panickedIn says whether the panic being recovered was raised in a function of the
// package with the import path prefix pkg. Called from a deferred function, it reads
// the panicking goroutine's stack: the first frame past runtime.gopanic (and the
// runtime's own panic helpers) is where the panic started.
func panickedIn(pkg string) bool {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(2, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	inPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			inPanic = true
		case inPanic && strings.HasPrefix(f.Function, "runtime."):
			// panicIndex, sigpanic and the like: the fault's own frames
		case inPanic:
			return strings.HasPrefix(f.Function, pkg+".") || strings.HasPrefix(f.Function, pkg+"/")
		}
		if !more {
			return false
		}
	}
}
