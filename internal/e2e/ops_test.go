package e2e

// Operating it safely (issue 7): authentication of the IdP over HTTP, secrets kept
// out of logs and endpoints, /readyz, /metrics, the audit trail, the ops listener,
// and the protections of the process (body cap, concurrency limit, timeouts, TLS).

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/auth"
	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/provision"
)

// ---- an env whose authentication the test builds --------------------------------

// testClock is the authenticator's clock: access token expiry and limiter refill
// move only when the test says so.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// failures records what the authenticator reported to OnFailure.
type failures struct {
	mu   sync.Mutex
	list []auth.Failure
}

func (f *failures) add(x auth.Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = append(f.list, x)
}

func (f *failures) reasons() []auth.Reason {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []auth.Reason
	for _, x := range f.list {
		out = append(out, x.Reason)
	}
	return out
}

// newAuthEnv is newEnv with an authenticator built from ao. It accepts e.Token
// (a fresh token) besides ao.TokenHashes, mounts /oauth/token when ao.OAuth is set,
// and reports failures to /metrics and the log as serve does.
func newAuthEnv(t *testing.T, ao auth.Options, opts ...option) (*env, *auth.Authenticator, *failures) {
	t.Helper()
	tok, _ := auth.GenerateToken()
	ao.TokenHashes = append([]auth.Hash{auth.HashToken(tok)}, ao.TokenHashes...)
	var cur atomic.Pointer[env]
	fl := &failures{}
	ao.OnFailure = func(f auth.Failure) {
		fl.add(f)
		if e := cur.Load(); e != nil {
			e.metrics.AuthFailed(f.Reason)
			e.opts.Logger.Warn("authentication failed", "reason", string(f.Reason), "addr", f.Addr, "limited", f.Limited)
		}
	}
	a, err := auth.New(ao)
	if err != nil {
		t.Fatal(err)
	}
	withAuth := func(o *app.Options) {
		o.Authenticate = a.Middleware
		if a.OAuthEnabled() {
			o.OAuthToken = a.TokenHandler()
		}
	}
	e := newEnv(t, append([]option{withAuth}, opts...)...)
	e.Token = tok
	cur.Store(e)
	return e, a, fl
}

const oauthClientID = "entra-provisioning"

// oauthCreds are an OAuth client's secrets, generated per test.
type oauthCreds struct {
	Secret     string
	SigningKey string
}

func newOAuth(ttl, skew time.Duration) (*auth.OAuth, oauthCreds) {
	secret, _ := auth.GenerateToken()
	key, _ := auth.GenerateToken() // 49 printable bytes: easy to grep for
	return &auth.OAuth{
		ClientID: oauthClientID, ClientSecretHash: auth.HashToken(secret), SigningKey: []byte(key),
		TokenTTL: ttl, ClockSkew: skew,
	}, oauthCreds{Secret: secret, SigningKey: key}
}

// root is the listener's URL without the SCIM prefix.
func (e *env) root() string { return strings.TrimSuffix(e.Base, "/scim/v2") }

// opsURL is a URL on the health/metrics listener.
func (e *env) opsURL(path string) string {
	scheme := "http"
	if e.opts.TLSCertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + e.App.OpsAddr() + path
}

// tokenRequest posts a client-credentials grant, with HTTP Basic or form credentials.
func (e *env) tokenRequest(id, secret string, basic bool) resp {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	authz := ""
	if basic {
		authz = "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	} else {
		form.Set("client_id", id)
		form.Set("client_secret", secret)
	}
	return e.do("POST", e.root()+"/oauth/token", form.Encode(),
		"Content-Type", "application/x-www-form-urlencoded", "Authorization", authz)
}

func (e *env) accessToken(c oauthCreds) string {
	e.t.Helper()
	r := e.tokenRequest(oauthClientID, c.Secret, true).must(e.t, http.StatusOK)
	tok := r.str("access_token")
	if tok == "" || r.str("token_type") != "Bearer" || r.Header.Get("Cache-Control") != "no-store" {
		e.t.Fatalf("token response: %v %s", r.Header, r.Raw)
	}
	return tok
}

// ---- /metrics in Prometheus text format -----------------------------------------

type sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// parseMetrics reads the Prometheus text exposition format.
func parseMetrics(t testing.TB, body string) []sample {
	t.Helper()
	var out []sample
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := sample{Labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			s.Name = line[:i]
			rest = line[i+1:]
			for {
				eq := strings.Index(rest, `="`)
				if eq < 0 {
					t.Fatalf("metrics line %q: bad labels", line)
				}
				name := strings.TrimLeft(rest[:eq], ",")
				rest = rest[eq+2:]
				var v strings.Builder
				for i := 0; ; i++ {
					if i >= len(rest) {
						t.Fatalf("metrics line %q: unterminated label value", line)
					}
					c := rest[i]
					if c == '\\' && i+1 < len(rest) {
						i++
						switch rest[i] {
						case 'n':
							v.WriteByte('\n')
						default:
							v.WriteByte(rest[i])
						}
						continue
					}
					if c == '"' {
						rest = rest[i+1:]
						break
					}
					v.WriteByte(c)
				}
				s.Labels[name] = v.String()
				if strings.HasPrefix(rest, "}") {
					rest = rest[1:]
					break
				}
			}
		} else {
			s.Name, rest, _ = strings.Cut(line, " ")
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			t.Fatalf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s.Value = v
		out = append(out, s)
	}
	return out
}

// metric sums the samples of name whose labels include match; ok is false when none.
func metric(ss []sample, name string, match map[string]string) (sum float64, ok bool) {
next:
	for _, s := range ss {
		if s.Name != name {
			continue
		}
		for k, v := range match {
			if s.Labels[k] != v {
				continue next
			}
		}
		sum += s.Value
		ok = true
	}
	return sum, ok
}

func (e *env) scrape() (raw string, ss []sample) {
	e.t.Helper()
	r := e.do("GET", e.opsURL("/metrics"), nil).must(e.t, http.StatusOK)
	return r.Raw, parseMetrics(e.t, r.Raw)
}

// ---- a whole IdP session --------------------------------------------------------

type session struct {
	Ada, Bob, Carol, Group string
	WrongToken             string
	Bodies                 []string // every response body, for the secrets check
}

// fullSession drives a session as an IdP would: users created, a group that maps to
// Admin, membership changes (role changes in Panther), a profile change, a Panther
// failure retried by the client, one that outlasts the retries (503, then the IdP's
// retry), a deactivation, a failed authentication, deletions.
func fullSession(t *testing.T, e *env) session {
	t.Helper()
	var s session
	keep := func(r resp) resp { s.Bodies = append(s.Bodies, r.Raw); return r }
	ok := func(r resp, codes ...int) resp {
		t.Helper()
		keep(r)
		for _, c := range codes {
			if r.Status == c {
				return r
			}
		}
		t.Fatalf("status %d, want %v: %s", r.Status, codes, r.Raw)
		return r
	}
	s.Ada = e.createUser("ada@example.com", "Ada", "Lovelace")
	s.Bob = e.createUser("bob@example.com", "Bob", "Babbage")
	s.Group = e.createGroup("Panther Admins", s.Ada)
	if got := e.pantherRole("ada@example.com"); got != "Admin" {
		t.Fatalf("ada's role after joining Panther Admins: %q", got)
	}
	ok(e.do("PATCH", "/Groups/"+s.Group, patchOp(
		map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": s.Bob}}},
		map[string]any{"op": "remove", "path": fmt.Sprintf("members[value eq %q]", s.Ada)},
	)), http.StatusOK, http.StatusNoContent)
	if a, b := e.pantherRole("ada@example.com"), e.pantherRole("bob@example.com"); a != "AnalystReadOnly" || b != "Admin" {
		t.Fatalf("roles after the membership PATCH: ada %q bob %q", a, b)
	}
	ok(e.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "ada@example.com"`), nil), http.StatusOK)
	ok(e.do("GET", "/Groups/"+s.Group, nil), http.StatusOK)

	// One Panther 500, retried by the client: the IdP sees success.
	e.Fake.FailNext("updateUser", 1, http.StatusInternalServerError)
	ok(e.do("PATCH", "/Users/"+s.Ada, patchOp(map[string]any{"op": "replace", "path": "name.givenName", "value": "Augusta"})), http.StatusOK)
	if pu, _ := e.Fake.UserByEmail("ada@example.com"); pu.GivenName != "Augusta" {
		t.Fatalf("name change after a retried 500: %+v", pu)
	}
	// Panther failing longer than the retries: 503 + Retry-After, and the IdP's retry works.
	// (More failures queued than one request's attempts: the background worker may
	// take some of them for the same intent.)
	e.Fake.FailNext("inviteUser", 50, http.StatusInternalServerError)
	r := keep(e.do("POST", "/Users", newUser("carol@example.com", "Carol", "Shaw")))
	r.scimErr(t, http.StatusServiceUnavailable, "")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After: %v", r.Header)
	}
	e.Fake.ClearFaults()
	s.Carol = e.createUser("carol@example.com", "Carol", "Shaw")

	// Okta deactivation.
	ok(e.do("PATCH", "/Users/"+s.Bob, patchOp(map[string]any{"op": "replace", "value": map[string]any{"active": false}})), http.StatusOK)
	if _, there := e.Fake.UserByEmail("bob@example.com"); there {
		t.Fatal("deactivated user still in Panther")
	}
	// A failed authentication.
	s.WrongToken, _ = auth.GenerateToken()
	keep(e.do("GET", "/Users", nil, "Authorization", "Bearer "+s.WrongToken)).scimErr(t, http.StatusUnauthorized, "")

	ok(e.do("DELETE", "/Users/"+s.Ada, nil), http.StatusNoContent)
	ok(e.do("DELETE", "/Groups/"+s.Group, nil), http.StatusNoContent)
	waitFor(t, "no pending intents", func() bool { return e.pending() == 0 })
	return s
}

// ---- authentication ---------------------------------------------------------------

func TestAuthFailureModes(t *testing.T) {
	clock := newTestClock()
	oauth, creds := newOAuth(10*time.Minute, 30*time.Second)
	e, _, fl := newAuthEnv(t, auth.Options{OAuth: oauth, Now: clock.Now})

	// Tokens that look right but are not: signed with another key, the right key
	// with the wrong audience or subject, alg none, a tampered payload.
	sign := func(key any, m jwt.SigningMethod, mutate func(*jwt.RegisteredClaims)) string {
		now := clock.Now()
		c := jwt.RegisteredClaims{Issuer: "panther-scim", Subject: oauthClientID, Audience: jwt.ClaimStrings{"panther-scim"},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))}
		if mutate != nil {
			mutate(&c)
		}
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := e.accessToken(creds)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"panther-scim","sub":"`+oauthClientID+`","aud":["panther-scim"],"exp":9999999999}`)) + "." + parts[2]
	otherKey := []byte(strings.Repeat("k", 40))
	// The key tokens are signed with: the signing key bound to the client secret.
	key := auth.AccessTokenKey([]byte(creds.SigningKey), auth.HashToken(creds.Secret))
	noneTok := sign(jwt.UnsafeAllowNoneSignatureType, jwt.SigningMethodNone, nil)

	cases := []struct {
		name   string
		header []string // extra headers; "" deletes Authorization
		reason auth.Reason
	}{
		{"missing header", []string{"Authorization", ""}, auth.ReasonMissing},
		{"empty bearer", []string{"Authorization", "Bearer "}, auth.ReasonMissing},
		{"basic scheme", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(oauthClientID+":"+creds.Secret))}, auth.ReasonScheme},
		{"token scheme", []string{"Authorization", "Token " + e.Token}, auth.ReasonScheme},
		{"bare token", []string{"Authorization", e.Token}, auth.ReasonScheme},
		{"wrong token", []string{"Authorization", "Bearer wrong-token-value-1234567890"}, auth.ReasonInvalid},
		{"token with a character changed", []string{"Authorization", "Bearer " + e.Token[:len(e.Token)-1] + flip(e.Token[len(e.Token)-1])}, auth.ReasonInvalid},
		{"token hash as token", []string{"Authorization", "Bearer " + hashHex(e.Token)}, auth.ReasonInvalid},
		{"client secret as token", []string{"Authorization", "Bearer " + creds.Secret}, auth.ReasonInvalid},
		{"garbled jwt", []string{"Authorization", "Bearer aaa.bbb.ccc"}, auth.ReasonInvalid},
		{"jwt tampered payload", []string{"Authorization", "Bearer " + tampered}, auth.ReasonInvalid},
		{"jwt other key", []string{"Authorization", "Bearer " + sign(otherKey, jwt.SigningMethodHS256, nil)}, auth.ReasonInvalid},
		{"jwt alg none", []string{"Authorization", "Bearer " + noneTok}, auth.ReasonInvalid},
		{"jwt wrong audience", []string{"Authorization", "Bearer " + sign(key, jwt.SigningMethodHS256, func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other"} })}, auth.ReasonInvalid},
		{"jwt wrong subject", []string{"Authorization", "Bearer " + sign(key, jwt.SigningMethodHS256, func(c *jwt.RegisteredClaims) { c.Subject = "intruder" })}, auth.ReasonInvalid},
		{"jwt no expiry", []string{"Authorization", "Bearer " + sign(key, jwt.SigningMethodHS256, func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })}, auth.ReasonInvalid},
		{"jwt expired", []string{"Authorization", "Bearer " + sign(key, jwt.SigningMethodHS256, func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(clock.Now().Add(-time.Hour))
		})}, auth.ReasonExpired},
	}
	var body string
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := userCalls(e)
			r := e.do("GET", "/Users", nil, c.header...)
			r.scimErr(t, http.StatusUnauthorized, "")
			if r.Header.Get("WWW-Authenticate") != "Bearer" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/scim+json") {
				t.Errorf("headers %v", r.Header)
			}
			// No hint: every failure gets the same bytes.
			if body == "" {
				body = r.Raw
			} else if r.Raw != body {
				t.Errorf("body differs between failure modes:\n%s\n%s", r.Raw, body)
			}
			for _, hint := range []string{"expired", "scheme", "missing", "signature", "invalid", "token is", "audience", "Basic"} {
				if strings.Contains(strings.ToLower(r.Raw), strings.ToLower(hint)) {
					t.Errorf("body hints %q: %s", hint, r.Raw)
				}
			}
			if userCalls(e) != calls {
				t.Error("an unauthenticated request reached Panther")
			}
			if got := fl.reasons(); len(got) != i+1 || got[i] != c.reason {
				t.Errorf("reported reasons %v, want the last one %q", got, c.reason)
			}
		})
	}
	// Every route under the SCIM prefix and the online backup are guarded, even unknown ones.
	for _, p := range []string{"/Users/x", "/Groups", "/ServiceProviderConfig", "/Schemas", "/nope", "/Users/.search"} {
		e.do("GET", p, nil, "Authorization", "").scimErr(t, http.StatusUnauthorized, "")
	}
	e.do("GET", e.root()+"/admin/backup", nil, "Authorization", "").must(t, http.StatusUnauthorized)

	// The scheme is case-insensitive (RFC 7235): a valid token passes whatever its case.
	e.do("GET", "/Users", nil, "Authorization", "bearer "+e.Token).must(t, http.StatusOK)
	e.do("GET", "/Users", nil, "Authorization", "BEARER  "+e.Token+" ").must(t, http.StatusOK)

	// Failures are counted in /metrics.
	want := float64(len(cases) + 7)
	_, ss := e.scrape()
	if n, _ := metric(ss, "panther_scim_auth_failures_total", nil); n != want {
		t.Errorf("panther_scim_auth_failures_total %v, want %v", n, want)
	}
	wantBy := map[auth.Reason]float64{auth.ReasonMissing: 7} // the guarded routes above
	for _, c := range cases {
		wantBy[c.reason]++
	}
	for _, r := range auth.Reasons {
		if n, ok := metric(ss, "panther_scim_auth_failures_total", map[string]string{"reason": string(r)}); !ok || n != wantBy[r] {
			t.Errorf("panther_scim_auth_failures_total{reason=%q} %v (exported: %v), want %v", r, n, ok, wantBy[r])
		}
	}
	if n, _ := metric(ss, "panther_scim_http_requests_total", map[string]string{"code": "401"}); n != want {
		t.Errorf("401 responses counted %v, want %v", n, want)
	}
}

// userCalls counts the Panther calls a SCIM request about a user makes; listing users
// and looking up roles also happen in the background (start-up, the reconciler).
func userCalls(e *env) int {
	n := 0
	for _, c := range e.Fake.Calls() {
		switch c.Op {
		case "inviteUser", "updateUser", "deleteUser", "userByEmail", "userById":
			n++
		}
	}
	return n
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func hashHex(tok string) string {
	h := auth.HashToken(tok)
	return hex.EncodeToString(h[:])
}

func principalOf(tok string) string {
	h := auth.HashToken(tok)
	return "token:" + hex.EncodeToString(h[:4])
}

func TestTokenRotation(t *testing.T) {
	e, a, _ := newAuthEnv(t, auth.Options{})
	old := e.Token
	nu, _ := auth.GenerateToken()
	as := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	e.do("GET", "/Users", nil, as(nu)...).scimErr(t, http.StatusUnauthorized, "")

	// Step 1: both accepted while the IdP is switched over.
	a.SetTokenHashes([]auth.Hash{auth.HashToken(old), auth.HashToken(nu)})
	e.do("POST", "/Users", newUser("old@example.com", "Old", "Token"), as(old)...).must(t, http.StatusCreated)
	id := e.do("POST", "/Users", newUser("new@example.com", "New", "Token"), as(nu)...).must(t, http.StatusCreated).str("id")
	e.do("GET", "/Users/"+id, nil, as(old)...).must(t, http.StatusOK)

	// Step 2: the old one removed.
	a.SetTokenHashes([]auth.Hash{auth.HashToken(nu)})
	e.do("GET", "/Users", nil, as(old)...).scimErr(t, http.StatusUnauthorized, "")
	e.do("GET", "/Users/"+id, nil, as(nu)...).must(t, http.StatusOK)

	// The audit trail tells the two tokens apart, without either token.
	actors := map[string]string{}
	err := e.App.Store.View(context.Background(), func(tx provision.ReadTx) error {
		return tx.ScanAudit(time.Time{}, func(en provision.AuditEntry) bool {
			if en.Action == "user.create" {
				actors[en.After["email"]] = en.Actor
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if actors["old@example.com"] != principalOf(old) || actors["new@example.com"] != principalOf(nu) {
		t.Errorf("actors %v, want %s and %s", actors, principalOf(old), principalOf(nu))
	}

	// Rotation by restart: the same store, a configuration that lists both, then the new one only.
	for _, c := range []struct {
		hashes []auth.Hash
		oldOK  bool
	}{{[]auth.Hash{auth.HashToken(old), auth.HashToken(nu)}, true}, {[]auth.Hash{auth.HashToken(nu)}, false}} {
		ra, err := auth.New(auth.Options{TokenHashes: c.hashes})
		if err != nil {
			t.Fatal(err)
		}
		e.opts.Authenticate = ra.Middleware
		e.restart()
		e.do("GET", "/Users/"+id, nil, as(nu)...).must(t, http.StatusOK)
		if r := e.do("GET", "/Users/"+id, nil, as(old)...); (r.Status == http.StatusOK) != c.oldOK {
			t.Errorf("after a restart with %d hashes, the old token got %d", len(c.hashes), r.Status)
		}
	}
}

func TestOAuthTokenIssueUseExpiry(t *testing.T) {
	clock := newTestClock()
	oauth, creds := newOAuth(10*time.Minute, 30*time.Second)
	e, _, fl := newAuthEnv(t, auth.Options{OAuth: oauth, Now: clock.Now})

	// Issue, with Basic and with form credentials.
	r := e.tokenRequest(oauthClientID, creds.Secret, true).must(t, http.StatusOK)
	if r.Body["expires_in"] != float64(600) || r.Body["token_type"] != "Bearer" || r.Header.Get("Pragma") != "no-cache" {
		t.Errorf("token response %v %s", r.Header, r.Raw)
	}
	tok := r.str("access_token")
	formTok := e.tokenRequest(oauthClientID, creds.Secret, false).must(t, http.StatusOK).str("access_token")
	if formTok == "" || formTok == tok {
		t.Errorf("form grant token %q (basic %q)", formTok, tok)
	}

	// Use: the access token authenticates SCIM calls, and the audit names the client.
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	id := e.do("POST", "/Users", newUser("entra@example.com", "En", "Tra"), bearer(tok)...).must(t, http.StatusCreated).str("id")
	e.do("GET", "/Users/"+id, nil, bearer(formTok)...).must(t, http.StatusOK)
	var actor string
	_ = e.App.Store.View(context.Background(), func(tx provision.ReadTx) error {
		return tx.ScanAudit(time.Time{}, func(en provision.AuditEntry) bool {
			if en.ID == id {
				actor = en.Actor
			}
			return true
		})
	})
	if actor != "oauth:"+oauthClientID {
		t.Errorf("audit actor %q", actor)
	}

	// Wrong client credentials: RFC 6749 invalid_client, no token, nothing said about which part.
	for _, c := range []struct {
		name, id, secret string
		basic            bool
	}{
		{"wrong secret basic", oauthClientID, "wrong-secret-0123456789", true},
		{"wrong secret form", oauthClientID, "wrong-secret-0123456789", false},
		{"wrong client", "someone-else", creds.Secret, true},
		{"bearer token as secret", oauthClientID, e.Token, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.tokenRequest(c.id, c.secret, c.basic).must(t, http.StatusUnauthorized)
			if r.str("error") != "invalid_client" || r.str("access_token") != "" || r.str("error_description") != "Client authentication failed." {
				t.Errorf("body %s", r.Raw)
			}
		})
	}
	e.do("POST", e.root()+"/oauth/token", "grant_type=password&username=a&password=b",
		"Content-Type", "application/x-www-form-urlencoded", "Authorization",
		"Basic "+base64.StdEncoding.EncodeToString([]byte(oauthClientID+":"+creds.Secret))).must(t, http.StatusBadRequest)

	// Expiry: still valid within the clock skew, refused after it.
	clock.Advance(10*time.Minute + 20*time.Second)
	e.do("GET", "/Users", nil, bearer(tok)...).must(t, http.StatusOK)
	clock.Advance(15 * time.Second)
	before := len(fl.reasons())
	e.do("GET", "/Users", nil, bearer(tok)...).scimErr(t, http.StatusUnauthorized, "")
	if rs := fl.reasons(); len(rs) != before+1 || rs[before] != auth.ReasonExpired {
		t.Errorf("reasons %v, want expired last", rs)
	}
	// A new token from the same client works again.
	e.do("GET", "/Users", nil, bearer(e.accessToken(creds))...).must(t, http.StatusOK)
	// A token from the future (issued by a clock ahead by more than the skew) is refused.
	future, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: "panther-scim", Subject: oauthClientID, Audience: jwt.ClaimStrings{"panther-scim"},
		IssuedAt: jwt.NewNumericDate(clock.Now().Add(time.Hour)), NotBefore: jwt.NewNumericDate(clock.Now().Add(time.Hour)),
		ExpiresAt: jwt.NewNumericDate(clock.Now().Add(2 * time.Hour)),
	}).SignedString(auth.AccessTokenKey([]byte(creds.SigningKey), auth.HashToken(creds.Secret)))
	if err != nil {
		t.Fatal(err)
	}
	e.do("GET", "/Users", nil, bearer(future)...).scimErr(t, http.StatusUnauthorized, "")
}

func TestFailureLimiter(t *testing.T) {
	clock := newTestClock()
	oauth, creds := newOAuth(time.Hour, time.Minute)
	e, _, fl := newAuthEnv(t, auth.Options{OAuth: oauth, Now: clock.Now, FailureLimit: auth.FailureLimit{PerMinute: 1, Burst: 3}})
	bad := []string{"Authorization", "Bearer not-the-token-0123456789"}

	for range 3 {
		e.do("GET", "/Users", nil, bad...).scimErr(t, http.StatusUnauthorized, "")
	}
	r := e.do("GET", "/Users", nil, bad...)
	r.scimErr(t, http.StatusTooManyRequests, "")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	// The OAuth endpoint counts against the same address.
	tr := e.tokenRequest(oauthClientID, "wrong-secret-0123456789", true).must(t, http.StatusTooManyRequests)
	if tr.str("error") != "invalid_client" || tr.Header.Get("Retry-After") == "" {
		t.Errorf("token endpoint over the limit: %v %s", tr.Header, tr.Raw)
	}

	// The IdP at the same address is never locked out.
	e.do("POST", "/Users", newUser("still@example.com", "Still", "Works"), nil...).must(t, http.StatusCreated)
	e.do("GET", "/Users", nil, "Authorization", "Bearer "+e.accessToken(creds)).must(t, http.StatusOK)

	// The bucket refills.
	clock.Advance(2 * time.Minute)
	e.do("GET", "/Users", nil, bad...).scimErr(t, http.StatusUnauthorized, "")

	var limited int
	fl.mu.Lock()
	for _, f := range fl.list {
		if f.Limited {
			limited++
		}
		if f.Addr != "127.0.0.1" {
			t.Errorf("failure counted for address %q", f.Addr)
		}
	}
	fl.mu.Unlock()
	if limited != 2 {
		t.Errorf("%d limited failures, want 2", limited)
	}
	_, ss := e.scrape()
	if n, _ := metric(ss, "panther_scim_auth_failures_total", nil); n != 6 {
		t.Errorf("panther_scim_auth_failures_total %v, want 6", n)
	}
	if n, _ := metric(ss, "panther_scim_http_requests_total", map[string]string{"code": "429"}); n != 2 {
		t.Errorf("429 responses counted %v, want 2", n)
	}
}

// ---- secrets ----------------------------------------------------------------------

func TestSecretsAbsentFromLogs(t *testing.T) {
	oauth, creds := newOAuth(time.Hour, time.Minute)
	e, _, _ := newAuthEnv(t, auth.Options{OAuth: oauth, FailureLimit: auth.FailureLimit{PerMinute: 10, Burst: 20}})
	s := fullSession(t, e)

	// OAuth: a grant, a use, a failed grant.
	access := e.accessToken(creds)
	e.do("GET", "/Users", nil, "Authorization", "Bearer "+access).must(t, http.StatusOK)
	bodies := append([]string(nil), s.Bodies...)
	bodies = append(bodies, e.tokenRequest(oauthClientID, s.WrongToken, true).must(t, http.StatusUnauthorized).Raw)
	// Panther refusing the key: the error reaches the IdP and the log.
	wrong := e.pantherWithKey("wrong-panther-key-0123456789")
	if _, err := wrong.Roles(context.Background()); !errors.Is(err, provision.ErrUnauthorized) || strings.Contains(err.Error(), "wrong-panther-key") {
		t.Errorf("Roles with a wrong key: %v", err)
	}
	// A restart replays and logs too.
	e.restart()
	e.do("GET", "/Users/"+s.Bob, nil).must(t, http.StatusOK)

	ready := e.do("GET", e.opsURL("/readyz"), nil).must(t, http.StatusOK).Raw
	metrics, _ := e.scrape()
	logs := e.Logs.String()
	if !strings.Contains(logs, "authentication failed") || !strings.Contains(logs, `"request_id"`) {
		t.Fatalf("the run logged too little to prove anything:\n%s", logs)
	}
	secrets := map[string]string{
		"Panther API key":        pantherKey,
		"SCIM bearer token":      e.Token,
		"SCIM bearer token hash": hashHex(e.Token),
		"wrong bearer token":     s.WrongToken,
		"OAuth client secret":    creds.Secret,
		"OAuth secret hash":      hashHex(creds.Secret),
		"OAuth signing key":      creds.SigningKey,
		"OAuth access token":     access,
	}
	sources := map[string]string{"logs": logs, "/metrics": metrics, "/readyz": ready, "responses": strings.Join(bodies, "\n")}
	for sname, src := range sources {
		for name, secret := range secrets {
			if strings.Contains(src, secret) {
				t.Errorf("%s contain the %s", sname, name)
			}
			// Also an upper-case hex or a token without its recognisable prefix.
			if strings.Contains(src, strings.ToUpper(secret)) || strings.Contains(src, strings.TrimPrefix(secret, auth.TokenPrefix)) {
				t.Errorf("%s contain a form of the %s", sname, name)
			}
		}
	}
}

// pantherWithKey is a Panther client for the env's double (on a second listener)
// that sends another API key.
func (e *env) pantherWithKey(key string) *panther.Client {
	e.t.Helper()
	ps := httptest.NewServer(e.Fake.Handler())
	e.t.Cleanup(ps.Close)
	c, err := panther.New(panther.Config{
		URL: ps.URL + "/public/graphql", Token: key, Timeout: 2 * time.Second, MaxRetries: 1,
		BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, RatePerSecond: -1,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// ---- /readyz ----------------------------------------------------------------------

type readiness struct {
	Status  int
	State   string
	Checks  map[string]string
	Pending float64
	HasAge  bool
	Body    map[string]any
	Raw     string
}

func (e *env) readiness() readiness {
	e.t.Helper()
	r := e.do("GET", e.opsURL("/readyz"), nil, "Authorization", "")
	out := readiness{Status: r.Status, State: r.str("status"), Checks: map[string]string{}, Body: r.Body, Raw: r.Raw}
	if c, ok := r.Body["checks"].(map[string]any); ok {
		for k, v := range c {
			out.Checks[k], _ = v.(string)
		}
	}
	out.Pending, _ = r.Body["pendingIntents"].(float64)
	_, out.HasAge = r.Body["oldestPendingAgeSeconds"]
	return out
}

func TestReadyz(t *testing.T) {
	t.Run("ready", func(t *testing.T) {
		e := newEnv(t)
		r := e.readiness()
		if r.Status != http.StatusOK || r.State != "ready" || r.Checks["store"] != "ok" || r.Checks["panther"] != "ok" || r.Pending != 0 || r.HasAge {
			t.Fatalf("readyz: %s", r.Raw)
		}
		if !strings.Contains(r.Raw, `"pendingIntents":0`) {
			t.Errorf("pendingIntents not reported: %s", r.Raw)
		}
		// The probe leaves nothing behind.
		if e.pending() != 0 {
			t.Errorf("readyz left %d intents", e.pending())
		}
		e.do("GET", e.opsURL("/healthz"), nil, "Authorization", "").must(t, http.StatusOK)
	})

	t.Run("panther rejects the token", func(t *testing.T) {
		const wrongKey = "revoked-panther-key-0123456789"
		e := newEnv(t)
		e.opts.Panther = e.pantherWithKey(wrongKey)
		e.restart()
		r := e.readiness()
		if r.Status != http.StatusServiceUnavailable || r.State != "not ready" || r.Checks["store"] != "ok" ||
			!strings.Contains(r.Checks["panther"], "rejected") {
			t.Fatalf("readyz: %s", r.Raw)
		}
		if strings.Contains(r.Raw, wrongKey) || strings.Contains(r.Raw, pantherKey) || strings.Contains(e.Logs.String(), wrongKey) {
			t.Error("a Panther key leaked")
		}
	})

	t.Run("panther down, pending intents", func(t *testing.T) {
		e := newEnv(t)
		id := e.createUser("pending@example.com", "Pen", "Ding")
		e.Fake.SetRateLimitRate(0, -1) // no Retry-After: the client's retries stay short
		e.Fake.Down(true)
		// A deactivation is accepted while Panther is down and queued.
		e.do("PATCH", "/Users/"+id, patchOp(map[string]any{"op": "replace", "path": "active", "value": false})).must(t, http.StatusOK)
		r := e.readiness()
		if r.Status != http.StatusServiceUnavailable || r.Checks["panther"] != "unreachable" || r.Checks["store"] != "ok" || r.Pending != 1 || !r.HasAge {
			t.Fatalf("readyz with Panther down and a queued change: %s", r.Raw)
		}
		e.Fake.Down(false)
		e.App.Service.Replay(context.Background(), true)
		waitFor(t, "the queued change to reach Panther", func() bool { return e.pending() == 0 })
		if r := e.readiness(); r.Status != http.StatusOK || r.Pending != 0 {
			t.Fatalf("readyz after recovery: %s", r.Raw)
		}
	})

	t.Run("store unreadable", func(t *testing.T) {
		// The check reads in a read transaction (it writes only while commits are
		// failing: TestStoreWriteFailure). A closed database fails it.
		e := newEnv(t)
		if err := e.App.Store.Close(); err != nil {
			t.Fatal(err)
		}
		r := e.readiness()
		if r.Status != http.StatusServiceUnavailable || r.State != "not ready" || r.Checks["store"] != "not readable" || r.Checks["panther"] != "ok" {
			t.Fatalf("readyz with the store closed: %s", r.Raw)
		}
		// Liveness is not readiness: the process is still alive.
		e.do("GET", e.opsURL("/healthz"), nil).must(t, http.StatusOK)
	})
}

// ---- metrics ----------------------------------------------------------------------

func TestMetricsAfterSession(t *testing.T) {
	e := newEnv(t)
	s := fullSession(t, e)
	e.readiness()
	raw, ss := e.scrape()

	type want struct {
		name   string
		labels map[string]string
	}
	for _, w := range []want{
		{"panther_scim_http_requests_total", map[string]string{"route": "/scim/v2/Users", "method": "POST", "code": "201"}},
		{"panther_scim_http_requests_total", map[string]string{"route": "/scim/v2/Users", "method": "POST", "code": "503"}},
		{"panther_scim_http_requests_total", map[string]string{"route": "/scim/v2/Users", "method": "GET", "code": "200"}},
		{"panther_scim_http_requests_total", map[string]string{"route": "/scim/v2/Users/{id}", "method": "PATCH", "code": "200"}},
		{"panther_scim_http_requests_total", map[string]string{"route": "/scim/v2/Users/{id}", "method": "DELETE", "code": "204"}},
		{"panther_scim_http_requests_total", map[string]string{"route": "/scim/v2/Groups", "method": "POST", "code": "201"}},
		{"panther_scim_http_requests_total", map[string]string{"route": "/scim/v2/Groups/{id}", "method": "GET", "code": "200"}},
		{"panther_scim_http_requests_total", map[string]string{"route": "/scim/v2/Groups/{id}", "method": "DELETE", "code": "204"}},
		{"panther_scim_http_requests_total", map[string]string{"method": "GET", "code": "401"}},
		{"panther_scim_http_requests_total", map[string]string{"route": "/readyz", "method": "GET", "code": "200"}},
		{"panther_scim_http_request_duration_seconds_bucket", map[string]string{"route": "/scim/v2/Users", "method": "POST", "le": "+Inf"}},
		{"panther_scim_http_request_duration_seconds_count", map[string]string{"route": "/scim/v2/Users/{id}", "method": "PATCH"}},
		{"panther_scim_http_request_duration_seconds_sum", map[string]string{"route": "/scim/v2/Groups/{id}", "method": "PATCH"}},
		{"panther_scim_panther_calls_total", map[string]string{"operation": "inviteUser", "outcome": "ok"}},
		{"panther_scim_panther_calls_total", map[string]string{"operation": "inviteUser", "outcome": "unavailable"}},
		{"panther_scim_panther_calls_total", map[string]string{"operation": "updateUser", "outcome": "ok"}},
		{"panther_scim_panther_calls_total", map[string]string{"operation": "deleteUser", "outcome": "ok"}},
		{"panther_scim_panther_call_duration_seconds_count", map[string]string{"operation": "inviteUser"}},
		{"panther_scim_panther_retries_total", map[string]string{"operation": "inviteUser"}},
		{"panther_scim_panther_retries_total", map[string]string{"operation": "updateUser"}},
		{"panther_scim_auth_failures_total", nil},
		{"panther_scim_pending_intents", nil},
	} {
		if v, ok := metric(ss, w.name, w.labels); !ok || (v <= 0 && w.name != "panther_scim_pending_intents") {
			t.Errorf("%s%v: %v %v", w.name, w.labels, v, ok)
		}
	}
	if v, _ := metric(ss, "panther_scim_pending_intents", nil); v != 0 {
		t.Errorf("pending intents %v after a settled session", v)
	}
	// The store's room, measured at the scrape: the file's own size, and free space beside it.
	fi, err := os.Stat(e.storePath)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := metric(ss, "panther_scim_store_file_bytes", nil); !ok || v != float64(fi.Size()) {
		t.Errorf("panther_scim_store_file_bytes %v (exported: %v), the file has %d bytes", v, ok, fi.Size())
	}
	if v, ok := metric(ss, "panther_scim_store_disk_free_bytes", nil); !ok || v <= 0 {
		t.Errorf("panther_scim_store_disk_free_bytes %v (exported: %v)", v, ok)
	}
	if v, _ := metric(ss, "panther_scim_auth_failures_total", nil); v != 1 {
		t.Errorf("auth failures %v, want 1", v)
	}
	if v, _ := metric(ss, "panther_scim_panther_retries_total", map[string]string{"operation": "inviteUser"}); v < 2 {
		t.Errorf("inviteUser retries %v, want at least 2 (maxRetries)", v)
	}
	for _, name := range []string{"panther_scim_drift_total", "panther_scim_overload_rejections_total"} {
		if !strings.Contains(raw, "# TYPE "+name+" ") {
			t.Errorf("%s not exported", name)
		}
	}
	for _, action := range []string{"invite", "update", "delete"} {
		if _, ok := metric(ss, "panther_scim_drift_total", map[string]string{"action": action}); !ok {
			t.Errorf("panther_scim_drift_total{action=%q} not exported before any drift", action)
		}
	}
	// Route labels are patterns: no id, no query, no unbounded set.
	routes := map[string]bool{}
	for _, x := range ss {
		if r, ok := x.Labels["route"]; ok {
			routes[r] = true
			for _, id := range []string{s.Ada, s.Bob, s.Carol, s.Group} {
				if strings.Contains(r, id) {
					t.Errorf("route label %q holds an id", r)
				}
			}
			if strings.ContainsAny(r, "?=") {
				t.Errorf("route label %q holds a query", r)
			}
		}
		if m, ok := x.Labels["method"]; ok && m != strings.ToUpper(m) {
			t.Errorf("method label %q", m)
		}
	}
	// Unknown paths do not add routes.
	for i := range 5 {
		e.do("GET", e.root()+fmt.Sprintf("/random-%d", i), nil).must(t, http.StatusNotFound)
	}
	_, ss = e.scrape()
	more := map[string]bool{}
	for _, x := range ss {
		if r, ok := x.Labels["route"]; ok && !routes[r] {
			more[r] = true
		}
	}
	if len(more) > 2 { // "unmatched", and /metrics itself once scraped
		t.Errorf("new route labels after 404s: %v", more)
	}

	// Drift found by the background reconciler is counted.
	d := newEnv(t, func(o *app.Options) { o.ReconcileInterval = 50 * time.Millisecond })
	d.createUser("drift@example.com", "Dr", "Ift")
	pu, _ := d.Fake.UserByEmail("drift@example.com")
	if err := d.Fake.RemoveUser(pu.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reconciler to count the drift", func() bool {
		_, ss := d.scrape()
		v, _ := metric(ss, "panther_scim_drift_total", map[string]string{"action": "invite"})
		return v >= 1
	})
	waitFor(t, "the reconciler to repair the drift", func() bool { return d.pantherRole("drift@example.com") == "AnalystReadOnly" })
}

// ---- audit trail ------------------------------------------------------------------

func TestAuditTrail(t *testing.T) {
	e := newEnv(t)
	start := time.Now().Add(-time.Second)
	s := fullSession(t, e)
	actor := principalOf(e.Token)

	var entries []provision.AuditEntry
	err := e.App.Store.View(context.Background(), func(tx provision.ReadTx) error {
		return tx.ScanAudit(time.Time{}, func(en provision.AuditEntry) bool {
			entries = append(entries, en)
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	find := func(action, id string) provision.AuditEntry {
		t.Helper()
		for _, en := range entries {
			if en.Action == action && en.ID == id {
				return en
			}
		}
		t.Fatalf("no %s entry for %s in:\n%s", action, id, dumpAudit(entries))
		return provision.AuditEntry{}
	}
	for _, en := range entries {
		if en.Actor != actor || en.RequestID == "" || en.Outcome == "" || en.Time.Before(start) || en.Time.After(time.Now()) {
			t.Errorf("entry without who/when/outcome: %+v (actor want %s)", en, actor)
		}
	}

	create := find("user.create", s.Ada)
	if create.Before != nil || create.After["email"] != "ada@example.com" || create.After["userName"] != "ada@example.com" ||
		create.After["active"] != "true" || create.After["givenName"] != "Ada" || create.After["familyName"] != "Lovelace" {
		t.Errorf("create: %+v", create)
	}

	// Role changes through group membership: the group's entry, and each member's role before and after.
	gc := find("group.create", s.Group)
	if gc.Before != nil || gc.After["displayName"] != "Panther Admins" || gc.After["members"] != "1" {
		t.Errorf("group create: %+v", gc)
	}
	roles := map[string][]string{}
	for _, en := range entries {
		if en.Action == "user.role" {
			roles[en.ID] = append(roles[en.ID], en.Before["role"]+"->"+en.After["role"])
			if en.After["email"] == "" {
				t.Errorf("role entry without the user's email: %+v", en)
			}
		}
	}
	if got := strings.Join(roles[s.Ada], " "); got != "AnalystReadOnly->Admin Admin->AnalystReadOnly" {
		t.Errorf("ada's role changes %q, want AnalystReadOnly->Admin then back:\n%s", got, dumpAudit(entries))
	}
	if got := strings.Join(roles[s.Bob], " "); !strings.HasPrefix(got, "AnalystReadOnly->Admin") {
		t.Errorf("bob's role changes %q:\n%s", got, dumpAudit(entries))
	}

	deact := find("user.deactivate", s.Bob)
	if deact.Before["active"] != "true" || deact.After["active"] != "false" || deact.After["email"] != "bob@example.com" {
		t.Errorf("deactivate: %+v", deact)
	}
	del := find("user.delete", s.Ada)
	if del.After != nil || del.Before["email"] != "ada@example.com" || del.Before["givenName"] != "Augusta" {
		t.Errorf("delete: %+v", del)
	}
	// The create that Panther refused is recorded with its outcome.
	var rolledBack bool
	for _, en := range entries {
		rolledBack = rolledBack || (en.Action == "user.create" && strings.HasPrefix(en.Outcome, "rolled back"))
	}
	if !rolledBack {
		t.Errorf("no rolled-back create:\n%s", dumpAudit(entries))
	}
	// A request that was refused authentication changed nothing and is not an audit entry.
	if strings.Contains(dumpAudit(entries), s.WrongToken) {
		t.Error("audit holds the wrong token")
	}
}

func dumpAudit(es []provision.AuditEntry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "  %s %s %s %s before=%v after=%v %q\n", e.Time.Format(time.RFC3339Nano), e.Actor, e.Action, e.ID, e.Before, e.After, e.Outcome)
	}
	return b.String()
}

// ---- listeners and protections -------------------------------------------------------

func TestOpsListener(t *testing.T) {
	e := newEnv(t, func(o *app.Options) { o.OpsAddr = "127.0.0.1:0" })
	if e.App.OpsAddr() == e.App.Addr() {
		t.Fatalf("ops listener %s is the SCIM listener", e.App.OpsAddr())
	}
	e.createUser("ops@example.com", "O", "Ps")
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		// On the ops listener, without credentials.
		e.do("GET", e.opsURL(p), nil, "Authorization", "").must(t, http.StatusOK)
	}
	for _, p := range []string{"/readyz", "/metrics"} {
		// Not on the SCIM listener.
		e.do("GET", e.root()+p, nil).must(t, http.StatusNotFound)
	}
	// Liveness is on both: the container's health check probes the SCIM port.
	e.do("GET", e.root()+"/healthz", nil, "Authorization", "").must(t, http.StatusOK)
	// And SCIM is not served on the ops listener.
	e.do("GET", "http://"+e.App.OpsAddr()+"/scim/v2/Users", nil).must(t, http.StatusNotFound)
	_, ss := e.scrape()
	if v, _ := metric(ss, "panther_scim_http_requests_total", map[string]string{"route": "/scim/v2/Users", "method": "POST", "code": "201"}); v != 1 {
		t.Errorf("SCIM requests not counted on the ops listener's /metrics: %v", v)
	}
	if v, _ := metric(ss, "panther_scim_http_requests_total", map[string]string{"route": "/healthz", "code": "200"}); v != 2 {
		t.Errorf("ops requests not counted: %v", v)
	}
}

func TestRequestBodyCap(t *testing.T) {
	e := newEnv(t, func(o *app.Options) { o.MaxBodyBytes = 4096 })
	u := newUser("big@example.com", "Big", "Body")
	u["title"] = strings.Repeat("x", 5000)
	calls := userCalls(e)
	e.do("POST", "/Users", u).scimErr(t, http.StatusRequestEntityTooLarge, "")
	if userCalls(e) != calls {
		t.Error("Panther called for an oversized body")
	}
	u["title"] = strings.Repeat("x", 3000)
	id := e.do("POST", "/Users", u).must(t, http.StatusCreated).str("id")
	// PUT and PATCH too, and a body sent without a length.
	u["title"] = strings.Repeat("y", 5000)
	e.do("PUT", "/Users/"+id, u).scimErr(t, http.StatusRequestEntityTooLarge, "")
	e.do("PATCH", "/Users/"+id, patchOp(map[string]any{"op": "replace", "path": "title", "value": strings.Repeat("z", 5000)})).
		scimErr(t, http.StatusRequestEntityTooLarge, "")
	req, _ := http.NewRequest("POST", e.Base+"/Users", io.MultiReader(strings.NewReader(`{"userName":"`), strings.NewReader(strings.Repeat("c", 5000)+`"}`)))
	req.Header.Set("Authorization", "Bearer "+e.Token)
	req.Header.Set("Content-Type", "application/scim+json")
	res, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
		t.Errorf("chunked oversized body: %d (content length %d)", res.StatusCode, req.ContentLength)
	}
	if r := e.do("GET", "/Users/"+id, nil).must(t, http.StatusOK); len(r.str("title")) != 3000 {
		t.Error("an oversized request changed the user")
	}
	// The token endpoint has its own, smaller cap.
	oauth, _ := newOAuth(time.Hour, 0)
	e2, _, _ := newAuthEnv(t, auth.Options{OAuth: oauth})
	big := "grant_type=client_credentials&client_id=x&client_secret=" + strings.Repeat("s", 100<<10)
	r := e2.do("POST", e2.root()+"/oauth/token", big, "Content-Type", "application/x-www-form-urlencoded", "Authorization", "")
	if r.Status != http.StatusBadRequest && r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized token request: %d %s", r.Status, r.Raw)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	e := newEnv(t, func(o *app.Options) { o.MaxConcurrentRequests = 2 })
	e.Fake.SetLatency(800*time.Millisecond, 0)
	post := func(user string, out chan<- int) {
		body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"name":{"givenName":"A","familyName":"B"},"emails":[{"value":%q,"primary":true}],"active":true}`, user, user)
		req, _ := http.NewRequest("POST", e.Base+"/Users", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.Token)
		req.Header.Set("Content-Type", "application/scim+json")
		res, err := e.Client.Do(req)
		if err != nil {
			out <- -1
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		out <- res.StatusCode
	}
	done := make(chan int, 2)
	go post("slow1@example.com", done)
	go post("slow2@example.com", done)

	// Probe until the two slow requests hold both slots.
	var over resp
	deadline := time.Now().Add(10 * time.Second)
	for {
		over = e.do("GET", "/ServiceProviderConfig", nil)
		if over.Status == http.StatusTooManyRequests {
			break
		}
		if over.Status != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("never limited: %d %s", over.Status, over.Raw)
		}
		time.Sleep(5 * time.Millisecond)
	}
	over.scimErr(t, http.StatusTooManyRequests, "")
	if over.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", over.Header.Get("Retry-After"))
	}
	// Health is never limited.
	e.do("GET", e.opsURL("/healthz"), nil).must(t, http.StatusOK)
	for range 2 {
		if code := <-done; code != http.StatusCreated {
			t.Errorf("a slow request ended with %d", code)
		}
	}
	e.Fake.SetLatency(0, 0)
	e.do("GET", "/Users", nil).must(t, http.StatusOK)
	_, ss := e.scrape()
	if v, _ := metric(ss, "panther_scim_overload_rejections_total", nil); v < 1 {
		t.Errorf("overload rejections %v", v)
	}
}

// TestGracefulShutdown: Close lets a request that is waiting on Panther finish, and
// its change is applied, before the store closes.
func TestGracefulShutdown(t *testing.T) {
	inPanther := make(chan struct{})
	var once sync.Once
	e := newEnv(t, func(o *app.Options) {
		o.Provision.Hooks.AfterStoreWrite = func() { once.Do(func() { close(inPanther) }) }
	})
	e.Fake.SetLatency(300*time.Millisecond, 0)
	status := make(chan int, 1)
	go func() {
		body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"late@example.com","name":{"givenName":"L","familyName":"Ate"},"emails":[{"value":"late@example.com","primary":true}],"active":true}`
		req, _ := http.NewRequest("POST", e.Base+"/Users", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.Token)
		req.Header.Set("Content-Type", "application/scim+json")
		res, err := e.Client.Do(req)
		if err != nil {
			status <- -1
			return
		}
		res.Body.Close()
		status <- res.StatusCode
	}()
	select {
	case <-inPanther:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached Panther")
	}
	// Close returns an error when its shutdown budget runs out: nil means the in-flight
	// request finished within it.
	if err := e.App.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if code := <-status; code != http.StatusCreated {
		t.Fatalf("in-flight request during shutdown: %d", code)
	}
	if e.pantherRole("late@example.com") != "AnalystReadOnly" {
		t.Error("the in-flight change did not reach Panther")
	}
	// New connections are refused once closed.
	if _, err := net.DialTimeout("tcp", e.App.Addr(), time.Second); err == nil {
		t.Error("listener still open after Close")
	}
}

// TestShutdownClosesUnusedConnections: a connection that has sent no request yet does
// not hold the shutdown up. An HTTP client's pool keeps such connections (dialled for
// a request that another connection served meanwhile), and http.Server.Shutdown alone
// waits for one until it is 5 seconds old: past a shorter shutdownTimeout, Close
// failed and serve exited 1 on SIGTERM.
func TestShutdownClosesUnusedConnections(t *testing.T) {
	e := newEnv(t, func(o *app.Options) {
		o.ShutdownTimeout = 2 * time.Second
		o.ReadHeaderTimeout = time.Minute // not what ends the connection here
	})
	unused, err := net.Dial("tcp", e.App.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer unused.Close()
	// The server accepts connections in the order they came: once a request on a
	// connection of its own is answered, the unused one has been accepted too.
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	res, err := probe.Get("http://" + e.App.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if err := e.App.Close(); err != nil {
		t.Fatalf("close with a connection that sent nothing open: %v", err)
	}
	_ = unused.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := unused.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the unused connection is still open after Close (read %d, %v)", n, err)
	}
}

func TestServerTimeouts(t *testing.T) {
	e := newEnv(t, func(o *app.Options) {
		o.ReadHeaderTimeout = 200 * time.Millisecond
		o.IdleTimeout = 300 * time.Millisecond
	})
	closedWithin := func(conn net.Conn, limit time.Duration) bool {
		t.Helper()
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
		return time.Since(start) < limit
	}
	// A client that never finishes its headers (slowloris) is cut off.
	c, err := net.Dial("tcp", e.App.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(c, 4*time.Second) {
		t.Error("a connection with unfinished headers was not closed by ReadHeaderTimeout")
	}
	// An idle keep-alive connection is closed.
	c2, err := net.Dial("tcp", e.App.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := io.WriteString(c2, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c2.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		t.Fatalf("keep-alive request: %q %v", buf[:n], err)
	}
	if !closedWithin(c2, 4*time.Second) {
		t.Error("an idle keep-alive connection was not closed by IdleTimeout")
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	e := newEnv(t, func(o *app.Options) { o.TLSCertFile, o.TLSKeyFile = certFile, keyFile })
	if !strings.HasPrefix(e.Base, "https://") {
		t.Fatalf("base URL %s", e.Base)
	}
	e.Client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	e.createUser("tls@example.com", "T", "Ls")
	e.do("GET", e.opsURL("/healthz"), nil).must(t, http.StatusOK)

	dial := func(minV, maxV uint16) (uint16, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", e.App.Addr(),
			&tls.Config{RootCAs: pool, MinVersion: minV, MaxVersion: maxV, ServerName: "127.0.0.1"})
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		return conn.ConnectionState().Version, nil
	}
	for _, c := range []struct {
		name       string
		minV, maxV uint16
		want       uint16
	}{
		{"TLS 1.0", tls.VersionTLS10, tls.VersionTLS10, 0},
		{"TLS 1.1", tls.VersionTLS11, tls.VersionTLS11, 0},
		{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12, tls.VersionTLS12},
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, tls.VersionTLS13},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := dial(c.minV, c.maxV)
			switch {
			case c.want == 0 && err == nil:
				t.Errorf("negotiated %s; must be refused", tls.VersionName(got))
			case c.want == 0 && !strings.Contains(err.Error(), "protocol version"):
				t.Errorf("refused, but not by the server's version check: %v", err)
			case c.want != 0 && (err != nil || got != c.want):
				t.Errorf("got %s, %v", tls.VersionName(got), err)
			}
		})
	}
	// Plain HTTP on the TLS port gets no SCIM answer.
	res, err := http.Get("http://" + e.App.Addr() + "/scim/v2/Users")
	if err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS port: %d", res.StatusCode)
		}
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key as PEM files.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "panther-scim test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
