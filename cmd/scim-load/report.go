package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Report is everything one run measured.
type Report struct {
	Config            Config   `json:"config"`
	Prefill           *Prefill `json:"prefill,omitempty"`
	Startup           *Startup `json:"startup,omitempty"`
	MemoryAfterImport *Memory  `json:"memoryAfterImport,omitempty"`
	MemoryAfterPoll   *Memory  `json:"memoryAfterPoll,omitempty"`
	MemoryEnd         *Memory  `json:"memoryEnd,omitempty"`
	Phases            []Phase  `json:"phases"`
	// Reconciles are the reconcile scenario's runs (no drift, then --drift).
	Reconciles []ReconcileRun `json:"reconciles,omitempty"`
	// ReconcilesPooled puts together the lookups of each kind's runs (no drift, then
	// --drift) when --repeat is more than 1.
	ReconcilesPooled []PooledReconciles `json:"reconcilesPooled,omitempty"`
	// RateLimit is the ratelimit scenario's run.
	RateLimit *RateLimitRun `json:"rateLimit,omitempty"`
}

// Prefill is the fixture written before the server started.
type Prefill struct {
	Users   int     `json:"users"`
	Groups  int     `json:"groups"`
	Seconds float64 `json:"seconds"`
	StoreMB float64 `json:"storeMB"`
}

// Startup is the server's start-up time on the pre-filled store.
type Startup struct {
	StoreUsers int `json:"storeUsers"`
	// AppStartMS is the time opening the store and app.Start took (listen); FirstAnswerMS
	// the time from process start to the first authenticated SCIM answer.
	AppStartMS          []float64 `json:"appStartMs"`
	FirstAnswerMS       []float64 `json:"firstAnswerMs"`
	AppStartMedianMS    float64   `json:"appStartMedianMs"`
	FirstAnswerMedianMS float64   `json:"firstAnswerMedianMs"`
	// BackgroundSeconds is how long after process start the server stayed busy with
	// its start-up pass (replay, requeue, reconcile), using BackgroundCPUSeconds of CPU.
	BackgroundSeconds    float64 `json:"backgroundSeconds"`
	BackgroundCPUSeconds float64 `json:"backgroundCpuSeconds"`
	Memory               *Memory `json:"memory"`
}

// Phase is one measured part of a scenario.
type Phase struct {
	Name string `json:"name"`
	// Seconds lasts until no change is pending; AnsweredSeconds until the last answer.
	Seconds           float64                `json:"seconds"`
	AnsweredSeconds   float64                `json:"answeredSeconds"`
	Requests          int                    `json:"requests"`
	RequestsPerSecond float64                `json:"requestsPerSecond"`
	Errors            int                    `json:"errors"`
	FirstError        string                 `json:"firstError,omitempty"`
	Latency           map[string]Percentiles `json:"latency"`
	// CPU time per request of the server (--self) and of this process (the clients,
	// and the Panther double with --self).
	ServerCPUPerRequestMS float64        `json:"serverCpuPerRequestMs,omitempty"`
	ClientCPUPerRequestMS float64        `json:"clientCpuPerRequestMs,omitempty"`
	PantherCalls          map[string]int `json:"pantherCalls,omitempty"`
	ExpectedCalls         map[string]int `json:"expectedCalls,omitempty"`
	// UnexpectedCalls are calls beyond the expected ones (role lookups and administrator checks aside): calls
	// that changed nothing in Panther.
	UnexpectedCalls int     `json:"unexpectedCalls"`
	IdealSeconds    float64 `json:"idealSeconds,omitempty"`
	Ratio           float64 `json:"ratio,omitempty"`
	// SteadyRatio is the ratio in the middle of the phase (the middle 80% of calls),
	// without its ramp-up and tail.
	SteadyRatio float64 `json:"steadyRatio,omitempty"`
	// DoubleCallMS is the mean time the double took per call (the injected latency
	// plus its own work); ClientCallMS the mean time per call the bridge's Panther
	// client measured (that plus the HTTP exchange and CPU waits on this machine).
	DoubleCallMS float64 `json:"doubleCallMs,omitempty"`
	ClientCallMS float64 `json:"clientCallMs,omitempty"`
	// Progress is, for the import, the rate of creates in each tenth of it.
	Progress []float64 `json:"progress,omitempty"`
}

func (r Report) print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "scim-load: %s, concurrency %d", c.URL, c.Concurrency)
	if c.Self {
		fmt.Fprintf(w, ", Panther latency %s, Panther concurrency %d, sync concurrency %d", c.PantherLatency, c.PantherConcurrency, c.SyncConcurrency)
	}
	fmt.Fprintln(w)
	if p := r.Prefill; p != nil {
		fmt.Fprintf(w, "prefill: %d users, %d groups written in %.1fs; store file %.0f MB\n", p.Users, p.Groups, p.Seconds, p.StoreMB)
	}
	if s := r.Startup; s != nil {
		fmt.Fprintf(w, "start-up with %d users: app.Start %.0f ms, first answer %.0f ms (medians of %v / %v ms)\n",
			s.StoreUsers, s.AppStartMedianMS, s.FirstAnswerMedianMS, s.AppStartMS, s.FirstAnswerMS)
		fmt.Fprintf(w, "start-up background work: busy until %.1fs after process start, %.1fs of CPU\n", s.BackgroundSeconds, s.BackgroundCPUSeconds)
		printMemory(w, "memory after start-up", s.Memory)
	}
	for _, p := range r.Phases {
		fmt.Fprintf(w, "\n%s: %d requests in %.2fs (%.0f req/s)", p.Name, p.Requests, p.AnsweredSeconds, p.RequestsPerSecond)
		if p.Seconds > p.AnsweredSeconds+0.01 {
			fmt.Fprintf(w, ", done (nothing pending) at %.2fs", p.Seconds)
		}
		fmt.Fprintf(w, ", %d errors\n", p.Errors)
		if p.ServerCPUPerRequestMS > 0 {
			fmt.Fprintf(w, "  CPU per request: server %.3f ms, scim-load %.3f ms\n", p.ServerCPUPerRequestMS, p.ClientCPUPerRequestMS)
		}
		if p.FirstError != "" {
			fmt.Fprintf(w, "  first error: %s\n", p.FirstError)
		}
		kinds := make([]string, 0, len(p.Latency))
		for k := range p.Latency {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			l := p.Latency[k]
			fmt.Fprintf(w, "  %-20s n=%-7d p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", k, l.Count, l.P50, l.P95, l.P99, l.Max)
		}
		if len(p.Progress) > 0 {
			parts := make([]string, len(p.Progress))
			for i, r := range p.Progress {
				parts[i] = fmt.Sprintf("%.0f", r)
			}
			fmt.Fprintf(w, "  creates per second in each tenth of the import: %s\n", strings.Join(parts, " "))
		}
		if p.PantherCalls != nil {
			var parts []string
			for op, n := range p.PantherCalls {
				parts = append(parts, fmt.Sprintf("%s %d", op, n))
			}
			slices.Sort(parts)
			fmt.Fprintf(w, "  Panther calls: %s; unexpected (no-op) calls: %d\n", strings.Join(parts, ", "), p.UnexpectedCalls)
		}
		if p.IdealSeconds > 0 {
			fmt.Fprintf(w, "  ideal (calls x %s / %d) %.2fs; measured / ideal = %.3f (steady state %.3f)\n", c.PantherLatency, c.PantherConcurrency, p.IdealSeconds, p.Ratio, p.SteadyRatio)
			fmt.Fprintf(w, "  mean time per Panther call: at the double %.2f ms, seen by the bridge %.2f ms\n", p.DoubleCallMS, p.ClientCallMS)
		}
	}
	var b strings.Builder
	printReconciles(&b, r.Reconciles, c.PollRate)
	printPooled(&b, r.ReconcilesPooled)
	printRateLimit(&b, r.RateLimit)
	io.WriteString(w, b.String())
	printMemory(w, "\nmemory after import", r.MemoryAfterImport)
	printMemory(w, "memory after poll", r.MemoryAfterPoll)
	printMemory(w, "memory at the end", r.MemoryEnd)
}

func printMemory(w io.Writer, label string, m *Memory) {
	if m == nil {
		return
	}
	fmt.Fprintf(w, "%s: RSS %.0f MB", label, m.RSSMB)
	if m.PeakRSSMB > 0 {
		fmt.Fprintf(w, " (peak %.0f MB; now %.0f MB anonymous (peak %.0f MB), %.0f MB mapped files)", m.PeakRSSMB, m.RSSAnonMB, m.PeakRSSAnonMB, m.RSSFileMB)
	}
	fmt.Fprintf(w, ", heap alloc %.0f MB, heap in use %.0f MB, Go sys %.0f MB", m.HeapAllocMB, m.HeapInuseMB, m.GoSysMB)
	if m.CgroupLimitMB > 0 {
		fmt.Fprintf(w, "; cgroup limit %.0f MB, usage %.0f MB, peak %.0f MB", m.CgroupLimitMB, m.CgroupUsageMB, m.CgroupPeakMB)
	}
	fmt.Fprintln(w)
}
