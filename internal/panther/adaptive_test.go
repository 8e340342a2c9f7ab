package panther

import (
	"context"
	"math"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// virtualClock is a clock that only moves when the code under test sleeps (or the test
// advances it), so that rates can be checked exactly.
type virtualClock struct{ t time.Time }

func (c *virtualClock) now() time.Time { return c.t }

func (c *virtualClock) sleep(ctx context.Context, d time.Duration) error {
	if d > 0 {
		c.t = c.t.Add(d)
	}
	return ctx.Err()
}

func newVirtualLimiter(ceiling float64, adaptive bool) (*adaptiveLimiter, *virtualClock, *[]float64) {
	clock := &virtualClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var seen []float64
	l := newAdaptiveLimiter(ceiling, int(math.Ceil(ceiling)), adaptive, clock.now, func(r float64) { seen = append(seen, r) })
	l.sleep = clock.sleep
	return l, clock, &seen
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestAdaptiveLimiterBacksOffAndRecovers(t *testing.T) {
	ctx := context.Background()
	l, clock, seen := newVirtualLimiter(50, true)
	if got := l.Limit(); got != 50 {
		t.Fatalf("starts at %g, want the ceiling 50", got)
	}
	// 40 calls go out at once (the bucket holds 50), then Panther answers 429 with
	// Retry-After: 2 s.
	var first time.Time
	for i := range 40 {
		at, err := l.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = at
		}
	}
	l.RateLimited(first, 2*time.Second)
	// 0.7 of the rate really sent (40 in the last second), not of the limit (50).
	if got := l.Limit(); !near(got, 28) {
		t.Fatalf("after a 429: %g/s, want 28 (0.7 x the 40/s sent)", got)
	}
	// Answers to calls sent before the decrease say nothing new.
	l.RateLimited(first, 0)
	if got := l.Limit(); !near(got, 28) {
		t.Errorf("a second 429 for a call sent before the decrease: %g/s, want 28 still", got)
	}
	// Retry-After pauses every call.
	t0 := clock.now()
	at, err := l.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if at.Sub(t0) < 2*time.Second {
		t.Errorf("a call went out %s after a Retry-After of 2 s", at.Sub(t0))
	}
	// Additive recovery: 2% of the ceiling (1/s) each second, up to the ceiling.
	clock.t = clock.t.Add(10 * time.Second)
	if got := l.Limit(); got < 37.9 || got > 40.1 {
		t.Errorf("12 s after the decrease: %g/s, want about 28 + 12 = 40", got)
	}
	clock.t = clock.t.Add(time.Minute)
	if got := l.Limit(); got != 50 {
		t.Errorf("a minute later: %g/s, want the ceiling 50", got)
	}
	if (*seen)[0] != 50 || !near((*seen)[1], 28) || (*seen)[len(*seen)-1] != 50 {
		t.Errorf("observer saw %v, want 50, 28, ..., 50", *seen)
	}
	// It never goes below 1/s, however often Panther pushes back.
	for range 30 {
		at, _ := l.Wait(ctx)
		l.RateLimited(at, 0)
	}
	if got := l.Limit(); got != 1 {
		t.Errorf("after 30 push-backs: %g/s, want the floor 1", got)
	}
}

func TestAdaptiveLimiterServerErrorBursts(t *testing.T) {
	ctx := context.Background()
	l, clock, _ := newVirtualLimiter(50, true)
	for range 20 {
		if _, err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Two 5xx, then a third 3 s later: not a burst.
	sent := clock.now()
	l.ServerError(sent, 0)
	l.ServerError(sent, 0)
	clock.t = clock.t.Add(3 * time.Second)
	l.ServerError(sent, 0)
	if got := l.Limit(); got != 50 {
		t.Fatalf("scattered 5xx: %g/s, want 50", got)
	}
	// Three within 2 s: a burst.
	clock.t = clock.t.Add(3 * time.Second)
	for range 20 {
		_, _ = l.Wait(ctx)
	}
	sent = clock.now()
	l.ServerError(sent, 0)
	clock.t = clock.t.Add(500 * time.Millisecond)
	l.ServerError(sent, 0)
	if got := l.Limit(); got != 50 {
		t.Fatalf("two 5xx within 2 s: %g/s, want 50", got)
	}
	l.ServerError(sent, 0)
	if got := l.Limit(); !near(got, 14) {
		t.Errorf("a burst of three 5xx: %g/s, want 14 (0.7 x the 20/s sent in the last second)", got)
	}
}

func TestFixedRateOnlyPauses(t *testing.T) {
	ctx := context.Background()
	l, clock, _ := newVirtualLimiter(20, false)
	at, _ := l.Wait(ctx)
	l.RateLimited(at, 3*time.Second)
	for range 3 {
		l.ServerError(at, 0)
	}
	if got := l.Limit(); got != 20 {
		t.Errorf("fixed rate moved to %g/s", got)
	}
	t0 := clock.now()
	if at, _ := l.Wait(ctx); at.Sub(t0) < 3*time.Second {
		t.Errorf("Retry-After not honoured: next call %s later", at.Sub(t0))
	}
	// No limit at all: no adapting either.
	u := newAdaptiveLimiter(-1, 1, true, nil, nil)
	u.RateLimited(time.Now(), 0)
	if got := u.Limit(); !math.IsInf(got, 1) {
		t.Errorf("unlimited client limited to %g/s", got)
	}
}

// TestAdaptiveLimiterFindsPanthersRate runs a client that always has a call to send
// against a Panther that accepts 20 calls a second (a token bucket with a second's
// burst) and answers 429 above it (with Retry-After: 1, or none), in virtual time: the limiter
// must settle under Panther's rate, keep most of it, and make 429s rare.
func TestAdaptiveLimiterFindsPanthersRate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		adaptive   bool
		retryAfter time.Duration
		minShare   float64 // of Panther's rate, over the last minute
		max429     float64 // share of calls answered 429 over the last minute
	}{
		{"Retry-After 1s", true, time.Second, 0.7, 0.02},
		{"no Retry-After", true, 0, 0.7, 0.02},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			const pantherRate, latency = 20, 20 * time.Millisecond
			l, clock, _ := newVirtualLimiter(100, tc.adaptive)
			panther := rate.NewLimiter(pantherRate, pantherRate)
			start := clock.now()
			var accepted, refused int
			var maxLimit float64
			for clock.now().Sub(start) < 3*time.Minute {
				sent, err := l.Wait(ctx)
				if err != nil {
					t.Fatal(err)
				}
				ok := panther.AllowN(sent, 1)
				clock.t = clock.t.Add(latency)
				late := sent.Sub(start) >= 2*time.Minute
				if ok {
					if late {
						accepted++
					}
					continue
				}
				if late {
					refused++
					maxLimit = max(maxLimit, l.Limit())
				}
				l.RateLimited(sent, tc.retryAfter)
			}
			share := float64(accepted) / 60 / pantherRate
			got429 := float64(refused) / float64(accepted+refused)
			t.Logf("last minute: %d accepted (%.0f%% of Panther's rate), %d refused (%.1f%%)", accepted, 100*share, refused, 100*got429)
			if share < tc.minShare {
				t.Errorf("used %.0f%% of Panther's rate, want at least %.0f%%", 100*share, 100*tc.minShare)
			}
			if got429 > tc.max429 {
				t.Errorf("%.1f%% of calls answered 429, want at most %.1f%%", 100*got429, 100*tc.max429)
			}
		})
	}
}
