package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/auditexport"
	"github.com/panther-scim/panther-scim/internal/auth"
	"github.com/panther-scim/panther-scim/internal/config"
	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
)

func loadConfig(path string) (config.Config, error) {
	if path == "" {
		return config.Config{}, errors.New("--config FILE is required")
	}
	cfg, err := config.Load(path)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	// demo alone shares one token on purpose; a deployment must not let the IdP's token
	// download the store.
	if shared, err := cfg.AdminSharesBearerToken(); err != nil || shared {
		if err == nil {
			err = errors.New("auth: a token is both a SCIM bearer token and an admin token: the IdP could download the store and read the audit trail; give the admin endpoints their own token (panther-scim token --admin)")
		}
		return cfg, err
	}
	return cfg, nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	// Email addresses never reach the log (Panther's error messages quote them).
	if strings.EqualFold(cfg.Log.Format, "text") {
		return slog.New(app.RedactEmails(slog.NewTextHandler(w, opts)))
	}
	return slog.New(app.RedactEmails(slog.NewJSONHandler(w, opts)))
}

// newPantherClient builds the Panther client for cfg; obs and log may be nil (no metrics,
// no log of unrecognised Panther errors).
func newPantherClient(cfg config.Config, obs panther.Observer, log *slog.Logger) (*panther.Client, error) {
	tok, err := cfg.PantherToken()
	if err != nil {
		return nil, err
	}
	return panther.New(panther.Config{
		URL: cfg.Panther.URL, Token: tok, Timeout: cfg.Panther.Timeout, MaxRetries: cfg.Panther.MaxRetries,
		MaxConcurrent: cfg.Panther.MaxConcurrent, RatePerSecond: cfg.Panther.RatePerSecond, Burst: cfg.Panther.Burst,
		FixedRate: !cfg.Panther.AdaptiveRate,
		Observer:  obs, UserAgent: "panther-scim/" + version, Logger: log,
	})
}

// newAuthenticator builds the SCIM authenticator; each failure is counted, logged and
// handed to the record functions (the audit trail's AuthFailureLog).
func newAuthenticator(cfg config.Config, m *app.Metrics, log *slog.Logger, record ...func(auth.Failure)) (*auth.Authenticator, error) {
	hashes, err := cfg.BearerTokenHashes()
	if err != nil {
		return nil, err
	}
	opts := auth.Options{
		FailureLimit: auth.FailureLimit{PerMinute: cfg.Auth.FailureLimit.PerMinute, Burst: cfg.Auth.FailureLimit.Burst},
		OnFailure: func(f auth.Failure) {
			m.AuthFailed(f.Reason)
			for _, r := range record {
				r(f)
			}
			log.Warn("authentication failed", "reason", string(f.Reason), "addr", f.Addr, "limited", f.Limited)
		},
	}
	for _, h := range hashes {
		opts.TokenHashes = append(opts.TokenHashes, auth.Hash(h))
	}
	if cfg.Auth.OAuth.Enabled() {
		key, err := cfg.OAuthSigningKey()
		if err != nil {
			return nil, err
		}
		secret, err := cfg.OAuthClientSecretHash()
		if err != nil {
			return nil, err
		}
		opts.OAuth = &auth.OAuth{
			ClientID: cfg.Auth.OAuth.ClientID, ClientSecretHash: auth.Hash(secret), SigningKey: key,
			TokenTTL: cfg.Auth.OAuth.TokenTTL, ClockSkew: cfg.Auth.OAuth.ClockSkew,
		}
	}
	return auth.New(opts)
}

// newAdminAuthenticator is the middleware of the /admin/... endpoints: the admin tokens
// only (never the IdP's tokens or OAuth), failures counted and logged like the SCIM
// API's. nil when no admin token is configured: the endpoints then refuse everyone.
func newAdminAuthenticator(cfg config.Config, m *app.Metrics, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	hashes, err := cfg.AdminTokenHashes()
	if err != nil {
		return nil, err
	}
	if len(hashes) == 0 {
		log.Info("no admin token configured (auth.adminTokenHashes, auth.adminTokensEnv, auth.adminTokensFile): the /admin/... endpoints refuse every request")
		return nil, nil
	}
	opts := auth.Options{
		FailureLimit: auth.FailureLimit{PerMinute: cfg.Auth.FailureLimit.PerMinute, Burst: cfg.Auth.FailureLimit.Burst},
		OnFailure: func(f auth.Failure) {
			m.AuthFailed(f.Reason)
			log.Warn("admin authentication failed", "reason", string(f.Reason), "addr", f.Addr, "limited", f.Limited)
		},
	}
	for _, h := range hashes {
		opts.TokenHashes = append(opts.TokenHashes, auth.Hash(h))
	}
	a, err := auth.New(opts)
	if err != nil {
		return nil, err
	}
	return a.Middleware, nil
}

// provisionOptions turns the configuration into the rules' options, for the server
// and the commands that work on a stopped server's store alike.
func provisionOptions(cfg config.Config, log *slog.Logger) provision.Options {
	return provision.Options{
		Mapping: cfg.Mapping, Deactivation: provision.DeactivationMode(cfg.Provisioning.Deactivation),
		DeactivationRole: cfg.Provisioning.DeactivationRole, ProtectedEmails: cfg.Provisioning.ProtectedEmails,
		Adopt:           provision.AdoptPolicy(cfg.Provisioning.Adopt),
		SyncConcurrency: cfg.Provisioning.SyncConcurrency, RequestSyncTimeout: cfg.Provisioning.RequestSyncTimeout,
		Logger: log, Hooks: crashHooks(),
	}
}

// appOptions turns the configuration into the App's options, on the store st.
func appOptions(cfg config.Config, st app.Store, p provision.Panther, a *auth.Authenticator, log *slog.Logger) app.Options {
	o := app.Options{
		Addr: cfg.Server.Addr, OpsAddr: cfg.Server.OpsAddr, ReadyCacheTTL: cfg.Server.ReadyCacheTTL,
		Store: st, Panther: p, Provision: provisionOptions(cfg, log), StoreCheckTimeout: storeCheckTimeout(cfg),
		Authenticate: a.Middleware, MaxBodyBytes: cfg.Server.MaxBodyBytes, StrictAttributes: cfg.SCIM.StrictAttributes,
		MaxConcurrentRequests: cfg.Server.MaxConcurrentRequests, ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		ReadTimeout: cfg.Server.ReadTimeout, WriteTimeout: cfg.Server.WriteTimeout, IdleTimeout: cfg.Server.IdleTimeout,
		ShutdownTimeout: cfg.Server.ShutdownTimeout, TLSCertFile: cfg.Server.TLS.CertFile, TLSKeyFile: cfg.Server.TLS.KeyFile,
		ReconcileInterval: cfg.Provisioning.ReconcileInterval, AuditRetention: cfg.Audit.Retention, Logger: log,
		DeprovisionAlertAfter: cfg.Provisioning.DeprovisionAlertAfter,
	}
	if cfg.Server.BaseURL != "" {
		o.BaseURL = strings.TrimRight(cfg.Server.BaseURL, "/") + "/scim/v2"
	}
	if a.OAuthEnabled() {
		o.OAuthToken = a.TokenHandler()
	}
	if c, ok := p.(schemaChecker); ok {
		o.CheckSchema = c.CheckSchema
		// With the reconciler, and as often; without it, at the default period.
		o.SchemaCheckInterval = cfg.Provisioning.ReconcileInterval
		if o.SchemaCheckInterval <= 0 {
			o.SchemaCheckInterval = config.Default().Provisioning.ReconcileInterval
		}
	}
	return o
}

// schemaChecker is the Panther client's schema check (panther.Client.CheckSchema).
type schemaChecker interface {
	CheckSchema(ctx context.Context) (panther.Compatibility, error)
}

// auditExportOptions turns audit.panther into the exporter's options; nil when it
// is off.
func auditExportOptions(cfg config.Config) (*auditexport.Options, error) {
	p := cfg.Audit.Panther
	if !p.Enabled() {
		return nil, nil
	}
	secret, err := cfg.AuditPantherSecret()
	if err != nil {
		return nil, err
	}
	return &auditexport.Options{
		URL:       p.URL,
		Auth:      auditexport.Auth{Method: p.Auth, Header: p.Header, Algorithm: p.HMACAlgorithm, Secret: secret},
		BatchSize: p.BatchSize, Interval: p.FlushInterval, Timeout: p.Timeout, MaxBackoff: p.MaxBackoff,
		UserAgent: "panther-scim/" + version, AfterSend: exportCrashHook(),
	}, nil
}

// storeCheckTimeout is store.startCheckTimeout for the App, where 0 means the default:
// 0 in the config skips the record check.
func storeCheckTimeout(cfg config.Config) time.Duration {
	if cfg.Store.StartCheckTimeout == 0 {
		return -1
	}
	return cfg.Store.StartCheckTimeout
}

// startApp is the start-up of serve and demo: it builds the logger (on stderr), the
// metrics, the Panther client and the authenticators for cfg, opens the store
// (initStore accepts an existing empty file as a new store: serve --init), starts the
// App on them and checks the mapped roles. It returns the App and its logger.
func startApp(ctx context.Context, cfg config.Config, stderr io.Writer, initStore bool) (*app.App, *slog.Logger, error) {
	log := newLogger(cfg, stderr)
	m := app.NewMetrics()
	client, err := newPantherClient(cfg, m, log)
	if err != nil {
		return nil, nil, err
	}
	logGC(log, app.TuneGC())
	failures := app.NewAuthFailureLog()
	a, err := newAuthenticator(cfg, m, log, failures.Record)
	if err != nil {
		return nil, nil, err
	}
	auditExport, err := auditExportOptions(cfg)
	if err != nil {
		return nil, nil, err
	}
	adminAuth, err := newAdminAuthenticator(cfg, m, log)
	if err != nil {
		return nil, nil, err
	}
	// cmd/ picks the store's backend; the App takes any app.Store.
	st, err := store.Open(cfg.Store.Path, store.Options{
		OpenTimeout: cfg.Store.OpenTimeout, Init: initStore, OnDamagedRecord: app.LogDamagedRecord(log),
	})
	if err != nil {
		return nil, nil, err
	}
	opts := appOptions(cfg, st, client, a, log)
	opts.AuthFailures, opts.AuditExport, opts.AdminAuthenticate = failures, auditExport, adminAuth
	srv, err := app.Start(ctx, opts, m) // closes st when it fails
	if err != nil {
		return nil, nil, err
	}
	if err := checkRoles(ctx, srv.Service); err != nil {
		if errors.Is(err, errUnknownRole) {
			_ = srv.Close()
			return nil, nil, err
		}
		log.Warn("could not check the mapped roles in Panther yet", "err", err)
	}
	return srv, log, nil
}

var errUnknownRole = errors.New("unknown role")

// logGC says which memory limit the Go runtime runs under, and why.
func logGC(log *slog.Logger, s app.GCSettings) {
	if s.Err != nil {
		log.Warn("could not read the container's memory limit; the Go runtime runs without a soft memory limit (set GOMEMLIMIT to choose one)", "err", s.Err)
		return
	}
	limit := "none"
	if s.Limited() {
		limit = fmt.Sprintf("%d MiB", s.MemoryLimit>>20)
	}
	log.Info("Go runtime memory", "gogc", s.GCPercent, "memoryLimit", limit, "from", s.Source)
}

// checkRoles resolves every role the config names; an unknown one stops the start.
func checkRoles(ctx context.Context, svc *provision.Service) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := svc.ResolveRoles(ctx)
	var unknown *provision.UnknownRoleError
	if errors.As(err, &unknown) {
		return fmt.Errorf("%w: the mapping names role %q, which Panther does not have", errUnknownRole, unknown.Ref)
	}
	return err
}

func cmdServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("PANTHER_SCIM_CONFIG"), "config file (YAML)")
	initStore := fs.Bool("init", false, "accept an existing empty (0-byte) store file as a new, empty store; "+
		"without it such a file is refused, as it may be one that lost its data")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	srv, log, err := startApp(ctx, cfg, stderr, *initStore)
	if err != nil {
		return err
	}
	log.Info("panther-scim serving", "version", version, "scim", srv.URL(), "ops", srv.OpsAddr())
	<-ctx.Done()
	log.Info("shutting down")
	return srv.Close()
}

func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", envOr("PANTHER_SCIM_HEALTH_URL", "http://127.0.0.1:8080/healthz"),
		"health URL to probe (https:// when server.tls is set; a loopback host's certificate is not checked)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := healthProbe(ctx, *target, nil); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// healthProbe fails unless GET target answers 200. base is the transport to use (nil:
// a copy of the default one).
func healthProbe(ctx context.Context, target string, base *http.Transport) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	tr := base
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	if u.Scheme == "https" && isLoopback(u.Hostname()) {
		// The container probes its own listener, whose certificate names the public
		// host, not 127.0.0.1. The probe sends no credential and reads only the status,
		// so on loopback the certificate is not checked; elsewhere it is.
		tr = tr.Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // loopback liveness probe, see above
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", target, resp.StatusCode)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
