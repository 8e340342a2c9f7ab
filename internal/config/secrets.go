package config

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
)

// PantherToken returns the Panther API token, from panther.tokenFile when set,
// else from the variable named by panther.tokenEnv. Errors name the source, never
// the value.
func (c Config) PantherToken() (string, error) {
	return readSecret(c.Panther.TokenFile, c.Panther.TokenEnv, "Panther API token")
}

// AuditPantherSecret returns the Panther HTTP source's shared secret, HMAC key or
// bearer token, from audit.panther.secretFile when set, else from the variable named
// by audit.panther.secretEnv.
func (c Config) AuditPantherSecret() (string, error) {
	p := c.Audit.Panther
	return readSecret(p.SecretFile, p.SecretEnv, "Panther HTTP source secret")
}

// OAuthSigningKey returns the HS256 key for OAuth access tokens, from
// auth.oauth.signingKeyFile when set, else from the variable named by
// auth.oauth.signingKeyEnv. It must be at least MinSigningKeyLen bytes.
func (c Config) OAuthSigningKey() ([]byte, error) {
	k, err := readSecret(c.Auth.OAuth.SigningKeyFile, c.Auth.OAuth.SigningKeyEnv, "OAuth signing key")
	if err != nil {
		return nil, err
	}
	if len(k) < MinSigningKeyLen {
		return nil, fmt.Errorf("OAuth signing key is shorter than %d bytes", MinSigningKeyLen)
	}
	return []byte(k), nil
}

// OAuthClientSecretHash returns auth.oauth.clientSecretHash decoded.
func (c Config) OAuthClientSecretHash() ([32]byte, error) {
	h, err := parseHash(c.Auth.OAuth.ClientSecretHash)
	if err != nil {
		return h, fmt.Errorf("auth.oauth.clientSecretHash: %w", err)
	}
	return h, nil
}

// BearerTokenHashes returns the SHA-256 hashes of every accepted bearer token:
// auth.bearerTokenHashes, then the tokens in the variable named by
// auth.bearerTokensEnv, then those in auth.bearerTokensFile, without duplicates.
// Raw tokens are hashed here and not kept.
func (c Config) BearerTokenHashes() ([][32]byte, error) {
	var out [][32]byte
	seen := map[[32]byte]bool{}
	add := func(h [32]byte) {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for i, s := range c.Auth.BearerTokenHashes {
		h, err := parseHash(s)
		if err != nil {
			return nil, fmt.Errorf("auth.bearerTokenHashes[%d]: %w", i, err)
		}
		add(h)
	}
	toks, err := c.rawBearerTokensFromEnv()
	if err != nil {
		return nil, fmt.Errorf("auth.bearerTokensEnv: %w", err)
	}
	more, err := c.rawBearerTokensFromFile()
	if err != nil {
		return nil, fmt.Errorf("auth.bearerTokensFile: %w", err)
	}
	for _, t := range append(toks, more...) {
		add(sha256.Sum256([]byte(t)))
	}
	return out, nil
}

func (c Config) rawBearerTokensFromEnv() ([]string, error) {
	name := c.Auth.BearerTokensEnv
	if name == "" {
		return nil, nil
	}
	var toks []string
	for t := range strings.SplitSeq(os.Getenv(name), ",") {
		if t = strings.TrimSpace(t); t != "" {
			toks = append(toks, t)
		}
	}
	return toks, checkTokens(toks, "environment variable "+name)
}

func (c Config) rawBearerTokensFromFile() ([]string, error) {
	path := c.Auth.BearerTokensFile
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read bearer tokens: %w", err)
	}
	var toks []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			toks = append(toks, line)
		}
	}
	return toks, checkTokens(toks, "file "+path)
}

func checkTokens(toks []string, source string) error {
	for i, t := range toks {
		if len(t) < MinBearerTokenLen {
			return fmt.Errorf("token %d in %s is shorter than %d characters", i+1, source, MinBearerTokenLen)
		}
	}
	return nil
}

// readSecret reads a secret from file when set, else from the environment
// variable env; surrounding whitespace (a trailing newline) is dropped.
func readSecret(file, env, what string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", what, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("%s file %s is empty", what, file)
		}
		return s, nil
	}
	if env == "" {
		return "", fmt.Errorf("no source configured for the %s", what)
	}
	s, ok := os.LookupEnv(env)
	if !ok {
		return "", fmt.Errorf("%s: environment variable %s is not set", what, env)
	}
	if s = strings.TrimSpace(s); s == "" {
		return "", fmt.Errorf("%s: environment variable %s is empty", what, env)
	}
	return s, nil
}
