package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/panther-scim/panther-scim/internal/pantherfake"
)

// Config is what the flags set.
type Config struct {
	Self      bool
	URL       string
	Token     string
	Scenarios []string

	Users       int
	Groups      int
	Prefill     int
	Concurrency int
	Batch       int
	Moves       int
	Duration    time.Duration

	PantherLatency     time.Duration
	PantherConcurrency int
	PantherRate        float64
	SyncConcurrency    int
	LogLevel           string
	JSON               bool
	ServerCPUProfile   string
	ServerCgroup       string
	CallsLog           string
	Timeout            time.Duration
	// Drift is the share of Panther users the reconcile scenario changes for its
	// second run; PollRate the lookups per second it sends meanwhile.
	Drift    float64
	PollRate float64
	// Repeat is how many runs of each kind (no drift, then Drift) the reconcile
	// scenario makes; with more than one, their lookups are also pooled.
	Repeat int
	// InlineLookups sends the reconcile scenario's lookups from this process rather
	// than from a probe process of their own.
	InlineLookups bool
	// PantherCeiling is the rate above which the double answers 429 (ratelimit).
	PantherCeiling float64
}

// Main is one run of the load command.
type Main struct {
	Config Config
	Out    io.Writer

	client   *http.Client
	fake     *pantherfake.Server // --self only
	server   *child              // --self only
	cleanup  []func()
	report   Report
	groupIDs []string // the import's groups, for reorg
	// adminToken is the child's admin token (--self), for /admin/reconcile.
	adminToken string

	// fakeTime and fakeCalls add up the time the double took to answer (--self).
	fakeTime, fakeCalls atomic.Int64
	fakeURL             string
	// serverLog is the child's log file (--self): its access log gives the time a
	// request spent in the server's handlers.
	serverLog string
}

// NewMain returns a Main writing to stdout.
func NewMain() *Main { return &Main{Out: os.Stdout} }

// ParseFlags reads the command line.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("scim-load", flag.ContinueOnError)
	c := &m.Config
	var scenarios string
	fs.BoolVar(&c.Self, "self", false, "start the Panther double and panther-scim on loopback and measure against them")
	fs.StringVar(&c.URL, "url", "", "SCIM base URL of a running server (…/scim/v2), without --self")
	fs.StringVar(&c.Token, "token", os.Getenv("SCIM_TOKEN"), "bearer token for --url (default $SCIM_TOKEN)")
	fs.StringVar(&scenarios, "scenarios", "import,poll,reorg", "scenarios to run, in order: import, poll, reorg, calibrate, reconcile, ratelimit")
	fs.IntVar(&c.Users, "users", 1000, "users the import creates")
	fs.IntVar(&c.Groups, "groups", 30, "groups the import pushes (mapped in turn to Admin, Analyst and the default role)")
	fs.IntVar(&c.Prefill, "prefill", 0, "--self: users (with prefill/50 groups of 100) written to the store before start")
	fs.IntVar(&c.Concurrency, "concurrency", 8, "concurrent IdP clients")
	fs.IntVar(&c.Batch, "batch", 100, "members per group PATCH")
	fs.IntVar(&c.Moves, "moves", 0, "users the reorganisation moves (default: all imported users)")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "how long poll runs")
	fs.DurationVar(&c.PantherLatency, "panther-latency", 20*time.Millisecond, "--self: latency the Panther double adds to every answer")
	fs.IntVar(&c.PantherConcurrency, "panther-concurrency", 8, "--self: Panther requests in flight at once (panther.maxConcurrent)")
	fs.Float64Var(&c.PantherRate, "panther-rate", -1, "--self: client-side Panther request rate limit per second (-1: none)")
	fs.IntVar(&c.SyncConcurrency, "sync-concurrency", 0, "--self: provisioning.syncConcurrency (default: --panther-concurrency)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "--self: the server's log level (its log goes to a file in the temporary directory)")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON instead of text")
	fs.StringVar(&c.CallsLog, "calls-log", "", "--self: append every Panther call (phase, operation, arrival time) to this file as JSON lines")
	fs.StringVar(&c.ServerCPUProfile, "server-cpuprofile", "", "--self: write the server's CPU profile (from start to exit) to this file, and its mutex and block profiles beside it")
	fs.StringVar(&c.ServerCgroup, "server-cgroup", "", "--self (Linux): a memory cgroup directory the server joins before it opens the store, e.g. one with a 150 MB limit; its usage and peak are reported")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Minute, "stop everything after this long")
	fs.Float64Var(&c.Drift, "drift", 0.01, "reconcile: share of the Panther users whose role its second run changes first")
	fs.Float64Var(&c.PollRate, "poll-rate", 100, "reconcile: userName eq lookups per second sent before and during each reconcile")
	fs.IntVar(&c.Repeat, "repeat", 1, "reconcile: runs of each kind (no drift, then --drift), in a row; with more than one, the report pools each kind's lookups too (a run's p99 of about 150 lookups is its second slowest)")
	fs.BoolVar(&c.InlineLookups, "inline-lookups", false, "reconcile: send the lookups from this process, which holds the Panther double with --self, not from a process of their own")
	fs.Float64Var(&c.PantherCeiling, "panther-ceiling", 20, "ratelimit: the double answers 429 above this many calls per second")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(scenarios, ",") {
		switch s = strings.TrimSpace(s); s {
		case "import", "poll", "reorg", "calibrate", "reconcile", "ratelimit":
			c.Scenarios = append(c.Scenarios, s)
		case "":
		default:
			return fmt.Errorf("unknown scenario %q (import, poll, reorg, calibrate, reconcile, ratelimit)", s)
		}
	}
	switch {
	case c.Self == (c.URL != ""):
		return errors.New("give exactly one of --self and --url")
	case c.URL != "" && c.Token == "":
		return errors.New("--url needs --token or $SCIM_TOKEN")
	case c.Concurrency < 1 || c.Batch < 1 || c.PantherConcurrency < 1:
		return errors.New("--concurrency, --batch and --panther-concurrency must be at least 1")
	case c.Users < 0 || c.Prefill < 0 || c.Groups < 0:
		return errors.New("--users, --groups and --prefill must not be negative")
	case c.PollRate <= 0 || c.Drift < 0 || c.Drift > 1 || c.Repeat < 1:
		return errors.New("--poll-rate and --repeat must be positive and --drift between 0 and 1")
	}
	if c.SyncConcurrency <= 0 {
		c.SyncConcurrency = c.PantherConcurrency
	}
	if c.Moves <= 0 {
		c.Moves = c.Users
	}
	return nil
}

// Run starts the servers (--self) and runs the scenarios.
func (m *Main) Run(ctx context.Context) error {
	c := m.Config
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	m.client = &http.Client{
		Timeout: 5 * time.Minute,
		Transport: &http.Transport{
			MaxIdleConns: c.Concurrency * 2, MaxIdleConnsPerHost: c.Concurrency * 2, IdleConnTimeout: time.Minute,
		},
	}
	if c.Self {
		if err := m.startSelf(ctx); err != nil {
			return err
		}
	}
	m.report.Config = m.Config
	d := &driver{base: strings.TrimRight(m.Config.URL, "/"), token: m.Config.Token, client: m.client}
	var imported []importedUser
	for _, s := range c.Scenarios {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		switch s {
		case "import":
			imported, err = m.runImport(ctx, d)
		case "poll":
			err = m.runPoll(ctx, d, imported)
		case "reorg":
			err = m.runReorg(ctx, d, imported)
		case "calibrate":
			err = m.runCalibrate(ctx)
		case "reconcile":
			err = m.runReconcile(ctx, d)
		case "ratelimit":
			err = m.runRateLimit(ctx, d)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	if m.server != nil {
		m.report.MemoryEnd = m.server.memory(ctx, m.client)
	}
	if c.JSON {
		enc := json.NewEncoder(m.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(m.report)
	}
	m.report.print(m.Out)
	return nil
}

// Close stops what Run started.
func (m *Main) Close() error {
	for i := len(m.cleanup) - 1; i >= 0; i-- {
		m.cleanup[i]()
	}
	m.cleanup = nil
	return nil
}
