package config

import (
	_ "embed"
	"time"

	"github.com/panther-scim/panther-scim/mappings"
)

// Example is the annotated example configuration (example.yaml in this package;
// config.example.yaml at the repository root is an identical copy, kept so by a
// test). `demo` runs with it.
//
//go:embed example.yaml
var Example []byte

// Config is the whole service configuration. It holds no secret: the Panther API
// token, the SCIM bearer tokens and the OAuth signing key are read from environment
// variables or files named here, and the OAuth client secret and bearer tokens may
// be given as SHA-256 hashes. A Config can therefore be logged or printed.
type Config struct {
	Server       Server           `yaml:"server"`
	SCIM         SCIM             `yaml:"scim"`
	Panther      Panther          `yaml:"panther"`
	Store        Store            `yaml:"store"`
	Auth         Auth             `yaml:"auth"`
	Provisioning Provisioning     `yaml:"provisioning"`
	Mapping      mappings.Mapping `yaml:"mapping"`
	Log          Log              `yaml:"log"`
	Audit        Audit            `yaml:"audit"`
}

// Server configures the HTTP listeners.
type Server struct {
	// Addr is the SCIM API listener (host:port).
	Addr string `yaml:"addr"`
	// BaseURL is the external URL clients use (e.g. https://scim.example.com), for
	// Location and meta.location. Required: request headers are never trusted for it.
	BaseURL string `yaml:"baseURL" expand:"true"`
	// OpsAddr is a separate listener for /healthz, /readyz, /metrics and /admin;
	// empty serves them on Addr.
	OpsAddr string `yaml:"opsAddr"`
	// ReadyCacheTTL is how long a /readyz result is reused; 0 runs the checks for
	// every probe (concurrent probes still share one run).
	ReadyCacheTTL time.Duration `yaml:"readyCacheTTL"`
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the
	// http.Server timeouts of the same names.
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	ReadTimeout       time.Duration `yaml:"readTimeout"`
	WriteTimeout      time.Duration `yaml:"writeTimeout"`
	IdleTimeout       time.Duration `yaml:"idleTimeout"`
	// MaxConcurrentRequests bounds SCIM requests in flight; beyond it, 429 + Retry-After.
	MaxConcurrentRequests int `yaml:"maxConcurrentRequests"`
	// TLS serves HTTPS (minimum TLS 1.2) when both files are set.
	TLS TLS `yaml:"tls"`
	// ShutdownTimeout bounds the graceful shutdown (in-flight requests and Panther calls).
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
}

// TLS names a PEM certificate (chain) and key; both or neither.
type TLS struct {
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// SCIM configures how the SCIM API judges what identity providers send.
type SCIM struct {
	// StrictAttributes refuses (400) a POST, PUT or PATCH that names an attribute the
	// schema does not declare: a misspelling, or an attribute of an extension
	// panther-scim does not serve. By default such attributes are ignored (not stored,
	// not echoed), each logged once at warn and counted in
	// panther_scim_unknown_attributes_total, so that one unmapped attribute in an IdP's
	// mapping does not fail every request.
	StrictAttributes bool `yaml:"strictAttributes"`
}

// Panther configures the Panther GraphQL client.
type Panther struct {
	// URL is the Panther GraphQL endpoint, e.g. https://api.acme.runpanther.net/public/graphql.
	URL string `yaml:"url" expand:"true"`
	// TokenEnv names the environment variable holding the Panther API token.
	TokenEnv string `yaml:"tokenEnv"`
	// TokenFile is a file holding the token; when set it is used instead of TokenEnv.
	TokenFile string `yaml:"tokenFile"`
	// Timeout bounds one Panther HTTP call.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRetries is the number of retries after a retryable failure (5xx, 429, network).
	MaxRetries int `yaml:"maxRetries"`
	// MaxConcurrent bounds Panther calls in flight.
	MaxConcurrent int `yaml:"maxConcurrent"`
	// RatePerSecond is the ceiling of the rate of Panther calls (a token bucket of Burst):
	// it must be positive (there is no unlimited setting). With AdaptiveRate the rate
	// starts there, drops when Panther pushes back (429, bursts of 5xx) and climbs back,
	// never above it; without, it stays there.
	RatePerSecond float64 `yaml:"ratePerSecond"`
	Burst         int     `yaml:"burst"`
	// AdaptiveRate lets the rate follow Panther's push-back below RatePerSecond.
	AdaptiveRate bool `yaml:"adaptiveRate"`
}

// Store configures the bbolt file.
type Store struct {
	// Path of the bbolt file (created with mode 0600).
	Path string `yaml:"path"`
	// OpenTimeout bounds the wait for the file lock another process holds.
	OpenTimeout time.Duration `yaml:"openTimeout"`
	// StartCheckTimeout bounds the check of the records at start (0: no record
	// check; the pages are always checked).
	StartCheckTimeout time.Duration `yaml:"startCheckTimeout"`
}

// Auth configures how the IdP authenticates to the SCIM API. Any number of methods
// may be configured together; at least one is required.
type Auth struct {
	// BearerTokenHashes are lower-case hex SHA-256 hashes of accepted bearer tokens
	// (`panther-scim token` prints one). Several allow rotation.
	BearerTokenHashes []string `yaml:"bearerTokenHashes" expand:"true"`
	// BearerTokensEnv names an environment variable holding raw bearer tokens,
	// comma-separated; empty disables it, an unset variable adds none.
	BearerTokensEnv string `yaml:"bearerTokensEnv"`
	// BearerTokensFile is a file of raw bearer tokens, one per line (blank lines and
	// lines starting with # are ignored).
	BearerTokensFile string `yaml:"bearerTokensFile"`
	// AdminTokenHashes are lower-case hex SHA-256 hashes of the tokens the /admin/...
	// endpoints accept (backup, audit, explain, reconcile, verify). The IdP's bearer tokens are
	// never accepted there, and a token may not be both. None configured: the admin
	// endpoints answer 401 to everyone.
	AdminTokenHashes []string `yaml:"adminTokenHashes" expand:"true"`
	// AdminTokensEnv names an environment variable holding raw admin tokens,
	// comma-separated; empty disables it, an unset variable adds none.
	AdminTokensEnv string `yaml:"adminTokensEnv"`
	// AdminTokensFile is a file of raw admin tokens, one per line.
	AdminTokensFile string `yaml:"adminTokensFile"`
	// OAuth enables the client-credentials grant at /oauth/token when ClientID is set.
	OAuth OAuth `yaml:"oauth"`
	// FailureLimit slows down addresses that fail authentication repeatedly.
	FailureLimit FailureLimit `yaml:"failureLimit"`
}

// OAuth configures the OAuth 2.0 client-credentials grant.
type OAuth struct {
	// ClientID is the one accepted client id; empty disables OAuth.
	ClientID string `yaml:"clientID" expand:"true"`
	// ClientSecretHash is the lower-case hex SHA-256 hash of the client secret.
	ClientSecretHash string `yaml:"clientSecretHash" expand:"true"`
	// SigningKeyEnv names the environment variable holding the HS256 key that signs
	// access tokens (at least 32 bytes, used as is).
	SigningKeyEnv string `yaml:"signingKeyEnv"`
	// SigningKeyFile is a file holding that key; when set it is used instead of SigningKeyEnv.
	SigningKeyFile string `yaml:"signingKeyFile"`
	// TokenTTL is the lifetime of an issued access token.
	TokenTTL time.Duration `yaml:"tokenTTL"`
	// ClockSkew is the leeway when checking exp, nbf and iat.
	ClockSkew time.Duration `yaml:"clockSkew"`
}

// Enabled reports whether the OAuth grant is configured.
func (o OAuth) Enabled() bool { return o.ClientID != "" }

// FailureLimit is a token bucket of failed authentications per remote address.
// Requests with valid credentials are never limited.
type FailureLimit struct {
	// PerMinute is the refill rate; 0 disables the limiter.
	PerMinute float64 `yaml:"perMinute"`
	// Burst is the number of failures allowed at once.
	Burst int `yaml:"burst"`
}

// Provisioning holds the provisioning rules that are not the mapping.
type Provisioning struct {
	// Deactivation is what active=false does in Panther: "delete" deletes the
	// Panther user (the SCIM record stays), "role" moves them to DeactivationRole.
	Deactivation string `yaml:"deactivation"`
	// DeactivationRole is the no-access role used when Deactivation is "role".
	DeactivationRole string `yaml:"deactivationRole"`
	// ProtectedEmails are Panther users panther-scim never invites, adopts, changes or
	// deletes (break-glass admins, the API token's owner); compared in one canonical
	// form (Unicode NFC, any case).
	ProtectedEmails []string `yaml:"protectedEmails"`
	// Adopt says which existing Panther users (ones panther-scim did not invite) a
	// SCIM user with their email may take over: "none", "nonAdmin" (any whose role
	// lacks UserModify) or "all" (any that is not protected).
	Adopt string `yaml:"adopt"`
	// ReconcileInterval is the period of the background reconciler; 0 disables it.
	ReconcileInterval time.Duration `yaml:"reconcileInterval"`
	// SyncConcurrency bounds concurrent Panther calls for one bulk change (a group
	// PATCH with many members, a replay, a reconcile).
	SyncConcurrency int `yaml:"syncConcurrency"`
	// RequestSyncTimeout is how long a SCIM request waits for its Panther calls.
	RequestSyncTimeout time.Duration `yaml:"requestSyncTimeout"`
	// DeprovisionAlertAfter is how long a removal of Panther access may stay pending
	// before a deprovision.delayed event goes to the audit trail (and Panther), again
	// at most once per this interval per user; 0 disables it.
	DeprovisionAlertAfter time.Duration `yaml:"deprovisionAlertAfter"`
}

// Deactivation modes.
const (
	DeactivateDelete = "delete"
	DeactivateRole   = "role"
)

// Adoption policies (provisioning.adopt).
const (
	AdoptNone     = "none"
	AdoptNonAdmin = "nonAdmin"
	AdoptAll      = "all"
)

// Log configures log/slog output.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json or text.
	Format string `yaml:"format"`
}

// Audit configures the audit trail in the store.
type Audit struct {
	// Retention is how long audit entries are kept; 0 keeps them forever. Entries not
	// yet exported to Panther are kept until they are.
	Retention time.Duration `yaml:"retention"`
	// Panther streams the audit trail to a Panther HTTP log source.
	Panther AuditPanther `yaml:"panther"`
}

// AuditPanther configures the export of the audit trail to a Panther HTTP log
// source. It is off while URL is empty.
type AuditPanther struct {
	// URL is the HTTP source's ingest URL, as Panther shows it when the source is
	// created (https://logs.<your-panther>/http/<source id>).
	URL string `yaml:"url" expand:"true"`
	// Auth is the source's authentication method: sharedSecret, hmac or bearer.
	Auth string `yaml:"auth"`
	// Header is the header carrying the shared secret or the HMAC signature
	// (sharedSecret, hmac), as configured on the source.
	Header string `yaml:"header"`
	// HMACAlgorithm is the source's HMAC algorithm (hmac): sha1, sha256, sha384 or sha512.
	HMACAlgorithm string `yaml:"hmacAlgorithm"`
	// SecretEnv names the environment variable holding the shared secret, HMAC key
	// or bearer token.
	SecretEnv string `yaml:"secretEnv"`
	// SecretFile is a file holding it; when set it is used instead of SecretEnv.
	SecretFile string `yaml:"secretFile"`
	// BatchSize caps the events sent in one request.
	BatchSize int `yaml:"batchSize"`
	// FlushInterval is how often new audit entries are looked for when idle.
	FlushInterval time.Duration `yaml:"flushInterval"`
	// Timeout bounds one request to the source.
	Timeout time.Duration `yaml:"timeout"`
	// MaxBackoff caps the wait between retries while the source fails (a longer
	// Retry-After is honoured up to an hour).
	MaxBackoff time.Duration `yaml:"maxBackoff"`
}

// Enabled reports whether the export is configured.
func (p AuditPanther) Enabled() bool { return p.URL != "" }

// Default returns the configuration with every default applied. Panther.URL and
// an authentication method are left for the operator.
func Default() Config {
	return Config{
		Server: Server{
			Addr:                  "127.0.0.1:8080",
			ReadyCacheTTL:         5 * time.Second,
			MaxBodyBytes:          1 << 20,
			ReadHeaderTimeout:     5 * time.Second,
			ReadTimeout:           30 * time.Second,
			WriteTimeout:          60 * time.Second,
			IdleTimeout:           120 * time.Second,
			MaxConcurrentRequests: 64,
			ShutdownTimeout:       30 * time.Second,
		},
		Panther: Panther{
			TokenEnv:      "PANTHER_API_TOKEN",
			Timeout:       10 * time.Second,
			MaxRetries:    4,
			MaxConcurrent: 8,
			RatePerSecond: 50,
			Burst:         50,
			AdaptiveRate:  true,
		},
		Store: Store{
			Path:              "panther-scim.db",
			OpenTimeout:       time.Second,
			StartCheckTimeout: 10 * time.Second,
		},
		Auth: Auth{
			BearerTokensEnv: "PANTHER_SCIM_BEARER_TOKENS",
			AdminTokensEnv:  "PANTHER_SCIM_ADMIN_TOKENS",
			OAuth: OAuth{
				SigningKeyEnv: "PANTHER_SCIM_OAUTH_SIGNING_KEY",
				TokenTTL:      time.Hour,
				ClockSkew:     time.Minute,
			},
			FailureLimit: FailureLimit{PerMinute: 10, Burst: 20},
		},
		Provisioning: Provisioning{
			Deactivation:          DeactivateDelete,
			Adopt:                 AdoptNonAdmin,
			ReconcileInterval:     15 * time.Minute,
			SyncConcurrency:       8,
			RequestSyncTimeout:    20 * time.Second,
			DeprovisionAlertAfter: 5 * time.Minute,
		},
		Log: Log{Level: "info", Format: "json"},
		Audit: Audit{
			Retention: 90 * 24 * time.Hour,
			Panther: AuditPanther{
				Auth:          "sharedSecret",
				Header:        "X-Panther-SCIM-Secret",
				HMACAlgorithm: "sha256",
				SecretEnv:     "PANTHER_SCIM_AUDIT_SECRET",
				BatchSize:     500,
				FlushInterval: time.Second,
				Timeout:       10 * time.Second,
				MaxBackoff:    5 * time.Minute,
			},
		},
	}
}
