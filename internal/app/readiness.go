package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
)

// ReadinessCheck is one named line of /readyz. The checks run in parallel, each
// under its own deadline, so that one that hangs (a Panther that does not answer)
// delays the answer by its Timeout at most and hides nothing else.
type ReadinessCheck struct {
	// Name is the key under "checks" in the /readyz body.
	Name string
	// Timeout bounds Run (default 3s); a check still running then reports "timed out".
	Timeout time.Duration
	// Run returns the state to show ("ok" when ready) and whether it is ready. The
	// state is public: it must not hold a secret or a record's data.
	Run func(ctx context.Context) (state string, ready bool)
}

// defaultCheckTimeout bounds a check without a Timeout of its own.
const defaultCheckTimeout = 3 * time.Second

// readiness runs the checks of /readyz at most once per ttl whatever the number of
// callers: one call runs them while the concurrent ones wait for its result, and
// later ones within ttl get that result. An unauthenticated probe can then cost
// Panther and the store no more than one check per ttl.
type readiness struct {
	ttl    time.Duration
	checks []ReadinessCheck
	info   func(ctx context.Context, body map[string]any)
	log    *slog.Logger
	now    func() time.Time
	// onReady is told of each check that became ready again after failing.
	onReady func(name string)

	flight singleflight.Group
	last   atomic.Pointer[readyResult]
	mu     sync.Mutex
	states map[string]string // last state of each check, to log changes only
}

type readyResult struct {
	ready bool
	raw   []byte // the body as JSON, encoded once for every probe that reads this result
	at    time.Time
}

// result returns the cached result, or runs the checks when it is older than ttl. A
// caller whose ctx ends stops waiting; the run goes on for the others.
func (r *readiness) result(ctx context.Context) (*readyResult, error) {
	if last := r.fresh(); last != nil {
		return last, nil
	}
	ch := r.flight.DoChan("readyz", func() (any, error) {
		// A run that ended between this caller's look at the cache and its joining the
		// flight has left a fresh result: use it rather than run the checks again.
		if last := r.fresh(); last != nil {
			return last, nil
		}
		res := r.run()
		r.last.Store(res)
		return res, nil
	})
	select {
	case v := <-ch:
		return v.Val.(*readyResult), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fresh returns the cached result while it is younger than ttl, else nil.
func (r *readiness) fresh() *readyResult {
	if last := r.last.Load(); last != nil && r.now().Sub(last.at) < r.ttl {
		return last
	}
	return nil
}

// run runs every check and the info at once, each with its own deadline, detached
// from any one caller.
func (r *readiness) run() *readyResult {
	type outcome struct {
		state string
		ready bool
	}
	results := make([]outcome, len(r.checks))
	var wg sync.WaitGroup
	for i, c := range r.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			timeout := c.Timeout
			if timeout <= 0 {
				timeout = defaultCheckTimeout
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			done := make(chan outcome, 1)
			go func() {
				s, ok := c.Run(ctx)
				done <- outcome{s, ok}
			}()
			select {
			case o := <-done:
				results[i] = o
			case <-ctx.Done():
				// A check that ignores its context must not hold /readyz past its deadline.
				results[i] = outcome{"timed out after " + timeout.String(), false}
			}
		}()
	}
	body := map[string]any{}
	if r.info != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), defaultCheckTimeout)
			defer cancel()
			r.info(ctx, body) // body is only read once wg is done
		}()
	}
	wg.Wait()

	checks := map[string]string{}
	ready := true
	for i, c := range r.checks {
		checks[c.Name] = results[i].state
		ready = ready && results[i].ready
		r.noteState(c.Name, results[i].state, results[i].ready)
	}
	body["checks"] = checks
	body["status"] = "ready"
	if !ready {
		body["status"] = "not ready"
	}
	at := r.now()
	body["checkedAt"] = at.UTC().Format(time.RFC3339)
	raw, _ := json.Marshal(body)
	return &readyResult{ready: ready, raw: append(raw, '\n'), at: at}
}

// noteState logs a check's state when it changes, not at every probe: a failure that
// lasts an hour is two lines, not one per probe.
func (r *readiness) noteState(name, state string, ready bool) {
	r.mu.Lock()
	prev, seen := r.states[name]
	if r.states == nil {
		r.states = map[string]string{}
	}
	r.states[name] = state
	r.mu.Unlock()
	if seen && prev == state {
		return
	}
	switch {
	case !ready:
		r.log.Warn("readiness check failing", "check", name, "state", state)
	case seen:
		r.log.Info("readiness check ok again", "check", name, "was", prev)
		if r.onReady != nil {
			r.onReady(name)
		}
	}
}

// readyz answers the cached readiness: 200 when every check is ready, else 503. The
// body never holds a secret.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	res, err := a.ready.result(r.Context())
	if err != nil {
		return // the client left
	}
	status := http.StatusOK
	if !res.ready {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(res.raw)
}

// pantherPinger is implemented by a Panther client that can probe outside the budget
// of provisioning's calls (*panther.Client's Ping).
type pantherPinger interface {
	Ping(ctx context.Context) error
}

// pantherRateLimiter is a Panther client with an adaptive rate limit
// (*panther.Client): the rate in force, and the configured ceiling.
type pantherRateLimiter interface {
	RateLimit() float64
	RateCeiling() float64
}

// readinessChecks are the checks of /readyz: the store, then Panther.
func (a *App) readinessChecks() []ReadinessCheck {
	return []ReadinessCheck{
		{Name: "store", Timeout: 2 * time.Second, Run: a.checkStore},
		{Name: "panther", Timeout: 5 * time.Second, Run: a.checkPanther},
	}
}

func (a *App) checkStore(ctx context.Context) (string, bool) {
	if err := a.Store.Check(ctx); err != nil {
		a.log.Debug("readiness: store check failed", "err", err)
		if errors.Is(err, provision.ErrStoreWrite) {
			return "not writable (see store.lastWriteError)", false
		}
		if errors.Is(err, store.ErrDamaged) {
			return "damaged (see store.damagedPage)", false
		}
		return "not readable", false
	}
	return "ok", true
}

func (a *App) checkPanther(ctx context.Context) (string, bool) {
	var err error
	if p, ok := a.opts.Panther.(pantherPinger); ok {
		err = p.Ping(ctx)
	} else {
		_, err = a.opts.Panther.Roles(ctx)
	}
	switch {
	case err == nil:
		// Panther answers: if provisioning had found it down, its queued changes go now.
		a.Service.PantherAnswered()
		if msg := a.schemaReadiness(); msg != "" {
			return msg, false
		}
		return "ok", true
	case errors.Is(err, provision.ErrUnauthorized):
		return "token rejected by Panther", false
	default:
		return "unreachable", false
	}
}

// readinessInfo adds what /readyz reports besides the checks: the pending intents, the
// store's write failures and the Panther rate limit in force.
func (a *App) readinessInfo(ctx context.Context, body map[string]any) {
	if n, oldest, err := a.Service.Pending(ctx); err == nil {
		body["pendingIntents"] = n
		if n > 0 {
			body["oldestPendingAgeSeconds"] = int(a.ready.now().Sub(oldest).Seconds())
		}
	}
	h := a.Store.Health()
	st := map[string]any{"writeErrors": h.WriteErrors}
	if h.LastWriteError != "" {
		st["lastWriteError"] = h.LastWriteError
		st["lastWriteErrorAt"] = h.LastWriteErrorAt.Format(time.RFC3339)
	}
	// Records that do not decode are skipped, and the store still serves: ready, but
	// said here (and in panther_scim_store_decode_errors_total) so that someone acts.
	st["damagedRecords"] = h.DamagedRecords
	if h.LastDamagedRecord != "" {
		st["lastDamagedRecord"] = h.LastDamagedRecord
	}
	if h.DamagedPage != "" {
		st["damagedPage"] = h.DamagedPage
	}
	body["store"] = st
	if rl, ok := a.opts.Panther.(pantherRateLimiter); ok {
		if limit, ceiling := rl.RateLimit(), rl.RateCeiling(); !math.IsInf(ceiling, 1) {
			body["pantherRate"] = map[string]any{
				"limitPerSecond":   math.Round(limit*10) / 10,
				"ceilingPerSecond": ceiling,
				"backedOff":        limit < ceiling,
			}
		}
	}
	if ae := a.auditExportReadiness(ctx); ae != nil {
		body["auditExport"] = ae
	}
}
