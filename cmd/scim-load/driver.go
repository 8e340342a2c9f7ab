package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// driver sends SCIM requests to one server.
type driver struct {
	base   string // …/scim/v2
	token  string
	client *http.Client
}

// do sends one request; body is JSON-encoded unless nil.
func (d *driver) do(ctx context.Context, method, path string, body any) (int, []byte, time.Duration, error) {
	st, _, raw, dur, err := d.send(ctx, method, path, body)
	return st, raw, dur, err
}

// send is do, with the answer's header too.
func (d *driver) send(ctx context.Context, method, path string, body any) (int, http.Header, []byte, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, rd)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	start := time.Now()
	res, err := d.client.Do(req)
	if err != nil {
		return 0, nil, nil, time.Since(start), err
	}
	raw, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	return res.StatusCode, res.Header, raw, time.Since(start), err
}

// recorder collects the latencies of one phase by request kind.
type recorder struct {
	mu      sync.Mutex
	samples map[string][]time.Duration
	errors  atomic.Int64
	firstEr atomic.Value // string
}

func newRecorder() *recorder { return &recorder{samples: map[string][]time.Duration{}} }

// call sends a request and records it under kind; an answer other than want is an error.
func (r *recorder) call(ctx context.Context, d *driver, kind, method, path string, body any, want int) ([]byte, error) {
	st, raw, dur, err := d.do(ctx, method, path, body)
	r.mu.Lock()
	r.samples[kind] = append(r.samples[kind], dur)
	r.mu.Unlock()
	if err == nil && st != want {
		err = fmt.Errorf("%s %s: status %d, want %d: %.200s", method, path, st, want, raw)
	}
	if err != nil {
		r.errors.Add(1)
		r.firstEr.CompareAndSwap(nil, err.Error())
	}
	return raw, err
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.samples {
		n += len(s)
	}
	return n
}

// Percentiles of one request kind, in milliseconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50ms"`
	P95   float64 `json:"p95ms"`
	P99   float64 `json:"p99ms"`
	Max   float64 `json:"maxms"`
}

func (r *recorder) percentiles() map[string]Percentiles {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]Percentiles{}
	for kind, s := range r.samples {
		out[kind] = percentilesOf(slices.Clone(s))
	}
	return out
}

// percentilesOf sorts s and returns its percentiles (zero when it is empty).
func percentilesOf(s []time.Duration) Percentiles {
	if len(s) == 0 {
		return Percentiles{}
	}
	slices.Sort(s)
	at := func(q float64) float64 { return ms(s[min(len(s)-1, int(q*float64(len(s))))]) }
	return Percentiles{Count: len(s), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ms(s[len(s)-1])}
}

// parallel runs fn(0..n-1) on c workers and returns the first error, after all stop.
func parallel(ctx context.Context, c, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Value
	for range min(c, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					first.CompareAndSwap(nil, err)
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

// Memory is the server's memory use.
type Memory struct {
	RSSMB     float64 `json:"rssMB"`
	PeakRSSMB float64 `json:"peakRssMB,omitempty"`
	// RSSAnonMB is the process's own memory; RSSFileMB the pages of mapped files
	// resident, mostly the bbolt store, which the kernel can drop and read again.
	RSSAnonMB float64 `json:"rssAnonMB,omitempty"`
	RSSFileMB float64 `json:"rssFileMB,omitempty"`
	// PeakRSSAnonMB is the largest anonymous RSS sampled (every 50 ms) since the
	// previous figures were taken.
	PeakRSSAnonMB float64 `json:"peakRssAnonMB,omitempty"`
	HeapAllocMB   float64 `json:"heapAllocMB"`
	HeapInuseMB   float64 `json:"heapInuseMB"`
	GoSysMB       float64 `json:"goSysMB"`
	// With --server-cgroup: the cgroup's limit, and its usage and peak usage, which
	// count the store's pages in the page cache as well as the process's memory.
	CgroupLimitMB float64 `json:"cgroupLimitMB,omitempty"`
	CgroupUsageMB float64 `json:"cgroupUsageMB,omitempty"`
	CgroupPeakMB  float64 `json:"cgroupPeakMB,omitempty"`
}

// scrapeMemory reads the Go and process memory series from the server's /metrics
// (served beside /scim/v2 unless the server has a separate ops listener).
func scrapeMemory(ctx context.Context, client *http.Client, scimURL string) *Memory {
	mem := &Memory{}
	u := strings.TrimSuffix(strings.TrimRight(scimURL, "/"), "/scim/v2") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return mem
	}
	res, err := client.Do(req)
	if err != nil {
		return mem
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_alloc_bytes":
			mem.HeapAllocMB = v / (1 << 20)
		case "go_memstats_heap_inuse_bytes":
			mem.HeapInuseMB = v / (1 << 20)
		case "go_memstats_sys_bytes":
			mem.GoSysMB = v / (1 << 20)
		case "process_resident_memory_bytes":
			mem.RSSMB = v / (1 << 20)
		}
	}
	return mem
}

// pantherClientTime reads the seconds the server's Panther client spent in calls,
// and their number, from /metrics.
func pantherClientTime(ctx context.Context, client *http.Client, scimURL string) (seconds, calls float64) {
	u := strings.TrimSuffix(strings.TrimRight(scimURL, "/"), "/scim/v2") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return 0, 0
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, 0
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, "panther_scim_panther_call_duration_seconds_sum{"):
			seconds += v
		case strings.HasPrefix(name, "panther_scim_panther_call_duration_seconds_count{"):
			calls += v
		}
	}
	return seconds, calls
}

// pendingIntents reads panther_scim_pending_intents from /metrics (-1 when unknown).
func pendingIntents(ctx context.Context, client *http.Client, scimURL string) int {
	return int(scrapeGauge(ctx, client, scimURL, "panther_scim_pending_intents"))
}

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
