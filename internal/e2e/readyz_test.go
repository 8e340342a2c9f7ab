package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
)

// pollReadyz has clients goroutines each GET /readyz polls times, and returns the
// statuses seen.
func pollReadyz(t testing.TB, url string, clients, polls int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 20 * time.Second}
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range polls {
				res, err := client.Get(url)
				code := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					code = res.StatusCode
				}
				mu.Lock()
				statuses[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return statuses
}

// /readyz polled by 100 unauthenticated clients costs Panther one call per cache
// period, and the store no write.
func TestReadyzCachedUnderLoad(t *testing.T) {
	e := newEnv(t, func(o *app.Options) { o.ReadyCacheTTL = time.Hour })
	before := e.Fake.Count("roles")
	statuses := pollReadyz(t, e.opsURL("/readyz"), 100, 5)
	if statuses[http.StatusOK] != 500 {
		t.Errorf("statuses %v, want 500 × 200", statuses)
	}
	if n := e.Fake.Count("roles") - before; n != 1 {
		t.Errorf("500 probes in one cache period made %d Panther calls, want 1", n)
	}

	// After the period, the next probe checks again, and again only one call goes out
	// per period.
	e2 := newEnv(t, func(o *app.Options) { o.ReadyCacheTTL = 100 * time.Millisecond })
	start, first := time.Now(), e2.Fake.Count("roles")
	waitFor(t, "a probe after the cache period to check Panther again", func() bool {
		pollReadyz(t, e2.opsURL("/readyz"), 20, 1)
		return e2.Fake.Count("roles") >= first+2
	})
	periods := int(time.Since(start)/(100*time.Millisecond)) + 1
	if n := e2.Fake.Count("roles") - first; n > periods {
		t.Errorf("%d Panther calls in %d cache periods", n, periods)
	}
}

// A Panther that hangs does not hide the pending intents: each part of /readyz has
// its own deadline.
func TestReadyzPantherHangs(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("hang@example.com", "Ha", "Ng")
	e.Fake.SetRateLimitRate(0, -1)
	e.Fake.Down(true)
	e.do("PATCH", "/Users/"+id, patchOp(map[string]any{"op": "replace", "path": "active", "value": false})).must(t, http.StatusOK)
	e.Fake.Down(false)
	e.Fake.SetLatency(time.Minute, 0) // every Panther call now hangs past the client's 2s timeout
	r := e.readiness()
	if r.Status != http.StatusServiceUnavailable || r.Checks["panther"] != "unreachable" || r.Checks["store"] != "ok" || r.Pending != 1 || !r.HasAge {
		t.Fatalf("readyz with Panther hanging: %s", r.Raw)
	}
	e.Fake.ClearFaults()
}

// BenchmarkCreateUserWhileReadyzPolled measures POST /Users while 100 clients, in the
// same process, each poll 10 times a second (1,000 probes/s): none (the baseline),
// /healthz (the cost of the HTTP load alone) and /readyz (production's cache period,
// 5s). /readyz costing what /healthz costs is the claim: its checks add nothing a
// probe flood can feel. roles-calls is the Panther calls the probes made.
func BenchmarkCreateUserWhileReadyzPolled(b *testing.B) {
	for _, c := range []struct {
		name    string
		path    string
		pollers int
	}{{"quiet", "", 0}, {"healthz", "/healthz", 100}, {"readyz", "/readyz", 100}} {
		b.Run(c.name, func(b *testing.B) {
			e := newEnv(b, func(o *app.Options) { o.ReadyCacheTTL = 5 * time.Second })
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			client := &http.Client{Timeout: 20 * time.Second}
			for range c.pollers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tick := time.NewTicker(100 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-ctx.Done():
							return
						case <-tick.C:
						}
						req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.opsURL(c.path), nil)
						if res, err := client.Do(req); err == nil {
							_, _ = io.Copy(io.Discard, res.Body)
							res.Body.Close()
						}
					}
				}()
			}
			calls := e.Fake.Count("roles")
			b.ResetTimer()
			for i := range b.N {
				e.do("POST", "/Users", newUser(fmt.Sprintf("bench%d@example.com", i), "Ben", "Ch")).must(b, http.StatusCreated)
			}
			b.StopTimer()
			b.ReportMetric(float64(e.Fake.Count("roles")-calls), "roles-calls")
			stop()
			wg.Wait()
		})
	}
}

// inChild runs the calling test again in a child process of the test binary and
// reports its outcome, and says true in that child, where the test does its work: a
// test that changes process-wide state (a resource limit) runs away from the others.
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

// setFileSizeLimit sets the process's RLIMIT_FSIZE: no file write may reach past n
// bytes (EFBIG, which Go gets instead of a SIGXFSZ that would kill it), the way a
// full disk refuses every write that needs a new block.
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

// A store that cannot write (a full disk): writes answer 503 with Retry-After and
// change nothing, reads go on, /readyz and /metrics say what is wrong, and all is
// well again once there is room.
func TestStoreWriteFailure(t *testing.T) {
	if !inChild(t) {
		return
	}
	e := newEnv(t)
	id := e.createUser("full@example.com", "Fu", "Ll")
	if r := e.readiness(); r.Status != http.StatusOK {
		t.Fatalf("readyz before: %s", r.Raw)
	}
	invites := e.Fake.Count("inviteUser")

	setFileSizeLimit(t, 0)
	r := e.do("POST", "/Users", newUser("later@example.com", "La", "Ter"))
	r.scimErr(t, http.StatusServiceUnavailable, "")
	if r.Header.Get("Retry-After") == "" || strings.Contains(r.Raw, "file too large") {
		t.Errorf("POST on a full disk: %v %s", r.Header, r.Raw)
	}
	e.do("PATCH", "/Users/"+id, patchOp(map[string]any{"op": "replace", "path": "active", "value": false})).
		scimErr(t, http.StatusServiceUnavailable, "")
	if n := e.Fake.Count("inviteUser"); n != invites {
		t.Errorf("Panther was called for a change the store refused (%d invites, was %d)", n, invites)
	}
	e.do("GET", "/Users/"+id, nil).must(t, http.StatusOK)
	e.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "later@example.com"`), nil).must(t, http.StatusOK)

	rz := e.readiness()
	store, _ := rz.Body["store"].(map[string]any)
	if rz.Status != http.StatusServiceUnavailable || !strings.HasPrefix(rz.Checks["store"], "not writable") ||
		!strings.Contains(fmt.Sprint(store["lastWriteError"]), "file too large") || store["writeErrors"].(float64) < 2 {
		t.Fatalf("readyz on a full disk: %s", rz.Raw)
	}
	_, ss := e.scrape()
	if v, _ := metric(ss, "panther_scim_store_write_errors_total", nil); v < 2 {
		t.Errorf("panther_scim_store_write_errors_total = %v", v)
	}

	setFileSizeLimit(t, ^uint64(0)) // the operator made room
	if rz := e.readiness(); rz.Status != http.StatusOK || rz.Checks["store"] != "ok" {
		t.Fatalf("readyz once there is room: %s", rz.Raw)
	}
	e.do("POST", "/Users", newUser("later@example.com", "La", "Ter")).must(t, http.StatusCreated)
	if u, ok := e.storedUser(id); !ok || !u.Active {
		t.Errorf("the refused deactivation was applied: %+v", u)
	}
}
