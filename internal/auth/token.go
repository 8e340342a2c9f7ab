package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// Hash is the SHA-256 hash of a token or secret.
type Hash = [sha256.Size]byte

// TokenPrefix starts every token GenerateToken makes, so that a leaked token is
// easy to recognise (secret scanners, log greps).
const TokenPrefix = "pscim_"

// GenerateToken returns a new random bearer token (256 bits, base64url, with
// TokenPrefix) and the lower-case hex SHA-256 hash to put in the configuration.
// It is also suitable as an OAuth client secret.
func GenerateToken() (token, hashHex string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it aborts the program instead)
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	h := HashToken(token)
	return token, hex.EncodeToString(h[:])
}

// HashToken returns the SHA-256 hash of a token or secret.
func HashToken(token string) Hash {
	return sha256.Sum256([]byte(token))
}

// ParseHash decodes a hex SHA-256 hash (either case, surrounding spaces ignored).
// The error does not repeat the input, which may be a token pasted by mistake.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != len(h) {
		return h, errors.New("not a SHA-256 hash (64 hex digits)")
	}
	copy(h[:], b)
	return h, nil
}
