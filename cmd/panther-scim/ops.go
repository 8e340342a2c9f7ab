package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/panther-scim/panther-scim/internal/auth"
	"github.com/panther-scim/panther-scim/internal/config"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
	"github.com/panther-scim/panther-scim/mappings"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "SCIM listener")
	pantherAddr := fs.String("panther-addr", "127.0.0.1:8081", "listener of the in-memory Panther (GraphQL at /public/graphql)")
	pantherKey := fs.String("panther-key", "demo-panther-key", "API key the in-memory Panther requires")
	token := fs.String("token", "", "SCIM bearer token (generated and printed when empty)")
	data := fs.String("data", "", "bbolt data file (a temporary file when empty)")
	cfgPath := fs.String("config", "", "config file (default: the built-in copy of config.example.yaml)")
	pantherAudit := fs.Bool("panther-audit", false, "stream the audit trail to the in-memory Panther's HTTP log source (audit.panther)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg config.Config
	var err error
	if *cfgPath != "" {
		// Validated below, once the demo has put in its own secrets and listeners.
		cfg, err = config.Read(*cfgPath)
	} else {
		cfg, err = config.Parse(config.Example)
	}
	if err != nil {
		return err
	}

	// The HTTP source takes a shared secret, as a real one would; the demo makes one.
	sourceSecret, _ := auth.GenerateToken()
	fake := pantherfake.New(pantherfake.Options{APIKey: *pantherKey, HTTPSource: pantherfake.HTTPSourceAuth{
		Method: pantherfake.SourceAuthSharedSecret, Header: cfg.Audit.Panther.Header, Secret: sourceSecret,
	},
		// The demo runs for as long as someone tries it: a call log of every request
		// would grow the process's heap by each call's variables.
		MaxCallLog: 1000,
	})
	ln, err := net.Listen("tcp", *pantherAddr)
	if err != nil {
		return fmt.Errorf("in-memory Panther: %w", err)
	}
	fakeSrv := &http.Server{Handler: fake.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = fakeSrv.Serve(ln) }()
	defer fakeSrv.Close()

	if *token == "" {
		*token, _ = auth.GenerateToken()
	}
	if *data == "" {
		dir, err := os.MkdirTemp("", "panther-scim-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*data = filepath.Join(dir, "panther-scim.db")
	}
	// The demo's secrets are its own: pass them through the same env indirection
	// the real configuration uses, so no code path differs.
	os.Setenv("PANTHER_SCIM_DEMO_PANTHER_KEY", *pantherKey)
	os.Setenv("PANTHER_SCIM_DEMO_TOKENS", *token)
	cfg.Panther.URL = "http://" + ln.Addr().String() + "/public/graphql"
	cfg.Panther.TokenEnv, cfg.Panther.TokenFile = "PANTHER_SCIM_DEMO_PANTHER_KEY", ""
	cfg.Auth.BearerTokensEnv, cfg.Auth.BearerTokensFile, cfg.Auth.BearerTokenHashes = "PANTHER_SCIM_DEMO_TOKENS", "", nil
	// In the demo only, the one printed token is also the admin token (the banner says
	// so); serve refuses a token that is both.
	cfg.Auth.AdminTokensEnv, cfg.Auth.AdminTokensFile, cfg.Auth.AdminTokenHashes = "PANTHER_SCIM_DEMO_TOKENS", "", nil
	cfg.Auth.OAuth = config.OAuth{}
	cfg.Server.Addr, cfg.Server.OpsAddr, cfg.Server.BaseURL = *addr, "", "http://"+*addr
	cfg.Server.TLS = config.TLS{}
	cfg.Store.Path = *data
	cfg.Log.Format = "text"
	sourceURL := "http://" + ln.Addr().String() + pantherfake.HTTPSourcePath + "panther-scim-audit"
	if *pantherAudit {
		os.Setenv("PANTHER_SCIM_DEMO_AUDIT_SECRET", sourceSecret)
		p := &cfg.Audit.Panther
		p.URL, p.Auth, p.SecretEnv, p.SecretFile = sourceURL, "sharedSecret", "PANTHER_SCIM_DEMO_AUDIT_SECRET", ""
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// The demo's base URL is its listener's address, known once it listens (--addr
	// may name port 0): an empty BaseURL tells the App to take it from there.
	cfg.Server.BaseURL = ""
	srv, _, err := startApp(ctx, cfg, stderr, false)
	if err != nil {
		return err
	}
	defer srv.Close()
	base := srv.URL()
	fmt.Fprintf(stdout, `panther-scim demo is running.

  SCIM base URL   %s
  Bearer token    %s
                  (demo only: also the admin token of explain, audit, reconcile and backup --url,
                  e.g. PANTHER_SCIM_ADMIN_TOKEN=<token> panther-scim explain --url http://%s ada@example.com)
  Panther double  http://%s/public/graphql  (X-API-Key: %s)
  Health          http://%s/healthz   Metrics: http://%s/metrics
  Data file       %s
  Mapping         Panther Admins -> Admin, Panther Analysts -> Analyst, default AnalystReadOnly

Try:
  curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: application/scim+json' \
    -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","name":{"givenName":"Ada","familyName":"Lovelace"},"emails":[{"value":"ada@example.com","primary":true}],"active":true}' \
    %s/Users
  curl -s -H 'X-API-Key: %s' -H 'Content-Type: application/json' \
    -d '{"query":"{ users { email givenName familyName role { name } } }"}' http://%s/public/graphql

%s
Press Ctrl-C to stop.
`, base, *token, srv.Addr(), ln.Addr(), *pantherKey, srv.Addr(), srv.Addr(), *data, *token, base, *pantherKey, ln.Addr(),
		demoAuditBanner(*pantherAudit, sourceURL, srv.Addr(), cfg.Audit.Panther.Header))
	<-ctx.Done()
	return nil
}

// demoAuditBanner says where the audit events go and how to look at them.
func demoAuditBanner(on bool, sourceURL, opsAddr, header string) string {
	if !on {
		return "The audit trail can go to the double's HTTP log source too: run demo --panther-audit.\n"
	}
	return fmt.Sprintf(`Audit trail -> Panther HTTP log source (audit.panther, shared secret in %s):
  every change above reaches the double's source within a second, as the JSON lines
  Panther would ingest as Custom.PantherSCIM.Audit (deploy/panther/ has the schema
  and the detections). What the source received:
    curl -s %s
  Export health: http://%s/readyz (auditExport), and panther_scim_audit_export_* in /metrics.
`, header, sourceURL, opsAddr)
}

func cmdFakePanther(ctx context.Context, args []string, stdout io.Writer) error {
	return pantherfake.Run(ctx, args, stdout)
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("PANTHER_SCIM_CONFIG"), "config file (YAML)")
	offline := fs.Bool("offline", false, "validate the file only; do not ask Panther for its schema, users and roles")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stdout, "config: INVALID")
		fmt.Fprintln(stdout, err)
		return errSilent
	}
	fmt.Fprintln(stdout, "config: ok")
	if *offline {
		return nil
	}
	client, err := newPantherClient(cfg, nil, nil)
	if err != nil {
		fmt.Fprintln(stdout, "panther:", err)
		return errSilent
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tokenOK, pantherOK := checkPanther(ctx, client, stdout)
	if !tokenOK {
		return errSilent
	}
	lookup := func(ref string) (bool, bool, error) {
		r, err := provision.LookupRole(ctx, client, ref)
		var unknown *provision.UnknownRoleError
		if errors.As(err, &unknown) {
			return false, false, nil
		}
		if err != nil {
			return false, false, err
		}
		return true, r.Administrator(), nil
	}
	m := cfg.Mapping
	if cfg.Provisioning.DeactivationRole != "" {
		m.Rules = append(m.Rules, mappings.Rule{Group: "(deactivated users)", Role: cfg.Provisioning.DeactivationRole})
	}
	warnings, err := mappings.ValidateRoles(m, lookup)
	for _, w := range warnings {
		fmt.Fprintln(stdout, "warning:", w)
	}
	if err != nil {
		fmt.Fprintln(stdout, "roles: INVALID")
		fmt.Fprintln(stdout, err)
		return errSilent
	}
	fmt.Fprintln(stdout, "roles: ok (every mapped role exists in Panther)")
	warnUnprotectedAdmins(ctx, client, cfg, stdout)
	if !pantherOK {
		return errSilent
	}
	return nil
}

// withService runs fn with the provisioning service of the config at cfgPath, over
// its store, logging to stderr. The server must not be running: bbolt lets one process
// hold the file.
func withService(cfgPath string, stderr io.Writer, fn func(*provision.Service) error) error {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.Store.Path, store.Options{OpenTimeout: cfg.Store.OpenTimeout})
	if err != nil {
		return err
	}
	defer st.Close()
	log := newLogger(cfg, stderr)
	client, err := newPantherClient(cfg, nil, log)
	if err != nil {
		return err
	}
	return fn(provision.New(st, client, provisionOptions(cfg, log)))
}

func cmdReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("PANTHER_SCIM_CONFIG"), "config file (YAML)")
	dry := fs.Bool("dry-run", false, "print the plan without changing Panther")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	base := fs.String("url", "", "ask a running server instead: its base URL (the ops listener's when server.opsAddr is set); admin token from $"+adminTokenEnv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var plan provision.Plan
	var err error
	if *base != "" {
		plan, err = onlineReconcile(ctx, *base, *dry)
	} else {
		err = withService(*cfgPath, stderr, func(svc *provision.Service) (err error) {
			plan, err = svc.Reconcile(ctx, *dry)
			return err
		})
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, plan)
	}
	if *dry {
		fmt.Fprint(stdout, "plan (dry run, nothing changed):\n")
	}
	fmt.Fprint(stdout, plan.String())
	if plan.Failed > 0 {
		return errSilent
	}
	return nil
}

func cmdToken(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	admin := fs.Bool("admin", false, "an admin token, for the /admin/... endpoints and the --url commands")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tok, hash := auth.GenerateToken()
	if *admin {
		fmt.Fprintf(stdout, `New admin token (shown once; keep it in your secret store, never in the IdP):

  %s

Its SHA-256 hash, for the config (it must not also be a SCIM bearer token):

  auth:
    adminTokenHashes:
      - %s

Use it with the --url commands (explain, audit, reconcile, backup):

  PANTHER_SCIM_ADMIN_TOKEN=%s panther-scim explain --url https://<ops host:port> ada@example.com
`, tok, hash, tok)
		return nil
	}
	fmt.Fprintf(stdout, `New SCIM bearer token (shown once; store it in your IdP, not here):

  %s

Its SHA-256 hash, for the config (keep the old hash too while you rotate):

  auth:
    bearerTokenHashes:
      - %s

Okta (SCIM 2.0 app > Provisioning > Integration):
  Authentication Mode: HTTP Header; Authorization: Bearer %s
Microsoft Entra ID (Enterprise app > Provisioning > Admin Credentials):
  Tenant URL: https://<your host>/scim/v2   Secret Token: %s
`, tok, hash, tok, tok)
	return nil
}

func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("PANTHER_SCIM_CONFIG"), "config file (YAML); its store.path is backed up")
	dataPath := fs.String("data", "", "the bbolt file to back up (instead of --config)")
	out := fs.String("out", "", "where to write the copy (required)")
	url := fs.String("url", "", "back up a running server instead: its base URL, e.g. http://127.0.0.1:8080 (the ops listener's when server.opsAddr is set); admin token from $"+adminTokenEnv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out FILE is required")
	}
	if *url != "" {
		return onlineBackup(ctx, *url, *out, stdout)
	}
	st, path, err := openStoreFile(*cfgPath, *dataPath)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.BackupFile(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup of %s written to %s\n", path, *out)
	return nil
}

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("PANTHER_SCIM_CONFIG"), "config file (YAML)")
	dataPath := fs.String("data", "", "the bbolt file (instead of --config)")
	since := fs.Duration("since", 0, "only entries newer than this (e.g. 24h); 0: all")
	user := fs.String("user", "", "only entries about this SCIM id, userName or email")
	base := fs.String("url", "", "read a running server's trail instead: its base URL (the ops listener's when server.opsAddr is set); admin token from $"+adminTokenEnv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base != "" {
		return onlineAudit(ctx, *base, *since, *user, stdout)
	}
	st, _, err := openStoreFile(*cfgPath, *dataPath)
	if err != nil {
		return err
	}
	defer st.Close()
	var from time.Time
	if *since > 0 {
		from = time.Now().Add(-*since)
	}
	enc := json.NewEncoder(stdout)
	return st.View(ctx, func(tx provision.ReadTx) error {
		return tx.ScanAudit(from, func(e provision.AuditEntry) bool {
			if *user != "" && !provision.AuditAbout(e, *user) {
				return true
			}
			_ = enc.Encode(e)
			return true
		})
	})
}

// onlineBackup fetches a consistent copy from a running server and writes it
// atomically (a temporary file renamed into place), mode 0600.
func onlineBackup(ctx context.Context, base, out string, stdout io.Writer) error {
	resp, err := adminRequest(ctx, http.MethodGet, base, "backup", nil)
	if err != nil {
		return fmt.Errorf("online backup: %w", err)
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), ".panther-scim-backup-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	n, err := io.Copy(tmp, resp.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("online backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup of the running server (%d bytes) written to %s\n", n, out)
	return nil
}

// openStoreFile opens the data file named by --data, else the config's store.path.
// The server must be stopped: bbolt lets one process hold the file.
func openStoreFile(cfgPath, dataPath string) (*store.Bolt, string, error) {
	path := dataPath
	if path == "" {
		cfg, err := loadConfig(cfgPath)
		if err != nil {
			return nil, "", err
		}
		path = cfg.Store.Path
	}
	st, err := store.Open(path, store.Options{OpenTimeout: 2 * time.Second})
	return st, path, err
}
