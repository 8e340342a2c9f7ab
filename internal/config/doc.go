// Package config is the panther-scim service configuration: a YAML file decoded
// strictly (an unknown key is an error), overridden key by key from the
// environment, then validated as a whole.
//
// # Loading order
//
// Default(), then the YAML file, then the environment overrides, then $VAR
// expansion. Load(path) does all of it and Validate; Parse(data) stops before
// Validate. example.yaml (embedded as Example, copied to config.example.yaml at the
// repository root) documents every key with its default.
//
// # Environment overrides
//
// Every key has an override named PANTHER_SCIM_ followed by its path in upper
// snake case. Lists take comma-separated values (or a YAML flow list starting with
// "["); mapping.rules takes a YAML list such as
// '[{group: Panther Admins, role: Admin}]'; durations use Go syntax (30s, 15m).
// A variable that is set, even to "", overrides the file. The full list (EnvVars
// returns it too):
//
//	PANTHER_SCIM_SERVER_ADDR                        server.addr
//	PANTHER_SCIM_SERVER_BASE_URL                    server.baseURL
//	PANTHER_SCIM_SERVER_OPS_ADDR                    server.opsAddr
//	PANTHER_SCIM_SERVER_READY_CACHE_TTL             server.readyCacheTTL
//	PANTHER_SCIM_SERVER_MAX_BODY_BYTES              server.maxBodyBytes
//	PANTHER_SCIM_SERVER_READ_HEADER_TIMEOUT         server.readHeaderTimeout
//	PANTHER_SCIM_SERVER_READ_TIMEOUT                server.readTimeout
//	PANTHER_SCIM_SERVER_WRITE_TIMEOUT               server.writeTimeout
//	PANTHER_SCIM_SERVER_IDLE_TIMEOUT                server.idleTimeout
//	PANTHER_SCIM_SERVER_MAX_CONCURRENT_REQUESTS     server.maxConcurrentRequests
//	PANTHER_SCIM_SERVER_TLS_CERT_FILE               server.tls.certFile
//	PANTHER_SCIM_SERVER_TLS_KEY_FILE                server.tls.keyFile
//	PANTHER_SCIM_SERVER_SHUTDOWN_TIMEOUT            server.shutdownTimeout
//	PANTHER_SCIM_SCIM_STRICT_ATTRIBUTES             scim.strictAttributes
//	PANTHER_SCIM_PANTHER_URL                        panther.url
//	PANTHER_SCIM_PANTHER_TOKEN_ENV                  panther.tokenEnv
//	PANTHER_SCIM_PANTHER_TOKEN_FILE                 panther.tokenFile
//	PANTHER_SCIM_PANTHER_TIMEOUT                    panther.timeout
//	PANTHER_SCIM_PANTHER_MAX_RETRIES                panther.maxRetries
//	PANTHER_SCIM_PANTHER_MAX_CONCURRENT             panther.maxConcurrent
//	PANTHER_SCIM_PANTHER_RATE_PER_SECOND            panther.ratePerSecond
//	PANTHER_SCIM_PANTHER_BURST                      panther.burst
//	PANTHER_SCIM_PANTHER_ADAPTIVE_RATE              panther.adaptiveRate
//	PANTHER_SCIM_STORE_PATH                         store.path
//	PANTHER_SCIM_STORE_OPEN_TIMEOUT                 store.openTimeout
//	PANTHER_SCIM_STORE_START_CHECK_TIMEOUT          store.startCheckTimeout
//	PANTHER_SCIM_AUTH_BEARER_TOKEN_HASHES           auth.bearerTokenHashes
//	PANTHER_SCIM_AUTH_BEARER_TOKENS_ENV             auth.bearerTokensEnv
//	PANTHER_SCIM_AUTH_BEARER_TOKENS_FILE            auth.bearerTokensFile
//	PANTHER_SCIM_AUTH_ADMIN_TOKEN_HASHES            auth.adminTokenHashes
//	PANTHER_SCIM_AUTH_ADMIN_TOKENS_ENV              auth.adminTokensEnv
//	PANTHER_SCIM_AUTH_ADMIN_TOKENS_FILE             auth.adminTokensFile
//	PANTHER_SCIM_AUTH_OAUTH_CLIENT_ID               auth.oauth.clientID
//	PANTHER_SCIM_AUTH_OAUTH_CLIENT_SECRET_HASH      auth.oauth.clientSecretHash
//	PANTHER_SCIM_AUTH_OAUTH_SIGNING_KEY_ENV         auth.oauth.signingKeyEnv
//	PANTHER_SCIM_AUTH_OAUTH_SIGNING_KEY_FILE        auth.oauth.signingKeyFile
//	PANTHER_SCIM_AUTH_OAUTH_TOKEN_TTL               auth.oauth.tokenTTL
//	PANTHER_SCIM_AUTH_OAUTH_CLOCK_SKEW              auth.oauth.clockSkew
//	PANTHER_SCIM_AUTH_FAILURE_LIMIT_PER_MINUTE      auth.failureLimit.perMinute
//	PANTHER_SCIM_AUTH_FAILURE_LIMIT_BURST           auth.failureLimit.burst
//	PANTHER_SCIM_PROVISIONING_DEACTIVATION          provisioning.deactivation
//	PANTHER_SCIM_PROVISIONING_DEACTIVATION_ROLE     provisioning.deactivationRole
//	PANTHER_SCIM_PROVISIONING_PROTECTED_EMAILS      provisioning.protectedEmails
//	PANTHER_SCIM_PROVISIONING_ADOPT                 provisioning.adopt
//	PANTHER_SCIM_PROVISIONING_RECONCILE_INTERVAL    provisioning.reconcileInterval
//	PANTHER_SCIM_PROVISIONING_SYNC_CONCURRENCY      provisioning.syncConcurrency
//	PANTHER_SCIM_PROVISIONING_REQUEST_SYNC_TIMEOUT  provisioning.requestSyncTimeout
//	PANTHER_SCIM_PROVISIONING_DEPROVISION_ALERT_AFTER provisioning.deprovisionAlertAfter
//	PANTHER_SCIM_MAPPING_RULES                      mapping.rules
//	PANTHER_SCIM_MAPPING_DEFAULT_ROLE               mapping.defaultRole
//	PANTHER_SCIM_LOG_LEVEL                          log.level
//	PANTHER_SCIM_LOG_FORMAT                         log.format
//	PANTHER_SCIM_AUDIT_RETENTION                    audit.retention
//	PANTHER_SCIM_AUDIT_PANTHER_URL                  audit.panther.url
//	PANTHER_SCIM_AUDIT_PANTHER_AUTH                 audit.panther.auth
//	PANTHER_SCIM_AUDIT_PANTHER_HEADER               audit.panther.header
//	PANTHER_SCIM_AUDIT_PANTHER_HMAC_ALGORITHM       audit.panther.hmacAlgorithm
//	PANTHER_SCIM_AUDIT_PANTHER_SECRET_ENV           audit.panther.secretEnv
//	PANTHER_SCIM_AUDIT_PANTHER_SECRET_FILE          audit.panther.secretFile
//	PANTHER_SCIM_AUDIT_PANTHER_BATCH_SIZE           audit.panther.batchSize
//	PANTHER_SCIM_AUDIT_PANTHER_FLUSH_INTERVAL       audit.panther.flushInterval
//	PANTHER_SCIM_AUDIT_PANTHER_TIMEOUT              audit.panther.timeout
//	PANTHER_SCIM_AUDIT_PANTHER_MAX_BACKOFF          audit.panther.maxBackoff
//
// # Secrets
//
// The configuration never holds a secret. The Panther API token comes from the
// variable named by panther.tokenEnv (default PANTHER_API_TOKEN) or from
// panther.tokenFile; SCIM bearer tokens are SHA-256 hashes in
// auth.bearerTokenHashes, or raw tokens in the variable named by
// auth.bearerTokensEnv (default PANTHER_SCIM_BEARER_TOKENS, comma-separated) or in
// auth.bearerTokensFile (one per line); admin tokens (the /admin/... endpoints) the
// same way in auth.adminTokenHashes, auth.adminTokensEnv (default
// PANTHER_SCIM_ADMIN_TOKENS) and auth.adminTokensFile; the OAuth client secret is a SHA-256 hash
// and the OAuth signing key comes from the variable named by
// auth.oauth.signingKeyEnv (default PANTHER_SCIM_OAUTH_SIGNING_KEY) or from
// auth.oauth.signingKeyFile. The Panther HTTP source's secret (audit.panther) comes
// from the variable named by audit.panther.secretEnv (default
// PANTHER_SCIM_AUDIT_SECRET) or from audit.panther.secretFile. A file, when set,
// wins over the variable. Validate checks that each referenced secret can be read;
// PantherToken, BearerTokenHashes, AdminTokenHashes, OAuthSigningKey and AuditPantherSecret read them. Errors name the variable or file, never a value.
//
// # $VAR expansion
//
// $VAR and ${VAR} are expanded from the environment in these fields only:
// server.baseURL, panther.url, auth.bearerTokenHashes, auth.adminTokenHashes, auth.oauth.clientID,
// auth.oauth.clientSecretHash and audit.panther.url (fields tagged expand:"true"). An unset variable is
// an error; $$ is a literal $.
package config
