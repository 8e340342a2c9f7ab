package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// victim is the userName of the user whose record or page the damage tests hit.
const victim = "victim-0025@example.com"

// damageFixture writes a closed store of 50 users (user 25 is the victim), two
// groups and a pending intent, and returns its path.
func damageFixture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	s := mustOpen(t, path, Options{})
	err := s.Update(bg, func(tx provision.Tx) error {
		var members []string
		for n := range 50 {
			u := testUser(n)
			if n == 25 {
				u.UserName, u.Email = victim, victim
			}
			u.Attributes = map[string]any{"displayName": strings.Repeat(fmt.Sprintf("User %d ", n), 8)}
			if err := tx.PutUser(u); err != nil {
				return err
			}
			members = append(members, u.ID)
		}
		for g, ms := range [][]string{members[:30], members[20:]} {
			if err := tx.PutGroup(provision.Group{ID: fmt.Sprintf("g-%d", g), DisplayName: fmt.Sprintf("Group %d", g), Members: ms}); err != nil {
				return err
			}
		}
		return tx.PutIntent(provision.Intent{UserID: testUser(3).ID, Gen: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// offsetOf returns where marker is in the file at path.
func offsetOf(t *testing.T, path string, marker string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(marker))
	if i < 0 || bytes.Count(b, []byte(marker)) != 2 { // the record's header and the userName index
		t.Fatalf("%q found %d times in the file", marker, bytes.Count(b, []byte(marker)))
	}
	return int64(bytes.LastIndex(b, []byte(marker)))
}

// recordOffset is where the victim's record header is: of the two copies of its
// userName in the file, the one followed by the compressed record (a zstd frame).
func recordOffset(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(victim))
		if j < 0 {
			t.Fatal("no record header for the victim")
		}
		at := i + j + len(victim)
		if bytes.Contains(b[at:at+16], []byte{0x28, 0xb5, 0x2f, 0xfd}) { // zstd magic
			return int64(i + j)
		}
		i = at
	}
}

func writeAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

// flipRecord flips 8 bytes inside the victim's compressed record.
func flipRecord(t *testing.T, path string) {
	t.Helper()
	off := recordOffset(t, path) + int64(len(victim)) + 24
	b := make([]byte, 8)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for i := range b {
		b[i] ^= 0xa5
	}
	writeAt(t, path, off, b)
}

// overwritePage replaces the page that holds the victim's record with fill.
func overwritePage(t *testing.T, path string, fill func([]byte)) {
	t.Helper()
	page := make([]byte, 4096)
	fill(page)
	writeAt(t, path, recordOffset(t, path)/4096*4096, page)
}

func garbage(b []byte) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

func truncateTo(t *testing.T, path string, size func(int64) int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size(fi.Size())); err != nil {
		t.Fatal(err)
	}
}

// A damaged file is refused at Open with an ErrDamaged (or ErrEmpty) error that says
// how to recover, never a panic: page-level damage and a cut file by the preflight.
func TestOpenRefusesDamagedFile(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   error
		says   string
	}{
		{"page overwritten with garbage", func(t *testing.T, p string) { overwritePage(t, p, garbage) }, ErrDamaged, "consistency check"},
		{"page zeroed", func(t *testing.T, p string) { overwritePage(t, p, func([]byte) {}) }, ErrDamaged, "consistency check"},
		{"cut in half", func(t *testing.T, p string) { truncateTo(t, p, func(n int64) int64 { return n / 2 }) }, ErrDamaged, "cut short"},
		{"cut to one page", func(t *testing.T, p string) { truncateTo(t, p, func(int64) int64 { return 4096 }) }, ErrDamaged, "cut short"},
		{"meta pages lost", func(t *testing.T, p string) { writeAt(t, p, 0, make([]byte, 8192)) }, ErrDamaged, "bbolt cannot open it"},
		{"empty", func(t *testing.T, p string) { truncateTo(t, p, func(int64) int64 { return 0 }) }, ErrEmpty, "serve --init"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := damageFixture(t)
			c.damage(t, path)
			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open accepted the damaged file")
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "To recover") {
				t.Errorf("Open = %v; want %v saying %q and how to recover", err, c.want, c.says)
			}
		})
	}
}

// An empty file is a new store with Init, and stays one.
func TestOpenEmptyWithInit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{Init: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(bg, func(tx provision.Tx) error { return tx.PutUser(testUser(1)) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, path, Options{}) // no longer empty
	defer s.Close()
	if err := s.Verify(bg); err != nil {
		t.Fatal(err)
	}
}

// Bytes flipped inside one record: the store opens and serves; the record is
// reported (Inspect, Health, OnDamagedRecord once) and skipped by scans, and the
// rest reads as written.
func TestDamagedRecordServed(t *testing.T) {
	path := damageFixture(t)
	flipRecord(t, path)
	var mu sync.Mutex
	var reported []string
	s, err := Open(path, Options{OnDamagedRecord: func(kind, key string, err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, kind+" "+key)
	}})
	if err != nil {
		t.Fatalf("Open refused a file with one damaged record: %v", err)
	}
	defer s.Close()
	id := testUser(25).ID
	rep, err := s.Inspect(bg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete || rep.DamagedCount != 1 || !strings.Contains(rep.Damaged[0], id) || len(rep.Problems) != 0 || rep.Users != 50 {
		t.Fatalf("Inspect = %+v", rep)
	}
	err = s.View(bg, func(tx provision.ReadTx) error {
		n := 0
		if err := tx.ScanUsers(0, func(provision.User) bool { n++; return true }); err != nil || n != 49 {
			t.Errorf("ScanUsers: %d users, %v", n, err)
		}
		if _, err := tx.User(id); !errors.Is(err, ErrDamaged) {
			t.Errorf("User(victim) = %v", err)
		}
		if _, err := tx.UserByUserName("user24@example.com"); err != nil {
			t.Error(err)
		}
		g, err := tx.Group("g-1")
		if err != nil || len(g.Members) != 30 {
			t.Errorf("group with the victim as a member: %v, %v", g.Members, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if h := s.Health(); h.DamagedRecords != 1 || h.DamagedPage != "" || len(reported) != 1 || reported[0] != "user "+id {
		t.Errorf("health %+v, reported %v", h, reported)
	}
	if err := s.Check(bg); err != nil {
		t.Errorf("Check with a damaged record: %v (the store serves)", err)
	}
	// Writes go on; the damaged record itself can be replaced (the IdP's next PUT).
	if err := s.Update(bg, func(tx provision.Tx) error { return tx.PutUser(testUser(99)) }); err != nil {
		t.Fatal(err)
	}
}

// A page damaged under a running store (after Open's check): reads and writes that
// reach it fail with ErrDamaged, in a caller's goroutine or in the batch committer's,
// and the process lives; Check reports it from then on. A panic of the caller's own
// still reaches the caller as a panic.
func TestDamagedPageWhileServing(t *testing.T) {
	path := damageFixture(t)
	s := mustOpen(t, path, Options{})
	defer s.Close()
	overwritePage(t, path, func([]byte) {}) // through the file: the mapping sees it

	err := s.View(bg, func(tx provision.ReadTx) error {
		return tx.ScanUsers(0, func(provision.User) bool { return true })
	})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "assertion failed") {
		t.Fatalf("scan over a zeroed page = %v", err)
	}
	err = s.Batch(bg, func(tx provision.Tx) error {
		u := testUser(25)
		u.UserName, u.Email = victim, victim
		u.Version = 2
		return tx.PutUser(u)
	})
	if !errors.Is(err, ErrDamaged) {
		t.Errorf("batch write to the damaged page = %v", err)
	}
	if err := s.Check(bg); !errors.Is(err, ErrDamaged) {
		t.Errorf("Check after a damaged page = %v", err)
	}
	if h := s.Health(); !strings.Contains(h.DamagedPage, "assertion failed") {
		t.Errorf("health %+v", h)
	}
	defer func() {
		if p := recover(); p != "mine" {
			t.Errorf("recovered %v, want the caller's own panic", p)
		}
	}()
	_ = s.View(bg, func(provision.ReadTx) error { panic("mine") })
}
