package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/panther-scim/panther-scim/mappings"
)

const (
	testPantherToken = "panther-api-token-value-0123456789"
	testBearerToken  = "scim-bearer-token-abcdefghijklmnop"
	testSigningKey   = "0123456789abcdef0123456789abcdef-signing"
)

// cleanEnv unsets every variable the config reads, for the duration of the test,
// so that the environment of the machine running the tests cannot leak in.
func cleanEnv(t *testing.T) {
	t.Helper()
	names := []string{"PANTHER_API_TOKEN", "PANTHER_SCIM_BEARER_TOKENS", "PANTHER_SCIM_ADMIN_TOKENS", "PANTHER_SCIM_OAUTH_SIGNING_KEY", "PANTHER_SCIM_AUDIT_SECRET"}
	for _, e := range EnvVars() {
		names = append(names, e.Name)
	}
	for _, n := range names {
		t.Setenv(n, "") // restores the old value after the test
		os.Unsetenv(n)
	}
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// validConfig is a minimal valid configuration with secrets in the environment.
func validConfig(t *testing.T) Config {
	t.Helper()
	cleanEnv(t)
	t.Setenv("PANTHER_API_TOKEN", testPantherToken)
	c := Default()
	c.Panther.URL = "https://api.acme.runpanther.net/public/graphql"
	c.Server.BaseURL = "https://scim.acme.com"
	c.Auth.BearerTokenHashes = []string{hashHex(testBearerToken)}
	return c
}

func TestExampleIsTheRootCopy(t *testing.T) {
	root, err := os.ReadFile(filepath.Join("..", "..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root, Example) {
		t.Fatal("config.example.yaml differs from internal/config/example.yaml: copy one over the other")
	}
}

func TestExampleLoadsAndValidates(t *testing.T) {
	cleanEnv(t)
	t.Setenv("PANTHER_API_TOKEN", testPantherToken)
	t.Setenv("PANTHER_SCIM_BEARER_TOKENS", testBearerToken)
	c, err := Load(filepath.Join("..", "..", "config.example.yaml"))
	if err != nil {
		t.Fatalf("Load(config.example.yaml) = %v", err)
	}
	wantMapping := mappings.Mapping{
		Rules: []mappings.Rule{
			{Group: "Panther Admins", Role: "Admin"},
			{Group: "Panther Analysts", Role: "Analyst"},
		},
		DefaultRole: "AnalystReadOnly",
	}
	if !reflect.DeepEqual(c.Mapping, wantMapping) {
		t.Errorf("example mapping = %+v, want %+v", c.Mapping, wantMapping)
	}
	// Apart from the values the operator must supply, the example states the defaults.
	want := Default()
	want.Panther.URL = c.Panther.URL
	want.Server.BaseURL = c.Server.BaseURL
	want.Mapping = wantMapping
	want.Auth.BearerTokenHashes = c.Auth.BearerTokenHashes
	want.Auth.AdminTokenHashes = c.Auth.AdminTokenHashes
	want.Provisioning.ProtectedEmails = c.Provisioning.ProtectedEmails
	if len(c.Auth.BearerTokenHashes) != 0 || len(c.Auth.AdminTokenHashes) != 0 || len(c.Provisioning.ProtectedEmails) != 0 {
		t.Error("example lists should be empty")
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("example values differ from Default():\n got %+v\nwant %+v", c, want)
	}

	// The embedded copy parses to the same thing.
	c2, err := Parse(Example)
	if err != nil || !reflect.DeepEqual(c, c2) {
		t.Errorf("Parse(Example) = %+v, %v", c2, err)
	}
}

// TestExampleDocumentsEveryKey checks that every key of Config appears in the
// example with a comment, and that the package comment lists every override.
func TestExampleDocumentsEveryKey(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal(Example, &root); err != nil {
		t.Fatal(err)
	}
	commented := map[string]bool{}
	var visit func(n *yaml.Node, path string, inheritedComment bool)
	visit = func(n *yaml.Node, path string, inherited bool) {
		if n.Kind == yaml.DocumentNode {
			visit(n.Content[0], path, inherited)
			return
		}
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			has := k.HeadComment != "" || k.LineComment != "" || v.LineComment != ""
			commented[p] = has || inherited
			visit(v, p, false)
		}
	}
	visit(&root, "", false)
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range EnvVars() {
		c, ok := commented[e.Key]
		switch {
		case !ok:
			t.Errorf("example.yaml lacks key %s", e.Key)
		case !c:
			t.Errorf("example.yaml key %s has no comment", e.Key)
		}
		if !bytes.Contains(doc, []byte(e.Name+" ")) {
			t.Errorf("doc.go does not list %s", e.Name)
		}
	}
}

func TestUpperSnake(t *testing.T) {
	for in, want := range map[string]string{
		"addr":              "ADDR",
		"readHeaderTimeout": "READ_HEADER_TIMEOUT",
		"clientID":          "CLIENT_ID",
		"baseURL":           "BASE_URL",
		"tls":               "TLS",
		"URLPath":           "URL_PATH",
		"tokenTTL":          "TOKEN_TTL",
		"v2Thing":           "V2_THING",
	} {
		if got := upperSnake(in); got != want {
			t.Errorf("upperSnake(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnvVarNames(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range EnvVars() {
		if seen[e.Name] {
			t.Errorf("duplicate override name %s", e.Name)
		}
		seen[e.Name] = true
	}
	for _, n := range []string{
		"PANTHER_SCIM_PANTHER_URL", "PANTHER_SCIM_SERVER_TLS_CERT_FILE", "PANTHER_SCIM_AUTH_OAUTH_CLIENT_ID",
		"PANTHER_SCIM_MAPPING_RULES", "PANTHER_SCIM_MAPPING_DEFAULT_ROLE", "PANTHER_SCIM_AUDIT_RETENTION",
	} {
		if !seen[n] {
			t.Errorf("no override %s", n)
		}
	}
}

func TestParseStrict(t *testing.T) {
	cleanEnv(t)
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "sever:\n  addr: x\n", "sever"},
		{"unknown nested key", "server:\n  adress: 127.0.0.1:1\n", "adress"},
		{"unknown rule key", "mapping:\n  rules:\n    - group: a\n      roles: b\n", "roles"},
		{"wrong type", "server:\n  maxBodyBytes: lots\n", "lots"},
		{"bad duration", "server:\n  readTimeout: 30 seconds\n", "30 seconds"},
		{"two documents", "log:\n  level: info\n---\nlog:\n  level: debug\n", "more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	// Keys left out keep their defaults; empty input is all defaults.
	c, err := Parse([]byte("server:\n  addr: 0.0.0.0:9000\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Server.Addr = "0.0.0.0:9000"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("partial file: got %+v", c)
	}
	if c, err := Parse(nil); err != nil || !reflect.DeepEqual(c, Default()) {
		t.Errorf("Parse(nil) = %+v, %v", c, err)
	}
}

func TestEnvOverrides(t *testing.T) {
	cleanEnv(t)
	file := `
server:
  addr: 127.0.0.1:1
  readTimeout: 1s
panther:
  maxRetries: 1
mapping:
  rules:
    - group: From File
      role: Admin
`
	for k, v := range map[string]string{
		"PANTHER_SCIM_SERVER_ADDR":                   "0.0.0.0:9999",
		"PANTHER_SCIM_SERVER_READ_TIMEOUT":           "45s",
		"PANTHER_SCIM_SERVER_MAX_BODY_BYTES":         "2048",
		"PANTHER_SCIM_SERVER_TLS_CERT_FILE":          "/etc/tls/cert.pem",
		"PANTHER_SCIM_SERVER_OPS_ADDR":               "",
		"PANTHER_SCIM_PANTHER_URL":                   "https://api.x.runpanther.net/public/graphql",
		"PANTHER_SCIM_PANTHER_MAX_RETRIES":           "7",
		"PANTHER_SCIM_PANTHER_RATE_PER_SECOND":       "2.5",
		"PANTHER_SCIM_AUTH_BEARER_TOKEN_HASHES":      " aa , bb ,",
		"PANTHER_SCIM_AUTH_OAUTH_CLIENT_ID":          "entra",
		"PANTHER_SCIM_PROVISIONING_PROTECTED_EMAILS": `["a@x.com", "b@x.com"]`,
		"PANTHER_SCIM_MAPPING_RULES":                 "[{group: Panther Admins, role: Admin}, {group: 00g1, role: Analyst}]",
		"PANTHER_SCIM_MAPPING_DEFAULT_ROLE":          "",
		"PANTHER_SCIM_AUDIT_RETENTION":               "720h",
	} {
		t.Setenv(k, v)
	}
	c, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Server.Addr = "0.0.0.0:9999"
	want.Server.ReadTimeout = 45 * time.Second
	want.Server.MaxBodyBytes = 2048
	want.Server.TLS.CertFile = "/etc/tls/cert.pem"
	want.Panther.URL = "https://api.x.runpanther.net/public/graphql"
	want.Panther.MaxRetries = 7
	want.Panther.RatePerSecond = 2.5
	want.Auth.BearerTokenHashes = []string{"aa", "bb"}
	want.Auth.OAuth.ClientID = "entra"
	want.Provisioning.ProtectedEmails = []string{"a@x.com", "b@x.com"}
	want.Mapping = mappings.Mapping{Rules: []mappings.Rule{{Group: "Panther Admins", Role: "Admin"}, {Group: "00g1", Role: "Analyst"}}}
	want.Audit.Retention = 720 * time.Hour
	if !reflect.DeepEqual(c, want) {
		t.Errorf("overrides:\n got %+v\nwant %+v", c, want)
	}
}

func TestEnvOverrideErrorsReportedTogether(t *testing.T) {
	cleanEnv(t)
	t.Setenv("PANTHER_SCIM_SERVER_READ_TIMEOUT", "soon")
	t.Setenv("PANTHER_SCIM_PANTHER_MAX_RETRIES", "many")
	t.Setenv("PANTHER_SCIM_PANTHER_RATE_PER_SECOND", "fast")
	t.Setenv("PANTHER_SCIM_MAPPING_RULES", "[{group: a, rol: b}]")
	_, err := Parse(nil)
	if err == nil {
		t.Fatal("Parse = nil")
	}
	for _, w := range []string{
		"PANTHER_SCIM_SERVER_READ_TIMEOUT (key server.readTimeout)",
		"PANTHER_SCIM_PANTHER_MAX_RETRIES (key panther.maxRetries)",
		"PANTHER_SCIM_PANTHER_RATE_PER_SECOND (key panther.ratePerSecond)",
		"PANTHER_SCIM_MAPPING_RULES (key mapping.rules)",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestExpansion(t *testing.T) {
	cleanEnv(t)
	h := hashHex(testBearerToken)
	t.Setenv("PANTHER_HOST", "api.acme.runpanther.net")
	t.Setenv("SCIM_HASH", h)
	t.Setenv("CLIENT", "entra-app")
	c, err := Parse([]byte(`
panther:
  url: https://${PANTHER_HOST}/public/graphql
  tokenEnv: $NOT_EXPANDED
store:
  path: $HOME/panther-scim.db
auth:
  bearerTokenHashes: [$SCIM_HASH]
  oauth:
    clientID: $CLIENT
    clientSecretHash: $$literal
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Panther.URL != "https://api.acme.runpanther.net/public/graphql" {
		t.Errorf("panther.url = %q", c.Panther.URL)
	}
	if c.Auth.BearerTokenHashes[0] != h || c.Auth.OAuth.ClientID != "entra-app" || c.Auth.OAuth.ClientSecretHash != "$literal" {
		t.Errorf("auth = %+v", c.Auth)
	}
	// Fields outside the documented set are taken literally.
	if c.Panther.TokenEnv != "$NOT_EXPANDED" || c.Store.Path != "$HOME/panther-scim.db" {
		t.Errorf("unexpanded fields changed: tokenEnv %q, store.path %q", c.Panther.TokenEnv, c.Store.Path)
	}

	_, err = Parse([]byte("panther:\n  url: https://${NOPE_UNSET}/x\nauth:\n  oauth:\n    clientID: ${ALSO_UNSET}\n"))
	if err == nil || !strings.Contains(err.Error(), "panther.url: environment variable NOPE_UNSET is not set") ||
		!strings.Contains(err.Error(), "auth.oauth.clientID: environment variable ALSO_UNSET is not set") {
		t.Errorf("unset variables: err = %v", err)
	}
}

func TestValidateValid(t *testing.T) {
	c := validConfig(t)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	c.Provisioning.Deactivation = DeactivateRole
	c.Provisioning.DeactivationRole = "NoAccess"
	c.Provisioning.ProtectedEmails = []string{"breakglass@acme.com"}
	c.Provisioning.ReconcileInterval = 0
	c.Audit.Retention = 0
	c.Auth.FailureLimit = FailureLimit{}
	c.Server.OpsAddr = "127.0.0.1:9090"
	c.Server.BaseURL = "https://scim.acme.com"
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestValidateRequestSyncShorterThanShutdown(t *testing.T) {
	c := validConfig(t)
	c.Server.ShutdownTimeout = 20 * time.Second
	c.Provisioning.RequestSyncTimeout = 20 * time.Second
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "provisioning.requestSyncTimeout: must be shorter than server.shutdownTimeout (20s)") {
		t.Fatalf("Validate() = %v", err)
	}
	c.Provisioning.RequestSyncTimeout = 19 * time.Second
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cleanEnv(t)
	c := Default()
	c.Server.Addr = "localhost"
	c.Server.OpsAddr = "nope"
	c.Server.BaseURL = "scim.acme.com"
	c.Server.MaxBodyBytes = 0
	c.Server.ReadHeaderTimeout = -time.Second
	c.Server.WriteTimeout = 0
	c.Server.MaxConcurrentRequests = -1
	c.Server.TLS.CertFile = "/cert.pem"
	c.Panther.URL = "ftp://panther"
	c.Panther.Timeout = 0
	c.Panther.MaxRetries = -1
	c.Panther.MaxConcurrent = 0
	c.Panther.RatePerSecond = 0
	c.Panther.Burst = 0
	c.Store.Path = ""
	c.Store.OpenTimeout = 0
	c.Auth.BearerTokensEnv = ""
	c.Auth.BearerTokenHashes = []string{"raw-token-pasted-by-mistake"}
	c.Auth.OAuth.ClientSecretHash = "abc"
	c.Auth.FailureLimit = FailureLimit{PerMinute: 5, Burst: 0}
	c.Provisioning.Deactivation = DeactivateRole
	c.Provisioning.ProtectedEmails = []string{"Admin <admin@acme.com>", "not-an-email"}
	c.Provisioning.ReconcileInterval = -time.Minute
	c.Provisioning.Adopt = "everyone"
	c.Provisioning.SyncConcurrency = 0
	c.Provisioning.RequestSyncTimeout = 0
	c.Mapping = mappings.Mapping{Rules: []mappings.Rule{{Group: "", Role: "Admin"}, {Group: "g", Role: ""},
		{Group: "Panther Admins", ExternalID: "00g1", Role: "Admin"}}}
	c.Log = Log{Level: "verbose", Format: "xml"}
	c.Audit.Retention = -time.Hour

	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	msg := err.Error()
	want := []string{
		`server.addr: "localhost" is not host:port`,
		`server.opsAddr: "nope" is not host:port`,
		`server.baseURL: "scim.acme.com" is not an absolute http(s) URL`,
		"server.maxBodyBytes: must be greater than 0",
		"server.readHeaderTimeout: must not be negative",
		"server.writeTimeout: must be greater than 0",
		"server.maxConcurrentRequests: must be greater than 0",
		"server.tls.keyFile: required when server.tls.certFile is set",
		`panther.url: "ftp://panther" is not an absolute http(s) URL`,
		"panther.tokenEnv: Panther API token: environment variable PANTHER_API_TOKEN is not set",
		"panther.timeout: must be greater than 0",
		"panther.maxRetries: must not be negative",
		"panther.maxConcurrent: must be greater than 0",
		"panther.ratePerSecond: must be greater than 0",
		"panther.burst: must be greater than 0",
		"store.path: required",
		"store.openTimeout: must be greater than 0",
		"auth.bearerTokenHashes[0]: not a SHA-256 hash",
		"auth.oauth.clientID: required when auth.oauth.clientSecretHash is set",
		"auth.failureLimit.burst: must be greater than 0",
		`provisioning.deactivationRole: required when provisioning.deactivation is "role"`,
		`provisioning.protectedEmails[0]: "Admin <admin@acme.com>" is not a plain email address`,
		`provisioning.protectedEmails[1]: "not-an-email" is not a plain email address`,
		"provisioning.reconcileInterval: must not be negative",
		`provisioning.adopt: must be "none", "nonAdmin" or "all", not "everyone"`,
		"provisioning.syncConcurrency: must be greater than 0",
		"provisioning.requestSyncTimeout: must be greater than 0",
		"mapping: rule 1: names no group: set group (a displayName) or externalId",
		"mapping: rule 2: role is empty",
		`mapping: rule 3: has both group "Panther Admins" and externalId "00g1"`,
		`log.level: must be debug, info, warn or error, not "verbose"`,
		`log.format: must be json or text, not "xml"`,
		"audit.retention: must not be negative",
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("Validate() lacks %q", w)
		}
	}
	if n := len(unjoin(err)); n != len(want) {
		t.Errorf("Validate() reported %d problems, want %d:\n%s", n, len(want), msg)
	}
	if strings.Contains(msg, "raw-token-pasted-by-mistake") {
		t.Error("Validate() echoed a value that may be a secret")
	}
}

func TestValidateAuthMethods(t *testing.T) {
	tokenFile := func(t *testing.T, content string) string { return writeFile(t, "tokens", content) }
	tests := []struct {
		name    string
		setup   func(t *testing.T, c *Config)
		wantErr string // "" for valid
	}{
		{"no method", func(t *testing.T, c *Config) { c.Auth.BearerTokenHashes = nil },
			"auth: no SCIM authentication configured"},
		{"tokens from env", func(t *testing.T, c *Config) {
			c.Auth.BearerTokenHashes = nil
			t.Setenv("PANTHER_SCIM_BEARER_TOKENS", testBearerToken+", second-token-0123456789")
		}, ""},
		{"short token from env", func(t *testing.T, c *Config) {
			t.Setenv("PANTHER_SCIM_BEARER_TOKENS", "short")
		}, "auth.bearerTokensEnv: token 1 in environment variable PANTHER_SCIM_BEARER_TOKENS is shorter than 16"},
		{"tokens from file", func(t *testing.T, c *Config) {
			c.Auth.BearerTokenHashes = nil
			c.Auth.BearerTokensFile = tokenFile(t, "# rotated 2024-05\n"+testBearerToken+"\n\n")
		}, ""},
		{"empty token file", func(t *testing.T, c *Config) {
			c.Auth.BearerTokensFile = tokenFile(t, "# nothing\n")
		}, "holds no token"},
		{"missing token file", func(t *testing.T, c *Config) {
			c.Auth.BearerTokensFile = filepath.Join(t.TempDir(), "absent")
		}, "auth.bearerTokensFile: read bearer tokens"},
		{"oauth only", func(t *testing.T, c *Config) {
			c.Auth.BearerTokenHashes = nil
			c.Auth.OAuth.ClientID = "entra"
			c.Auth.OAuth.ClientSecretHash = hashHex("client-secret")
			t.Setenv("PANTHER_SCIM_OAUTH_SIGNING_KEY", testSigningKey)
		}, ""},
		{"oauth key from file", func(t *testing.T, c *Config) {
			c.Auth.OAuth.ClientID = "entra"
			c.Auth.OAuth.ClientSecretHash = hashHex("client-secret")
			c.Auth.OAuth.SigningKeyFile = writeFile(t, "key", testSigningKey+"\n")
		}, ""},
		{"oauth incomplete", func(t *testing.T, c *Config) {
			c.Auth.OAuth.ClientID = "entra"
			c.Auth.OAuth.TokenTTL = 48 * time.Hour
			c.Auth.OAuth.ClockSkew = -time.Second
		}, "auth.oauth.clientSecretHash: required when auth.oauth.clientID is set\n" +
			"auth.oauth.signingKeyEnv: OAuth signing key: environment variable PANTHER_SCIM_OAUTH_SIGNING_KEY is not set\n" +
			"auth.oauth.clockSkew: must not be negative, got -1s\n" +
			"auth.oauth.tokenTTL: must be at most 24h"},
		{"oauth short key", func(t *testing.T, c *Config) {
			c.Auth.OAuth.ClientID = "entra"
			c.Auth.OAuth.ClientSecretHash = hashHex("client-secret")
			t.Setenv("PANTHER_SCIM_OAUTH_SIGNING_KEY", "short")
		}, "auth.oauth.signingKeyEnv: OAuth signing key is shorter than 32 bytes"},
		{"tls both", func(t *testing.T, c *Config) {
			c.Server.TLS = TLS{CertFile: writeFile(t, "c", "x"), KeyFile: filepath.Join(t.TempDir(), "nokey")}
		}, "server.tls.keyFile: open"},
		{"deactivation role mapped", func(t *testing.T, c *Config) {
			c.Provisioning.Deactivation = DeactivateRole
			c.Provisioning.DeactivationRole = "Analyst"
			c.Mapping = mappings.Mapping{Rules: []mappings.Rule{{Group: "g", Role: "Analyst"}}}
		}, `provisioning.deactivationRole: "Analyst" is also a role the mapping assigns`},
		{"deactivation role with delete", func(t *testing.T, c *Config) {
			c.Provisioning.DeactivationRole = "NoAccess"
		}, `provisioning.deactivationRole: must be empty when provisioning.deactivation is "delete"`},
		{"bad deactivation", func(t *testing.T, c *Config) {
			c.Provisioning.Deactivation = "disable"
		}, `provisioning.deactivation: must be "delete" or "role", not "disable"`},
		{"same ops addr", func(t *testing.T, c *Config) {
			c.Server.OpsAddr = c.Server.Addr
		}, "server.opsAddr: must differ from server.addr"},
		{"panther token file", func(t *testing.T, c *Config) {
			os.Unsetenv("PANTHER_API_TOKEN")
			c.Panther.TokenFile = writeFile(t, "tok", testPantherToken)
		}, ""},
		{"panther token file empty", func(t *testing.T, c *Config) {
			c.Panther.TokenFile = writeFile(t, "tok", "\n")
		}, "panther.tokenFile: Panther API token file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig(t)
			tt.setup(t, &c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v\nwant it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	c := validConfig(t)
	if tok, err := c.PantherToken(); err != nil || tok != testPantherToken {
		t.Errorf("PantherToken() = %q, %v", tok, err)
	}
	c.Panther.TokenFile = writeFile(t, "tok", "  from-file-token\n")
	if tok, err := c.PantherToken(); err != nil || tok != "from-file-token" {
		t.Errorf("PantherToken() from file = %q, %v", tok, err)
	}
	t.Setenv("PANTHER_API_TOKEN", "   ")
	c.Panther.TokenFile = ""
	if _, err := c.PantherToken(); err == nil || !strings.Contains(err.Error(), "PANTHER_API_TOKEN is empty") {
		t.Errorf("PantherToken() with empty env = %v", err)
	}

	// Hashes from the config, the environment and a file, merged without duplicates.
	second := "second-token-0123456789"
	third := "third-token-0123456789"
	t.Setenv("PANTHER_SCIM_BEARER_TOKENS", testBearerToken+","+second)
	c.Auth.BearerTokensFile = writeFile(t, "tokens", third+"\n"+second+"\n")
	hs, err := c.BearerTokenHashes()
	if err != nil {
		t.Fatal(err)
	}
	want := [][32]byte{sha256.Sum256([]byte(testBearerToken)), sha256.Sum256([]byte(second)), sha256.Sum256([]byte(third))}
	if !reflect.DeepEqual(hs, want) {
		t.Errorf("BearerTokenHashes() = %x, want %x", hs, want)
	}
	c.Auth.BearerTokenHashes = []string{"zz"}
	if _, err := c.BearerTokenHashes(); err == nil {
		t.Error("BearerTokenHashes() with a bad hash = nil")
	}

	c.Auth.OAuth.ClientSecretHash = strings.ToUpper(hashHex("s"))
	if h, err := c.OAuthClientSecretHash(); err != nil || h != sha256.Sum256([]byte("s")) {
		t.Errorf("OAuthClientSecretHash() = %x, %v", h, err)
	}
	t.Setenv("PANTHER_SCIM_OAUTH_SIGNING_KEY", testSigningKey)
	if k, err := c.OAuthSigningKey(); err != nil || string(k) != testSigningKey {
		t.Errorf("OAuthSigningKey() = %q, %v", k, err)
	}

	// No error message carries a secret.
	t.Setenv("PANTHER_SCIM_BEARER_TOKENS", "tiny-secret")
	_, err = c.BearerTokenHashes()
	if err == nil || strings.Contains(err.Error(), "tiny-secret") {
		t.Errorf("short token error = %v", err)
	}
}

func TestValidateAuditPanther(t *testing.T) {
	const secret = "http-source-secret-0123456789"
	tests := []struct {
		name  string
		set   func(*AuditPanther)
		env   bool     // PANTHER_SCIM_AUDIT_SECRET set
		wants []string // problems reported; none: valid
	}{
		{"off: the rest is not checked", func(p *AuditPanther) { p.URL, p.Auth, p.BatchSize = "", "basic", 0 }, false, nil},
		{"shared secret", func(p *AuditPanther) {}, true, nil},
		{"hmac", func(p *AuditPanther) { p.Auth, p.Header, p.HMACAlgorithm = "hmac", "X-Signature", "sha512" }, true, nil},
		{"bearer needs no header", func(p *AuditPanther) { p.Auth, p.Header = "bearer", "" }, true, nil},
		{"secret from a file", func(p *AuditPanther) { p.SecretFile = "FILE" }, false, nil},
		{"secret unset", func(p *AuditPanther) {}, false,
			[]string{"audit.panther.secretEnv: Panther HTTP source secret: environment variable PANTHER_SCIM_AUDIT_SECRET is not set"}},
		{"no secret source", func(p *AuditPanther) { p.SecretEnv = "" }, false,
			[]string{"audit.panther.secretEnv: one of audit.panther.secretEnv and audit.panther.secretFile is required"}},
		{"secret file missing", func(p *AuditPanther) { p.SecretFile = "/nonexistent/secret" }, true,
			[]string{"audit.panther.secretFile: read Panther HTTP source secret"}},
		{"not a URL", func(p *AuditPanther) { p.URL = "logs.acme.runpanther.net/http/1" }, true,
			[]string{`audit.panther.url: "logs.acme.runpanther.net/http/1" is not an absolute http(s) URL`}},
		{"unknown method", func(p *AuditPanther) { p.Auth = "basic" }, true,
			[]string{`audit.panther.auth: must be "sharedSecret", "hmac" or "bearer"`}},
		{"shared secret without header", func(p *AuditPanther) { p.Header = " " }, true,
			[]string{`audit.panther.header: required when audit.panther.auth is "sharedSecret"`}},
		{"unknown HMAC algorithm", func(p *AuditPanther) { p.Auth, p.HMACAlgorithm = "hmac", "md5" }, true,
			[]string{`audit.panther.hmacAlgorithm: must be sha1, sha256, sha384 or sha512`}},
		{"limits", func(p *AuditPanther) { p.BatchSize, p.FlushInterval, p.Timeout, p.MaxBackoff = 0, 0, -time.Second, 0 }, true,
			[]string{"audit.panther.batchSize: must be between 1 and 10000", "audit.panther.flushInterval: must be greater than 0",
				"audit.panther.timeout: must not be negative", "audit.panther.maxBackoff: must be greater than 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			c.Audit.Panther.URL = "https://logs.acme.runpanther.net/http/5f1c"
			if tc.env {
				t.Setenv("PANTHER_SCIM_AUDIT_SECRET", secret)
			}
			tc.set(&c.Audit.Panther)
			if c.Audit.Panther.SecretFile == "FILE" {
				c.Audit.Panther.SecretFile = writeFile(t, "secret", secret+"\n")
			}
			err := c.Validate()
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				if c.Audit.Panther.Enabled() {
					if got, err := c.AuditPantherSecret(); err != nil || got != secret {
						t.Errorf("AuditPantherSecret() = %q, %v", got, err)
					}
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v\nlacks %q", err, w)
				}
			}
			if n := len(unjoin(err)); n != len(tc.wants) {
				t.Errorf("%d problems, want %d: %v", n, len(tc.wants), err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Error("Validate() shows the secret")
			}
		})
	}
}

func TestLoad(t *testing.T) {
	cleanEnv(t)
	t.Setenv("PANTHER_API_TOKEN", testPantherToken)
	t.Setenv("PANTHER_SCIM_BEARER_TOKENS", testBearerToken)

	// No file: defaults and environment alone.
	if _, err := Load(""); err == nil || !strings.Contains(err.Error(), "panther.url: required") ||
		!strings.Contains(err.Error(), "server.baseURL: required") {
		t.Errorf("Load(\"\") without URLs = %v", err)
	}
	t.Setenv("PANTHER_SCIM_PANTHER_URL", "http://127.0.0.1:8081/public/graphql")
	t.Setenv("PANTHER_SCIM_SERVER_BASE_URL", "https://scim.acme.com")
	if _, err := Load(""); err != nil {
		t.Errorf("Load(\"\") = %v", err)
	}

	if _, err := Load(filepath.Join(t.TempDir(), "absent.yaml")); err == nil {
		t.Error("Load(absent) = nil")
	}
	p := writeFile(t, "c.yaml", "log:\n  level: loud\n")
	c, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("Load(invalid) = %v", err)
	}
	if c.Log.Level != "loud" {
		t.Error("Load should return the config it found invalid, for reporting")
	}
	p = writeFile(t, "c.yaml", "log:\n  levle: info\n")
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "levle") {
		t.Errorf("Load(unknown key) = %v", err)
	}
}

func TestAdminTokens(t *testing.T) {
	cleanEnv(t)
	const fromEnv, fromFile, fromHash = "admin-token-from-env-0123", "admin-token-from-file-0123", "admin-token-by-hash-0123"
	file := filepath.Join(t.TempDir(), "admin")
	if err := os.WriteFile(file, []byte("# admins\n"+fromFile+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hashOf := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	h := hashOf(fromHash)
	c := Default()
	c.Auth.AdminTokenHashes = []string{hex.EncodeToString(h[:])}
	c.Auth.AdminTokensFile = file
	t.Setenv("PANTHER_SCIM_ADMIN_TOKENS", fromEnv+", "+fromEnv)
	got, err := c.AdminTokenHashes()
	if err != nil {
		t.Fatal(err)
	}
	want := [][32]byte{h, hashOf(fromEnv), hashOf(fromFile)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AdminTokenHashes = %x, want %x", got, want)
	}
	// None of them is a SCIM token.
	if got, err := c.BearerTokenHashes(); err != nil || len(got) != 0 {
		t.Errorf("BearerTokenHashes = %x, %v", got, err)
	}
	if shared, err := c.AdminSharesBearerToken(); shared || err != nil {
		t.Errorf("AdminSharesBearerToken = %v, %v", shared, err)
	}
	t.Setenv("PANTHER_SCIM_BEARER_TOKENS", fromFile)
	if shared, err := c.AdminSharesBearerToken(); !shared || err != nil {
		t.Errorf("a token in both sets: AdminSharesBearerToken = %v, %v", shared, err)
	}
}

func TestAdminTokenValidation(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, c *Config)
		want  string
	}{
		{"bad hash", func(t *testing.T, c *Config) { c.Auth.AdminTokenHashes = []string{"pscim_not-a-hash"} },
			"auth.adminTokenHashes[0]: not a SHA-256 hash"},
		{"short env token", func(t *testing.T, c *Config) { t.Setenv("PANTHER_SCIM_ADMIN_TOKENS", "short") },
			"auth.adminTokensEnv: token 1 in environment variable PANTHER_SCIM_ADMIN_TOKENS is shorter than 16"},
		{"empty file", func(t *testing.T, c *Config) {
			c.Auth.AdminTokensFile = filepath.Join(t.TempDir(), "empty")
			if err := os.WriteFile(c.Auth.AdminTokensFile, []byte("# none yet\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "auth.adminTokensFile: " + "<dir>" + " holds no token"},
		{"missing file", func(t *testing.T, c *Config) { c.Auth.AdminTokensFile = "/nonexistent/admin-tokens" },
			"auth.adminTokensFile: read admin tokens"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv("PANTHER_API_TOKEN", testPantherToken)
			t.Setenv("PANTHER_SCIM_BEARER_TOKENS", testBearerToken)
			cfg, err := Parse(Example)
			if err != nil {
				t.Fatal(err)
			}
			c.setup(t, &cfg)
			err = cfg.Validate()
			want := strings.Replace(c.want, "<dir>", cfg.Auth.AdminTokensFile, 1)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Validate = %v, want %q", err, want)
			}
		})
	}
	// Without any admin token the configuration is valid: the endpoints refuse everyone.
	cleanEnv(t)
	t.Setenv("PANTHER_API_TOKEN", testPantherToken)
	t.Setenv("PANTHER_SCIM_BEARER_TOKENS", testBearerToken)
	cfg, err := Parse(Example)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("no admin token: %v", err)
	}
}
