// Package app wires panther-scim together: the store, the Panther client, the
// provisioning service, the SCIM API, authentication, health, metrics and the
// background worker, behind HTTP listeners. cmd/panther-scim builds an App from the
// configuration; end-to-end tests build one on 127.0.0.1:0.
package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/go-chi/chi/v5"

	"github.com/panther-scim/panther-scim/internal/auditexport"
	"github.com/panther-scim/panther-scim/internal/auth"
	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/scim"
)

// Options are everything an App needs; cmd/panther-scim fills them from the config.
type Options struct {
	Addr    string // SCIM listener, e.g. 127.0.0.1:8080 or 127.0.0.1:0
	OpsAddr string // health/metrics listener; empty: on Addr
	// BaseURL is the external SCIM base URL (…/scim/v2) for Location and
	// meta.location. Empty: the SCIM listener's own address (for tests and the
	// demo); never a request's Host or X-Forwarded-* headers.
	BaseURL string

	// Store holds the records. Start takes it over: Close closes it, and so does a
	// Start that fails.
	Store Store
	// StoreCheckTimeout bounds the record check at start (every record decoded, every
	// index compared; default 10s, negative: none); a store found inconsistent is
	// refused, one with undecodable records served with them reported.
	StoreCheckTimeout time.Duration

	// Panther is the Panther API (a *panther.Client in production).
	Panther provision.Panther
	// Provision configures the rules (mapping, deactivation, protected emails).
	Provision provision.Options

	// Authenticate wraps the SCIM API; nil leaves it open (tests of other layers only).
	Authenticate func(http.Handler) http.Handler
	// AdminAuthenticate wraps the /admin/... endpoints (backup, audit, explain,
	// reconcile) with the admin credential; nil refuses every admin request.
	AdminAuthenticate func(http.Handler) http.Handler
	// OAuthToken serves POST /oauth/token when non-nil.
	OAuthToken http.Handler

	MaxBodyBytes          int64
	MaxConcurrentRequests int
	// StrictAttributes refuses (400) a POST, PUT or PATCH naming an attribute the
	// schema does not declare; otherwise it is ignored, logged once and counted
	// (scim.strictAttributes).
	StrictAttributes  bool
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	TLSCertFile       string
	TLSKeyFile        string

	// ReadyCacheTTL is how long a /readyz result is reused (0: not reused; concurrent
	// probes still share one run of the checks).
	ReadyCacheTTL time.Duration
	// ReadinessChecks are checked by /readyz after the built-in store and Panther checks.
	ReadinessChecks []ReadinessCheck

	WorkerTick        time.Duration // how often due intents are retried (default 1s)
	ReconcileInterval time.Duration // 0: no background reconcile
	AuditRetention    time.Duration // 0: keep forever
	// AuditExport streams the audit trail to a Panther HTTP log source; nil turns
	// the export off (and empties the store's export queue).
	AuditExport *auditexport.Options
	// AuthFailures, when set, is written to the audit trail (auth.failed entries);
	// the authenticator's OnFailure must feed it.
	AuthFailures *AuthFailureLog
	// DeprovisionAlertAfter is how long a removal of access may stay pending before
	// a deprovision.delayed entry is written; 0: never.
	DeprovisionAlertAfter time.Duration

	// CheckSchema, when set, compares Panther's live schema with the operations the client
	// sends (panther.Client.CheckSchema): at start, before the listeners open, and every
	// SchemaCheckInterval (0: at start only). An incompatible schema fails /readyz.
	CheckSchema         func(context.Context) (panther.Compatibility, error)
	SchemaCheckInterval time.Duration

	Logger *slog.Logger
}

// App is a running panther-scim.
type App struct {
	opts    Options
	log     *slog.Logger
	Store   Store
	Service *provision.Service
	metrics *Metrics
	// exporter sends the audit trail to Panther; nil when the export is off.
	exporter *auditexport.Exporter

	ready *readiness

	servers   []*http.Server
	listeners []net.Listener
	unused    unusedConns // connections of the servers that have not sent a request yet
	cancel    context.CancelFunc
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	schema atomic.Pointer[schemaState] // Panther's schema, as last checked
}

// Start starts the listeners and the background worker on opts.Store.
// The caller must Close the App.
func Start(ctx context.Context, opts Options, obs *Metrics) (*App, error) {
	st := opts.Store
	if st == nil {
		return nil, errors.New("app: no store")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Logger = slog.New(requestLogHandler{RedactEmails(opts.Logger.Handler())})
	if opts.MaxConcurrentRequests <= 0 {
		opts.MaxConcurrentRequests = 64
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	a := &App{opts: opts, log: opts.Logger, Store: st}
	if err := a.checkRecords(ctx, st); err != nil {
		_ = st.Close()
		return nil, err
	}
	if obs == nil {
		obs = NewMetrics()
	}
	popts := opts.Provision
	popts.Logger = opts.Logger
	if popts.Observer == nil {
		popts.Observer = obs
	}
	a.Service = provision.New(st, opts.Panther, popts)
	// Before the listeners open, so that no request's sync can take a leftover intent
	// for a fresh one.
	if n, err := a.Service.MarkUncertain(ctx); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("mark pending intents: %w", err)
	} else if n > 0 {
		a.log.Info("pending intents left by the previous run", "intents", n)
	}
	a.ready = &readiness{ttl: opts.ReadyCacheTTL, info: a.readinessInfo, log: a.log, now: time.Now}
	a.ready.checks = append(a.readinessChecks(), opts.ReadinessChecks...)
	obs.svc = func() *provision.Service { return a.Service }
	obs.space = st.Space
	obs.health = st.Health
	a.metrics = obs
	// Before the listeners open, so that every entry a request appends is queued
	// (or none is) as configured.
	if err := a.prepareAuditExport(); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("audit export: %w", err)
	}

	// The listeners are bound first: without a BaseURL the SCIM API's own address
	// (its port maybe chosen now) is the base of the locations it answers.
	apiLn, err := a.bind(opts.Addr)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	var opsLn net.Listener
	if opts.OpsAddr != "" {
		if opsLn, err = a.bind(opts.OpsAddr); err != nil {
			_ = apiLn.Close()
			_ = st.Close()
			return nil, err
		}
	}
	base := opts.BaseURL
	if base == "" {
		base = a.scheme() + "://" + apiLn.Addr().String() + scim.Prefix
	}
	scimHandler, err := scim.NewHandler(a.Service, scim.StoreRecords(a.Store), scim.Options{
		BaseURL: base, MaxBodyBytes: opts.MaxBodyBytes, Logger: opts.Logger,
		StrictAttributes: opts.StrictAttributes, UnknownAttribute: a.metrics.UnknownAttribute,
	})
	if err != nil {
		_ = apiLn.Close()
		if opsLn != nil {
			_ = opsLn.Close()
		}
		_ = st.Close()
		return nil, err
	}

	api := chi.NewRouter()
	api.Use(a.requestID, a.recoverer, a.metrics.instrument, a.accessLog)
	ops := api
	if opts.OpsAddr != "" {
		ops = chi.NewRouter()
		ops.Use(a.recoverer, a.metrics.instrument)
	}
	// /healthz is on the SCIM listener too (the container's health check probes it
	// there); /readyz and /metrics only on the ops listener when there is one.
	api.Get("/healthz", a.healthz)
	if ops != api {
		ops.Get("/healthz", a.healthz)
	}
	ops.Get("/readyz", a.readyz)
	ops.Handle("/metrics", a.metrics.handler())
	if opts.OAuthToken != nil {
		api.With(a.limitBody).Post("/oauth/token", opts.OAuthToken.ServeHTTP)
	}
	// The admin endpoints (admin.go), with their own credential, on the ops listener
	// alone when there is one.
	ops.Route("/admin", func(r chi.Router) {
		if opts.OpsAddr != "" {
			r.Use(a.requestID, a.accessLog) // the SCIM router has them already
		}
		a.adminRoutes(r)
	})
	api.Route(scim.Prefix, func(r chi.Router) {
		if opts.Authenticate != nil {
			r.Use(opts.Authenticate)
		}
		r.Use(withActor, a.limitConcurrency(opts.MaxConcurrentRequests))
		h := http.StripPrefix(scim.Prefix, scimHandler)
		for _, p := range []string{
			"/ServiceProviderConfig", "/ResourceTypes", "/ResourceTypes/{name}", "/Schemas", "/Schemas/{id}",
			"/Users", "/Users/.search", "/Users/{id}", "/Groups", "/Groups/.search", "/Groups/{id}", "/.search", "/*",
		} {
			r.Handle(p, h)
		}
	})

	schemaRan := false
	if opts.CheckSchema != nil {
		// Before the listeners serve, so that the first /readyz already knows.
		cctx, cancel := context.WithTimeout(ctx, firstSchemaCheckTimeout)
		schemaRan = a.checkSchema(cctx)
		cancel()
	}
	a.serve(apiLn, api)
	if opsLn != nil {
		a.serve(opsLn, ops)
	}
	bgctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	if opts.CheckSchema != nil {
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			a.watchSchema(bgctx, schemaRan)
		}()
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.Service.Run(bgctx, opts.WorkerTick, opts.ReconcileInterval, a.metrics.onPlan)
	}()
	a.runAuditEvents(bgctx)
	if opts.AuditRetention > 0 {
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			a.pruneAudit(bgctx)
		}()
	}
	return a, nil
}

// bind listens on addr, with TLS when a certificate is configured.
func (a *App) bind(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if a.opts.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(a.opts.TLSCertFile, a.opts.TLSKeyFile)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("load TLS certificate: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}})
	}
	return ln, nil
}

// serve serves h on ln until Close.
func (a *App) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{
		Handler: h, ReadHeaderTimeout: orDefault(a.opts.ReadHeaderTimeout, 5*time.Second),
		ReadTimeout: orDefault(a.opts.ReadTimeout, 30*time.Second), WriteTimeout: orDefault(a.opts.WriteTimeout, 60*time.Second),
		IdleTimeout: orDefault(a.opts.IdleTimeout, 120*time.Second), MaxHeaderBytes: 64 << 10,
		ErrorLog:  slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		ConnState: a.unused.track,
	}
	a.servers = append(a.servers, srv)
	a.listeners = append(a.listeners, ln)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

func (a *App) scheme() string {
	if a.opts.TLSCertFile != "" {
		return "https"
	}
	return "http"
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Addr is the SCIM listener's address (useful with port 0).
func (a *App) Addr() string { return a.listeners[0].Addr().String() }

// OpsAddr is the health/metrics listener's address (Addr when they share one).
func (a *App) OpsAddr() string { return a.listeners[len(a.listeners)-1].Addr().String() }

// URL is the SCIM base URL on the listener.
func (a *App) URL() string {
	return a.scheme() + "://" + a.Addr() + scim.Prefix
}

// Close stops accepting, waits for in-flight requests and the worker (bounded by
// ShutdownTimeout), then closes the store.
func (a *App) Close() error {
	a.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.opts.ShutdownTimeout)
		defer cancel()
		// Shutdown alone would wait for a connection without a request until it is 5
		// seconds old (see unusedConns).
		a.unused.closeAll()
		for _, s := range a.servers {
			if err := s.Shutdown(ctx); err != nil {
				a.closeErr = errors.Join(a.closeErr, err)
			}
		}
		if a.cancel != nil {
			a.cancel()
		}
		done := make(chan struct{})
		go func() { a.bg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			a.log.Warn("background work did not stop in time")
		}
		if a.Store != nil {
			a.closeErr = errors.Join(a.closeErr, a.Store.Close())
		}
	})
	return a.closeErr
}

func (a *App) pruneAudit(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		before := time.Now().Add(-a.opts.AuditRetention)
		if err := a.Store.Update(ctx, func(tx provision.Tx) error { return tx.PruneAudit(before) }); err != nil && ctx.Err() == nil {
			a.log.Warn("audit pruning failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) backup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="panther-scim.db"`)
	if _, err := a.Store.Backup(w); err != nil {
		a.log.ErrorContext(r.Context(), "online backup failed", "err", err)
	}
}

// ---- health -----------------------------------------------------------------------

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// ---- middleware -------------------------------------------------------------------

type requestIDKey struct{}

// RequestID returns the id of the request being served.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func (a *App) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		ctx = provision.WithRequestID(ctx, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (a *App) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("route", routePattern(r)),
			slog.String("path", r.URL.Path), slog.Int("status", sw.status),
			slog.Duration("duration", time.Since(start)))
	})
}

func (a *App) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				// The panic value may hold request data: log its type, not its text.
				a.log.ErrorContext(r.Context(), "panic serving request", "panic_type", fmt.Sprintf("%T", p))
				scim.WriteError(w, r, a.log, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (a *App) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		next.ServeHTTP(w, r)
	})
}

// limitConcurrency answers 429 + Retry-After beyond n SCIM requests in flight, so an
// IdP burst queues at the IdP, not in our memory.
func (a *App) limitConcurrency(n int) func(http.Handler) http.Handler {
	sem := make(chan struct{}, n)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				next.ServeHTTP(w, r)
			default:
				a.metrics.rejected.Inc()
				w.Header().Set("Retry-After", strconv.Itoa(1))
				scim.WriteError(w, r, a.log, scimerrors.ScimError{Status: http.StatusTooManyRequests, Detail: "Too many requests in flight; retry shortly."})
			}
		})
	}
}

// withActor hands the authenticated principal to the audit trail.
func withActor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := auth.Principal(r.Context()); p != "" {
			r = r.WithContext(provision.WithActor(r.Context(), p))
		}
		next.ServeHTTP(w, r)
	})
}

// requestLogHandler adds the request id and the authenticated principal to every
// record logged with a request's context, wherever in the code it is logged.
type requestLogHandler struct{ slog.Handler }

func (h requestLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if p := auth.Principal(ctx); p != "" {
		r.AddAttrs(slog.String("principal", p))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestLogHandler{h.Handler.WithAttrs(as)}
}

func (h requestLogHandler) WithGroup(name string) slog.Handler {
	return requestLogHandler{h.Handler.WithGroup(name)}
}
