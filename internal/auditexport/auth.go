package auditexport

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
)

// Authentication methods of a Panther HTTP source (the names Panther's console and
// its Terraform resource give them: SharedSecret, HMAC, Bearer).
const (
	AuthSharedSecret = "sharedSecret"
	AuthHMAC         = "hmac"
	AuthBearer       = "bearer"
)

// HMACAlgorithms are the hash functions an HMAC source may be configured with.
var HMACAlgorithms = map[string]func() hash.Hash{
	"sha1": sha1.New, "sha256": sha256.New, "sha384": sha512.New384, "sha512": sha512.New,
}

// Auth is how requests prove themselves to the HTTP source:
//   - sharedSecret: the header named Header carries Secret;
//   - hmac: the header named Header carries the hex HMAC of the request body,
//     keyed with Secret, with Algorithm (sha1, sha256, sha384, sha512);
//   - bearer: Authorization: Bearer Secret.
type Auth struct {
	Method    string
	Header    string
	Algorithm string
	Secret    string
}

// Validate reports what is missing or unknown. It never shows the secret.
func (a Auth) Validate() error {
	switch a.Method {
	case AuthSharedSecret, AuthHMAC:
		if a.Header == "" {
			return fmt.Errorf("%s authentication needs a header name", a.Method)
		}
		if _, ok := HMACAlgorithms[a.Algorithm]; a.Method == AuthHMAC && !ok {
			return fmt.Errorf("HMAC algorithm %q is not one of sha1, sha256, sha384, sha512", a.Algorithm)
		}
	case AuthBearer:
	default:
		return fmt.Errorf("authentication method %q is not one of sharedSecret, hmac, bearer", a.Method)
	}
	if a.Secret == "" {
		return errors.New("the HTTP source's secret is empty")
	}
	return nil
}

// apply sets the request's credential for body.
func (a Auth) apply(h http.Header, body []byte) {
	switch a.Method {
	case AuthSharedSecret:
		h.Set(a.Header, a.Secret)
	case AuthHMAC:
		m := hmac.New(HMACAlgorithms[a.Algorithm], []byte(a.Secret))
		m.Write(body)
		h.Set(a.Header, hex.EncodeToString(m.Sum(nil)))
	case AuthBearer:
		h.Set("Authorization", "Bearer "+a.Secret)
	}
}
