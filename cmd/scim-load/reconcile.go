package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ReconcileRun is one full reconcile (POST /admin/reconcile) measured while SCIM
// lookups arrive at a steady rate.
type ReconcileRun struct {
	// DriftShare is the share of Panther users changed behind the bridge's back first.
	DriftShare float64 `json:"driftShare"`
	Drifted    int     `json:"drifted"`
	// Repaired and Drift are from the plan the endpoint answered.
	Drift    int `json:"drift"`
	Repaired int `json:"repaired"`
	Failed   int `json:"failed"`
	// Seconds is the wall time of the request; ServerCPUSeconds the server's CPU in it.
	Seconds          float64        `json:"seconds"`
	ServerCPUSeconds float64        `json:"serverCpuSeconds"`
	PantherCalls     map[string]int `json:"pantherCalls"`
	// PeakRSSAnonMB is the server's largest anonymous RSS sampled every 50 ms during the
	// reconcile (the Go heap and runtime; the store's mapped pages are RssFile), and
	// PeakRSSMB the kernel's high-water mark of its whole RSS since it started.
	PeakRSSAnonMB float64 `json:"peakRssAnonMB"`
	PeakRSSMB     float64 `json:"peakRssMB"`
	// PeakHeapMB is the largest go_memstats_heap_inuse_bytes scraped every 100 ms.
	PeakHeapMB float64 `json:"peakHeapMB"`
	// Idle and During are the lookups at --poll-rate for as long as the reconcile took,
	// before it and while it ran.
	Idle   Percentiles `json:"idle"`
	During Percentiles `json:"during"`
	// IdleFailed and DuringFailed count the lookups that failed in each window.
	IdleFailed   int `json:"idleFailed"`
	DuringFailed int `json:"duringFailed"`
	// IdleServer and DuringServer are the same lookups' time in the server's handlers,
	// from its access log: what During adds beyond DuringServer is spent outside
	// them (the request read, loopback, and waiting for a core in either process).
	IdleServer   Percentiles `json:"idleServer"`
	DuringServer Percentiles `json:"duringServer"`
	// ControlIdle and ControlDuring are GETs at the same pace to a control server, a
	// process of its own on the same machine that answers at once: what the machine
	// alone adds to a request's latency while the reconcile runs.
	ControlIdle   Percentiles `json:"controlIdle"`
	ControlDuring Percentiles `json:"controlDuring"`
}

// PooledReconciles are the lookups of all the runs of one kind (--repeat of them),
// taken together. A run's own p99 rests on about 150 lookups, so it is its second
// slowest; pooled, it rests on --repeat times as many.
type PooledReconciles struct {
	DriftShare float64 `json:"driftShare"`
	Runs       int     `json:"runs"`
	// Idle, During and the rest are as in ReconcileRun, over every run's lookups.
	Idle          Percentiles `json:"idle"`
	During        Percentiles `json:"during"`
	IdleServer    Percentiles `json:"idleServer"`
	DuringServer  Percentiles `json:"duringServer"`
	ControlIdle   Percentiles `json:"controlIdle"`
	ControlDuring Percentiles `json:"controlDuring"`
}

// RateLimitRun is an import against a double that answers 429 above --panther-ceiling.
type RateLimitRun struct {
	Ceiling       float64 `json:"ceilingPerSecond"`
	ClientCeiling float64 `json:"clientCeilingPerSecond"`
	Users         int     `json:"users"`
	// Seconds lasts until nothing is pending.
	Seconds float64 `json:"seconds"`
	// Accepted are the calls the double processed, Refused those it answered 429.
	Accepted, Refused int
	// AcceptedPerSecond is the rate of accepted calls between the first and the last
	// tenth of them (the steady state), against Ceiling.
	AcceptedPerSecond float64 `json:"acceptedPerSecond"`
	Efficiency        float64 `json:"efficiency"`
	// FinalLimit is the client's rate limit at the end (its /metrics gauge).
	FinalLimit float64 `json:"finalLimitPerSecond"`
	// Missing and Duplicated count users not in Panther at the end, or invited twice.
	Missing    int `json:"missing"`
	Duplicated int `json:"duplicated"`
	Errors     int `json:"errors"`
	FirstError string
}

// runReconcile measures a full reconcile of the pre-filled store against the double:
// with no drift, then with --drift of the Panther users' roles changed behind the
// bridge's back, each while lookups arrive at --poll-rate: first for 5 s with nothing
// else running (idle), then for as long as the reconcile runs (during).
//
// The lookups come from a probe process of their own unless --inline-lookups; the
// server's memory is scraped every 100 ms in both windows alike, so that the scrapes
// weigh on idle as on during.
func (m *Main) runReconcile(ctx context.Context, d *driver) error {
	c := m.Config
	if m.fake == nil || c.Prefill == 0 {
		return errors.New("reconcile needs --self and --prefill")
	}
	p := pace{clients: c.Concurrency, rate: c.PollRate, users: c.Prefill}
	control, stopEcho, err := startEcho()
	if err != nil {
		return err
	}
	defer stopEcho()
	var lookups lookupSource
	if c.InlineLookups {
		lookups = newInlineLookups(ctx, d, p, control)
	} else {
		pr, err := startProbe(d, p, control)
		if err != nil {
			return fmt.Errorf("start the lookup probe: %w", err)
		}
		lookups = pr
	}
	defer lookups.stop()
	var peakHeap atomic.Uint64 // math.Float64bits of MB
	scrapeCtx, stopScrapes := context.WithCancel(ctx)
	defer stopScrapes()
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-scrapeCtx.Done():
				return
			case <-t.C:
				mb := scrapeMemory(scrapeCtx, m.client, m.Config.URL).HeapInuseMB
				for {
					old := peakHeap.Load()
					if mb <= math.Float64frombits(old) || peakHeap.CompareAndSwap(old, math.Float64bits(mb)) {
						break
					}
				}
			}
		}
	}()
	// Each run's idle lookups and those during its reconcile, by request id; and the
	// windows themselves, for the pooled figures.
	var ids [][]string
	var windows [][2]lookupWindow
	first := len(m.report.Reconciles)
	kinds := []float64{0, c.Drift}
	for run := range len(kinds) * c.Repeat {
		share := kinds[run/c.Repeat]
		r := ReconcileRun{DriftShare: share}
		if share > 0 {
			r.Drifted = m.makeDrift(share)
		}
		idleFrom := time.Now()
		select {
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		m.fake.ResetCalls()
		m.server.peakAnon.Store(0)
		peakHeap.Store(0)
		cpu0, start := m.server.cpuTime(), time.Now()
		plan, err := m.adminReconcile(ctx)
		end := time.Now()
		r.Seconds = end.Sub(start).Seconds()
		r.ServerCPUSeconds = (m.server.cpuTime() - cpu0).Seconds()
		if err != nil {
			return err
		}
		r.PeakHeapMB = math.Float64frombits(peakHeap.Load())
		r.Drift, r.Repaired, r.Failed = plan.Drift, plan.Repaired, plan.Failed
		r.PantherCalls = m.fake.CallCounts()
		st := m.server.status()
		r.PeakRSSAnonMB = max(float64(m.server.peakAnon.Load()), st["RssAnon"]) / 1024
		r.PeakRSSMB = st["VmHWM"] / 1024
		idle, err := lookups.window(ctx, idleFrom, start)
		if err != nil {
			return err
		}
		during, err := lookups.window(ctx, start, end)
		if err != nil {
			return err
		}
		r.Idle, r.IdleFailed, r.During, r.DuringFailed = idle.Percentiles, idle.failed, during.Percentiles, during.failed
		r.ControlIdle, r.ControlDuring = idle.control, during.control
		ids = append(ids, idle.ids, during.ids)
		windows = append(windows, [2]lookupWindow{idle, during})
		// Repairs queue nothing, but let any sync they started finish before the next run.
		for pendingIntents(ctx, m.client, m.Config.URL) > 0 && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		m.report.Reconciles = append(m.report.Reconciles, r)
	}
	lookups.stop()
	server, err := serverLookups(m.serverLog, ids)
	if err != nil {
		return err
	}
	for i := range m.report.Reconciles[first:] {
		r := &m.report.Reconciles[first+i]
		r.IdleServer, r.DuringServer = percentilesOf(server[2*i]), percentilesOf(server[2*i+1])
	}
	if c.Repeat > 1 {
		for k, share := range kinds {
			from, to := k*c.Repeat, (k+1)*c.Repeat
			m.report.ReconcilesPooled = append(m.report.ReconcilesPooled, pool(share, windows[from:to], server[2*from:2*to]))
		}
	}
	return nil
}

// pool puts together runs of one kind: their idle and during windows, and the server's
// handler times of each (idle, during, idle, during, ...).
func pool(share float64, windows [][2]lookupWindow, server [][]time.Duration) PooledReconciles {
	var idle, during, ctlIdle, ctlDuring, sIdle, sDuring []time.Duration
	for i, w := range windows {
		idle, during = append(idle, w[0].durs...), append(during, w[1].durs...)
		ctlIdle, ctlDuring = append(ctlIdle, w[0].controlDurs...), append(ctlDuring, w[1].controlDurs...)
		sIdle, sDuring = append(sIdle, server[2*i]...), append(sDuring, server[2*i+1]...)
	}
	return PooledReconciles{DriftShare: share, Runs: len(windows),
		Idle: percentilesOf(idle), During: percentilesOf(during),
		IdleServer: percentilesOf(sIdle), DuringServer: percentilesOf(sDuring),
		ControlIdle: percentilesOf(ctlIdle), ControlDuring: percentilesOf(ctlDuring)}
}

// lookupSource sends lookups for the whole reconcile scenario and reports those of
// a window of it: a probe process (the default), or this process.
type lookupSource interface {
	// window returns the lookups that started in [from, to), once none of them is
	// still in flight.
	window(ctx context.Context, from, to time.Time) (lookupWindow, error)
	stop()
}

// lookupWindow is the lookups of one window.
type lookupWindow struct {
	Percentiles
	failed  int
	ids     []string    // their request ids
	control Percentiles // the control requests (failed ones count in failed)
	// durs and controlDurs are the lookups' and the control requests' times, for
	// pooling windows.
	durs, controlDurs []time.Duration
}

// inlineLookups sends the lookups from this process (--inline-lookups).
type inlineLookups struct {
	*sampleLog
	cancel context.CancelFunc
}

func newInlineLookups(ctx context.Context, d *driver, p pace, control string) *inlineLookups {
	ctx, cancel := context.WithCancel(ctx)
	l := &inlineLookups{sampleLog: newSampleLog(p.clientsWith(control)), cancel: cancel}
	go func() {
		defer close(l.done)
		pacedLookups(ctx, d, p, control, func(s probeSample) {
			if ctx.Err() == nil {
				l.add(s)
			}
		})
	}()
	return l
}

func (l *inlineLookups) stop() { l.cancel(); <-l.done }

// samplesIn returns the samples that started in [from, to).
func samplesIn(samples []probeSample, from, to time.Time) lookupWindow {
	var w lookupWindow
	var durs, control []time.Duration
	for _, s := range samples {
		if s.at.Before(from) || !s.at.Before(to) {
			continue
		}
		if s.failed {
			w.failed++
		}
		if s.control {
			control = append(control, s.dur)
			continue
		}
		durs = append(durs, s.dur)
		if s.id != "" {
			w.ids = append(w.ids, s.id)
		}
	}
	w.durs, w.controlDurs = durs, control
	w.Percentiles, w.control = percentilesOf(durs), percentilesOf(control) // sorted in place; pool reads them in any order
	return w
}

// serverLookups reads the server's access log and returns, for each set of request
// ids, the handler time of the requests it names.
func serverLookups(path string, ids [][]string) ([][]time.Duration, error) {
	set := map[string]int{}
	for i, s := range ids {
		for _, id := range s {
			set[id] = i
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	defer f.Close()
	out := make([][]time.Duration, len(ids))
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg       string        `json:"msg"`
			RequestID string        `json:"request_id"`
			Duration  time.Duration `json:"duration"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "request" {
			continue
		}
		if i, ok := set[line.RequestID]; ok {
			out[i] = append(out[i], line.Duration)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	return out, nil
}

// makeDrift moves the given share of the double's users to another role, as an
// administrator in Panther's console would, and returns how many it moved.
func (m *Main) makeDrift(share float64) int {
	users := m.fake.Users()
	step := max(1, int(1/share))
	n := 0
	for i := 0; i < len(users); i += step {
		u := users[i]
		to := "AnalystReadOnly"
		if u.RoleName == to {
			to = "Analyst"
		}
		if u.Admin {
			continue // leave the administrators alone: Panther keeps one
		}
		if err := m.fake.SetUserRole(u.ID, to); err == nil {
			n++
		}
	}
	return n
}

type planSummary struct{ Drift, Repaired, Failed int }

// adminReconcile asks the server to reconcile now and returns the plan's counts.
func (m *Main) adminReconcile(ctx context.Context) (planSummary, error) {
	u := strings.TrimSuffix(strings.TrimRight(m.Config.URL, "/"), "/scim/v2") + "/admin/reconcile"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return planSummary{}, err
	}
	req.Header.Set("Authorization", "Bearer "+m.adminToken)
	res, err := m.client.Do(req)
	if err != nil {
		return planSummary{}, err
	}
	defer res.Body.Close()
	var plan struct {
		Drift    []json.RawMessage `json:"drift"`
		Repaired int               `json:"repaired"`
		Failed   int               `json:"failed"`
	}
	if res.StatusCode != http.StatusOK {
		return planSummary{}, fmt.Errorf("POST /admin/reconcile: status %d", res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&plan); err != nil {
		return planSummary{}, fmt.Errorf("POST /admin/reconcile: %w", err)
	}
	return planSummary{len(plan.Drift), plan.Repaired, plan.Failed}, nil
}

// runRateLimit imports --users users into a double that answers 429 above
// --panther-ceiling calls a second, and reports how close the bridge's adaptive rate
// came to that ceiling, how often it was refused, and that nothing was lost.
func (m *Main) runRateLimit(ctx context.Context, d *driver) error {
	c := m.Config
	if m.fake == nil || c.PantherCeiling <= 0 {
		return errors.New("ratelimit needs --self and --panther-ceiling")
	}
	if c.PantherRate <= 0 {
		return errors.New("ratelimit needs the bridge's --panther-rate (its ceiling, e.g. 50, the default of panther.ratePerSecond)")
	}
	m.fake.ResetCalls()
	m.fake.SetRateCeiling(c.PantherCeiling)
	defer m.fake.SetRateCeiling(0)
	r := RateLimitRun{Ceiling: c.PantherCeiling, ClientCeiling: c.PantherRate, Users: c.Users}
	rec := newRecorder()
	start := time.Now()
	names := make([]string, c.Users)
	err := parallel(ctx, c.Concurrency, c.Users, func(ctx context.Context, i int) error {
		name := fmt.Sprintf("rate%06d@example.com", i)
		names[i] = name
		_, _ = rec.call(ctx, d, "create", "POST", "/Users", map[string]any{
			"schemas": []string{userSchema}, "userName": name,
			"name":   map[string]any{"givenName": "Rate", "familyName": fmt.Sprintf("Limited%06d", i)},
			"emails": []any{map[string]any{"primary": true, "value": name, "type": "work"}},
			"active": true,
		}, http.StatusCreated)
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	for pendingIntents(ctx, m.client, m.Config.URL) > 0 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	r.Seconds = time.Since(start).Seconds()
	r.Errors = int(rec.errors.Load())
	if s, ok := rec.firstEr.Load().(string); ok {
		r.FirstError = s
	}
	var accepted []time.Time
	invited := map[string]int{}
	for _, call := range m.fake.Calls() {
		if call.Status == http.StatusTooManyRequests {
			r.Refused++
			continue
		}
		r.Accepted++
		accepted = append(accepted, call.Time)
		if call.Op == "inviteUser" && call.Status == http.StatusOK && len(call.Errors) == 0 {
			in, _ := call.Variables["input"].(map[string]any)
			invited[fmt.Sprint(in["email"])]++
		}
	}
	for _, name := range names {
		if _, ok := m.fake.UserByEmail(name); !ok {
			r.Missing++
		}
		if invited[name] > 1 {
			r.Duplicated++
		}
	}
	if n := len(accepted); n >= 20 {
		slices.SortFunc(accepted, func(a, b time.Time) int { return a.Compare(b) })
		lo, hi := n/10, n-1-n/10
		if dt := accepted[hi].Sub(accepted[lo]); dt > 0 {
			r.AcceptedPerSecond = float64(hi-lo) / dt.Seconds()
			r.Efficiency = r.AcceptedPerSecond / c.PantherCeiling
		}
	}
	r.FinalLimit = scrapeGauge(ctx, m.client, m.Config.URL, "panther_scim_panther_rate_limit_per_second")
	m.report.RateLimit = &r
	return nil
}

// scrapeGauge reads one unlabelled series from the server's /metrics (-1 when absent).
func scrapeGauge(ctx context.Context, client *http.Client, scimURL, name string) float64 {
	u := strings.TrimSuffix(strings.TrimRight(scimURL, "/"), "/scim/v2") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return -1
	}
	res, err := client.Do(req)
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// p99Ratio is during's p99 over idle's (of a window before it).
func p99Ratio(during, idle Percentiles) float64 { return during.P99 / max(idle.P99, 1e-9) }

func printReconciles(w *strings.Builder, runs []ReconcileRun, pollRate float64) {
	for _, r := range runs {
		fmt.Fprintf(w, "\nreconcile, %.1f%% drift (%d Panther users changed): %.2fs, server CPU %.2fs; drift %d, repaired %d, failed %d\n",
			100*r.DriftShare, r.Drifted, r.Seconds, r.ServerCPUSeconds, r.Drift, r.Repaired, r.Failed)
		ops := slices.Sorted(maps.Keys(r.PantherCalls))
		var parts []string
		for _, op := range ops {
			parts = append(parts, fmt.Sprintf("%s %d", op, r.PantherCalls[op]))
		}
		fmt.Fprintf(w, "  Panther calls: %s\n", strings.Join(parts, ", "))
		fmt.Fprintf(w, "  server memory: peak anonymous RSS %.0f MB, peak heap in use %.0f MB (sampled), RSS high-water %.0f MB\n",
			r.PeakRSSAnonMB, r.PeakHeapMB, r.PeakRSSMB)
		fmt.Fprintf(w, "  lookups at %.0f/s: idle p50 %.2f p99 %.2f ms (n=%d); during p50 %.2f p99 %.2f ms (n=%d); p99 ratio %.2f\n",
			pollRate, r.Idle.P50, r.Idle.P99, r.Idle.Count, r.During.P50, r.During.P99, r.During.Count, p99Ratio(r.During, r.Idle))
		fmt.Fprintf(w, "  the same lookups in the server's handlers: idle p50 %.2f p99 %.2f ms (n=%d); during p50 %.2f p99 %.2f ms (n=%d); p99 ratio %.2f\n",
			r.IdleServer.P50, r.IdleServer.P99, r.IdleServer.Count, r.DuringServer.P50, r.DuringServer.P99, r.DuringServer.Count, p99Ratio(r.DuringServer, r.IdleServer))
		fmt.Fprintf(w, "  control (a do-nothing server on the same machine): idle p50 %.2f p99 %.2f ms (n=%d); during p50 %.2f p99 %.2f ms (n=%d); p99 ratio %.2f\n",
			r.ControlIdle.P50, r.ControlIdle.P99, r.ControlIdle.Count, r.ControlDuring.P50, r.ControlDuring.P99, r.ControlDuring.Count, p99Ratio(r.ControlDuring, r.ControlIdle))
		if r.IdleFailed+r.DuringFailed > 0 {
			fmt.Fprintf(w, "  FAILED: %d requests idle, %d during\n", r.IdleFailed, r.DuringFailed)
		}
	}
}

func printPooled(w *strings.Builder, pooled []PooledReconciles) {
	for _, p := range pooled {
		fmt.Fprintf(w, "\n%d reconciles with %.1f%% drift, their lookups pooled: idle p99 %.2f ms (n=%d), during p99 %.2f ms (n=%d), ratio %.2f; in the server's handlers %.2f; control %.2f\n",
			p.Runs, 100*p.DriftShare, p.Idle.P99, p.Idle.Count, p.During.P99, p.During.Count, p99Ratio(p.During, p.Idle),
			p99Ratio(p.DuringServer, p.IdleServer), p99Ratio(p.ControlDuring, p.ControlIdle))
	}
}

func printRateLimit(w *strings.Builder, r *RateLimitRun) {
	if r == nil {
		return
	}
	fmt.Fprintf(w, "\nratelimit: %d users against a Panther that answers 429 above %.0f/s (client ceiling %.0f/s): done in %.1fs, %d errors\n",
		r.Users, r.Ceiling, r.ClientCeiling, r.Seconds, r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", r.FirstError)
	}
	fmt.Fprintf(w, "  Panther calls: %d accepted, %d answered 429 (%.1f%%); accepted %.1f/s in the steady state = %.0f%% of the ceiling; client's rate at the end %.1f/s\n",
		r.Accepted, r.Refused, 100*float64(r.Refused)/float64(max(1, r.Accepted+r.Refused)), r.AcceptedPerSecond, 100*r.Efficiency, r.FinalLimit)
	fmt.Fprintf(w, "  lost: %d users missing from Panther, %d invited twice\n", r.Missing, r.Duplicated)
}
