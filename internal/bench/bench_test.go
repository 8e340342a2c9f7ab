package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
	"github.com/panther-scim/panther-scim/scim"
)

// The benchmarks drive the SCIM handler in process (no network) over a store of 1k or
// 100k users, with 2,000 groups of 100 at 100k (200k memberships; 20 groups at 1k),
// every user in two groups and linked to a user of the Panther double, which runs on
// a loopback port with no injected latency. Fixtures are built on first use, once per
// test binary, so `go test ./...` (which runs no benchmark) builds nothing.
//
//	go test ./internal/bench -run '^$' -bench . -benchtime 2s
//
// Write benchmarks work on a private copy of the fixture opened with fsync, as in
// production. Custom metrics: cpu-ns/op (CPU time of this process, steadier than wall
// time on a shared machine), panther-calls/op (calls the bridge made), store-tx/op
// (Update transactions), store-batched/op (Batch calls, which share transactions),
// panther-ms/op (time spent inside Panther calls, summed over concurrent ones),
// ns/user for full scans.

var sizes = []int{1_000, 100_000}

type fixture struct {
	once sync.Once
	err  error
	path string
	fake *pantherfake.Server
	url  string
}

var (
	fixMu    sync.Mutex
	fixDir   string
	fixtures = map[int]*fixture{}
	cleanups []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	fixMu.Lock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	if fixDir != "" {
		_ = os.RemoveAll(fixDir)
	}
	fixMu.Unlock()
	os.Exit(code)
}

func atExit(f func()) {
	fixMu.Lock()
	cleanups = append(cleanups, f)
	fixMu.Unlock()
}

// loadFixture builds (once) the store file and the Panther double of n users.
func loadFixture(b *testing.B, n int) *fixture {
	b.Helper()
	fixMu.Lock()
	if fixDir == "" {
		d, err := os.MkdirTemp("", "panther-scim-bench-")
		if err != nil {
			fixMu.Unlock()
			b.Fatal(err)
		}
		fixDir = d
	}
	f := fixtures[n]
	if f == nil {
		f = &fixture{path: filepath.Join(fixDir, fmt.Sprintf("users-%d.db", n))}
		fixtures[n] = f
	}
	fixMu.Unlock()
	f.once.Do(func() {
		start := time.Now()
		f.fake = pantherfake.New(pantherfake.Options{Seed: 1})
		f.err = Build(f.path, Spec{Users: n, Groups: n / 50, Mapping: Mapping(), Panther: f.fake})
		if f.err != nil {
			return
		}
		var stop func()
		f.url, stop, f.err = f.fake.Start()
		if f.err == nil {
			atExit(stop)
		}
		b.Logf("fixture: %d users, %d groups, %d memberships in %v", n, n/50, n*2, time.Since(start).Round(time.Millisecond))
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f
}

// env is the SCIM handler over one store.
type env struct {
	h     http.Handler
	svc   *provision.Service
	store *countingStore
	calls *timedPanther
	fake  *pantherfake.Server
	n     int
}

var envs sync.Map // "read/<n>" or "<benchmark>/<n>" -> *env

// readEnv is shared by the read-only benchmarks of one size.
func readEnv(b *testing.B, n int) *env {
	return cachedEnv(b, n, "read", false)
}

// writeEnv is a private copy of the fixture for one write benchmark, kept across its
// rounds, opened with fsync on commit.
func writeEnv(b *testing.B, n int) *env {
	name, _, _ := strings.Cut(b.Name(), "/")
	return cachedEnv(b, n, name, true)
}

func cachedEnv(b *testing.B, n int, key string, private bool) *env {
	b.Helper()
	k := fmt.Sprintf("%s/%d", key, n)
	if e, ok := envs.Load(k); ok {
		return e.(*env)
	}
	f := loadFixture(b, n)
	path := f.path
	opts := store.Options{NoSync: true}
	if private {
		path = filepath.Join(fixDir, strings.ReplaceAll(k, "/", "-")+".db")
		if err := copyFile(f.path, path); err != nil {
			b.Fatal(err)
		}
		opts.NoSync = false
	}
	st, err := store.Open(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	atExit(func() { _ = st.Close() })
	client, err := panther.New(panther.Config{URL: f.url, Token: pantherfake.DefaultAPIKey, RatePerSecond: -1, MaxConcurrent: 8})
	if err != nil {
		b.Fatal(err)
	}
	e := &env{store: &countingStore{Store: st}, calls: &timedPanther{Panther: client}, fake: f.fake, n: n}
	e.svc = provision.New(e.store, e.calls, provision.Options{Mapping: Mapping(), SyncConcurrency: 8})
	e.h, err = scim.NewHandler(e.svc, scim.StoreRecords(e.store), scim.Options{BaseURL: "https://scim.example.com/scim/v2"})
	if err != nil {
		b.Fatal(err)
	}
	envs.Store(k, e)
	return e
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return err
	}
	return dst.Close()
}

// do serves one request in process and fails unless it answers want.
func (e *env) do(b *testing.B, method, target string, body []byte, want int) []byte {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d, want %d: %.300s", method, target, rec.Code, want, rec.Body.String())
	}
	return rec.Body.Bytes()
}

// counts are the env's counters at one moment.
type counts struct{ calls, updates, batches, pantherNS int64 }

func (e *env) marks() counts {
	return counts{e.calls.count.Load(), e.store.updates.Load(), e.store.batches.Load(), e.calls.ns.Load()}
}

func (c counts) minus(d counts) counts {
	return counts{c.calls - d.calls, c.updates - d.updates, c.batches - d.batches, c.pantherNS - d.pantherNS}
}

// report adds the Panther calls, Panther time, transactions and batched writes per
// operation, from counters that moved by d.
func report(b *testing.B, d counts) {
	ops := float64(b.N)
	b.ReportMetric(float64(d.calls)/ops, "panther-calls/op")
	b.ReportMetric(float64(d.updates)/ops, "store-tx/op")
	b.ReportMetric(float64(d.batches)/ops, "store-batched/op")
	if d.pantherNS > 0 {
		b.ReportMetric(float64(d.pantherNS)/ops/1e6, "panther-ms/op")
	}
}

func forSizes(b *testing.B, fn func(b *testing.B, n int)) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) { fn(b, n) })
	}
}

// cpuClock reports, as cpu-ns/op, the CPU time this process used from now until the
// returned function is called: on a shared machine it moves less than wall time. It
// includes the Panther double's work, which runs in this process.
func cpuClock(b *testing.B) (stop func()) {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sample spreads lookups over the whole store so that they do not hit one hot page.
func sample(n, i int) int { return (i * 7919) % n }

func filterURL(filter string, extra string) string {
	return "/Users?filter=" + url.QueryEscape(filter) + extra
}

// BenchmarkFilterUserName is Okta's lookup before a create: userName eq, in a case
// other than the stored one, with startIndex=1&count=100.
func BenchmarkFilterUserName(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		e := readEnv(b, n)
		targets := make([]string, 1024)
		for i := range targets {
			targets[i] = filterURL(fmt.Sprintf("userName eq %q", strings.ToUpper(UserName(sample(n, i)))), "&startIndex=1&count=100")
		}
		if body := e.do(b, "GET", targets[1], nil, 200); !bytes.Contains(body, []byte(`"totalResults":1`)) {
			b.Fatalf("lookup found no single user: %.300s", body)
		}
		b.ResetTimer()
		stop := cpuClock(b)
		for i := 0; i < b.N; i++ {
			e.do(b, "GET", targets[i%len(targets)], nil, 200)
		}
		stop()
	})
}

// BenchmarkFilterExternalID is Entra's lookup: externalId eq.
func BenchmarkFilterExternalID(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		e := readEnv(b, n)
		targets := make([]string, 1024)
		for i := range targets {
			targets[i] = filterURL(fmt.Sprintf("externalId eq %q", ExternalID(sample(n, i))), "")
		}
		if body := e.do(b, "GET", targets[1], nil, 200); !bytes.Contains(body, []byte(`"totalResults":1`)) {
			b.Fatalf("lookup found no single user: %.300s", body)
		}
		b.ResetTimer()
		stop := cpuClock(b)
		for i := 0; i < b.N; i++ {
			e.do(b, "GET", targets[i%len(targets)], nil, 200)
		}
		stop()
	})
}

// BenchmarkListPage reads a page of 100 users unfiltered: at the start, and at the
// middle (startIndex 50,001 of 100k; 501 of 1k).
func BenchmarkListPage(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		e := readEnv(b, n)
		for _, start := range []int{1, n/2 + 1} {
			b.Run(fmt.Sprintf("start=%d", start), func(b *testing.B) {
				target := fmt.Sprintf("/Users?startIndex=%d&count=100", start)
				if body := e.do(b, "GET", target, nil, 200); !bytes.Contains(body, []byte(`"itemsPerPage":100`)) {
					b.Fatalf("short page: %.300s", body)
				}
				b.ResetTimer()
				stop := cpuClock(b)
				for i := 0; i < b.N; i++ {
					e.do(b, "GET", target, nil, 200)
				}
				stop()
			})
		}
	})
}

// BenchmarkFilterContainsScan is a filter no index serves (userName co), which
// decodes and matches every user.
func BenchmarkFilterContainsScan(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		e := readEnv(b, n)
		target := filterURL(`userName co "nomatch"`, "")
		b.ResetTimer()
		stop := cpuClock(b)
		for i := 0; i < b.N; i++ {
			e.do(b, "GET", target, nil, 200)
		}
		stop()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/user")
	})
}

var created, patched atomic.Int64

// BenchmarkCreateUser is an Okta POST /Users: store write, Panther lookup by email and
// invite, link saved.
func BenchmarkCreateUser(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		e := writeEnv(b, n)
		m0 := e.marks()
		b.ResetTimer()
		stop := cpuClock(b)
		for i := 0; i < b.N; i++ {
			k := created.Add(1)
			body, _ := json.Marshal(map[string]any{
				"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
				"userName": fmt.Sprintf("new%d@example.com", k), "externalId": fmt.Sprintf("00n%d", k),
				"name":   map[string]any{"givenName": "New", "familyName": fmt.Sprintf("User%d", k)},
				"emails": []any{map[string]any{"value": fmt.Sprintf("new%d@example.com", k), "type": "work", "primary": true}},
				"active": true,
			})
			e.do(b, "POST", "/Users", body, http.StatusCreated)
		}
		b.StopTimer()
		stop()
		report(b, e.marks().minus(m0))
	})
}

// BenchmarkPatchUser PATCHes a user: "title" changes nothing in Panther (no call);
// "name" changes the given name (one updateUser).
func BenchmarkPatchUser(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		e := writeEnv(b, n)
		for _, kind := range []string{"title", "name"} {
			b.Run(kind, func(b *testing.B) {
				m0 := e.marks()
				b.ResetTimer()
				stop := cpuClock(b)
				for i := 0; i < b.N; i++ {
					// A value never sent before: a PATCH that changes nothing does nothing.
					k := patched.Add(1)
					op := map[string]any{"op": "replace", "path": "title", "value": fmt.Sprintf("Engineer %d", k)}
					if kind == "name" {
						op = map[string]any{"op": "replace", "path": "name.givenName", "value": fmt.Sprintf("Given%d", k)}
					}
					body, _ := json.Marshal(map[string]any{
						"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
						"Operations": []any{op},
					})
					e.do(b, "PATCH", "/Users/"+UserID(sample(n, i)), body, 200)
				}
				b.StopTimer()
				stop()
				report(b, e.marks().minus(m0))
			})
		}
	})
}

// BenchmarkPatchGroupAdd10k PATCHes 10,000 members into a group of 100 in one
// request. "unmapped": no rule names the group, so no role changes and no Panther call:
// the whole time is bridge time. "mapped": the group maps to Analyst, so each new member
// changes role: one updateUser each, against the double with no latency. The group is
// put back (off the clock) after each round.
func BenchmarkPatchGroupAdd10k(b *testing.B) {
	const add = 10_000
	forSizes(b, func(b *testing.B, n int) {
		if n < 2*add {
			b.Skipf("needs at least %d users", 2*add)
		}
		e := writeEnv(b, n)
		for _, kind := range []string{"unmapped", "mapped"} {
			b.Run(kind, func(b *testing.B) {
				g := 2 // Team 0002: no rule
				if kind == "mapped" {
					g = 1 // Team 0001: Analyst
				}
				gid := GroupID(g)
				in := map[int]bool{}
				for _, m := range Members(g, n, 100) {
					in[m] = true
				}
				for _, m := range Members(0, n, 100) {
					in[m] = true // Admins stay Admins: their role would not change
				}
				var values []any
				for u := 1; len(values) < add; u++ {
					m := (u * 9973) % n
					if !in[m] {
						in[m] = true
						values = append(values, map[string]any{"value": UserID(m)})
					}
				}
				body, _ := json.Marshal(map[string]any{
					"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
					"Operations": []any{map[string]any{"op": "add", "path": "members", "value": values}},
				})
				orig, err := e.svc.GetGroup(context.Background(), gid)
				if err != nil {
					b.Fatal(err)
				}
				var moved counts
				var cpu time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					m0 := e.marks()
					cpu0 := cpuTime()
					e.do(b, "PATCH", "/Groups/"+gid, body, 204)
					cpu += cpuTime() - cpu0
					d := e.marks().minus(m0)
					moved = counts{moved.calls + d.calls, moved.updates + d.updates, moved.batches + d.batches, moved.pantherNS + d.pantherNS}
					e.putBack(b, orig)
				}
				b.StopTimer()
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
				report(b, moved)
			})
		}
	})
}

// BenchmarkPatchGroupRemoveOkta removes the 100 members of an unmapped group the way
// Okta's Group Push does: one remove operation per member, with the path
// members[value eq "<id>"]. No role changes, so no Panther call: all bridge time. The
// group is put back (off the clock) after each round.
func BenchmarkPatchGroupRemoveOkta(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		e := writeEnv(b, n)
		gid := GroupID(2) // Team 0002: no rule
		orig, err := e.svc.GetGroup(context.Background(), gid)
		if err != nil {
			b.Fatal(err)
		}
		var ops []any
		for _, m := range orig.Members {
			ops = append(ops, map[string]any{"op": "remove", "path": fmt.Sprintf("members[value eq %q]", m)})
		}
		body, _ := json.Marshal(map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": ops,
		})
		var cpu time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			cpu0 := cpuTime()
			e.do(b, "PATCH", "/Groups/"+gid, body, 204)
			cpu += cpuTime() - cpu0
			e.putBack(b, orig)
		}
		b.StopTimer()
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	})
}

// putBack restores a group as it was before a benchmark's PATCH, off the clock.
func (e *env) putBack(b *testing.B, orig provision.Group) {
	b.StopTimer()
	defer b.StartTimer()
	_, err := e.svc.UpdateGroup(context.Background(), orig.ID, 0, func(provision.Group) (provision.GroupFields, error) {
		return provision.GroupFields{DisplayName: orig.DisplayName, ExternalID: orig.ExternalID, Members: orig.Members}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// countingStore counts read-write transactions (Update) and Batch calls.
type countingStore struct {
	provision.Store
	updates atomic.Int64
	batches atomic.Int64
}

func (s *countingStore) Update(ctx context.Context, fn func(provision.Tx) error) error {
	s.updates.Add(1)
	return s.Store.Update(ctx, fn)
}

// Batch counts calls, not the (fewer) transactions they share.
func (s *countingStore) Batch(ctx context.Context, fn func(provision.Tx) error) error {
	s.batches.Add(1)
	return s.Store.Batch(ctx, fn)
}

// timedPanther counts Panther calls and sums the time spent in them.
type timedPanther struct {
	provision.Panther
	count atomic.Int64
	ns    atomic.Int64
}

func (p *timedPanther) time(start time.Time) {
	p.count.Add(1)
	p.ns.Add(int64(time.Since(start)))
}

func (p *timedPanther) UserByEmail(ctx context.Context, email string) (provision.PantherUser, error) {
	defer p.time(time.Now())
	return p.Panther.UserByEmail(ctx, email)
}

func (p *timedPanther) InviteUser(ctx context.Context, in provision.InviteInput) (provision.PantherUser, error) {
	defer p.time(time.Now())
	return p.Panther.InviteUser(ctx, in)
}

func (p *timedPanther) UpdateUser(ctx context.Context, in provision.UpdateInput) (provision.PantherUser, error) {
	defer p.time(time.Now())
	return p.Panther.UpdateUser(ctx, in)
}

func (p *timedPanther) DeleteUser(ctx context.Context, id string) error {
	defer p.time(time.Now())
	return p.Panther.DeleteUser(ctx, id)
}

func (p *timedPanther) UserByID(ctx context.Context, id string) (provision.PantherUser, error) {
	defer p.time(time.Now())
	return p.Panther.UserByID(ctx, id)
}

func (p *timedPanther) RoleByName(ctx context.Context, name string) (provision.PantherRole, error) {
	defer p.time(time.Now())
	return p.Panther.RoleByName(ctx, name)
}

func (p *timedPanther) RoleByID(ctx context.Context, id string) (provision.PantherRole, error) {
	defer p.time(time.Now())
	return p.Panther.RoleByID(ctx, id)
}

// BenchmarkReconcile is a full reconcile with no drift (a dry run: nothing to repair)
// against the double on loopback at L = 0: one users listing of n users and one read
// of every record.
func BenchmarkReconcile(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		e := readEnv(b, n)
		ctx := context.Background()
		if _, err := e.svc.Reconcile(ctx, true); err != nil { // roles resolved, fixture warm
			b.Fatal(err)
		}
		stop := cpuClock(b)
		for b.Loop() {
			plan, err := e.svc.Reconcile(ctx, true)
			if err != nil || len(plan.Drift) != 0 {
				b.Fatalf("%d drift, %v", len(plan.Drift), err)
			}
		}
		stop()
	})
}
