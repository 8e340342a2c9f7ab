package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/panther-scim/panther-scim/internal/bench"
)

// probeCommand, as the first argument, makes scim-load the reconcile scenario's
// lookup probe: a process of its own that sends the lookups and prints their timings.
// An IdP's requests come from another machine; sent from scim-load's own process,
// their clock would also count that process's pauses, and with --self it holds the
// Panther double, which serialises the whole users listing during a reconcile.
const probeCommand = "__probe"

// envProbeToken passes the SCIM token to the probe out of its command line.
const envProbeToken = "SCIM_LOAD_PROBE_TOKEN"

// pace is how the lookups are sent: rate per second in all, from clients
// goroutines, each of a random pre-filled user (of users).
type pace struct {
	clients int
	rate    float64
	users   int
}

// clientsWith is how many clients send requests: as many again with a control URL.
func (p pace) clientsWith(control string) int {
	if control != "" {
		return 2 * p.clients
	}
	return p.clients
}

// pacedLookups sends userName eq lookups of random pre-filled users at p.rate (an
// open loop: each at its time, whatever the answers' latency) from p.clients
// goroutines until ctx ends, and hands each one's client, start, latency, error and
// request id (the server's X-Request-Id, in its access log too) to record. With a
// control URL, as many more clients send GETs to it at the same pace (clients
// p.clients and up, samples marked control).
func pacedLookups(ctx context.Context, d *driver, p pace, control string, record func(s probeSample)) {
	interval := time.Duration(float64(time.Second) * float64(p.clients) / p.rate)
	clients := p.clientsWith(control)
	_ = parallel(ctx, clients, clients, func(ctx context.Context, w int) error {
		rng := rand.New(rand.NewPCG(uint64(w), 7))
		next := time.Now().Add(time.Duration(rng.Int64N(int64(interval))))
		for ctx.Err() == nil {
			time.Sleep(time.Until(next))
			next = next.Add(interval)
			if w >= p.clients {
				record(controlGet(ctx, d.client, w, control))
				continue
			}
			record(lookup(ctx, d, w, bench.UserName(rng.IntN(p.users))))
		}
		return nil
	})
}

// controlGet sends one GET to the control server and times it.
func controlGet(ctx context.Context, client *http.Client, w int, control string) probeSample {
	s := probeSample{client: w, control: true, failed: true}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, control, nil)
	if err != nil {
		return s
	}
	s.at = time.Now()
	res, err := client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		s.failed = err != nil || res.StatusCode != http.StatusOK
	}
	s.dur = time.Since(s.at)
	return s
}

// lookup sends one userName eq lookup of name and times it.
func lookup(ctx context.Context, d *driver, client int, name string) probeSample {
	s := probeSample{client: client, at: time.Now()}
	st, header, _, dur, err := d.send(ctx, http.MethodGet, "/Users?filter="+url.QueryEscape(fmt.Sprintf("userName eq %q", name)), nil)
	s.dur, s.failed = dur, err != nil || st != http.StatusOK
	if header != nil {
		s.id = header.Get("X-Request-Id")
	}
	return s
}

// runProbe is the probe process: it sends lookups (and control requests) as
// pacedLookups does until its stdin closes, and prints one line per request: l for a
// lookup or c for a control request, its client, its start (Unix nanoseconds), its
// latency (nanoseconds), 1 if it failed else 0, and its request id (- if none).
func runProbe(args []string) error {
	fs := flag.NewFlagSet(probeCommand, flag.ContinueOnError)
	base := fs.String("url", "", "SCIM base URL")
	control := fs.String("control-url", "", "URL of the control server")
	var p pace
	fs.IntVar(&p.clients, "clients", 8, "")
	fs.Float64Var(&p.rate, "rate", 100, "")
	fs.IntVar(&p.users, "users", 0, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" || p.users < 1 || p.clients < 1 || p.rate <= 0 {
		return errors.New("probe needs --url, --users, --clients and --rate")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	d := &driver{base: *base, token: os.Getenv(envProbeToken), client: &http.Client{
		Timeout:   30 * time.Second, // within the minute sampleLog.window waits
		Transport: &http.Transport{MaxIdleConns: 2 * p.clients, MaxIdleConnsPerHost: 2 * p.clients},
	}}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	pacedLookups(ctx, d, p, *control, func(s probeSample) {
		if ctx.Err() != nil {
			return // stopped: cancelled, not failed
		}
		kind, failed, id := "l", 0, s.id
		if s.control {
			kind = "c"
		}
		if s.failed {
			failed = 1
		}
		if id == "" {
			id = "-"
		}
		mu.Lock()
		fmt.Fprintf(out, "%s %d %d %d %d %s\n", kind, s.client, s.at.UnixNano(), s.dur.Nanoseconds(), failed, id)
		_ = out.Flush()
		mu.Unlock()
	})
	return nil
}

// probeSample is one request the probe timed.
type probeSample struct {
	control bool // to the control server, not a lookup
	client  int
	at      time.Time
	dur     time.Duration
	failed  bool
	id      string
}

// sampleLog collects the samples of the lookups' clients as they come.
type sampleLog struct {
	done    chan struct{} // closed when no more samples come
	mu      sync.Mutex
	samples []probeSample
	lastAt  []time.Time // each client's latest start reported
}

func newSampleLog(clients int) *sampleLog {
	return &sampleLog{done: make(chan struct{}), lastAt: make([]time.Time, clients)}
}

func (l *sampleLog) add(s probeSample) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.client < 0 || s.client >= len(l.lastAt) {
		return
	}
	l.samples = append(l.samples, s)
	if s.at.After(l.lastAt[s.client]) {
		l.lastAt[s.client] = s.at
	}
}

// window returns the samples that started in [from, to). It first waits until every
// client has reported one started at or after to: each client sends one request at a
// time, so none of theirs in the window is still in flight. It waits a minute at
// most: the probe's requests time out sooner.
func (l *sampleLog) window(ctx context.Context, from, to time.Time) (lookupWindow, error) {
	deadline := time.After(time.Minute)
	for {
		l.mu.Lock()
		past := 0
		for _, at := range l.lastAt {
			if !at.Before(to) {
				past++
			}
		}
		l.mu.Unlock()
		if past == len(l.lastAt) {
			break
		}
		select {
		case <-l.done:
			return lookupWindow{}, errors.New("the lookups stopped before the window's end")
		case <-deadline:
			return lookupWindow{}, fmt.Errorf("%d of %d clients sent nothing for a minute after the window's end", len(l.lastAt)-past, len(l.lastAt))
		case <-ctx.Done():
			return lookupWindow{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return samplesIn(l.samples, from, to), nil
}

// probe is a running probe process and what it has timed so far.
type probe struct {
	*sampleLog
	cmd   *exec.Cmd
	stdin io.Closer
}

// startProbe starts a probe process sending lookups to d's server at p, and as many
// requests to the control URL unless it is empty.
func startProbe(d *driver, p pace, control string) (*probe, error) {
	cmd, stdin, stdout, err := startSubcommand([]string{probeCommand, "--url", d.base, "--clients", strconv.Itoa(p.clients),
		"--rate", strconv.FormatFloat(p.rate, 'g', -1, 64), "--users", strconv.Itoa(p.users), "--control-url", control},
		envProbeToken+"="+d.token)
	if err != nil {
		return nil, err
	}
	pr := &probe{sampleLog: newSampleLog(p.clientsWith(control)), cmd: cmd, stdin: stdin}
	go func() {
		defer close(pr.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 6 {
				continue
			}
			control := f[0] == "c"
			f = f[1:]
			client, err0 := strconv.Atoi(f[0])
			at, err1 := strconv.ParseInt(f[1], 10, 64)
			dur, err2 := strconv.ParseInt(f[2], 10, 64)
			if err0 != nil || err1 != nil || err2 != nil {
				continue
			}
			pr.add(probeSample{control: control, client: client, at: time.Unix(0, at), dur: time.Duration(dur), failed: f[3] == "1", id: strings.TrimPrefix(f[4], "-")})
		}
	}()
	return pr, nil
}

// stop ends the probe and waits for it.
func (pr *probe) stop() {
	_ = pr.stdin.Close()
	select {
	case <-pr.done:
	case <-time.After(10 * time.Second):
		_ = pr.cmd.Process.Kill()
		<-pr.done
	}
	_ = pr.cmd.Wait()
}

// echoCommand, as the first argument, makes scim-load the control server: a process
// that answers every GET at once. The probe's control requests to it, paced as its
// lookups are, show what the machine alone adds to a request's latency while a
// reconcile keeps a core busy: a server that did nothing but answer would see that.
const echoCommand = "__echo"

// runEcho is the control server: it prints its URL and answers until stdin closes.
func runEcho() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})}
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); _ = srv.Close() }()
	fmt.Printf("http://%s/\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startEcho starts the control server and returns its URL and how to stop it.
func startEcho() (string, func(), error) {
	cmd, stdin, stdout, err := startSubcommand([]string{echoCommand})
	if err != nil {
		return "", nil, err
	}
	stop := func() { _ = stdin.Close(); _ = cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("the control server did not start: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}
