package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary be the server child and the lookup probe too, as
// the scim-load binary is.
func TestMain(m *testing.M) {
	if ran, err := runSubcommand(os.Args[1:]); ran {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSelfSmall runs every scenario against a tiny self-started setup and checks the
// report: no errors, the expected Panther calls and none more.
func TestSelfSmall(t *testing.T) {
	var out bytes.Buffer
	m := &Main{Out: &out}
	err := m.ParseFlags([]string{"--self", "--prefill", "200", "--users", "30", "--groups", "3", "--batch", "7",
		"--concurrency", "4", "--duration", "300ms", "--panther-latency", "1ms", "--scenarios", "import,poll,reorg,calibrate",
		"--json", "--timeout", "2m"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = m.Run(ctx)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	if r.Startup == nil || r.Startup.StoreUsers != 200 || r.Prefill == nil {
		t.Errorf("no start-up or prefill figures: %+v %+v", r.Startup, r.Prefill)
	}
	names := map[string]Phase{}
	for _, p := range r.Phases {
		names[p.Name] = p
		if p.Errors > 0 || p.UnexpectedCalls > 0 {
			t.Errorf("%s: %d errors (%s), %d unexpected calls", p.Name, p.Errors, p.FirstError, p.UnexpectedCalls)
		}
	}
	for name, want := range map[string]map[string]int{
		"import users":  {"inviteUser": 30},
		"import groups": {"updateUser": 20}, // groups 0 and 1 map to Admin and Analyst; 2 to the default
		"reorg":         {"updateUser": 30},
		"calibrate":     {"updateUser": 1000},
	} {
		p, ok := names[name]
		if !ok {
			t.Errorf("no phase %q", name)
			continue
		}
		for op, n := range want {
			if p.PantherCalls[op] != n {
				t.Errorf("%s: %d %s calls, want %d (all: %v)", name, p.PantherCalls[op], op, n, p.PantherCalls)
			}
		}
		if p.Ratio <= 0 {
			t.Errorf("%s: no ratio", name)
		}
	}
	if p := names["poll"]; p.Requests == 0 {
		t.Error("poll made no requests")
	}
}

// TestSelfReconcileAndRateLimit runs the reconcile and ratelimit scenarios small: a
// reconcile without drift costs one users listing and no other Panther call; with
// drift, each drifted user costs its ownership check and its repair; every lookup the
// probe (or, with --inline-lookups, this process) timed is found in the server's
// access log in its own window; an import into a double that answers 429 above 10/s
// loses no user and invites none twice.
func TestSelfReconcileAndRateLimit(t *testing.T) {
	// The reconcile lasts at least one 250 ms listing, in which each of the 4 clients
	// sends a lookup every 50 ms: no window is empty, even if a client is held up for
	// 200 ms on a busy machine.
	args := []string{"--self", "--prefill", "300", "--users", "30", "--concurrency", "4",
		"--panther-latency", "250ms", "--drift", "0.05", "--poll-rate", "80",
		"--panther-ceiling", "10", "--panther-rate", "50", "--json", "--timeout", "2m"}
	t.Run("inline", func(t *testing.T) {
		// Two runs of each kind, pooled (--repeat).
		r := runReport(t, append(args, "--scenarios", "reconcile", "--inline-lookups", "--repeat", "2"))
		checkReconciles(t, r, 2)
	})
	r := runReport(t, append(args, "--scenarios", "reconcile,ratelimit"))
	checkReconciles(t, r, 1)
	rl := r.RateLimit
	if rl == nil {
		t.Fatal("no ratelimit figures")
	}
	if rl.Missing != 0 || rl.Duplicated != 0 || rl.Errors != 0 || rl.Accepted < 30 {
		t.Errorf("ratelimit: %+v", *rl)
	}
	t.Logf("ratelimit: %d accepted, %d refused, client rate at the end %.1f/s", rl.Accepted, rl.Refused, rl.FinalLimit)
}

// runReport runs scim-load with args and returns its JSON report.
func runReport(t *testing.T, args []string) Report {
	t.Helper()
	var out bytes.Buffer
	m := &Main{Out: &out}
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := m.Run(ctx)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	return r
}

// checkReconciles checks the reconcile scenario's runs, repeat of each kind (see
// TestSelfReconcileAndRateLimit).
func checkReconciles(t *testing.T, r Report, repeat int) {
	t.Helper()
	if len(r.Reconciles) != 2*repeat {
		t.Fatalf("%d reconcile runs, want %d", len(r.Reconciles), 2*repeat)
	}
	checkPooled(t, r, repeat)
	for i, run := range r.Reconciles {
		// Each lookup the client timed is in the server's access log, in its own window.
		if run.IdleServer.Count != run.Idle.Count || run.DuringServer.Count != run.During.Count || run.Idle.Count == 0 || run.During.Count == 0 {
			t.Errorf("run %d: server logged %d idle and %d lookups during the reconcile, the client sent %d and %d",
				i, run.IdleServer.Count, run.DuringServer.Count, run.Idle.Count, run.During.Count)
		}
		if run.ControlIdle.Count == 0 || run.ControlDuring.Count == 0 || run.IdleFailed+run.DuringFailed > 0 || run.PeakRSSAnonMB <= 0 || run.PeakHeapMB <= 0 {
			t.Errorf("run %d: control requests, failures or memory figures wrong: %+v", i, run)
		}
	}
	for _, run := range r.Reconciles[:repeat] {
		if calls := run.PantherCalls; run.DriftShare != 0 || len(calls) != 1 || calls["users"] != 1 {
			t.Errorf("reconcile without drift made %v, want one users listing and nothing else", calls)
		}
	}
	for _, d := range r.Reconciles[repeat:] {
		if d.Drifted == 0 || d.Drift != d.Drifted || d.Repaired != d.Drifted || d.Failed != 0 {
			t.Errorf("drift run: %d changed, plan %d, repaired %d, failed %d", d.Drifted, d.Drift, d.Repaired, d.Failed)
		}
		if c := d.PantherCalls; c["users"] != 1 || c["updateUser"] != d.Drifted || c["userById"] != d.Drifted || len(c) != 3 {
			t.Errorf("drift run made %v, want 1 users, and %d userById and updateUser", c, d.Drifted)
		}
	}
}

// checkPooled checks that with --repeat above 1 each kind's pooled figures hold every
// lookup of its runs, and that they are absent otherwise.
func checkPooled(t *testing.T, r Report, repeat int) {
	t.Helper()
	if repeat == 1 {
		if len(r.ReconcilesPooled) != 0 {
			t.Errorf("pooled figures without --repeat: %+v", r.ReconcilesPooled)
		}
		return
	}
	if len(r.ReconcilesPooled) != 2 {
		t.Fatalf("%d pooled kinds, want 2", len(r.ReconcilesPooled))
	}
	for k, p := range r.ReconcilesPooled {
		runs := r.Reconciles[k*repeat : (k+1)*repeat]
		var idle, during, ctlIdle, ctlDuring int
		var maxDuring float64
		for _, run := range runs {
			idle, during = idle+run.Idle.Count, during+run.During.Count
			ctlIdle, ctlDuring = ctlIdle+run.ControlIdle.Count, ctlDuring+run.ControlDuring.Count
			maxDuring = max(maxDuring, run.During.Max)
		}
		if p.Runs != repeat || p.DriftShare != runs[0].DriftShare || p.Idle.Count != idle || p.During.Count != during ||
			p.IdleServer.Count != idle || p.DuringServer.Count != during || p.ControlIdle.Count != ctlIdle || p.ControlDuring.Count != ctlDuring {
			t.Errorf("pooled kind %d: %+v, want the counts of its %d runs: %d idle and %d during lookups, %d and %d control requests",
				k, p, repeat, idle, during, ctlIdle, ctlDuring)
		}
		if p.During.Max != maxDuring || p.During.P99 > p.During.Max || p.During.P50 > p.During.P99 {
			t.Errorf("pooled kind %d: during %+v, want the slowest of its runs (%.3f ms) as its max", k, p.During, maxDuring)
		}
	}
}
