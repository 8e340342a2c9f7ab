package auth

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/golang-jwt/jwt/v5"

	"github.com/panther-scim/panther-scim/scim/resource"
)

// Options configures an Authenticator.
type Options struct {
	// TokenHashes are the SHA-256 hashes of the accepted bearer tokens.
	TokenHashes []Hash
	// OAuth enables the client-credentials grant and its access tokens; nil disables it.
	OAuth *OAuth
	// FailureLimit slows down addresses that fail repeatedly; the zero value disables it.
	FailureLimit FailureLimit
	// OnFailure, when set, is called once for every failed authentication (for
	// metrics and logs), before the response is written.
	OnFailure func(Failure)
	// ClientAddr returns the address failures are counted by. The default is the
	// IP of r.RemoteAddr (with or without a port), IPv6 addresses grouped by /64.
	// Behind a reverse proxy, put a middleware that sets RemoteAddr from a trusted
	// header (chi's RealIP) in front, or supply this function.
	ClientAddr func(r *http.Request) string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// OAuth configures the client-credentials grant.
type OAuth struct {
	// ClientID is the one accepted client.
	ClientID string
	// ClientSecretHash is the SHA-256 hash of the client secret.
	ClientSecretHash Hash
	// SigningKey signs and verifies the HS256 access tokens; at least 32 bytes. The
	// key actually used is bound to ClientSecretHash too, so that rotating either
	// invalidates every token issued before.
	SigningKey []byte
	// TokenTTL is the access token lifetime; 1h when zero. A token whose lifetime
	// (exp - iat) is longer is refused, whoever signed it.
	TokenTTL time.Duration
	// ClockSkew is the leeway for exp, nbf and iat.
	ClockSkew time.Duration
	// Issuer and Audience are the iss and aud of issued tokens, required on
	// verification; both "panther-scim" when empty.
	Issuer   string
	Audience string
}

// FailureLimit is a token bucket of failed authentications per address.
type FailureLimit struct {
	// PerMinute is the refill rate; 0 disables the limiter.
	PerMinute float64
	// Burst is the number of failures allowed at once (at least 1).
	Burst int
	// MaxAddresses bounds the addresses tracked at once (10000 when zero). Beyond
	// it, addresses whose bucket has refilled are forgotten, and if that is not
	// enough the whole table is: the limiter then fails open rather than grow
	// without bound.
	MaxAddresses int
}

// Reason says why an authentication failed. It is reported to OnFailure only,
// never to the client, and has few values so that it can label a metric.
type Reason string

// Failure reasons.
const (
	ReasonMissing       Reason = "missing"        // no credentials
	ReasonScheme        Reason = "scheme"         // an Authorization scheme other than Bearer
	ReasonInvalid       Reason = "invalid"        // unknown bearer token or bad access token
	ReasonExpired       Reason = "expired"        // an access token past its expiry (plus skew)
	ReasonInvalidClient Reason = "invalid_client" // wrong OAuth client id or secret at the token endpoint
)

// Reasons lists every Reason, for a metric that exports each from the start.
var Reasons = []Reason{ReasonMissing, ReasonScheme, ReasonInvalid, ReasonExpired, ReasonInvalidClient}

// Failure describes one failed authentication for OnFailure.
type Failure struct {
	Reason Reason
	// Addr is the client address as counted by the limiter.
	Addr string
	// Limited is true when the address was over its failure limit and got 429.
	Limited bool
}

// Authenticator checks SCIM requests and issues OAuth access tokens.
type Authenticator struct {
	hashes    atomic.Pointer[[]Hash]
	oauth     *OAuth
	tokenKey  []byte // accessTokenKey of oauth
	parser    *jwt.Parser
	limiter   *failureLimiter
	onFailure func(Failure)
	addr      func(*http.Request) string
	now       func() time.Time
}

// New returns an Authenticator. It fails when no credential is configured or the
// OAuth settings are incomplete.
func New(opts Options) (*Authenticator, error) {
	a := &Authenticator{
		onFailure: opts.OnFailure,
		addr:      opts.ClientAddr,
		now:       opts.Now,
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.addr == nil {
		a.addr = clientAddr
	}
	a.SetTokenHashes(opts.TokenHashes)
	if o := opts.OAuth; o != nil {
		oc := *o
		switch {
		case oc.ClientID == "":
			return nil, errors.New("auth: OAuth client id is empty")
		case len(oc.SigningKey) < 32:
			return nil, errors.New("auth: OAuth signing key is shorter than 32 bytes")
		case oc.TokenTTL < 0 || oc.ClockSkew < 0:
			return nil, errors.New("auth: OAuth token TTL and clock skew must not be negative")
		}
		oc.SigningKey = append([]byte(nil), oc.SigningKey...)
		if oc.TokenTTL == 0 {
			oc.TokenTTL = time.Hour
		}
		if oc.Issuer == "" {
			oc.Issuer = "panther-scim"
		}
		if oc.Audience == "" {
			oc.Audience = "panther-scim"
		}
		a.oauth = &oc
		a.tokenKey = AccessTokenKey(oc.SigningKey, oc.ClientSecretHash)
		a.parser = jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(oc.Issuer),
			jwt.WithAudience(oc.Audience),
			jwt.WithSubject(oc.ClientID),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(oc.ClockSkew),
			jwt.WithTimeFunc(a.now),
		)
	}
	if len(opts.TokenHashes) == 0 && a.oauth == nil {
		return nil, errors.New("auth: no bearer token hash and no OAuth client configured")
	}
	if fl := opts.FailureLimit; fl.PerMinute > 0 {
		if fl.Burst < 1 {
			return nil, fmt.Errorf("auth: failure limit burst must be at least 1, got %d", fl.Burst)
		}
		a.limiter = newFailureLimiter(fl)
	} else if fl.PerMinute < 0 {
		return nil, errors.New("auth: failure limit rate must not be negative")
	}
	return a, nil
}

// SetTokenHashes replaces the accepted bearer tokens, for rotation without a
// restart; requests in flight finish with the set they started with.
func (a *Authenticator) SetTokenHashes(hashes []Hash) {
	hs := append([]Hash(nil), hashes...)
	a.hashes.Store(&hs)
}

// OAuthEnabled reports whether the client-credentials grant is configured, that
// is whether TokenHandler should be mounted.
func (a *Authenticator) OAuthEnabled() bool { return a.oauth != nil }

// Middleware admits requests with a valid bearer token or OAuth access token,
// with their principal in the context, and answers every other one with 401 (or
// 429 when its address is over the failure limit) and a SCIM error body.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		principal, reason := a.authenticate(r)
		if reason != "" {
			a.reject(w, r, reason, writeSCIMFailure)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), principal)))
	})
}

// authenticate returns the principal, or the reason the request fails.
func (a *Authenticator) authenticate(r *http.Request) (string, Reason) {
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0 || strings.TrimSpace(values[0]) == "":
		return "", ReasonMissing
	case len(values) > 1:
		return "", ReasonInvalid
	}
	scheme, cred, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ReasonScheme
	}
	cred = strings.TrimSpace(cred)
	if cred == "" {
		return "", ReasonMissing
	}
	if h, ok := a.matchToken(cred); ok {
		return "token:" + hex.EncodeToString(h[:4]), ""
	}
	// A JWT has exactly two dots; static tokens from GenerateToken have none.
	if a.oauth != nil && strings.Count(cred, ".") == 2 {
		return a.verifyAccessToken(cred)
	}
	return "", ReasonInvalid
}

// matchToken compares the token's hash with every configured hash in constant
// time, visiting all of them whatever matches, so that timing reveals neither
// whether nor which one matched.
func (a *Authenticator) matchToken(token string) (Hash, bool) {
	sum := HashToken(token)
	hashes := *a.hashes.Load()
	found := 0
	for i := range hashes {
		found |= subtle.ConstantTimeCompare(sum[:], hashes[i][:])
	}
	return sum, found == 1
}

// reject counts a failure against the request's address and answers 429 when the
// address is over its limit, else calls deny to answer 401.
func (a *Authenticator) reject(w http.ResponseWriter, r *http.Request, reason Reason, deny func(http.ResponseWriter, int, time.Duration)) {
	addr := a.addr(r)
	allowed, retryAfter := a.limiter.failure(addr, a.now())
	if a.onFailure != nil {
		a.onFailure(Failure{Reason: reason, Addr: addr, Limited: !allowed})
	}
	if !allowed {
		deny(w, http.StatusTooManyRequests, retryAfter)
		return
	}
	deny(w, http.StatusUnauthorized, 0)
}

// writeSCIMFailure answers a failed authentication with a fixed SCIM error body (RFC
// 7644 §3.12) that says nothing of which part of the credentials was wrong.
func writeSCIMFailure(w http.ResponseWriter, status int, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	detail := "Authentication failed."
	if status == http.StatusTooManyRequests {
		h.Set("Retry-After", retryAfterSeconds(retryAfter))
		detail = "Too many failed authentication attempts; retry later."
	} else {
		h.Set("WWW-Authenticate", "Bearer")
	}
	resource.WriteError(w, scimerrors.ScimError{Status: status, Detail: detail})
}

// retryAfterSeconds renders a delay as whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying the authenticated principal (the middleware
// does this; tests of other packages may too).
func WithPrincipal(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, principalKey{}, principal)
}

// Principal returns the principal the middleware authenticated, such as
// "token:1a2b3c4d" or "oauth:entra", or "" outside an authenticated request.
func Principal(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}
