package store

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// inChild runs the calling test again in a child process of the test binary and
// reports its outcome, and says true in that child, where the test does its work.
// A test that changes process-wide state (a resource limit) runs there, away from
// the other tests.
func inChild(t *testing.T) bool {
	t.Helper()
	const env = "PANTHER_SCIM_TEST_CHILD"
	if os.Getenv(env) == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	return false
}

// setFileSizeLimit sets this process's RLIMIT_FSIZE soft limit: writes that would
// make a file larger fail with EFBIG, as they fail with ENOSPC on a full disk (Go
// ignores the SIGXFSZ that comes with it).
func setFileSizeLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = min(n, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
}

// A commit the disk refuses is an ErrWriteFailed error, counted in Health; nothing
// of it is written, the store keeps serving reads and stays consistent, and Check
// reports the failure until a write succeeds again.
func TestWriteFailure(t *testing.T) {
	if !inChild(t) {
		return
	}
	s := openTemp(t, Options{})
	defer s.Close()
	put := func(n int) error {
		return s.Update(bg, func(tx provision.Tx) error { return tx.PutUser(testUser(n)) })
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(bg); err != nil {
		t.Fatalf("Check on a healthy store: %v", err)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	setFileSizeLimit(t, uint64(fi.Size())) // the file cannot grow any more: a full disk
	failed := -1
	for n := 1; n < 5000 && failed < 0; n++ {
		if err := put(n); err != nil {
			if !errors.Is(err, ErrWriteFailed) || !errors.Is(err, provision.ErrStoreWrite) {
				t.Fatalf("put %d: %v does not wrap ErrWriteFailed", n, err)
			}
			failed = n
		}
	}
	if failed < 0 {
		t.Fatal("no write failed with the file unable to grow")
	}
	h := s.Health()
	if h.WriteErrors != 1 || !h.WritesFailing || !strings.Contains(h.LastWriteError, "file too large") || h.LastWriteErrorAt.IsZero() {
		t.Errorf("health after a failed commit: %+v", h)
	}
	// A small write may still fit in a page the file already has; with no room at
	// all, Check's own probe write fails too.
	setFileSizeLimit(t, 0)
	if err := s.Check(bg); !errors.Is(err, ErrWriteFailed) {
		t.Errorf("Check while writes fail = %v", err)
	}
	// A caller's own error is not a store failure.
	mine := errors.New("mine")
	if err := s.Update(bg, func(provision.Tx) error { return mine }); err != mine || s.Health().WriteErrors != 2 {
		t.Errorf("Update with a failing fn = %v, health %+v (the failed Check counts, fn's error does not)", err, s.Health())
	}
	// Reads go on, the failed record is not there, and the file is consistent.
	if err := s.View(bg, func(tx provision.ReadTx) error {
		if _, err := tx.User(testUser(failed).ID); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("the user of the failed commit: %v", err)
		}
		_, err := tx.User(testUser(0).ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(bg); err != nil {
		t.Fatal(err)
	}

	setFileSizeLimit(t, ^uint64(0)) // room again
	if err := s.Check(bg); err != nil {
		t.Fatalf("Check once writes work again: %v", err)
	}
	if h := s.Health(); h.WritesFailing || h.WriteErrors != 2 {
		t.Errorf("health after recovery: %+v", h)
	}
	if err := put(failed); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(bg); err != nil {
		t.Fatal(err)
	}
}

// Check costs no write while the store is healthy.
func TestCheckDoesNotWrite(t *testing.T) {
	s := openTemp(t, Options{})
	defer s.Close()
	writes := func() int64 { st := s.db.Stats(); return st.TxStats.GetWrite() }
	before := writes()
	for range 100 {
		if err := s.Check(bg); err != nil {
			t.Fatal(err)
		}
	}
	if n := writes() - before; n != 0 {
		t.Errorf("100 Checks wrote %d pages", n)
	}
}
