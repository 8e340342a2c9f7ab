package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/panther"
)

// A Panther that answers 429 above 5 calls a second, behind a client configured for 50
// (the default) that adapts: an import of 30 users pushed by 8 IdP connections at once,
// each sending a 503 again as an IdP does, ends with every user stored once and in
// Panther exactly once (one invite each), with its role, nothing pending, and the
// client's rate backed off below its ceiling (shown in /readyz and /metrics). How well
// the rate settles under Panther's is checked in virtual time by
// internal/panther's TestAdaptiveLimiterFindsPanthersRate.
func TestImportUnderPanthersRateLimit(t *testing.T) {
	const users, ceiling = 30, 5
	e := newEnv(t)
	// The bridge with a client as serve makes it by default: 50/s, adaptive.
	if err := e.App.Close(); err != nil {
		t.Fatal(err)
	}
	e.metrics = app.NewMetrics()
	client, err := panther.New(panther.Config{
		URL: e.PantherURL, Token: pantherKey, Timeout: 5 * time.Second, MaxRetries: 8,
		BaseBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, Observer: e.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	if client.RateCeiling() != panther.DefaultRatePerSecond || client.RateLimit() != panther.DefaultRatePerSecond {
		t.Fatalf("client starts at %g/s (ceiling %g), want %d", client.RateLimit(), client.RateCeiling(), panther.DefaultRatePerSecond)
	}
	e.opts.Panther = client
	e.start()
	e.Fake.ResetCalls()
	e.Fake.SetRateCeiling(ceiling)

	var wg sync.WaitGroup
	statuses := make(chan int, users)
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				// As an IdP does: a 503 (or 429) with Retry-After is sent again.
				r := e.idpRetry("POST", "/Users", newUser(fmt.Sprintf("rl%02d@example.com", i), "Rate", fmt.Sprintf("Limited%d", i)))
				statuses <- r.Status
			}
		}()
	}
	for i := range users {
		work <- i
	}
	close(work)
	wg.Wait()
	close(statuses)
	for st := range statuses {
		// A POST whose invite could not reach Panther within the request's sync budget
		// (waiting for the client's rate, or 429s until its retries ran out) is rolled
		// back and answered 503 with Retry-After; the IdP's retry creates the user.
		if st != http.StatusCreated {
			t.Errorf("POST answered %d after the IdP's retries, want 201", st)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for e.pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d changes still pending", e.pending())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Nothing lost, nothing twice.
	if n := e.recordCount(); n != users {
		t.Errorf("%d records, want %d", n, users)
	}
	for i := range users {
		email := fmt.Sprintf("rl%02d@example.com", i)
		if role := e.pantherRole(email); role != "AnalystReadOnly" {
			t.Errorf("%s: Panther role %q, want AnalystReadOnly", email, role)
		}
	}
	invited := map[string]int{}
	refused := 0
	for _, c := range e.Fake.Calls() {
		switch {
		case c.Status == http.StatusTooManyRequests:
			refused++
		case c.Op == "inviteUser" && c.Status == http.StatusOK && len(c.Errors) == 0:
			in, _ := c.Variables["input"].(map[string]any)
			invited[fmt.Sprint(in["email"])]++
		}
	}
	if len(invited) != users {
		t.Errorf("%d users invited, want %d", len(invited), users)
	}
	for email, n := range invited {
		if n != 1 {
			t.Errorf("%s invited %d times", email, n)
		}
	}
	if refused == 0 {
		t.Fatalf("Panther never answered 429: the test did not reach its rate limit")
	}

	// The client backed off, and says so.
	if got := client.RateLimit(); got >= panther.DefaultRatePerSecond {
		t.Errorf("rate limit %g/s after %d 429s, want below the ceiling %d", got, refused, panther.DefaultRatePerSecond)
	}
	ready := e.do("GET", e.opsURL("/readyz"), nil)
	rate, _ := ready.Body["pantherRate"].(map[string]any)
	if rate["backedOff"] != true || rate["ceilingPerSecond"] != float64(panther.DefaultRatePerSecond) {
		t.Errorf("/readyz pantherRate %v, want backed off below %d: %s", rate, panther.DefaultRatePerSecond, ready.Raw)
	}
	_, ss := e.scrape()
	if v, ok := metric(ss, "panther_scim_panther_rate_limit_per_second", nil); !ok || v >= panther.DefaultRatePerSecond {
		t.Errorf("panther_scim_panther_rate_limit_per_second = %g (exported: %v), want below %d", v, ok, panther.DefaultRatePerSecond)
	}
	t.Logf("%d calls answered 429; rate limit now %.1f/s", refused, client.RateLimit())
}
