package auth

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const scimError401 = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401","detail":"Authentication failed."}` + "\n"

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// failures records what OnFailure saw.
type failures struct {
	mu  sync.Mutex
	got []Failure
}

func (f *failures) record(x Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, x)
}

func (f *failures) last(t *testing.T) Failure {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		t.Fatal("OnFailure was not called")
	}
	return f.got[len(f.got)-1]
}

func (f *failures) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// protected is what the middleware guards: it echoes the principal.
var protected = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, Principal(r.Context()))
})

func mustNew(t *testing.T, opts Options) *Authenticator {
	t.Helper()
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// do sends a request through h with the given Authorization header (none if
// empty) from remote address addr.
func do(h http.Handler, authz, addr string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/scim/v2/Users", nil)
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	if addr != "" {
		r.RemoteAddr = addr
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func assertUnauthorized(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401; body %s", w.Code, w.Body)
	}
	if got := w.Body.String(); got != scimError401 {
		t.Errorf("body = %s, want %s", got, scimError401)
	}
	if got := w.Header().Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	if got := w.Header().Get("Content-Type"); got != "application/scim+json" {
		t.Errorf("Content-Type = %q", got)
	}
}

func TestGenerateToken(t *testing.T) {
	tok, h := GenerateToken()
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+43 {
		t.Errorf("token %q has the wrong shape", tok)
	}
	want := HashToken(tok)
	if h != hex.EncodeToString(want[:]) {
		t.Errorf("hash %s does not match the token", h)
	}
	parsed, err := ParseHash(strings.ToUpper(h))
	if err != nil || parsed != want {
		t.Errorf("ParseHash = %x, %v", parsed, err)
	}
	tok2, _ := GenerateToken()
	if tok2 == tok {
		t.Error("two tokens are equal")
	}
	if _, err := ParseHash(tok); err == nil || strings.Contains(err.Error(), tok) {
		t.Errorf("ParseHash(token) = %v", err)
	}
}

func TestBearerFailures(t *testing.T) {
	tok, _ := GenerateToken()
	var f failures
	a := mustNew(t, Options{TokenHashes: []Hash{HashToken(tok)}, OnFailure: f.record})
	h := a.Middleware(protected)

	tests := []struct {
		name   string
		authz  string
		reason Reason
	}{
		{"missing header", "", ReasonMissing},
		{"blank header", "   ", ReasonMissing},
		{"scheme only", "Bearer", ReasonMissing},
		{"scheme and spaces", "Bearer    ", ReasonMissing},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+tok)), ReasonScheme},
		{"token without scheme", tok, ReasonScheme},
		{"token scheme", "Token " + tok, ReasonScheme},
		{"wrong token", "Bearer pscim_wrong", ReasonInvalid},
		{"token with a suffix", "Bearer " + tok + "x", ReasonInvalid},
		{"token prefix only", "Bearer " + tok[:len(tok)-1], ReasonInvalid},
		{"hash instead of token", "Bearer " + func() string { x := HashToken(tok); return hex.EncodeToString(x[:]) }(), ReasonInvalid},
		{"jwt without oauth", "Bearer a.b.c", ReasonInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(h, tt.authz, "192.0.2.1:1234")
			assertUnauthorized(t, w)
			if got := f.last(t); got.Reason != tt.reason || got.Addr != "192.0.2.1" || got.Limited {
				t.Errorf("OnFailure got %+v, want reason %s", got, tt.reason)
			}
		})
	}

	// Two Authorization headers are refused.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Add("Authorization", "Bearer "+tok)
	r.Header.Add("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assertUnauthorized(t, w)

	// The right token passes, scheme in any case, with its principal.
	for _, authz := range []string{"Bearer " + tok, "bearer " + tok, "BEARER  " + tok + " "} {
		w := do(h, authz, "")
		want := HashToken(tok)
		if w.Code != http.StatusOK || w.Body.String() != "token:"+hex.EncodeToString(want[:4]) {
			t.Errorf("%q: status %d, body %q", authz, w.Code, w.Body)
		}
	}
}

func TestRotation(t *testing.T) {
	oldTok, _ := GenerateToken()
	newTok, _ := GenerateToken()
	a := mustNew(t, Options{TokenHashes: []Hash{HashToken(oldTok), HashToken(newTok)}})
	h := a.Middleware(protected)
	for _, tok := range []string{oldTok, newTok} {
		if w := do(h, "Bearer "+tok, ""); w.Code != http.StatusOK {
			t.Fatalf("during rotation: status %d", w.Code)
		}
	}
	pOld, pNew := do(h, "Bearer "+oldTok, "").Body.String(), do(h, "Bearer "+newTok, "").Body.String()
	if pOld == pNew {
		t.Errorf("both tokens have principal %q", pOld)
	}

	a.SetTokenHashes([]Hash{HashToken(newTok)})
	assertUnauthorized(t, do(h, "Bearer "+oldTok, ""))
	if w := do(h, "Bearer "+newTok, ""); w.Code != http.StatusOK {
		t.Errorf("after rotation: new token status %d", w.Code)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	for name, opts := range map[string]Options{
		"nothing":        {},
		"no client id":   {OAuth: &OAuth{SigningKey: key}},
		"short key":      {OAuth: &OAuth{ClientID: "c", SigningKey: key[:31]}},
		"negative ttl":   {OAuth: &OAuth{ClientID: "c", SigningKey: key, TokenTTL: -1}},
		"zero burst":     {TokenHashes: []Hash{{}}, FailureLimit: FailureLimit{PerMinute: 1}},
		"negative limit": {TokenHashes: []Hash{{}}, FailureLimit: FailureLimit{PerMinute: -1, Burst: 1}},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("%s: New = nil error", name)
		}
	}
}

func TestPrincipalOutsideRequest(t *testing.T) {
	if p := Principal(context.Background()); p != "" {
		t.Errorf("Principal = %q", p)
	}
	if p := Principal(WithPrincipal(context.Background(), "oauth:x")); p != "oauth:x" {
		t.Errorf("Principal = %q", p)
	}
}

// --- OAuth ---

const (
	clientID     = "entra-scim"
	clientSecret = "client+secret/with:odd=chars"
)

var signingKey = []byte("0123456789abcdef0123456789abcdef-test-key")

func newOAuth(t *testing.T, c *clock, f *failures, limit FailureLimit) *Authenticator {
	t.Helper()
	opts := Options{
		OAuth: &OAuth{
			ClientID:         clientID,
			ClientSecretHash: HashToken(clientSecret),
			SigningKey:       signingKey,
			TokenTTL:         time.Hour,
			ClockSkew:        time.Minute,
		},
		FailureLimit: limit,
		Now:          c.Now,
	}
	if f != nil {
		opts.OnFailure = f.record
	}
	return mustNew(t, opts)
}

type tokenReply struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int64  `json:"expires_in"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// postToken sends a token request; basic, when non-nil, is {id, secret} for HTTP Basic.
func postToken(t *testing.T, a *Authenticator, form url.Values, basic []string, addr string) (*httptest.ResponseRecorder, tokenReply) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		r.SetBasicAuth(basic[0], basic[1])
	}
	if addr != "" {
		r.RemoteAddr = addr
	}
	w := httptest.NewRecorder()
	a.TokenHandler().ServeHTTP(w, r)
	var reply tokenReply
	if err := json.Unmarshal(w.Body.Bytes(), &reply); err != nil && w.Code != http.StatusNotFound {
		t.Fatalf("token reply %q: %v", w.Body, err)
	}
	if w.Code != http.StatusNotFound {
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control = %q", cc)
		}
	}
	return w, reply
}

func credentialsForm() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {clientSecret}}
}

func TestOAuthIssueUseExpire(t *testing.T) {
	c := newClock()
	var f failures
	a := newOAuth(t, c, &f, FailureLimit{})
	h := a.Middleware(protected)

	w, reply := postToken(t, a, credentialsForm(), nil, "")
	if w.Code != http.StatusOK || reply.TokenType != "Bearer" || reply.ExpiresIn != 3600 || reply.AccessToken == "" {
		t.Fatalf("token response %d %+v", w.Code, reply)
	}

	// The token is a JWT with the expected claims.
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(reply.AccessToken, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Issuer != "panther-scim" || claims.Subject != clientID || len(claims.Audience) != 1 ||
		claims.Audience[0] != "panther-scim" || !claims.IssuedAt.Equal(c.Now()) || !claims.NotBefore.Equal(c.Now()) ||
		!claims.ExpiresAt.Equal(c.Now().Add(time.Hour)) || claims.ID == "" {
		t.Errorf("claims = %+v", claims)
	}

	if w := do(h, "Bearer "+reply.AccessToken, ""); w.Code != http.StatusOK || w.Body.String() != "oauth:"+clientID {
		t.Fatalf("fresh token: %d %q", w.Code, w.Body)
	}
	// Still accepted within the clock-skew leeway after expiry...
	c.Advance(time.Hour + 30*time.Second)
	if w := do(h, "Bearer "+reply.AccessToken, ""); w.Code != http.StatusOK {
		t.Fatalf("token within leeway: %d", w.Code)
	}
	// ...and refused beyond it.
	c.Advance(time.Minute)
	assertUnauthorized(t, do(h, "Bearer "+reply.AccessToken, ""))
	if got := f.last(t).Reason; got != ReasonExpired {
		t.Errorf("reason = %s, want expired", got)
	}

	// HTTP Basic works too, with or without form-encoding of the credentials.
	form := url.Values{"grant_type": {"client_credentials"}}
	for _, basic := range [][]string{{clientID, clientSecret}, {url.QueryEscape(clientID), url.QueryEscape(clientSecret)}} {
		if w, reply := postToken(t, a, form, basic, ""); w.Code != http.StatusOK || reply.AccessToken == "" {
			t.Errorf("basic %q: %d %+v", basic, w.Code, reply)
		}
	}
}

func TestOAuthTokenNotYetValid(t *testing.T) {
	c := newClock()
	a := newOAuth(t, c, nil, FailureLimit{})
	_, reply := postToken(t, a, credentialsForm(), nil, "")
	h := a.Middleware(protected)
	// A verifier whose clock is behind by less than the skew accepts the token...
	c.Advance(-30 * time.Second)
	if w := do(h, "Bearer "+reply.AccessToken, ""); w.Code != http.StatusOK {
		t.Fatalf("token 30s early: %d", w.Code)
	}
	// ...but not by more.
	c.Advance(-time.Minute)
	assertUnauthorized(t, do(h, "Bearer "+reply.AccessToken, ""))
}

func TestOAuthForgedTokens(t *testing.T) {
	c := newClock()
	var f failures
	a := newOAuth(t, c, &f, FailureLimit{})
	h := a.Middleware(protected)
	now := c.Now()
	good := jwt.RegisteredClaims{
		Issuer: "panther-scim", Subject: clientID, Audience: jwt.ClaimStrings{"panther-scim"},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}
	sign := func(m jwt.SigningMethod, claims jwt.RegisteredClaims, key any) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	key := AccessTokenKey(signingKey, HashToken(clientSecret))
	if w := do(h, "Bearer "+sign(jwt.SigningMethodHS256, good, key), ""); w.Code != http.StatusOK {
		t.Fatalf("control token refused: %d", w.Code)
	}
	mod := func(fn func(*jwt.RegisteredClaims)) jwt.RegisteredClaims { c := good; fn(&c); return c }
	tests := map[string]string{
		"other key": sign(jwt.SigningMethodHS256, good, []byte(strings.Repeat("x", 40))),
		// The configured key itself is not the token key: it is bound to the client secret.
		"unbound signing key": sign(jwt.SigningMethodHS256, good, signingKey),
		"HS512":               sign(jwt.SigningMethodHS512, good, key),
		"alg none":            sign(jwt.SigningMethodNone, good, jwt.UnsafeAllowNoneSignatureType),
		"other issuer":        sign(jwt.SigningMethodHS256, mod(func(c *jwt.RegisteredClaims) { c.Issuer = "evil" }), key),
		"other aud":           sign(jwt.SigningMethodHS256, mod(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"x"} }), key),
		"other client":        sign(jwt.SigningMethodHS256, mod(func(c *jwt.RegisteredClaims) { c.Subject = "okta" }), key),
		"no exp":              sign(jwt.SigningMethodHS256, mod(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil }), key),
		"no iat":              sign(jwt.SigningMethodHS256, mod(func(c *jwt.RegisteredClaims) { c.IssuedAt = nil }), key),
		"future iat":          sign(jwt.SigningMethodHS256, mod(func(c *jwt.RegisteredClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) }), key),
		// Signed with the right key, but valid for longer than the configured TTL (1h).
		"lifetime over TTL": sign(jwt.SigningMethodHS256, mod(func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(time.Hour + time.Second))
		}), key),
		"garbage": "aaa.bbb.ccc",
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			assertUnauthorized(t, do(h, "Bearer "+tok, ""))
			if got := f.last(t).Reason; got != ReasonInvalid {
				t.Errorf("reason = %s", got)
			}
		})
	}
}

// Tokens issued before a change of client secret, signing key or TTL stop working
// when the bridge restarts with the new setting, not when they expire.
func TestOAuthRotationRevokesTokens(t *testing.T) {
	c := newClock()
	before := newOAuth(t, c, nil, FailureLimit{})
	_, reply := postToken(t, before, credentialsForm(), nil, "")
	restart := func(fn func(*OAuth)) *Authenticator {
		o := OAuth{ClientID: clientID, ClientSecretHash: HashToken(clientSecret), SigningKey: signingKey,
			TokenTTL: time.Hour, ClockSkew: time.Minute}
		fn(&o)
		return mustNew(t, Options{OAuth: &o, Now: c.Now})
	}
	c.Advance(time.Minute)
	if w := do(restart(func(*OAuth) {}).Middleware(protected), "Bearer "+reply.AccessToken, ""); w.Code != http.StatusOK {
		t.Fatalf("a restart with the same settings refused the token: %d", w.Code)
	}
	tests := map[string]func(*OAuth){
		"client secret rotated": func(o *OAuth) { o.ClientSecretHash = HashToken("the-new-client-secret") },
		"signing key rotated":   func(o *OAuth) { o.SigningKey = []byte(strings.Repeat("k", 40)) },
		"TTL shortened":         func(o *OAuth) { o.TokenTTL = 10 * time.Minute },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			assertUnauthorized(t, do(restart(change).Middleware(protected), "Bearer "+reply.AccessToken, ""))
		})
	}
}

func TestOAuthTokenErrors(t *testing.T) {
	c := newClock()
	var f failures
	a := newOAuth(t, c, &f, FailureLimit{})
	with := func(k, v string) url.Values {
		form := credentialsForm()
		if v == "" {
			form.Del(k)
		} else {
			form.Set(k, v)
		}
		return form
	}
	tests := []struct {
		name        string
		form        url.Values
		basic       []string
		status      int
		code        string
		basicHeader bool
	}{
		{"bad secret", with("client_secret", "nope"), nil, 401, "invalid_client", false},
		{"bad client id", with("client_id", "okta"), nil, 401, "invalid_client", false},
		{"no secret", with("client_secret", ""), nil, 401, "invalid_client", false},
		{"no credentials", url.Values{"grant_type": {"client_credentials"}}, nil, 401, "invalid_client", false},
		{"bad basic secret", url.Values{"grant_type": {"client_credentials"}}, []string{clientID, "nope"}, 401, "invalid_client", true},
		{"basic and body", credentialsForm(), []string{clientID, clientSecret}, 400, "invalid_request", false},
		{"unsupported grant", with("grant_type", "password"), nil, 400, "unsupported_grant_type", false},
		{"missing grant", with("grant_type", ""), nil, 400, "invalid_request", false},
		{"repeated parameter", url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID, clientID}, "client_secret": {clientSecret}},
			nil, 400, "invalid_request", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.count()
			w, reply := postToken(t, a, tt.form, tt.basic, "")
			if w.Code != tt.status || reply.Error != tt.code || reply.AccessToken != "" {
				t.Errorf("got %d %+v, want %d %s", w.Code, reply, tt.status, tt.code)
			}
			if got := w.Header().Get("WWW-Authenticate") != ""; got != tt.basicHeader {
				t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
			if counted := f.count() > before; counted != (tt.code == "invalid_client") {
				t.Errorf("failure counted = %v", counted)
			}
		})
	}

	// Wrong method and content type.
	r := httptest.NewRequest(http.MethodGet, "/oauth/token", nil)
	w := httptest.NewRecorder()
	a.TokenHandler().ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET: %d", w.Code)
	}
	r = httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
	r.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	a.TokenHandler().ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "invalid_request") {
		t.Errorf("JSON body: %d %s", w.Code, w.Body)
	}

	// Without OAuth the endpoint does not exist.
	noOAuth := mustNew(t, Options{TokenHashes: []Hash{{}}})
	if noOAuth.OAuthEnabled() {
		t.Error("OAuthEnabled() = true")
	}
	if w, _ := postToken(t, noOAuth, credentialsForm(), nil, ""); w.Code != http.StatusNotFound {
		t.Errorf("no OAuth: %d", w.Code)
	}
}

// --- failure limiter ---

func TestFailureLimiter(t *testing.T) {
	c := newClock()
	tok, _ := GenerateToken()
	var f failures
	a := mustNew(t, Options{
		TokenHashes:  []Hash{HashToken(tok)},
		FailureLimit: FailureLimit{PerMinute: 6, Burst: 3}, // one failure back every 10s
		OnFailure:    f.record,
		Now:          c.Now,
	})
	h := a.Middleware(protected)
	const attacker, idp = "198.51.100.7:4000", "198.51.100.7:5000" // the same address: a shared proxy

	for i := range 3 {
		assertUnauthorized(t, do(h, "Bearer wrong", attacker))
		if f.last(t).Limited {
			t.Fatalf("failure %d limited", i+1)
		}
	}
	w := do(h, "Bearer wrong", attacker)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "10" {
		t.Fatalf("4th failure: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if !strings.Contains(w.Body.String(), `"status":"429"`) || !f.last(t).Limited {
		t.Errorf("429 body %s, failure %+v", w.Body, f.last(t))
	}
	// No credentials at all are failures too.
	if w := do(h, "", attacker); w.Code != http.StatusTooManyRequests {
		t.Errorf("missing header while limited: %d", w.Code)
	}

	// The valid token still passes from the same address, every time.
	for range 10 {
		if w := do(h, "Bearer "+tok, idp); w.Code != http.StatusOK {
			t.Fatalf("valid token from a limited address: %d", w.Code)
		}
	}
	// Another address is not affected.
	assertUnauthorized(t, do(h, "Bearer wrong", "203.0.113.9:1"))

	// After the refill interval, one more failure is let through as a 401.
	c.Advance(10 * time.Second)
	assertUnauthorized(t, do(h, "Bearer wrong", attacker))
	if w := do(h, "Bearer wrong", attacker); w.Code != http.StatusTooManyRequests {
		t.Errorf("after one refill: %d", w.Code)
	}
}

func TestFailureLimiterTokenEndpoint(t *testing.T) {
	c := newClock()
	a := newOAuth(t, c, nil, FailureLimit{PerMinute: 1, Burst: 1})
	bad := credentialsForm()
	bad.Set("client_secret", "guess")
	const addr = "192.0.2.50:1"
	if w, _ := postToken(t, a, bad, nil, addr); w.Code != http.StatusUnauthorized {
		t.Fatalf("first bad secret: %d", w.Code)
	}
	w, reply := postToken(t, a, bad, nil, addr)
	if w.Code != http.StatusTooManyRequests || reply.Error != "invalid_client" || w.Header().Get("Retry-After") != "60" {
		t.Fatalf("second bad secret: %d %+v Retry-After %q", w.Code, reply, w.Header().Get("Retry-After"))
	}
	// The real client still gets its token, and the middleware limits the same address.
	if w, reply := postToken(t, a, credentialsForm(), nil, addr); w.Code != http.StatusOK || reply.AccessToken == "" {
		t.Fatalf("good client from limited address: %d", w.Code)
	}
	if w := do(a.Middleware(protected), "Bearer x", addr); w.Code != http.StatusTooManyRequests {
		t.Errorf("middleware after token endpoint failures: %d", w.Code)
	}
}

func TestFailureLimiterBounded(t *testing.T) {
	l := newFailureLimiter(FailureLimit{PerMinute: 60, Burst: 1, MaxAddresses: 3})
	now := time.Unix(0, 0)
	for _, a := range []string{"a", "b", "c"} {
		if ok, _ := l.failure(a, now); !ok {
			t.Fatalf("first failure of %s limited", a)
		}
	}
	if ok, d := l.failure("a", now); ok || d != time.Second {
		t.Fatalf("a: ok=%v retry=%v", ok, d)
	}
	// A new address beyond the bound, while all buckets are fresh: the table is forgotten.
	if ok, _ := l.failure("d", now); !ok || len(l.buckets) != 1 {
		t.Fatalf("d: ok=%v, %d buckets", ok, len(l.buckets))
	}
	// Refilled buckets are swept first.
	later := now.Add(2 * time.Second)
	l.failure("e", later)
	l.failure("f", later)
	if ok, _ := l.failure("g", later); !ok || len(l.buckets) != 3 {
		t.Errorf("g: ok=%v, buckets %v", ok, len(l.buckets))
	}
	if _, ok := l.buckets["d"]; ok {
		t.Error("refilled bucket d was kept")
	}
}

func TestClientAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:443":              "192.0.2.1",
		"192.0.2.1":                  "192.0.2.1",
		"[::ffff:192.0.2.1]:80":      "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":       "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":          "fe80::/64",
		"@pipe":                      "@pipe",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = in
		if got := clientAddr(r); got != want {
			t.Errorf("clientAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	tok, _ := GenerateToken()
	a := mustNew(t, Options{TokenHashes: []Hash{HashToken(tok)}, FailureLimit: FailureLimit{PerMinute: 60, Burst: 5}})
	h := a.Middleware(protected)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				if i%2 == 0 {
					if w := do(h, "Bearer "+tok, "192.0.2.1:1"); w.Code != http.StatusOK {
						t.Errorf("valid token: %d", w.Code)
						return
					}
				} else {
					do(h, "Bearer bad", "192.0.2.1:1")
				}
				if j == 25 {
					a.SetTokenHashes([]Hash{HashToken(tok)})
				}
			}
		}()
	}
	wg.Wait()
}
