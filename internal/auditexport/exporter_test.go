package auditexport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
)

var bg = context.Background()

const deadline = 15 * time.Second

// counts is an Observer that remembers what it was told.
type counts struct {
	mu       sync.Mutex
	exported int
	failures map[string]int
}

func (c *counts) Exported(n int) { c.mu.Lock(); c.exported += n; c.mu.Unlock() }
func (c *counts) ExportFailed(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures == nil {
		c.failures = map[string]int{}
	}
	c.failures[reason]++
}
func (c *counts) get() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := map[string]int{}
	for k, v := range c.failures {
		f[k] = v
	}
	return c.exported, f
}

// rig is a store with the export on, the Panther double with its HTTP source, and an
// exporter between them that the test starts.
type rig struct {
	t     *testing.T
	st    *store.Bolt
	fake  *pantherfake.Server
	url   string
	obs   *counts
	added []string // event ids appended, in order
}

var sharedSecret = Auth{Method: AuthSharedSecret, Header: "X-Panther-Scim-Secret", Secret: "s3cret-0123456789"}

func newRig(t *testing.T, source pantherfake.HTTPSourceAuth) *rig {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "scim.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.SetAuditExport(true); err != nil {
		t.Fatal(err)
	}
	fake := pantherfake.New(pantherfake.Options{Seed: 1, HTTPSource: source, RetryAfter: -1})
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	return &rig{t: t, st: st, fake: fake, url: srv.URL + pantherfake.HTTPSourcePath + "audit", obs: &counts{}}
}

func sourceAuthOf(a Auth) pantherfake.HTTPSourceAuth {
	return pantherfake.HTTPSourceAuth{Method: a.Method, Header: a.Header, Algorithm: a.Algorithm, Secret: a.Secret}
}

// add appends n user.update entries in one transaction.
func (r *rig) add(n int, size int) {
	r.t.Helper()
	err := r.st.Update(bg, func(tx provision.Tx) error {
		for range n {
			i := len(r.added)
			id := fmt.Sprintf("evt-%05d", i)
			r.added = append(r.added, id)
			e := provision.AuditEntry{EventID: id, Action: "user.update", Resource: "User", ID: fmt.Sprintf("u%d", i),
				After: map[string]string{"userName": fmt.Sprintf("user%d@example.com", i), "givenName": strings.Repeat("x", size)}}
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
}

// run starts an exporter with fast retries and stops it when the test ends.
func (r *rig) run(q Queue, auth Auth, tune func(*Options)) *Exporter {
	r.t.Helper()
	if q == nil {
		q = r.st
	}
	opts := Options{URL: r.url, Auth: auth, Interval: 5 * time.Millisecond, MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond, Observer: r.obs}
	if tune != nil {
		tune(&opts)
	}
	ex, err := New(q, opts)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { defer close(done); ex.Run(ctx) }()
	r.t.Cleanup(func() { cancel(); <-done })
	return ex
}

// received is the event ids the source accepted, in order, duplicates included.
func (r *rig) received() []string {
	var ids []string
	for _, e := range r.fake.SourceEvents() {
		id, _ := e["eventId"].(string)
		ids = append(ids, id)
	}
	return ids
}

func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (r *rig) backlog() int {
	n, _, err := r.st.ExportBacklog(bg)
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

// dedup keeps the first copy of each id, as a reader of an at-least-once stream does.
func dedup(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExportInOrderOnce(t *testing.T) {
	for _, auth := range []Auth{
		sharedSecret,
		{Method: AuthHMAC, Header: "X-Signature", Algorithm: "sha256", Secret: "hmac-key-0123456789"},
		{Method: AuthHMAC, Header: "X-Signature", Algorithm: "sha512", Secret: "hmac-key-0123456789"},
		{Method: AuthBearer, Secret: "bearer-0123456789"},
	} {
		t.Run(auth.Method+"/"+auth.Algorithm, func(t *testing.T) {
			r := newRig(t, sourceAuthOf(auth))
			r.add(700, 0)
			r.run(nil, auth, nil)
			r.waitFor("the first 700 events", func() bool { return len(r.received()) >= 700 })
			r.add(300, 0) // appended while it runs
			r.waitFor("1000 events", func() bool { n, _ := r.obs.get(); return n >= 1000 && r.backlog() == 0 })
			if got := r.received(); !equal(got, r.added) {
				t.Fatalf("received %d events (first %v), want the %d appended, in order, once", len(got), got[:3], len(r.added))
			}
			if reqs := r.fake.SourceRequests(); len(reqs) < 3 {
				t.Errorf("%d requests, want batches of at most 500", len(reqs))
			}
			if n, f := r.obs.get(); n != 1000 || len(f) != 0 {
				t.Errorf("observer: exported %d, failures %v", n, f)
			}
			ev := r.fake.SourceEvents()[0]
			if ev["action"] != "user.update" || ev["userName"] != "user0@example.com" || ev["time"] == nil {
				t.Errorf("first event = %v", ev)
			}
		})
	}
}

// A wrong secret is refused (401), counted as unauthorized and retried; nothing is
// lost: once the source takes the secret, everything arrives.
func TestExportWrongSecret(t *testing.T) {
	r := newRig(t, sourceAuthOf(sharedSecret))
	wrong := sharedSecret
	wrong.Secret = "not-the-secret"
	r.fake.SetHTTPSourceAuth(sourceAuthOf(wrong))
	r.add(10, 0)
	ex := r.run(nil, sharedSecret, nil)
	r.waitFor("three refusals", func() bool { _, f := r.obs.get(); return f[ReasonUnauthorized] >= 3 })
	if got := r.received(); len(got) != 0 || r.backlog() != 10 {
		t.Fatalf("received %v, backlog %d: a refused batch was taken off the queue", got, r.backlog())
	}
	if st := ex.Status(); st.LastFailureReason != ReasonUnauthorized || st.ConsecutiveFailures < 3 {
		t.Errorf("status = %+v", st)
	}
	for _, req := range r.fake.SourceRequests() {
		if req.Status != http.StatusUnauthorized {
			t.Errorf("request answered %d, want 401", req.Status)
		}
	}
	r.fake.SetHTTPSourceAuth(sourceAuthOf(sharedSecret))
	r.waitFor("delivery after the fix", func() bool { return r.backlog() == 0 })
	if got := r.received(); !equal(got, r.added) {
		t.Errorf("received %v, want %v", got, r.added)
	}
	if st := ex.Status(); st.ConsecutiveFailures != 0 || st.LastSuccess.IsZero() {
		t.Errorf("status after recovery = %+v", st)
	}
}

// A source down for a while loses nothing: events appended meanwhile wait in the
// queue and arrive, in order and once, when it is back.
func TestExportSourceDownThenBack(t *testing.T) {
	r := newRig(t, sourceAuthOf(sharedSecret))
	r.add(5, 0)
	r.run(nil, sharedSecret, nil)
	r.waitFor("the first events", func() bool { return r.backlog() == 0 })
	r.fake.HTTPSourceDown(true)
	for range 4 {
		r.add(25, 0)
	}
	r.waitFor("failures while down", func() bool { _, f := r.obs.get(); return f[ReasonServer] >= 3 })
	if r.backlog() != 100 {
		t.Fatalf("backlog while down = %d, want 100", r.backlog())
	}
	r.fake.HTTPSourceDown(false)
	r.waitFor("delivery", func() bool { return r.backlog() == 0 })
	if got := r.received(); !equal(got, r.added) {
		t.Errorf("received %d events, want the %d appended in order and once", len(got), len(r.added))
	}
}

// An answer lost on the way (the source took the batch) makes the exporter send the
// batch again: the same events with the same ids, which a reader drops.
func TestExportLostAnswerResends(t *testing.T) {
	r := newRig(t, sourceAuthOf(sharedSecret))
	r.add(20, 0)
	r.fake.DropNext(pantherfake.HTTPSourceOp, 1)
	r.run(nil, sharedSecret, nil)
	r.waitFor("delivery", func() bool { return r.backlog() == 0 })
	got := r.received()
	if len(got) != 40 {
		t.Fatalf("received %d events, want the batch twice (40)", len(got))
	}
	if !equal(dedup(got), r.added) {
		t.Errorf("after dropping duplicates: %v, want %v", dedup(got), r.added)
	}
	if _, f := r.obs.get(); f[ReasonNetwork] != 1 {
		t.Errorf("failures = %v, want one network failure", f)
	}
}

// A batch the source finds too large (413) is halved until it passes.
func TestExportTooLargeHalves(t *testing.T) {
	r := newRig(t, sourceAuthOf(sharedSecret))
	r.add(400, 4000) // ~1.6 MB in all
	r.run(nil, sharedSecret, func(o *Options) { o.MaxBodyBytes = 4 << 20 })
	r.waitFor("delivery", func() bool { return r.backlog() == 0 })
	if got := r.received(); !equal(got, r.added) {
		t.Errorf("received %d events, want %d in order and once", len(got), len(r.added))
	}
	if _, f := r.obs.get(); f[ReasonTooLarge] == 0 {
		t.Errorf("failures = %v, want a 413", f)
	}
	for _, req := range r.fake.SourceRequests() {
		if req.Status == 200 && len(req.Events) > 250 {
			t.Errorf("a batch of %d events passed", len(req.Events))
		}
	}
}

// damagedQueue is the store's queue in which the entries of some event ids do not
// decode: NextExport returns them as the store returns such an entry.
type damagedQueue struct {
	*store.Bolt
	damaged map[string]bool
}

func (q damagedQueue) NextExport(ctx context.Context, max int) ([]store.QueuedAudit, error) {
	items, err := q.Bolt.NextExport(ctx, max)
	for i, it := range items {
		if q.damaged[it.Entry.EventID] {
			items[i] = store.QueuedAudit{Seq: it.Seq, Damaged: true}
		}
	}
	return items, err
}

// A damaged entry in the queue is skipped and its place acknowledged: the entries
// after it are exported, in order and once, instead of the export stopping there for
// good; a batch of damaged entries only counts as progress too.
func TestExportSkipsDamagedEntry(t *testing.T) {
	r := newRig(t, sourceAuthOf(sharedSecret))
	r.add(6, 0)
	q := damagedQueue{Bolt: r.st, damaged: map[string]bool{r.added[1]: true, r.added[2]: true}}
	r.run(q, sharedSecret, func(o *Options) { o.BatchSize = 2 })
	r.waitFor("the queue to empty", func() bool { return r.backlog() == 0 })
	want := []string{r.added[0], r.added[3], r.added[4], r.added[5]}
	if got := r.received(); !equal(got, want) {
		t.Errorf("received %v, want %v", got, want)
	}
	if n, f := r.obs.get(); n != 4 || len(f) != 0 {
		t.Errorf("observer: exported %d, failures %v; want 4 and none", n, f)
	}
}

// flakyAck fails the first acknowledgement.
type flakyAck struct {
	Queue
	mu     sync.Mutex
	failed bool
}

func (f *flakyAck) AckExport(ctx context.Context, seq uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failed {
		f.failed = true
		return errors.New("disk full")
	}
	return f.Queue.AckExport(ctx, seq)
}

// A batch Panther took but the store could not record is recorded before anything
// is sent again, not sent twice.
func TestExportAckFailureDoesNotResend(t *testing.T) {
	r := newRig(t, sourceAuthOf(sharedSecret))
	r.add(30, 0)
	r.run(&flakyAck{Queue: r.st}, sharedSecret, func(o *Options) { o.BatchSize = 10 })
	r.waitFor("delivery", func() bool { return r.backlog() == 0 })
	if got := r.received(); !equal(got, r.added) {
		t.Errorf("received %v, want each event once: %v", got, r.added)
	}
	if _, f := r.obs.get(); f[ReasonStore] != 1 {
		t.Errorf("failures = %v, want one store failure", f)
	}
}

// The exporter waits at least what Retry-After asks (a lower bound only: the machine
// may be slower, never faster).
func TestExportHonoursRetryAfter(t *testing.T) {
	r := newRig(t, sourceAuthOf(sharedSecret))
	r.fake.SetRateLimitRate(0, time.Second) // the Retry-After of injected 429s
	r.fake.FailNext(pantherfake.HTTPSourceOp, 1, http.StatusTooManyRequests)
	r.add(1, 0)
	start := time.Now()
	r.run(nil, sharedSecret, nil)
	r.waitFor("delivery", func() bool { return r.backlog() == 0 })
	reqs := r.fake.SourceRequests()
	if len(reqs) != 2 || reqs[0].Status != 429 {
		t.Fatalf("requests = %+v, want a 429 then the delivery", reqs)
	}
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < time.Second {
		t.Errorf("retried %s after a 429 with Retry-After: 1, started %s ago", gap, time.Since(start))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"7", 7 * time.Second}, {"-1", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"no URL", Options{Auth: sharedSecret}},
		{"not http", Options{URL: "ftp://x/y", Auth: sharedSecret}},
		{"no method", Options{URL: "https://x/http/1", Auth: Auth{Secret: "s"}}},
		{"no header", Options{URL: "https://x/http/1", Auth: Auth{Method: AuthSharedSecret, Secret: "s"}}},
		{"bad algorithm", Options{URL: "https://x/http/1", Auth: Auth{Method: AuthHMAC, Header: "X", Algorithm: "md5", Secret: "s"}}},
		{"no secret", Options{URL: "https://x/http/1", Auth: Auth{Method: AuthBearer}}},
	} {
		if _, err := New(nil, tc.opts); err == nil {
			t.Errorf("%s: New accepted %+v", tc.name, tc.opts)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows the secret: %v", tc.name, err)
		}
	}
}
