package auditexport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/panther-scim/panther-scim/internal/store"
)

// Queue is the store's export queue (see store.Bolt.NextExport).
type Queue interface {
	// NextExport returns up to max of the oldest queued entries, in queue order.
	NextExport(ctx context.Context, max int) ([]store.QueuedAudit, error)
	// AckExport removes the queued entries up to and including seq.
	AckExport(ctx context.Context, seq uint64) error
}

var _ Queue = (*store.Bolt)(nil)

// Observer is told what the exporter does, for metrics.
type Observer interface {
	// Exported counts events Panther acknowledged.
	Exported(events int)
	// ExportFailed counts a failed attempt, by one of Reasons.
	ExportFailed(reason string)
}

// Failure reasons, the label values of the failure metric.
const (
	ReasonNetwork      = "network"      // no answer: connection refused, reset, timeout
	ReasonUnauthorized = "unauthorized" // 401 or 403: the configured secret is wrong
	ReasonRateLimited  = "rate_limited" // 429
	ReasonServer       = "server_error" // 5xx
	ReasonTooLarge     = "too_large"    // 413: the batch is halved
	ReasonRejected     = "rejected"     // any other answer but 2xx
	ReasonStore        = "store"        // the queue could not be read or acknowledged
)

// Reasons lists every failure reason, for a metric that exports each from the start.
var Reasons = []string{ReasonNetwork, ReasonUnauthorized, ReasonRateLimited, ReasonServer, ReasonTooLarge, ReasonRejected, ReasonStore}

// Options configure an Exporter. URL and Auth are required.
type Options struct {
	// URL is the HTTP source's ingest URL.
	URL  string
	Auth Auth
	// BatchSize caps the events of one request (default 500).
	BatchSize int
	// MaxBodyBytes caps the body of one request (default 400 KiB: Panther's HTTP
	// sources take 1 MB with the headers today, and documented 500 KB before). A
	// single larger event is sent alone.
	MaxBodyBytes int
	// Interval is how often an idle exporter looks for new entries (default 1s).
	Interval time.Duration
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failure, doubled at each
	// consecutive one with jitter (default 1s and 5m). A longer Retry-After wins, up
	// to an hour.
	MinBackoff, MaxBackoff time.Duration
	// Client sends the requests (default: a client that follows no redirect, so the
	// secret never travels to where a Location points).
	Client    *http.Client
	UserAgent string
	Observer  Observer
	Logger    *slog.Logger
	// AfterSend, a test seam, runs after Panther acknowledged a batch and before the
	// queue records it: a crash there makes the next start send the batch again.
	AfterSend func()
}

// Status is what the exporter last did, for /readyz.
type Status struct {
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	LastFailure time.Time `json:"lastFailure,omitzero"`
	// LastFailureReason is one of Reasons; ConsecutiveFailures counts the failed
	// attempts since the last success.
	LastFailureReason   string `json:"lastFailureReason,omitempty"`
	ConsecutiveFailures int    `json:"consecutiveFailures,omitempty"`
}

// Exporter sends the store's export queue to a Panther HTTP source, oldest first, and
// removes what Panther acknowledged. It works on its own goroutine (Run): SCIM
// requests only ever add to the queue in their own transactions, so a Panther
// outage neither blocks nor slows them.
type Exporter struct {
	q    Queue
	opts Options
	log  *slog.Logger
	// limit is the batch size in use: BatchSize, halved after a 413.
	limit int
	// unacked is the last sequence number Panther acknowledged that the queue has not
	// recorded yet (0: none); it is recorded before anything else is read or sent.
	unacked uint64
	// skipped is the last damaged entry logged, so that a batch read again (a failed
	// send) logs it once.
	skipped uint64

	mu     sync.Mutex
	status Status
}

// New checks the options and returns an exporter of q.
func New(q Queue, opts Options) (*Exporter, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("audit export: %q is not an http(s) URL", opts.URL)
	}
	if err := opts.Auth.Validate(); err != nil {
		return nil, fmt.Errorf("audit export: %w", err)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 400 << 10
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Minute, opts.MinBackoff)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Exporter{q: q, opts: opts, log: opts.Logger, limit: opts.BatchSize}, nil
}

// Status returns what the exporter last did.
func (e *Exporter) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status
}

// Run exports until ctx ends.
func (e *Exporter) Run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		sent, err := e.exportOnce(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			failures++
			var fe *failure
			reason, retryAfter := ReasonStore, time.Duration(0)
			if errors.As(err, &fe) {
				reason, retryAfter = fe.reason, fe.retryAfter
			}
			e.failed(reason, failures)
			wait := backoff(failures, e.opts.MinBackoff, e.opts.MaxBackoff)
			if retryAfter > wait {
				wait = min(retryAfter, time.Hour)
			}
			e.log.Warn("audit export to Panther failed; retrying", "reason", reason, "err", err,
				"attempt", failures, "retry_in", wait.Round(time.Millisecond))
			sleep(ctx, wait)
		case sent == 0:
			sleep(ctx, e.opts.Interval)
		default:
			if failures > 0 {
				e.log.Info("audit export to Panther resumed", "after_failures", failures)
			}
			failures = 0
		}
	}
}

// failure is a failed attempt with its metric reason.
type failure struct {
	reason     string
	status     int
	retryAfter time.Duration
	err        error
}

func (f *failure) Error() string {
	if f.status != 0 {
		return fmt.Sprintf("HTTP source answered %d", f.status)
	}
	return f.err.Error()
}

func (f *failure) Unwrap() error { return f.err }

// exportOnce sends the oldest batch and records it. It returns 0 when the queue was
// empty, else the number of events sent (at least 1, so that a batch of pruned or
// damaged places only, acknowledged without a request, counts as progress).
func (e *Exporter) exportOnce(ctx context.Context) (int, error) {
	if e.unacked != 0 {
		if err := e.q.AckExport(ctx, e.unacked); err != nil {
			return 0, &failure{reason: ReasonStore, err: err}
		}
		e.unacked = 0
	}
	items, err := e.q.NextExport(ctx, e.limit)
	if err != nil {
		return 0, &failure{reason: ReasonStore, err: err}
	}
	if len(items) == 0 {
		return 0, nil
	}
	var body bytes.Buffer
	var through uint64
	n := 0
	for _, it := range items {
		if it.Pruned || it.Damaged {
			// Nothing to send; the place is acknowledged with the batch, so that a
			// damaged entry (reported by the store, which counts it in
			// panther_scim_store_decode_errors_total) does not stop the export.
			if it.Damaged && it.Seq > e.skipped {
				e.skipped = it.Seq
				e.log.Warn("audit entry does not decode: it is not sent to Panther", "seq", it.Seq)
			}
			through = it.Seq
			continue
		}
		line, err := json.Marshal(FromEntry(it.Entry))
		if err != nil {
			return 0, &failure{reason: ReasonStore, err: fmt.Errorf("encode event %s: %w", it.Entry.EventID, err)}
		}
		if n > 0 && body.Len()+len(line)+1 > e.opts.MaxBodyBytes {
			break
		}
		body.Write(line)
		body.WriteByte('\n')
		through = it.Seq
		n++
	}
	if n > 0 {
		if err := e.send(ctx, body.Bytes()); err != nil {
			var fe *failure
			if errors.As(err, &fe) && fe.reason == ReasonTooLarge {
				e.limit = max(1, n/2)
			}
			return 0, err
		}
		if e.opts.Observer != nil {
			e.opts.Observer.Exported(n)
		}
		e.mu.Lock()
		e.status.LastSuccess, e.status.ConsecutiveFailures = time.Now(), 0
		e.mu.Unlock()
		if e.opts.AfterSend != nil {
			e.opts.AfterSend()
		}
	}
	// From here the batch is Panther's: if recording it fails, it is recorded before
	// anything else is sent rather than sent again. A shutdown does not cancel the
	// recording, which would make the next start send the batch again.
	e.unacked = through
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := e.q.AckExport(actx, through); err != nil {
		return n, &failure{reason: ReasonStore, err: err}
	}
	e.unacked = 0
	e.limit = min(e.limit*2, e.opts.BatchSize)
	return max(n, 1), nil
}

func (e *Exporter) failed(reason string, consecutive int) {
	// The status first: whoever sees the failure counted can then read it in Status.
	e.mu.Lock()
	e.status.LastFailure, e.status.LastFailureReason, e.status.ConsecutiveFailures = time.Now(), reason, consecutive
	e.mu.Unlock()
	if e.opts.Observer != nil {
		e.opts.Observer.ExportFailed(reason)
	}
}

// send POSTs one batch of JSON lines; nil means Panther took it (2xx).
func (e *Exporter) send(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.opts.URL, bytes.NewReader(body))
	if err != nil {
		return &failure{reason: ReasonNetwork, err: err}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if e.opts.UserAgent != "" {
		req.Header.Set("User-Agent", e.opts.UserAgent)
	}
	e.opts.Auth.apply(req.Header, body)
	resp, err := e.opts.Client.Do(req)
	if err != nil {
		// The error names the URL, which identifies the source but holds no secret.
		return &failure{reason: ReasonNetwork, err: err}
	}
	// Drain a little so that the connection can be reused, never a whole large body.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	status := resp.StatusCode
	if status >= 200 && status < 300 {
		return nil
	}
	f := &failure{status: status, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		f.reason = ReasonUnauthorized
	case status == http.StatusTooManyRequests:
		f.reason = ReasonRateLimited
	case status == http.StatusRequestEntityTooLarge:
		f.reason = ReasonTooLarge
	case status >= 500:
		f.reason = ReasonServer
	default:
		f.reason = ReasonRejected
	}
	return f
}

// backoff is exponential with jitter: about min·2^(attempt-1), up to max, of which a
// random half.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo << min(attempt-1, 20)
	if d <= 0 || d > hi {
		d = hi
	}
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter reads a Retry-After value, in seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
