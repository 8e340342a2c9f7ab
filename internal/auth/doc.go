// Package auth authenticates the identity provider to the SCIM API.
//
// Two credentials are accepted, together or alone:
//
//   - Static bearer tokens, configured as SHA-256 hashes; several at once so that a
//     token can be rotated without downtime (SetTokenHashes swaps the set live). A
//     presented token is hashed and compared in constant time against every
//     configured hash, without stopping at the first match.
//   - Short-lived HS256 JWT access tokens issued by the OAuth 2.0
//     client-credentials grant (RFC 6749 §4.4) that TokenHandler serves at
//     /oauth/token, for IdPs that want a client id and secret.
//
// A failed authentication gets 401 with a SCIM error body and
// "WWW-Authenticate: Bearer", and says nothing of what was wrong; the reason goes
// to the OnFailure hook only (metrics, logs). Failures are also counted per remote
// address by a token-bucket limiter: an address that keeps failing gets 429 with
// Retry-After for its failed requests. Requests that carry valid credentials are
// checked first and never limited, so an attacker sharing the IdP's address (or a
// reverse proxy's) cannot lock the IdP out. Tokens are 256-bit random values, so
// the limiter is there to shed noise and cost, not to stop guessing.
//
// The middleware puts the authenticated principal in the request context, for
// logs and the audit trail: "token:<first 8 hex digits of the token's SHA-256>" or
// "oauth:<client id>". Read it with Principal.
package auth
