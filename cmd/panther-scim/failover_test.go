package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/bench"
	"github.com/panther-scim/panther-scim/mappings"
)

// The failover drill: what a Kubernetes pod restart does to an import. An IdP imports
// users (creates, a group push, deactivations) with the retries Okta and Entra make,
// while a supervisor keeps `panther-scim serve` running as the kubelet does, restarting
// it on the same store file whenever it dies; the drill kills it with SIGKILL several
// times in the middle of the import. Afterwards every change the IdP was told was
// accepted must be in Panther, exactly once.

// supervisor runs `panther-scim serve` and starts it again, at once, whenever it exits,
// until stop.
type supervisor struct {
	r        *rig
	mu       sync.Mutex
	cur      *exec.Cmd
	started  time.Time // when cur was started
	starts   int
	stopping bool
	done     chan struct{}
	err      error // a start that failed
}

func superviseBridge(r *rig) *supervisor {
	s := &supervisor{r: r, done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *supervisor) loop() {
	defer close(s.done)
	for {
		cmd := exec.Command(s.r.bin, "serve", "--config", s.r.cfg)
		cmd.Env = s.r.env()
		cmd.Stdout, cmd.Stderr = s.r.logs, s.r.logs
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return
		}
		if err := cmd.Start(); err != nil {
			s.err = err
			s.mu.Unlock()
			return
		}
		s.cur, s.started = cmd, time.Now()
		s.starts++
		s.mu.Unlock()
		_ = cmd.Wait()
		s.mu.Lock()
		s.cur = nil
		stop := s.stopping
		s.mu.Unlock()
		if stop {
			return
		}
	}
}

// kill sends SIGKILL to the running process and returns when it was sent.
func (s *supervisor) kill() (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return time.Time{}, errors.New("no process to kill")
	}
	return time.Now(), s.cur.Process.Signal(syscall.SIGKILL)
}

// startedAfter is the start time of the first process started after t.
func (s *supervisor) startedAfter(t time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started, s.cur != nil && s.started.After(t)
}

// stop ends the loop with a graceful SIGTERM of the running process.
func (s *supervisor) stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	s.stopping = true
	if s.cur != nil {
		_ = s.cur.Process.Signal(syscall.SIGTERM)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-time.After(rigDeadline):
		t.Fatal("the supervised bridge did not stop")
	}
	if s.err != nil {
		t.Fatalf("supervisor: %v", s.err)
	}
}

// drillUser is one user of the import, with what the IdP was told.
type drillUser struct {
	email       string
	id          string // the SCIM id, once the IdP knows the user exists
	admin       bool   // pushed into Panther Admins, and the PATCH was accepted
	deactivated bool   // PATCH active=false accepted
}

// failover is the outcome of one drill.
type failover struct {
	// toReady is, for each kill, the time from SIGKILL to the first 200 from /readyz;
	// startToReady the part of it from the new process's start.
	toReady, startToReady []time.Duration
	restarts              int
	users                 []drillUser
}

// runDrill imports n users through the supervised bridge with `kills` SIGKILLs spread over
// the import, waits until every change is in Panther, stops the bridge, and checks Panther
// and the store. Errors are reported on t; the measurements are returned.
func runDrill(t testing.TB, r *rig, n, kills int) failover {
	t.Helper()
	sup := superviseBridge(r)
	stopped := false
	defer func() {
		if !stopped {
			sup.stop(t)
		}
	}()
	idp := &idpClient{r: r, deadline: time.Now().Add(2 * time.Minute)}
	r.poll("/readyz to answer 200 at first start", func() bool { return r.ready() })

	group, err := idp.create("/Groups", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Panther Admins",
	}, `displayName eq "Panther Admins"`)
	if err != nil {
		t.Fatal(err)
	}

	users := make([]drillUser, n)
	var mu sync.Mutex
	accepted := 0
	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range 8 { // Okta and Entra send a handful of requests at once
		wg.Go(func() {
			for i := range work {
				u := &users[i]
				u.email = fmt.Sprintf("drill-%05d@example.com", i)
				id, err := idp.create("/Users", scimUser(u.email, "Drill", fmt.Sprintf("User%d", i)), `userName eq "`+u.email+`"`)
				if err != nil {
					errs <- err
					continue
				}
				u.id = id
				if i%5 == 0 {
					err := idp.patch("/Groups/"+group, scimPatch(map[string]any{"op": "add", "path": "members",
						"value": []any{map[string]any{"value": id}}}))
					if err != nil {
						errs <- err
						continue
					}
					u.admin = true
				}
				if i%7 == 3 {
					if err := idp.patch("/Users/"+id, scimPatch(map[string]any{"op": "replace", "path": "active", "value": false})); err != nil {
						errs <- err
						continue
					}
					u.deactivated = true
				}
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		})
	}

	var out failover
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for k := 1; k <= kills; k++ {
			for {
				mu.Lock()
				due := accepted >= n*k/(kills+1)
				mu.Unlock()
				if due || time.Now().After(idp.deadline) {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			at, err := sup.kill()
			if err != nil {
				errs <- err
				return
			}
			var started time.Time
			for deadline := at.Add(rigDeadline); ; time.Sleep(2 * time.Millisecond) {
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("kill %d: /readyz did not answer 200 within %s", k, rigDeadline)
					return
				}
				if s, ok := sup.startedAfter(at); ok {
					started = s
				}
				if !started.IsZero() && r.ready() {
					break
				}
			}
			now := time.Now()
			out.toReady = append(out.toReady, now.Sub(at))
			out.startToReady = append(out.startToReady, now.Sub(started))
		}
	}()
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	<-killed
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return out
	}

	r.drained()
	sup.stop(t)
	stopped = true
	out.restarts = sup.starts - 1
	out.users = users
	if out.restarts != kills {
		t.Errorf("%d restarts, want %d (one per kill)", out.restarts, kills)
	}
	checkExactlyOnce(t, r, users)
	return out
}

// checkExactlyOnce: each user the IdP saw created is one Panther user (none for a
// deactivated one) with the role its accepted group changes give it; Panther invited each
// exactly once (a deactivated one at most once); the store is linked to the same Panther
// users and holds no pending change.
func checkExactlyOnce(t testing.TB, r *rig, users []drillUser) {
	t.Helper()
	invites := map[string]int{}
	for _, c := range r.fake.Calls() {
		if c.Op != "inviteUser" || len(c.Errors) > 0 || (c.Status != http.StatusOK && !c.Dropped) {
			continue
		}
		in, _ := c.Variables["input"].(map[string]any)
		email, _ := in["email"].(string)
		invites[strings.ToLower(email)]++
	}
	copies := map[string]int{}
	for _, pu := range r.fake.Users() {
		copies[strings.ToLower(pu.Email)]++
	}
	stored, intents := r.stored()
	if intents != 0 {
		t.Errorf("%d pending changes left in the store", intents)
	}
	for _, u := range users {
		copies, invited := copies[u.email], invites[u.email]
		// A user deactivated before the invite went out (the bridge died between storing
		// the create and inviting, and the deactivation came first) is never invited.
		if invited > 1 || (invited == 0 && !u.deactivated) {
			t.Errorf("%s invited %d times, want 1", u.email, invited)
		}
		rec, ok := stored[u.email]
		if !ok {
			t.Errorf("%s: no record in the store", u.email)
			continue
		}
		if u.deactivated {
			if copies != 0 || rec.Active || rec.Panther.ID != "" {
				t.Errorf("%s deactivated: %d Panther users, record active=%v linked to %q", u.email, copies, rec.Active, rec.Panther.ID)
			}
			continue
		}
		want := "AnalystReadOnly"
		if u.admin {
			want = "Admin"
		}
		pu, _ := r.fake.UserByEmail(u.email)
		if copies != 1 || pu.RoleName != want || rec.Panther.ID != pu.ID {
			t.Errorf("%s: %d Panther users, role %q (want 1, %q), record linked to %q, Panther id %q",
				u.email, copies, pu.RoleName, want, rec.Panther.ID, pu.ID)
		}
	}
	drill := 0
	for email, n := range copies {
		if strings.HasPrefix(email, "drill-") {
			drill += n
		}
	}
	want := 0
	for _, u := range users {
		if !u.deactivated {
			want++
		}
	}
	if drill != want {
		t.Errorf("%d drill users in Panther, want %d", drill, want)
	}
}

// ready reports whether /readyz answers 200.
func (r *rig) ready() bool {
	res, err := r.client.Get(r.base + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// idpClient makes SCIM requests as an IdP does: a request that gets no answer, a 5xx or
// a 429 is sent again; before sending a create again it looks the resource up, and a
// resource that exists is taken as created (Okta and Entra look users up before creating
// them).
type idpClient struct {
	r        *rig
	deadline time.Time
}

// retry runs try until it reports done, pausing a little between attempts, until the
// deadline.
func (c *idpClient) retry(what string, try func() (done bool, err error)) error {
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, 200*time.Millisecond) {
		done, err := try()
		if done || err != nil {
			return err
		}
		if time.Now().After(c.deadline) {
			return fmt.Errorf("%s: still failing at the deadline", what)
		}
		time.Sleep(pause)
	}
}

func transient(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests
}

// create POSTs body to path and returns the new resource's id; filter finds it when a
// retry must first look it up.
func (c *idpClient) create(path string, body any, filter string) (string, error) {
	var id string
	first := true
	err := c.retry("POST "+path, func() (bool, error) {
		if !first {
			a, err := c.r.send("GET", path+"?filter="+url.QueryEscape(filter), nil)
			if err != nil || transient(a.status) {
				return false, nil
			}
			if a.status != http.StatusOK {
				return false, fmt.Errorf("lookup %s: %d %s", filter, a.status, a.raw)
			}
			if res, _ := a.body["Resources"].([]any); len(res) == 1 {
				id, _ = res[0].(map[string]any)["id"].(string)
				return true, nil
			}
		}
		first = false
		a, err := c.r.send("POST", path, body)
		switch {
		case err != nil || transient(a.status):
			return false, nil
		case a.status == http.StatusCreated:
			id, _ = a.body["id"].(string)
			return true, nil
		case a.status == http.StatusConflict: // created by a try whose answer was lost
			return false, nil
		default:
			return false, fmt.Errorf("POST %s: %d %s", path, a.status, a.raw)
		}
	})
	return id, err
}

// patch sends a PATCH until it is accepted; the drill's PATCHes are idempotent.
func (c *idpClient) patch(path string, body any) error {
	return c.retry("PATCH "+path, func() (bool, error) {
		a, err := c.r.send("PATCH", path, body)
		switch {
		case err != nil || transient(a.status):
			return false, nil
		case a.status == http.StatusOK || a.status == http.StatusNoContent:
			return true, nil
		default:
			return false, fmt.Errorf("PATCH %s: %d %s", path, a.status, a.raw)
		}
	})
}

// testFailoverDrill: 600 users imported through three SIGKILLs; every accepted change is
// in Panther exactly once.
func testFailoverDrill(t *testing.T, bin string) {
	t.Parallel()
	r := newRig(t, bin)
	out := runDrill(t, r, 600, 3)
	t.Logf("kill to /readyz 200: %v (process start to ready: %v)", out.toReady, out.startToReady)
}

// BenchmarkFailover measures the failover drill on a store prefilled with
// PANTHER_SCIM_DRILL_USERS users (default 100,000) and 2,000 groups, linked to as many
// Panther users: the time from SIGKILL to /readyz 200 while an import runs, over five
// kills per iteration. Run: go test ./cmd/panther-scim -run '^$' -bench Failover -benchtime 3x
func BenchmarkFailover(b *testing.B) {
	n := 100_000
	if v := os.Getenv("PANTHER_SCIM_DRILL_USERS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			b.Fatal(err)
		}
	}
	bin := filepath.Join(b.TempDir(), "panther-scim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	var toReady, startToReady, importTimes []time.Duration
	for b.Loop() {
		b.StopTimer()
		r := newRig(b, bin)
		mapping := mappings.Mapping{Rules: []mappings.Rule{{Group: "Panther Admins", Role: "Admin"}}, DefaultRole: "AnalystReadOnly"}
		if err := bench.Build(r.dbPath, bench.Spec{Users: n, Groups: n / 50, Mapping: mapping, Panther: r.fake}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		out := runDrill(b, r, 2000, 5)
		importTimes = append(importTimes, time.Since(start).Round(time.Millisecond))
		toReady = append(toReady, out.toReady...)
		startToReady = append(startToReady, out.startToReady...)
	}
	b.ReportMetric(medianMS(toReady), "ms-kill-to-ready")
	b.ReportMetric(medianMS(startToReady), "ms-start-to-ready")
	b.ReportMetric(maxMS(toReady), "ms-kill-to-ready-max")
	b.Logf("%d users: kill to /readyz 200 %v; process start to ready %v", n, toReady, startToReady)
	b.Logf("import of 2,000 users with %d kills: %v", 5, importTimes)
}

func medianMS(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2]) / float64(time.Millisecond)
}

func maxMS(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	return float64(slices.Max(ds)) / float64(time.Millisecond)
}
