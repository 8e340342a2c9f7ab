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
	return c.bearerTokens().hashes()
}

// AdminTokenHashes returns the SHA-256 hashes of every accepted admin token (the
// /admin/... endpoints): auth.adminTokenHashes, then the tokens in the variable named
// by auth.adminTokensEnv, then those in auth.adminTokensFile, without duplicates.
func (c Config) AdminTokenHashes() ([][32]byte, error) {
	return c.adminTokens().hashes()
}

// AdminSharesBearerToken reports whether some token is both an admin token and a SCIM
// bearer token: the IdP could then download the store and read the audit trail. serve
// and check refuse such a configuration (demo alone shares one token on purpose).
func (c Config) AdminSharesBearerToken() (bool, error) {
	admin, err := c.AdminTokenHashes()
	if err != nil {
		return false, err
	}
	scim, err := c.BearerTokenHashes()
	if err != nil {
		return false, err
	}
	for _, a := range admin {
		for _, b := range scim {
			if a == b {
				return true, nil
			}
		}
	}
	return false, nil
}

// tokenSet is where one kind of token comes from: hashes in the file, raw tokens in a
// variable and in a file. key names its keys in errors ("auth.bearerToken").
type tokenSet struct {
	key         string
	hashList    []string
	env, file   string
	fileSubject string // "bearer tokens", for read errors
}

func (c Config) bearerTokens() tokenSet {
	a := c.Auth
	return tokenSet{key: "auth.bearerToken", hashList: a.BearerTokenHashes, env: a.BearerTokensEnv, file: a.BearerTokensFile, fileSubject: "bearer tokens"}
}

func (c Config) adminTokens() tokenSet {
	a := c.Auth
	return tokenSet{key: "auth.adminToken", hashList: a.AdminTokenHashes, env: a.AdminTokensEnv, file: a.AdminTokensFile, fileSubject: "admin tokens"}
}

func (t tokenSet) hashes() ([][32]byte, error) {
	var out [][32]byte
	seen := map[[32]byte]bool{}
	add := func(h [32]byte) {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for i, s := range t.hashList {
		h, err := parseHash(s)
		if err != nil {
			return nil, fmt.Errorf("%sHashes[%d]: %w", t.key, i, err)
		}
		add(h)
	}
	toks, err := t.fromEnv()
	if err != nil {
		return nil, fmt.Errorf("%ssEnv: %w", t.key, err)
	}
	more, err := t.fromFile()
	if err != nil {
		return nil, fmt.Errorf("%ssFile: %w", t.key, err)
	}
	for _, tok := range append(toks, more...) {
		add(sha256.Sum256([]byte(tok)))
	}
	return out, nil
}

func (t tokenSet) fromEnv() ([]string, error) {
	if t.env == "" {
		return nil, nil
	}
	var toks []string
	for tok := range strings.SplitSeq(os.Getenv(t.env), ",") {
		if tok = strings.TrimSpace(tok); tok != "" {
			toks = append(toks, tok)
		}
	}
	return toks, checkTokens(toks, "environment variable "+t.env)
}

func (t tokenSet) fromFile() ([]string, error) {
	if t.file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(t.file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t.fileSubject, err)
	}
	var toks []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			toks = append(toks, line)
		}
	}
	return toks, checkTokens(toks, "file "+t.file)
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
