package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// The benchmarks run against stores of 1k and 100k users. Each store has n/50 groups of
// 100 members (2,000 groups and 200k memberships at 100k), so every user is in two
// groups. A fixture is built once per test binary run, with NoSync and large batched
// transactions, and shared: read benchmarks use it directly, write benchmarks a copy.
//
//	go test -run '^$' -bench . -benchtime 2s ./internal/store/

var benchSizes = []int{1_000, 100_000}

const membersPerGroup = 100

type fixture struct {
	once   sync.Once
	err    error
	path   string
	db     *Bolt
	users  int
	groups int
}

var (
	fixturesMu  sync.Mutex
	fixturesDir string
	fixtures    = map[int]*fixture{}
	copies      []*Bolt
)

func TestMain(m *testing.M) {
	code := m.Run()
	fixturesMu.Lock()
	for _, f := range fixtures {
		if f.db != nil {
			_ = f.db.Close()
		}
	}
	for _, s := range copies {
		_ = s.Close()
	}
	if fixturesDir != "" {
		_ = os.RemoveAll(fixturesDir)
	}
	fixturesMu.Unlock()
	os.Exit(code)
}

// benchID is shaped like the UUIDv7 ids the service mints: id order is creation order.
func benchID(kind byte, n int) string {
	return fmt.Sprintf("0190a000-0000-7%03x-8000-%012d", kind, n)
}

func benchUser(n int) provision.User {
	mail := fmt.Sprintf("user%d@example.com", n)
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
	return provision.User{
		ID:         benchID('u', n),
		UserName:   fmt.Sprintf("User%d@Example.com", n),
		ExternalID: fmt.Sprintf("00u%d", n/2), // shared by pairs: a non-unique lookup
		Active:     true,
		Email:      mail,
		Attributes: map[string]any{
			"displayName": fmt.Sprintf("User Number %d", n),
			"name":        map[string]any{"givenName": "User", "familyName": fmt.Sprintf("Number %d", n), "formatted": fmt.Sprintf("User Number %d", n)},
			"emails":      []any{map[string]any{"value": mail, "type": "work", "primary": true}},
			"title":       "Engineer",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{
				"department": fmt.Sprintf("Dept %d", n%40), "employeeNumber": fmt.Sprint(n),
			},
		},
		Created:      t,
		LastModified: t,
		Version:      1,
		Panther:      provision.PantherLink{ID: fmt.Sprintf("p-%d", n), Email: mail, GivenName: "User", FamilyName: fmt.Sprintf("Number %d", n), RoleID: "role-analyst"},
	}
}

// benchMembers gives group g the users numbered x*7919 mod users for x in
// [50g, 50g+100): multiplying by a number prime to users is a bijection, so every user
// is in exactly two groups, and a group's members are spread over the whole id range.
func benchMembers(g, users int) []string {
	ms := make([]string, 0, membersPerGroup)
	for x := g * membersPerGroup / 2; len(ms) < membersPerGroup; x++ {
		ms = append(ms, benchID('u', (x*7919)%users))
	}
	return ms
}

// loadFixture returns the shared store of n users, building it on first use.
func loadFixture(b *testing.B, n int) *fixture {
	b.Helper()
	fixturesMu.Lock()
	if fixturesDir == "" {
		dir, err := os.MkdirTemp("", "panther-scim-store-bench-")
		if err != nil {
			fixturesMu.Unlock()
			b.Fatal(err)
		}
		fixturesDir = dir
	}
	f := fixtures[n]
	if f == nil {
		f = &fixture{path: filepath.Join(fixturesDir, fmt.Sprintf("users-%d.db", n)), users: n, groups: n / 50}
		fixtures[n] = f
	}
	fixturesMu.Unlock()
	f.once.Do(func() {
		start := time.Now()
		f.db, f.err = buildFixture(f)
		b.Logf("built %d users, %d groups, %d memberships in %v", f.users, f.groups, f.groups*membersPerGroup, time.Since(start).Round(time.Millisecond))
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f
}

func buildFixture(f *fixture) (*Bolt, error) {
	s, err := Open(f.path, Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	const batch = 10_000
	for lo := 0; lo < f.users; lo += batch {
		err := s.Update(bg, func(tx provision.Tx) error {
			for n := lo; n < min(lo+batch, f.users); n++ {
				if err := tx.PutUser(benchUser(n)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// bbolt splits nodes only at commit, so many random inserts into one transaction
	// pile into few nodes and cost O(k²) in memmove: keep membership batches small.
	const groupBatch = 50
	for lo := 0; lo < f.groups; lo += groupBatch {
		err := s.Update(bg, func(tx provision.Tx) error {
			for g := lo; g < min(lo+groupBatch, f.groups); g++ {
				err := tx.PutGroup(provision.Group{
					ID: benchID('g', g), DisplayName: fmt.Sprintf("Team %d", g), ExternalID: fmt.Sprintf("00g%d", g),
					Members: benchMembers(g, f.users), Version: 1,
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// privateCopy returns a writable copy of the fixture, made once per benchmark and size
// and kept for all of that benchmark's rounds.
func privateCopy(b *testing.B, n int, cache *sync.Map) *Bolt {
	b.Helper()
	if s, ok := cache.Load(n); ok {
		return s.(*Bolt)
	}
	f := loadFixture(b, n)
	path := filepath.Join(fixturesDir, fmt.Sprintf("copy-%s-%d.db", strings.ReplaceAll(b.Name(), "/", "_"), n))
	if err := f.db.BackupFile(path); err != nil {
		b.Fatal(err)
	}
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	cache.Store(n, s)
	fixturesMu.Lock()
	copies = append(copies, s) // kept for the later rounds; TestMain closes it
	fixturesMu.Unlock()
	return s
}

func forSizes(b *testing.B, fn func(b *testing.B, n int)) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) { fn(b, n) })
	}
}

func BenchmarkUserByUserName(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		s := loadFixture(b, n).db
		names := make([]string, 1024)
		for i := range names {
			names[i] = strings.ToUpper(benchUser((i * 7919) % n).UserName) // any case
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			err := s.View(bg, func(tx provision.ReadTx) error {
				_, err := tx.UserByUserName(names[i%len(names)])
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUsersByExternalID(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		s := loadFixture(b, n).db
		exts := make([]string, 1024)
		for i := range exts {
			exts[i] = benchUser((i * 7919) % n).ExternalID
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			err := s.View(bg, func(tx provision.ReadTx) error {
				us, err := tx.UsersByExternalID(exts[i%len(exts)])
				if err == nil && len(us) == 0 {
					err = fmt.Errorf("no users for %q", exts[i%len(exts)])
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkScanUsersPage reads a page of 100 at offset 50,000 (SCIM startIndex 50,001),
// or at the middle of the smaller store.
func BenchmarkScanUsersPage(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		s := loadFixture(b, n).db
		offset := min(50_000, n/2)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			got := 0
			err := s.View(bg, func(tx provision.ReadTx) error {
				return tx.ScanUsers(offset, func(provision.User) bool { got++; return got < 100 })
			})
			if err != nil || got != 100 {
				b.Fatalf("page: %d users, %v", got, err)
			}
		}
	})
}

// BenchmarkScanUsersFull decodes every user, as a filter without an index (co, sw) does.
func BenchmarkScanUsersFull(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		s := loadFixture(b, n).db
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			got := 0
			err := s.View(bg, func(tx provision.ReadTx) error {
				return tx.ScanUsers(0, func(u provision.User) bool {
					if strings.Contains(u.UserName, "nomatch") {
						b.Error("unexpected match")
					}
					got++
					return true
				})
			})
			if err != nil || got != n {
				b.Fatalf("scan: %d users, %v", got, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/user")
	})
}

func BenchmarkGroupIDsOfUser(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		s := loadFixture(b, n).db
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			err := s.View(bg, func(tx provision.ReadTx) error {
				ids, err := tx.GroupIDsOfUser(benchID('u', (i*7919)%n))
				if err == nil && len(ids) != 2 {
					err = fmt.Errorf("user in %d groups, want 2", len(ids))
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

var putUserCopies sync.Map

// BenchmarkPutUser creates one user per Update. "nosync" is the store's own cost;
// "fsync" adds the commit's fsync, which is what a real create pays.
func BenchmarkPutUser(b *testing.B) {
	next := 10_000_000
	forSizes(b, func(b *testing.B, n int) {
		s := privateCopy(b, n, &putUserCopies)
		for _, mode := range []string{"nosync", "fsync"} {
			b.Run(mode, func(b *testing.B) {
				s.db.NoSync = mode == "nosync"
				defer func() { s.db.NoSync = true }()
				for i := 0; i < b.N; i++ {
					next++
					if err := s.Update(bg, func(tx provision.Tx) error { return tx.PutUser(benchUser(next)) }); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

var putGroupCopies sync.Map

// BenchmarkPutGroupAdd10k adds 10,000 members to an existing 100-member group in one
// transaction (an Okta Group Push or Entra PATCH of a large group), reading the group
// first as a PATCH does. The group is put back between operations, off the clock.
func BenchmarkPutGroupAdd10k(b *testing.B) {
	const add = 10_000
	forSizes(b, func(b *testing.B, n int) {
		if n < 2*add {
			b.Skipf("needs at least %d users", 2*add)
		}
		s := privateCopy(b, n, &putGroupCopies)
		gid := benchID('g', 0)
		original := benchMembers(0, n)
		in := make(map[string]bool, len(original))
		for _, m := range original {
			in[m] = true
		}
		var extra []string
		for u := 0; len(extra) < add; u++ {
			if id := benchID('u', u*7); !in[id] {
				extra = append(extra, id)
			}
		}
		restore := func() {
			err := s.Update(bg, func(tx provision.Tx) error {
				g, err := tx.Group(gid)
				if err != nil {
					return err
				}
				g.Members = original
				return tx.PutGroup(g)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		addExtra := func() {
			err := s.Update(bg, func(tx provision.Tx) error {
				g, err := tx.Group(gid)
				if err != nil {
					return err
				}
				g.Members = append(g.Members, extra...)
				g.Version++
				return tx.PutGroup(g)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		// One round off the clock first: the copy's pages are cold (first mmap faults)
		// and the first run is dominated by that, not by PutGroup.
		addExtra()
		restore()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			addExtra()
			b.StopTimer()
			restore()
			b.StartTimer()
		}
	})
}
