package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"time"
)

// MinBearerTokenLen is the shortest raw bearer token accepted from the environment
// or a file. `panther-scim token` generates 43-character tokens.
const MinBearerTokenLen = 16

// MinSigningKeyLen is the shortest OAuth signing key accepted (HS256 wants at least
// the hash size).
const MinSigningKeyLen = 32

// Validate checks the configuration and reports every problem at once (joined
// with errors.Join), each starting with its key. Besides the values themselves it
// checks that the referenced secrets resolve: the Panther token, the bearer tokens
// and the OAuth signing key are read (never reported) and TLS files must exist.
func (c Config) Validate() error {
	var v validator

	s := c.Server
	v.hostPort("server.addr", s.Addr, true)
	v.hostPort("server.opsAddr", s.OpsAddr, false)
	if s.OpsAddr != "" && s.OpsAddr == s.Addr {
		v.add("server.opsAddr", "must differ from server.addr (leave it empty to serve health and metrics on server.addr)")
	}
	if s.BaseURL == "" {
		// Location and meta.location are built from it; deriving them from a request's
		// Host or X-Forwarded-Proto would let any client choose the URLs the IdP stores.
		v.add("server.baseURL", "required: the external URL the IdP uses to reach this server (e.g. https://scim.example.com)")
	} else {
		v.httpURL("server.baseURL", s.BaseURL)
	}
	v.duration("server.readyCacheTTL", s.ReadyCacheTTL, true)
	v.positive("server.maxBodyBytes", s.MaxBodyBytes)
	v.duration("server.readHeaderTimeout", s.ReadHeaderTimeout, false)
	v.duration("server.readTimeout", s.ReadTimeout, false)
	v.duration("server.writeTimeout", s.WriteTimeout, false)
	v.duration("server.idleTimeout", s.IdleTimeout, false)
	v.duration("server.shutdownTimeout", s.ShutdownTimeout, false)
	v.positive("server.maxConcurrentRequests", int64(s.MaxConcurrentRequests))
	switch {
	case s.TLS.CertFile != "" && s.TLS.KeyFile == "":
		v.add("server.tls.keyFile", "required when server.tls.certFile is set")
	case s.TLS.CertFile == "" && s.TLS.KeyFile != "":
		v.add("server.tls.certFile", "required when server.tls.keyFile is set")
	case s.TLS.Enabled():
		v.readable("server.tls.certFile", s.TLS.CertFile)
		v.readable("server.tls.keyFile", s.TLS.KeyFile)
	}

	p := c.Panther
	if p.URL == "" {
		v.add("panther.url", "required (the Panther GraphQL endpoint, e.g. https://api.acme.runpanther.net/public/graphql)")
	} else {
		v.httpURL("panther.url", p.URL)
	}
	if p.TokenEnv == "" && p.TokenFile == "" {
		v.add("panther.tokenEnv", "one of panther.tokenEnv and panther.tokenFile is required")
	} else if _, err := c.PantherToken(); err != nil {
		v.add(pick(p.TokenFile != "", "panther.tokenFile", "panther.tokenEnv"), err.Error())
	}
	v.duration("panther.timeout", p.Timeout, false)
	v.nonNegative("panther.maxRetries", int64(p.MaxRetries))
	v.positive("panther.maxConcurrent", int64(p.MaxConcurrent))
	if !(p.RatePerSecond > 0) {
		v.add("panther.ratePerSecond", "must be greater than 0")
	}
	v.positive("panther.burst", int64(p.Burst))

	if strings.TrimSpace(c.Store.Path) == "" {
		v.add("store.path", "required")
	}
	v.duration("store.openTimeout", c.Store.OpenTimeout, false)
	v.duration("store.startCheckTimeout", c.Store.StartCheckTimeout, true)

	c.validateAuth(&v)

	pr := c.Provisioning
	switch pr.Deactivation {
	case DeactivateDelete:
		if pr.DeactivationRole != "" {
			v.add("provisioning.deactivationRole", `must be empty when provisioning.deactivation is "delete"`)
		}
	case DeactivateRole:
		if strings.TrimSpace(pr.DeactivationRole) == "" {
			v.add("provisioning.deactivationRole", `required when provisioning.deactivation is "role"`)
		}
		for _, r := range c.Mapping.Roles() {
			if r == pr.DeactivationRole {
				v.add("provisioning.deactivationRole", fmt.Sprintf("%q is also a role the mapping assigns: deactivated users would keep that access", r))
			}
		}
	default:
		v.add("provisioning.deactivation", fmt.Sprintf(`must be "delete" or "role", not %q`, pr.Deactivation))
	}
	switch pr.Adopt {
	case AdoptNone, AdoptNonAdmin, AdoptAll:
	default:
		v.add("provisioning.adopt", fmt.Sprintf(`must be "none", "nonAdmin" or "all", not %q`, pr.Adopt))
	}
	for i, e := range pr.ProtectedEmails {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != strings.TrimSpace(e) {
			v.add(fmt.Sprintf("provisioning.protectedEmails[%d]", i), fmt.Sprintf("%q is not a plain email address", e))
		}
	}
	v.duration("provisioning.reconcileInterval", pr.ReconcileInterval, true)
	v.positive("provisioning.syncConcurrency", int64(pr.SyncConcurrency))
	v.duration("provisioning.requestSyncTimeout", pr.RequestSyncTimeout, false)
	if pr.RequestSyncTimeout > 0 && c.Server.ShutdownTimeout > 0 && pr.RequestSyncTimeout >= c.Server.ShutdownTimeout {
		// A request waits for Panther up to requestSyncTimeout; a graceful shutdown must
		// leave it that long, or the IdP sees its request cut off (the change is kept and
		// replayed, but the IdP retries a request it could have had answered).
		v.add("provisioning.requestSyncTimeout", fmt.Sprintf("must be shorter than server.shutdownTimeout (%s), so that a graceful shutdown lets a request waiting on Panther finish", c.Server.ShutdownTimeout))
	}
	v.duration("provisioning.deprovisionAlertAfter", pr.DeprovisionAlertAfter, true)

	if err := c.Mapping.Validate(); err != nil {
		for _, e := range unjoin(err) {
			v.add("mapping", e.Error())
		}
	}

	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		v.add("log.level", fmt.Sprintf("must be debug, info, warn or error, not %q", c.Log.Level))
	}
	switch strings.ToLower(c.Log.Format) {
	case "json", "text":
	default:
		v.add("log.format", fmt.Sprintf("must be json or text, not %q", c.Log.Format))
	}
	v.duration("audit.retention", c.Audit.Retention, true)
	c.validateAuditPanther(&v)

	return errors.Join(v.errs...)
}

func (c Config) validateAuth(v *validator) {
	a := c.Auth
	methods := 0
	for i, h := range a.BearerTokenHashes {
		if _, err := parseHash(h); err != nil {
			v.add(fmt.Sprintf("auth.bearerTokenHashes[%d]", i), err.Error())
		}
		methods++
	}
	if a.BearerTokensEnv != "" {
		toks, err := c.bearerTokens().fromEnv()
		if err != nil {
			v.add("auth.bearerTokensEnv", err.Error())
		}
		methods += len(toks)
	}
	if a.BearerTokensFile != "" {
		toks, err := c.bearerTokens().fromFile()
		if err != nil {
			v.add("auth.bearerTokensFile", err.Error())
		} else if len(toks) == 0 {
			v.add("auth.bearerTokensFile", fmt.Sprintf("%s holds no token", a.BearerTokensFile))
		}
		methods += len(toks)
	}
	o := a.OAuth
	if o.Enabled() {
		methods++
		if o.ClientSecretHash == "" {
			v.add("auth.oauth.clientSecretHash", "required when auth.oauth.clientID is set")
		} else if _, err := parseHash(o.ClientSecretHash); err != nil {
			v.add("auth.oauth.clientSecretHash", err.Error())
		}
		if o.SigningKeyEnv == "" && o.SigningKeyFile == "" {
			v.add("auth.oauth.signingKeyEnv", "one of auth.oauth.signingKeyEnv and auth.oauth.signingKeyFile is required when OAuth is enabled")
		} else if _, err := c.OAuthSigningKey(); err != nil {
			v.add(pick(o.SigningKeyFile != "", "auth.oauth.signingKeyFile", "auth.oauth.signingKeyEnv"), err.Error())
		}
		v.duration("auth.oauth.tokenTTL", o.TokenTTL, false)
		v.duration("auth.oauth.clockSkew", o.ClockSkew, true)
		if o.TokenTTL > 24*time.Hour {
			v.add("auth.oauth.tokenTTL", "must be at most 24h: access tokens cannot be revoked before they expire")
		}
	} else if o.ClientSecretHash != "" {
		v.add("auth.oauth.clientID", "required when auth.oauth.clientSecretHash is set")
	}
	if methods == 0 {
		v.add("auth", fmt.Sprintf("no SCIM authentication configured: set auth.bearerTokenHashes, the variable named by auth.bearerTokensEnv (%s), auth.bearerTokensFile, or auth.oauth",
			pick(a.BearerTokensEnv != "", a.BearerTokensEnv, "unset")))
	}
	// Admin tokens are optional: without one the /admin/... endpoints refuse everyone.
	for i, h := range a.AdminTokenHashes {
		if _, err := parseHash(h); err != nil {
			v.add(fmt.Sprintf("auth.adminTokenHashes[%d]", i), err.Error())
		}
	}
	if a.AdminTokensEnv != "" {
		if _, err := c.adminTokens().fromEnv(); err != nil {
			v.add("auth.adminTokensEnv", err.Error())
		}
	}
	if a.AdminTokensFile != "" {
		toks, err := c.adminTokens().fromFile()
		if err != nil {
			v.add("auth.adminTokensFile", err.Error())
		} else if len(toks) == 0 {
			v.add("auth.adminTokensFile", fmt.Sprintf("%s holds no token", a.AdminTokensFile))
		}
	}
	if a.FailureLimit.PerMinute < 0 {
		v.add("auth.failureLimit.perMinute", "must not be negative (0 disables the limiter)")
	}
	if a.FailureLimit.PerMinute > 0 {
		v.positive("auth.failureLimit.burst", int64(a.FailureLimit.Burst))
	}
}

// validateAuditPanther checks audit.panther when it is on (url set): the method and
// what it needs, and that the secret resolves (never reported).
func (c Config) validateAuditPanther(v *validator) {
	p := c.Audit.Panther
	if !p.Enabled() {
		return
	}
	v.httpURL("audit.panther.url", p.URL)
	switch p.Auth {
	case "sharedSecret", "hmac":
		if strings.TrimSpace(p.Header) == "" {
			v.add("audit.panther.header", fmt.Sprintf("required when audit.panther.auth is %q (the header name configured on the HTTP source)", p.Auth))
		}
		if p.Auth == "hmac" {
			switch p.HMACAlgorithm {
			case "sha1", "sha256", "sha384", "sha512":
			default:
				v.add("audit.panther.hmacAlgorithm", fmt.Sprintf("must be sha1, sha256, sha384 or sha512 (as configured on the HTTP source), not %q", p.HMACAlgorithm))
			}
		}
	case "bearer":
	default:
		v.add("audit.panther.auth", fmt.Sprintf(`must be "sharedSecret", "hmac" or "bearer" (the HTTP source's authentication), not %q`, p.Auth))
	}
	if p.SecretEnv == "" && p.SecretFile == "" {
		v.add("audit.panther.secretEnv", "one of audit.panther.secretEnv and audit.panther.secretFile is required")
	} else if _, err := c.AuditPantherSecret(); err != nil {
		v.add(pick(p.SecretFile != "", "audit.panther.secretFile", "audit.panther.secretEnv"), err.Error())
	}
	if p.BatchSize <= 0 || p.BatchSize > 10000 {
		v.add("audit.panther.batchSize", fmt.Sprintf("must be between 1 and 10000, got %d", p.BatchSize))
	}
	v.duration("audit.panther.flushInterval", p.FlushInterval, false)
	v.duration("audit.panther.timeout", p.Timeout, false)
	v.duration("audit.panther.maxBackoff", p.MaxBackoff, false)
}

// parseHash checks a hex SHA-256 hash.
func parseHash(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		// Never echo the value: a raw token pasted here by mistake must not reach the logs.
		return h, errors.New("not a SHA-256 hash (64 hex digits); put raw tokens in the environment or a file instead")
	}
	copy(h[:], b)
	return h, nil
}

func pick(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

// unjoin splits an errors.Join result into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

type validator struct{ errs []error }

func (v *validator) add(key, msg string) { v.errs = append(v.errs, fmt.Errorf("%s: %s", key, msg)) }

func (v *validator) duration(key string, d time.Duration, zeroOK bool) {
	switch {
	case d < 0:
		v.add(key, fmt.Sprintf("must not be negative, got %s", d))
	case d == 0 && !zeroOK:
		v.add(key, "must be greater than 0")
	}
}

func (v *validator) positive(key string, n int64) {
	if n <= 0 {
		v.add(key, fmt.Sprintf("must be greater than 0, got %d", n))
	}
}

func (v *validator) nonNegative(key string, n int64) {
	if n < 0 {
		v.add(key, fmt.Sprintf("must not be negative, got %d", n))
	}
}

func (v *validator) hostPort(key, addr string, required bool) {
	if addr == "" {
		if required {
			v.add(key, "required (host:port)")
		}
		return
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		v.add(key, fmt.Sprintf("%q is not host:port", addr))
	}
}

func (v *validator) httpURL(key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(key, fmt.Sprintf("%q is not an absolute http(s) URL", raw))
		return
	}
	if u.User != nil {
		v.add(key, "must not carry credentials")
	}
}

func (v *validator) readable(key, path string) {
	f, err := os.Open(path)
	if err != nil {
		v.add(key, err.Error())
		return
	}
	f.Close()
}
