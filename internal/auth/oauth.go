package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenRequestBytes caps the body of a token request: a few form fields.
const maxTokenRequestBytes = 16 << 10

// TokenHandler serves the OAuth 2.0 client-credentials grant (RFC 6749 §4.4),
// meant for POST /oauth/token. The client authenticates with HTTP Basic or with
// client_id and client_secret in the form body (not both); a valid request gets
// a short-lived HS256 JWT access token (RFC 6749 §5.1) that Middleware accepts.
// Errors follow RFC 6749 §5.2: invalid_request (400), invalid_client (401, with
// WWW-Authenticate: Basic when Basic was used), unsupported_grant_type (400).
// Client failures count against the same per-address limit as the middleware's.
// Without OAuth configured it answers 404.
func (a *Authenticator) TokenHandler() http.Handler {
	return http.HandlerFunc(a.serveToken)
}

func (a *Authenticator) serveToken(w http.ResponseWriter, r *http.Request) {
	if a.oauth == nil {
		http.NotFound(w, r)
		return
	}
	// RFC 6749 §5.1: token responses, errors included, must not be cached.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "The token endpoint accepts POST only.")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The body must be application/x-www-form-urlencoded.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequestBytes)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The body is not a valid form.")
		return
	}
	form := r.PostForm
	for k, v := range form {
		if len(v) > 1 { // RFC 6749 §3.2
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Parameter "+k+" is repeated.")
			return
		}
	}

	id, secret, basic := r.BasicAuth()
	if basic && (form.Has("client_id") || form.Has("client_secret")) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Use one client authentication method, not both.")
		return
	}
	var ok bool
	if basic {
		// RFC 6749 §2.3.1: Basic credentials are form-encoded first; many clients
		// skip that, so accept either form.
		ok = a.checkClient(id, secret)
		if uid, err1 := url.QueryUnescape(id); err1 == nil {
			if usecret, err2 := url.QueryUnescape(secret); err2 == nil && (uid != id || usecret != secret) {
				ok = a.checkClient(uid, usecret) || ok
			}
		}
	} else {
		ok = a.checkClient(form.Get("client_id"), form.Get("client_secret"))
	}
	if !ok {
		a.reject(w, r, ReasonInvalidClient, func(w http.ResponseWriter, status int, retryAfter time.Duration) {
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", retryAfterSeconds(retryAfter))
				writeOAuthError(w, status, "invalid_client", "Too many failed attempts; retry later.")
				return
			}
			if basic {
				w.Header().Set("WWW-Authenticate", `Basic realm="panther-scim"`)
			}
			writeOAuthError(w, status, "invalid_client", "Client authentication failed.")
		})
		return
	}

	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required.")
		return
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Only client_credentials is supported.")
		return
	}

	token, err := a.issueAccessToken()
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   int64(a.oauth.TokenTTL / time.Second),
	})
}

// checkClient compares both the client id and the secret in constant time, and
// always both, so that timing does not tell a wrong id from a wrong secret.
func (a *Authenticator) checkClient(id, secret string) bool {
	if id == "" || secret == "" {
		return false
	}
	wantID := HashToken(a.oauth.ClientID)
	gotID := HashToken(id)
	gotSecret := HashToken(secret)
	idOK := subtle.ConstantTimeCompare(gotID[:], wantID[:])
	secretOK := subtle.ConstantTimeCompare(gotSecret[:], a.oauth.ClientSecretHash[:])
	return idOK&secretOK == 1
}

// issueAccessToken signs a JWT for the configured client.
func (a *Authenticator) issueAccessToken() (string, error) {
	o := a.oauth
	now := a.now()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	claims := jwt.RegisteredClaims{
		Issuer:    o.Issuer,
		Subject:   o.ClientID,
		Audience:  jwt.ClaimStrings{o.Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(o.TokenTTL)),
		ID:        hex.EncodeToString(jti),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.tokenKey)
}

// AccessTokenKey is the HS256 key of access tokens: the configured signing key
// bound to the client secret's hash. Rotating the client secret (or the signing
// key) changes it, so every token issued before the rotation stops verifying at
// once, instead of living on until it expires.
func AccessTokenKey(signingKey []byte, clientSecretHash Hash) []byte {
	m := hmac.New(sha256.New, signingKey)
	m.Write([]byte("panther-scim oauth access token\x00"))
	m.Write(clientSecretHash[:])
	return m.Sum(nil)
}

// verifyAccessToken checks an access token's signature, algorithm, issuer,
// audience, subject and times (with the configured leeway), and that its lifetime
// (exp - iat) is no longer than the configured TTL: a token signed for longer, for
// instance before the TTL was shortened, is refused.
func (a *Authenticator) verifyAccessToken(token string) (string, Reason) {
	var claims jwt.RegisteredClaims
	_, err := a.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) {
		return a.tokenKey, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", ReasonExpired
	case err != nil:
		return "", ReasonInvalid
	case claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > a.oauth.TokenTTL:
		return "", ReasonInvalid
	}
	return "oauth:" + a.oauth.ClientID, ""
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	body := map[string]string{"error": code}
	if description != "" {
		body["error_description"] = description
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
