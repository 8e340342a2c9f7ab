package app

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/panther-scim/panther-scim/internal/auth"
	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
	"github.com/panther-scim/panther-scim/scim"
)

// Metrics are the Prometheus series the service exports. Each App has its own
// registry, so that tests can run several in one process.
type Metrics struct {
	svc          func() *provision.Service
	space        func() (store.Space, error)
	health       func() store.Health
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	pantherCalls *prometheus.CounterVec
	pantherTime  *prometheus.HistogramVec
	retries      *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	drift        *prometheus.CounterVec
	rejected     prometheus.Counter
	// schemaCompatible is 1 when Panther's live schema fits every operation, 0 when it does
	// not, -1 before the first check and while Panther refuses introspection.
	schemaCompatible prometheus.Gauge
	audit            *auditMetrics
	unclassified     *prometheus.CounterVec
	adoptions        prometheus.Counter
	refusals         *prometheus.CounterVec
	unknownAttrs     *prometheus.CounterVec
	// rateLimit is the Panther client's rate limit in force (the adaptive limiter's).
	rateLimit prometheus.Gauge
}

// NewMetrics returns a fresh registry of the service's series. Build it before the
// Panther client (which reports to it) and pass it to Start.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg:   reg,
		audit: newAuditMetrics(reg),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panther_scim_http_requests_total", Help: "SCIM and operational HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "panther_scim_http_request_duration_seconds", Help: "Request latency by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
		pantherCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panther_scim_panther_calls_total", Help: "Panther API calls by operation and outcome (after retries).",
		}, []string{"operation", "outcome"}),
		pantherTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "panther_scim_panther_call_duration_seconds", Help: "Panther API call latency by operation, retries included.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panther_scim_panther_retries_total", Help: "Panther API call retries by operation and reason.",
		}, []string{"operation", "reason"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panther_scim_auth_failures_total", Help: "Requests refused for failed authentication, by reason.",
		}, []string{"reason"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panther_scim_drift_total", Help: "Differences the reconciler found between the store and Panther, by action.",
		}, []string{"action"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "panther_scim_overload_rejections_total", Help: "Requests answered 429 because too many were in flight.",
		}),
		unclassified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panther_scim_panther_unclassified_errors_total",
			Help: "Panther errors the client could not classify (an unknown code or wording), by operation; each distinct one is logged once.",
		}, []string{"operation"}),
		schemaCompatible: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "panther_scim_panther_schema_compatible",
			Help: "1 when Panther's live schema fits every operation panther-scim sends, 0 when it does not, -1 when unknown (not checked yet, or introspection refused).",
		}),
		adoptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "panther_scim_adoptions_total", Help: "Existing Panther users taken over under provisioning.adopt (each one audited).",
		}),
		rateLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "panther_scim_panther_rate_limit_per_second",
			Help: "The Panther calls per second the client allows now: panther.ratePerSecond, or less while Panther pushes back (429, bursts of 5xx); +Inf without a limit.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panther_scim_refusals_total", Help: "Changes panther-scim refused to make to a Panther account, by reason (each one audited).",
		}, []string{"reason"}),
		unknownAttrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panther_scim_unknown_attributes_total",
			Help: "Attributes a POST, PUT or PATCH named that the schema does not declare, ignored (scim.strictAttributes off), by name; past 100 names, \"other\".",
		}, []string{"attribute"}),
	}
	// Exported from the start, so that the series is there to graph before the first
	// unknown attribute (each name then gets its own).
	m.unknownAttrs.WithLabelValues(scim.UnknownOther)
	for _, r := range provision.RefusalReasons {
		m.refusals.WithLabelValues(r)
	}
	// Export every drift action from the start: an alert on increase() cannot see the
	// first drift of a series that did not exist before it.
	for _, action := range []string{"invite", "update", "delete"} {
		m.drift.WithLabelValues(action)
	}
	m.schemaCompatible.Set(schemaUnknown)
	for _, op := range panther.OperationNames() {
		m.unclassified.WithLabelValues(op)
	}
	for _, r := range auth.Reasons {
		m.authFailures.WithLabelValues(string(r))
	}
	writeErrors := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "panther_scim_store_write_errors_total",
		Help: "Store commits that failed (disk full, I/O error): the change was not saved and the request answered 503.",
	}, func() float64 {
		if m.health == nil {
			return 0
		}
		return float64(m.health().WriteErrors)
	})
	decodeErrors := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "panther_scim_store_decode_errors_total",
		Help: "Store records found not to decode (each counted once): they are skipped in lists and shown in /readyz.",
	}, func() float64 {
		if m.health == nil {
			return 0
		}
		return float64(m.health().DamagedRecords)
	})
	reg.MustRegister(m.requests, m.latency, m.pantherCalls, m.pantherTime, m.retries, m.authFailures, m.drift, m.rejected, m.adoptions, m.refusals, m.unknownAttrs, writeErrors, decodeErrors,
		pendingIntents{m}, storeSpace{m}, m.schemaCompatible, m.unclassified, m.rateLimit,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var (
	pendingDesc = prometheus.NewDesc("panther_scim_pending_intents",
		"Changes accepted but not yet confirmed in Panther (-1: the store could not be read).", nil, nil)
	pendingAgeDesc = prometheus.NewDesc("panther_scim_pending_intent_oldest_age_seconds",
		"Age of the oldest change not yet confirmed in Panther; 0 when none is pending.", nil, nil)
)

// pendingIntents exports the number of pending intents and the age of the oldest,
// from one read of the store per scrape.
type pendingIntents struct{ m *Metrics }

func (c pendingIntents) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- pendingAgeDesc
}

func (c pendingIntents) Collect(ch chan<- prometheus.Metric) {
	n, age := 0.0, 0.0
	if c.m.svc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		count, oldest, err := c.m.svc().Pending(ctx)
		switch {
		case err != nil:
			n = -1
		case count > 0:
			n, age = float64(count), max(0, time.Since(oldest).Seconds())
		}
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, n)
	ch <- prometheus.MustNewConstMetric(pendingAgeDesc, prometheus.GaugeValue, age)
}

var (
	storeFileDesc = prometheus.NewDesc("panther_scim_store_file_bytes",
		"Size of the store's data file (bbolt grows it in steps and never shrinks it).", nil, nil)
	storeFreeDesc = prometheus.NewDesc("panther_scim_store_disk_free_bytes",
		"Bytes the server may still write on the filesystem holding the store; every write fails at 0.", nil, nil)
)

// storeSpace exports the store file's size and the free space beside it, measured at
// each scrape. When they cannot be measured it exports nothing: an absent series
// alerts no one by mistake, where a 0 would page that the disk is full.
type storeSpace struct{ m *Metrics }

func (c storeSpace) Describe(ch chan<- *prometheus.Desc) {
	ch <- storeFileDesc
	ch <- storeFreeDesc
}

func (c storeSpace) Collect(ch chan<- prometheus.Metric) {
	if c.m.space == nil {
		return
	}
	sp, err := c.m.space()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(storeFileDesc, prometheus.GaugeValue, float64(sp.FileBytes))
	if sp.FreeBytes >= 0 {
		ch <- prometheus.MustNewConstMetric(storeFreeDesc, prometheus.GaugeValue, float64(sp.FreeBytes))
	}
}

// Call implements the Panther client's observer.
func (m *Metrics) Call(op, outcome string, d time.Duration) {
	m.pantherCalls.WithLabelValues(op, outcome).Inc()
	m.pantherTime.WithLabelValues(op).Observe(d.Seconds())
}

var _ panther.UnclassifiedObserver = (*Metrics)(nil)

// Unclassified implements panther.UnclassifiedObserver.
func (m *Metrics) Unclassified(op string) { m.unclassified.WithLabelValues(op).Inc() }

// Adopted implements provision.Observer.
func (m *Metrics) Adopted() { m.adoptions.Inc() }

// Refused implements provision.Observer.
func (m *Metrics) Refused(reason string) { m.refusals.WithLabelValues(reason).Inc() }

// RateLimit implements the Panther client's RateObserver: the rate limit in force.
func (m *Metrics) RateLimit(perSecond float64) { m.rateLimit.Set(perSecond) }

// UnknownAttribute counts an attribute the schema does not declare, ignored (scim.Options.UnknownAttribute).
func (m *Metrics) UnknownAttribute(label string) { m.unknownAttrs.WithLabelValues(label).Inc() }

// Retry implements the Panther client's observer.
func (m *Metrics) Retry(op, reason string) { m.retries.WithLabelValues(op, reason).Inc() }

func (m *Metrics) onPlan(p provision.Plan) {
	for _, d := range p.Drift {
		m.drift.WithLabelValues(d.Action).Inc()
	}
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// instrument records each request under its chi route pattern (not its path, which
// holds ids) once routing is done.
func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := routePattern(r)
		code := sw.status
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(code)).Inc()
		m.latency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// AuthFailed counts a request refused for failed authentication, by its reason.
func (m *Metrics) AuthFailed(reason auth.Reason) {
	m.authFailures.WithLabelValues(string(reason)).Inc()
}

// routePattern is the chi pattern that served r ("/scim/v2/Users/{id}"), never the
// raw path, so ids do not become labels.
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
		return rc.RoutePattern()
	}
	return "unmatched"
}
