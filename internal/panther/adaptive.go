package panther

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Panther documents no rate limit, so the client finds the rate Panther accepts the way
// TCP finds a path's capacity (additive increase, multiplicative decrease): it starts at
// the configured ceiling, and when Panther pushes back (a 429, or a burst of 5xx
// answers) it drops to decreaseFactor of the rate it was really sending at, then climbs
// back by recoverShare of the ceiling each second. A Retry-After pauses every call, not
// only the one it answered.
const (
	// decreaseFactor is the share of the rate kept after Panther pushes back. 0.7 (as
	// CUBIC uses) keeps the sawtooth under a fixed limit between 70% and 100% of it.
	decreaseFactor = 0.7
	// recoverShare of the ceiling is added to the rate each second without push-back:
	// from half the ceiling back to it in 25 s.
	recoverShare = 0.02
	// burstWindow and burstCount define a 5xx burst: burstCount 5xx answers within
	// burstWindow. A single 5xx is an accident; several together say Panther is
	// overloaded.
	burstWindow = 2 * time.Second
	burstCount  = 3
	// rateWindow is the span over which the rate really sent is measured.
	rateWindow = time.Second
	// maxSendsRemembered bounds the memory of send times (the measured rate saturates
	// there, far above any rate Panther would accept).
	maxSendsRemembered = 4096
)

// RateObserver is an Observer that is also told of the rate limit whenever it changes
// (and once when the client is made); +Inf means no limit.
type RateObserver interface {
	RateLimit(perSecond float64)
}

// adaptiveLimiter is the shared rate limit of every call: a token bucket whose rate
// follows Panther's push-back when adaptive, and stays at the ceiling otherwise.
type adaptiveLimiter struct {
	lim      *rate.Limiter
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	onChange func(float64)

	mu        sync.Mutex
	ceiling   float64 // rate.Inf: no limit
	burst     int     // the configured burst: the bucket never holds more
	floor     float64
	adaptive  bool
	base      float64   // the rate at since; it grows by recoverShare*ceiling a second
	since     time.Time // the last decrease
	applied   float64   // the rate the bucket has
	paused    time.Time // no call goes out before (Retry-After)
	sends     []time.Time
	next      int // ring index into sends
	failures  []time.Time
	decreases int
}

func newAdaptiveLimiter(ceiling float64, burst int, adaptive bool, now func() time.Time, onChange func(float64)) *adaptiveLimiter {
	if now == nil {
		now = time.Now
	}
	l := &adaptiveLimiter{now: now, sleep: sleep, onChange: onChange, ceiling: ceiling, burst: burst, adaptive: adaptive}
	if ceiling < 0 || math.IsInf(ceiling, 1) {
		l.ceiling, l.adaptive = math.Inf(1), false
		l.lim = rate.NewLimiter(rate.Inf, burst)
	} else {
		l.lim = rate.NewLimiter(rate.Limit(ceiling), burst)
	}
	l.floor = min(1, l.ceiling)
	l.base, l.applied = l.ceiling, l.ceiling
	if onChange != nil {
		onChange(l.ceiling)
	}
	return l
}

// Limit is the rate in force now (+Inf: none).
func (l *adaptiveLimiter) Limit() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recoverLocked(l.now())
	return l.applied
}

// Ceiling is the configured rate, which the limit never exceeds (+Inf: none).
func (l *adaptiveLimiter) Ceiling() float64 { return l.ceiling }

// Wait blocks until a call may go out: past any Retry-After pause, with a token of the
// bucket. It returns the time the call was let through, which the feedback methods
// take back so that an answer to a call sent before the last decrease does not
// decrease the rate again.
func (l *adaptiveLimiter) Wait(ctx context.Context) (time.Time, error) {
	for {
		l.mu.Lock()
		now := l.now()
		l.recoverLocked(now)
		pause := l.paused.Sub(now)
		l.mu.Unlock()
		if pause <= 0 {
			break
		}
		if err := l.sleep(ctx, pause); err != nil {
			return time.Time{}, err
		}
	}
	now := l.now()
	r := l.lim.ReserveN(now, 1) // always possible: the burst is at least 1
	if d := r.DelayFrom(now); d > 0 {
		if deadline, ok := ctx.Deadline(); ok && deadline.Before(now.Add(d)) {
			r.CancelAt(now)
			return time.Time{}, context.DeadlineExceeded
		}
		if err := l.sleep(ctx, d); err != nil {
			r.CancelAt(l.now())
			return time.Time{}, err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	at := l.now()
	if l.adaptive {
		if len(l.sends) < maxSendsRemembered {
			l.sends = append(l.sends, at)
		} else {
			l.sends[l.next] = at
			l.next = (l.next + 1) % maxSendsRemembered
		}
	}
	return at, nil
}

// RateLimited is Panther's 429 (or a GraphQL rate-limit error) to a call sent at sent:
// pause every call for retryAfter (when positive) and, when adaptive, slow down.
func (l *adaptiveLimiter) RateLimited(sent time.Time, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.pauseLocked(now, retryAfter)
	l.decreaseLocked(now, sent)
}

// ServerError is a 5xx answer to a call sent at sent: a burst of them slows down (when
// adaptive); a Retry-After pauses every call.
func (l *adaptiveLimiter) ServerError(sent time.Time, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.pauseLocked(now, retryAfter)
	if !l.adaptive || !sent.After(l.since) {
		return
	}
	cut := now.Add(-burstWindow)
	kept := l.failures[:0]
	for _, t := range l.failures {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	l.failures = append(kept, now)
	if len(l.failures) >= burstCount {
		l.failures = l.failures[:0]
		l.decreaseLocked(now, sent)
	}
}

func (l *adaptiveLimiter) pauseLocked(now time.Time, retryAfter time.Duration) {
	if retryAfter > 0 && now.Add(retryAfter).After(l.paused) {
		l.paused = now.Add(retryAfter)
	}
}

// decreaseLocked drops the rate to decreaseFactor of the rate really sent over the last
// rateWindow (or of the limit, when that is lower), once per push-back: answers to calls
// sent before the last decrease (or at the same instant) were sent at the old rate and
// say nothing new.
func (l *adaptiveLimiter) decreaseLocked(now, sent time.Time) {
	if !l.adaptive || !sent.After(l.since) {
		return
	}
	l.recoverLocked(now)
	cur := l.applied
	if sent := float64(l.sentSinceLocked(now.Add(-rateWindow))) / rateWindow.Seconds(); sent > 0 && sent < cur {
		cur = sent
	}
	l.base, l.since = max(l.floor, cur*decreaseFactor), now
	l.decreases++
	l.applyLocked(now, l.base)
}

// recoverLocked raises the rate by recoverShare of the ceiling for each second since
// the last decrease, up to the ceiling.
func (l *adaptiveLimiter) recoverLocked(now time.Time) {
	if !l.adaptive || l.applied >= l.ceiling {
		return
	}
	r := min(l.ceiling, l.base+recoverShare*l.ceiling*now.Sub(l.since).Seconds())
	// Change the bucket when the rate moved by 1% of the ceiling (or reached it), not
	// at every call.
	if r >= l.ceiling || r-l.applied >= 0.01*l.ceiling {
		l.applyLocked(now, r)
	}
}

func (l *adaptiveLimiter) applyLocked(now time.Time, r float64) {
	if r == l.applied {
		return
	}
	l.applied = r
	l.lim.SetLimitAt(now, rate.Limit(r))
	// A bucket as deep as one second at the current rate: after a pause, the calls
	// waiting go out at the rate, not all at once.
	l.lim.SetBurstAt(now, max(1, min(l.burst, int(math.Ceil(r)))))
	if l.onChange != nil {
		l.onChange(r)
	}
}

func (l *adaptiveLimiter) sentSinceLocked(t time.Time) int {
	n := 0
	for _, s := range l.sends {
		if s.After(t) {
			n++
		}
	}
	return n
}
