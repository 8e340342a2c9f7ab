package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/auth"
	"github.com/panther-scim/panther-scim/internal/bench"
	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
	"github.com/panther-scim/panther-scim/mappings"
)

// childCommand is the hidden first argument that makes scim-load run the server.
const childCommand = "__serve"

// Environment of the child: secrets do not go on its command line.
const (
	envToken     = "SCIM_LOAD_TOKEN"
	envAdmin     = "SCIM_LOAD_ADMIN_TOKEN"
	envPantherKy = "SCIM_LOAD_PANTHER_KEY"
)

// loadGroupName is the displayName of import group g.
func loadGroupName(g int) string { return fmt.Sprintf("Load Group %03d", g) }

// loadRoles are the roles import groups map to, in turn; the last one is the default
// role, so pushing those groups must make no Panther call at all.
var loadRoles = []string{"Admin", "Analyst", "AnalystReadOnly"}

// loadMapping is the fixture's mapping plus one rule per import group.
func loadMapping(groups int) mappings.Mapping {
	m := bench.Mapping()
	for g := range groups {
		m.Rules = append(m.Rules, mappings.Rule{Group: loadGroupName(g), Role: loadRoles[g%len(loadRoles)]})
	}
	return m
}

// startSelf starts the Panther double here and panther-scim in a child process.
func (m *Main) startSelf(ctx context.Context) error {
	c := m.Config
	dir, err := os.MkdirTemp("", "scim-load-")
	if err != nil {
		return err
	}
	m.cleanup = append(m.cleanup, func() { _ = os.RemoveAll(dir) })
	m.fake = pantherfake.New(pantherfake.Options{Seed: 1})
	m.serverLog = filepath.Join(dir, "server.log")
	storePath := filepath.Join(dir, "panther-scim.db")
	if c.Prefill > 0 {
		start := time.Now()
		err := bench.Build(storePath, bench.Spec{Users: c.Prefill, Groups: c.Prefill / 50, Mapping: loadMapping(c.Groups), Panther: m.fake})
		if err != nil {
			return err
		}
		if c.ServerCgroup != "" {
			if err := dropFromPageCache(storePath); err != nil {
				return err
			}
		}
		st, _ := os.Stat(storePath)
		m.report.Prefill = &Prefill{Users: c.Prefill, Groups: c.Prefill / 50, Seconds: time.Since(start).Seconds(), StoreMB: float64(st.Size()) / (1 << 20)}
	}
	m.fake.SetLatency(c.PantherLatency, 0)
	purl, stop, err := m.serveFake()
	if err != nil {
		return err
	}
	m.fakeURL = purl
	m.cleanup = append(m.cleanup, stop)
	m.Config.Token = randomToken()
	m.adminToken = randomToken()
	args := []string{
		"--store", storePath, "--panther-url", purl, "--groups", strconv.Itoa(c.Groups),
		"--panther-concurrency", strconv.Itoa(c.PantherConcurrency), "--panther-rate", fmt.Sprint(c.PantherRate),
		"--sync-concurrency", strconv.Itoa(c.SyncConcurrency), "--log", m.serverLog, "--log-level", c.LogLevel,
	}
	if c.ServerCPUProfile != "" {
		args = append(args, "--cpuprofile", c.ServerCPUProfile)
	}
	if c.ServerCgroup != "" {
		args = append(args, "--cgroup", c.ServerCgroup)
	}
	// Start-up is measured on a few fresh processes; the last one stays up for the load.
	const startups = 3
	var s Startup
	for i := range startups {
		ch, err := startChild(ctx, args, m.Config.Token, m.adminToken)
		if err == nil {
			ch.cgroup = c.ServerCgroup
		}
		if err != nil {
			return err
		}
		ready, err := ch.firstAnswer(ctx, m.client, m.Config.Token)
		if err != nil {
			ch.stop()
			return err
		}
		s.AppStartMS = append(s.AppStartMS, ms(ch.appStart))
		s.FirstAnswerMS = append(s.FirstAnswerMS, ms(ready))
		if i < startups-1 {
			ch.stop()
			continue
		}
		m.server = ch
		m.cleanup = append(m.cleanup, ch.stop)
		m.Config.URL = ch.url
		// The worker's start-up pass (replay, requeue for the mapping, reconcile) runs
		// in the background once the server answers; measure it, and keep the load
		// scenarios out of it.
		busy, cpu := ch.waitIdle(ctx)
		s.BackgroundSeconds, s.BackgroundCPUSeconds = busy.Seconds(), cpu.Seconds()
		s.Memory = ch.memory(ctx, m.client)
	}
	s.AppStartMedianMS, s.FirstAnswerMedianMS = median(s.AppStartMS), median(s.FirstAnswerMS)
	s.StoreUsers = c.Prefill
	m.report.Startup = &s
	return nil
}

// serveFake serves the Panther double on a loopback port, timing each call from the
// request's arrival to the end of the answer.
func (m *Main) serveFake() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	h := m.fake.Handler()
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		m.fakeTime.Add(int64(time.Since(start)))
		m.fakeCalls.Add(1)
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String() + pantherfake.Path, func() { _ = hs.Close(); <-done }, nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "load-" + hex.EncodeToString(b)
}

// child is panther-scim running in a child process.
type child struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	url      string
	started  time.Time
	appStart time.Duration
	done     chan struct{}

	cgroup string // the memory cgroup it joined, if any

	// peakAnon is the largest anonymous RSS (kB) sampled since the last memory call:
	// the kernel keeps a peak of the whole RSS only, mapped store pages included.
	peakAnon atomic.Int64
}

// sampleAnon records the child's anonymous RSS every 50 ms until it exits.
func (ch *child) sampleAnon() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ch.done:
			return
		case <-t.C:
			if kb := ch.status()["RssAnon"]; int64(kb) > ch.peakAnon.Load() {
				ch.peakAnon.Store(int64(kb))
			}
		}
	}
}

// status reads the kB figures of /proc/<pid>/status.
func (ch *child) status() map[string]float64 {
	out := map[string]float64{}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", ch.cmd.Process.Pid))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64); err == nil {
			out[k] = kb
		}
	}
	return out
}

type readyLine struct {
	URL        string `json:"url"`
	AppStartNS int64  `json:"appStartNs"`
}

// startSubcommand starts this executable again with args (a subcommand: the server
// child, the lookup probe, the control server) and env added to the environment; it
// shares stderr, dies with scim-load, and stops when its stdin closes.
func startSubcommand(args []string, env ...string) (*exec.Cmd, io.WriteCloser, io.ReadCloser, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	setParentDeathSignal(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	return cmd, stdin, stdout, nil
}

func startChild(ctx context.Context, args []string, token, adminToken string) (*child, error) {
	started := time.Now()
	cmd, stdin, stdout, err := startSubcommand(append([]string{childCommand}, args...),
		envToken+"="+token, envAdmin+"="+adminToken, envPantherKy+"="+pantherfake.DefaultAPIKey)
	if err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, stdin: stdin, started: started, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(ch.done) }()
	go ch.sampleAnon()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		var r readyLine
		if !ok || json.Unmarshal([]byte(line), &r) != nil || r.URL == "" {
			ch.stop()
			return nil, fmt.Errorf("the server did not start (its first line: %q)", line)
		}
		ch.url, ch.appStart = r.URL, time.Duration(r.AppStartNS)
		return ch, nil
	case <-time.After(2 * time.Minute):
		ch.stop()
		return nil, errors.New("the server did not start within 2 minutes")
	case <-ctx.Done():
		ch.stop()
		return nil, ctx.Err()
	}
}

// firstAnswer waits for the first authenticated SCIM answer and returns the time from
// process start to it.
func (ch *child) firstAnswer(ctx context.Context, client *http.Client, token string) (time.Duration, error) {
	d := &driver{base: ch.url, token: token, client: client}
	deadline := time.Now().Add(time.Minute)
	for {
		st, _, _, err := d.do(ctx, "GET", "/Users?count=1", nil)
		if err == nil && st == http.StatusOK {
			return time.Since(ch.started), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no answer from the server: status %d, %v", st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cpuTime is the CPU time the child has used so far.
func (ch *child) cpuTime() time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", ch.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses): utime and stime are
	// the 12th and 13th, in clock ticks (100 per second on Linux).
	_, rest, _ := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// waitIdle waits until the child uses under 5% of a CPU over a second, and returns how
// long it was busy since it started and the CPU time it used.
func (ch *child) waitIdle(ctx context.Context) (busy, cpu time.Duration) {
	deadline := time.Now().Add(5 * time.Minute)
	last, lastAt := ch.cpuTime(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Second)
		now, at := ch.cpuTime(), time.Now()
		if now-last < at.Sub(lastAt)/20 {
			return lastAt.Sub(ch.started), last
		}
		last, lastAt = now, at
	}
	return time.Since(ch.started), ch.cpuTime()
}

// stop closes the child's stdin, which makes it shut down, and waits for it.
func (ch *child) stop() {
	_ = ch.stdin.Close()
	select {
	case <-ch.done:
	case <-time.After(30 * time.Second):
		_ = ch.cmd.Process.Kill()
		<-ch.done
	}
}

// memory reads the child's RSS from /proc and its heap from its /metrics.
func (ch *child) memory(ctx context.Context, client *http.Client) *Memory {
	mem := scrapeMemory(ctx, client, ch.url)
	st := ch.status()
	mem.RSSMB, mem.PeakRSSMB = st["VmRSS"]/1024, st["VmHWM"]/1024
	mem.RSSAnonMB, mem.RSSFileMB = st["RssAnon"]/1024, st["RssFile"]/1024
	mem.PeakRSSAnonMB = max(float64(ch.peakAnon.Swap(0)), st["RssAnon"]) / 1024
	if ch.cgroup != "" {
		mem.CgroupLimitMB, mem.CgroupUsageMB, mem.CgroupPeakMB = cgroupMemory(ch.cgroup)
	}
	return mem
}

// cgroupMemory reads a memory cgroup's limit, usage and peak usage (page cache of the
// store file included), in MB, from cgroup v2 or v1 files; 0 for what it cannot read.
func cgroupMemory(dir string) (limit, usage, peak float64) {
	read := func(names ...string) float64 {
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				continue
			}
			if v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil {
				return v / (1 << 20)
			}
		}
		return 0
	}
	return read("memory.max", "memory.limit_in_bytes"), read("memory.current", "memory.usage_in_bytes"),
		read("memory.peak", "memory.max_usage_in_bytes")
}

// runChild is the child process: panther-scim wired as `serve` wires it, on a loopback
// port. It prints one JSON line when it listens and stops when its stdin closes.
func runChild(args []string) error {
	fs := flag.NewFlagSet(childCommand, flag.ContinueOnError)
	storePath := fs.String("store", "", "store file")
	purl := fs.String("panther-url", "", "Panther GraphQL URL")
	groups := fs.Int("groups", 0, "import groups (for the mapping)")
	pconc := fs.Int("panther-concurrency", 8, "")
	prate := fs.Float64("panther-rate", -1, "")
	sconc := fs.Int("sync-concurrency", 8, "")
	logPath := fs.String("log", "", "log file")
	logLevel := fs.String("log-level", "info", "")
	cpuProfile := fs.String("cpuprofile", "", "CPU profile file")
	cgroup := fs.String("cgroup", "", "memory cgroup directory to join first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cgroup != "" {
		// Before the store is opened, so that its pages are charged to the cgroup.
		if err := os.WriteFile(filepath.Join(*cgroup, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("join the memory cgroup: %w", err)
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		// Contention too: where goroutines wait (locks, channels, the store's writer).
		runtime.SetMutexProfileFraction(5)
		runtime.SetBlockProfileRate(int(100 * time.Microsecond))
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
			for _, name := range []string{"mutex", "block"} {
				if pf, err := os.Create(*cpuProfile + "." + name); err == nil {
					_ = pprof.Lookup(name).WriteTo(pf, 0)
					_ = pf.Close()
				}
			}
		}()
	}
	logFile, err := os.OpenFile(*logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	var level slog.Level
	_ = level.UnmarshalText([]byte(*logLevel))
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: level}))

	metrics := app.NewMetrics()
	client, err := panther.New(panther.Config{
		URL: *purl, Token: os.Getenv(envPantherKy), MaxConcurrent: *pconc, RatePerSecond: *prate, Observer: metrics,
		UserAgent: "panther-scim/scim-load",
	})
	if err != nil {
		return err
	}
	authn, err := auth.New(auth.Options{TokenHashes: []auth.Hash{auth.HashToken(os.Getenv(envToken))}})
	if err != nil {
		return err
	}
	admin, err := auth.New(auth.Options{TokenHashes: []auth.Hash{auth.HashToken(os.Getenv(envAdmin))}})
	if err != nil {
		return err
	}
	app.TuneGC() // as serve does
	start := time.Now()
	st, err := store.Open(*storePath, store.Options{})
	if err != nil {
		return err
	}
	a, err := app.Start(context.Background(), app.Options{
		Addr: "127.0.0.1:0", Store: st, Panther: client,
		Provision:    provision.Options{Mapping: loadMapping(*groups), SyncConcurrency: *sconc},
		Authenticate: authn.Middleware, AdminAuthenticate: admin.Middleware, Logger: log, ShutdownTimeout: 10 * time.Second,
		// A full reconcile at 100k users answers after seconds.
		WriteTimeout: 10 * time.Minute,
	}, metrics)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(readyLine{URL: a.URL(), AppStartNS: int64(time.Since(start))})
	fmt.Println(string(line))
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it or dies
	return a.Close()
}
