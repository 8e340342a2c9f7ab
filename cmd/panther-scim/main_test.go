package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/auth"
	"github.com/panther-scim/panther-scim/internal/config"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
)

// dockerBuild is the build line of the Dockerfile. TestStaticBinary builds with the
// same flags (VERSION=test), so the two must change together.
const dockerBuild = `RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/panther-scim ./cmd/panther-scim`

var dockerBuildFlags = []string{"-trimpath", "-ldflags=-s -w -X main.version=test"}

// binDeadline bounds every wait on a process of the binary.
const binDeadline = 20 * time.Second

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{
		dockerBuild,
		"FROM gcr.io/distroless/static-debian12:nonroot", // no libc: the binary must be static
		`VOLUME ["/data"]`,
		`HEALTHCHECK`,
		`CMD ["/usr/local/bin/panther-scim", "healthcheck"]`,
		`PANTHER_SCIM_STORE_PATH=/data/`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// Non-root: a USER line naming neither root nor uid 0, after the last FROM.
	last := df[strings.LastIndex(df, "\nFROM "):]
	m := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(last)
	if m == nil || m[1] == "root" || m[1] == "0" || strings.HasPrefix(m[1], "0:") {
		t.Errorf("runtime stage user %v: must be a non-root user", m)
	}
}

// TestAppOptionsFromConfig: the server protections in the config reach the App.
func TestAppOptionsFromConfig(t *testing.T) {
	cfg := config.Default()
	cfg.Server.OpsAddr = "127.0.0.1:9090"
	cfg.Server.TLS = config.TLS{CertFile: "/etc/tls/cert.pem", KeyFile: "/etc/tls/key.pem"}
	cfg.Server.BaseURL = "https://scim.example.com/"
	tok, _ := auth.GenerateToken()
	a, err := auth.New(auth.Options{TokenHashes: []auth.Hash{auth.HashToken(tok)}})
	if err != nil {
		t.Fatal(err)
	}
	o := appOptions(cfg, nil, nil, a, slog.New(slog.DiscardHandler))
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"ReadHeaderTimeout", o.ReadHeaderTimeout, 5 * time.Second},
		{"ReadTimeout", o.ReadTimeout, 30 * time.Second},
		{"WriteTimeout", o.WriteTimeout, 60 * time.Second},
		{"IdleTimeout", o.IdleTimeout, 120 * time.Second},
		{"ShutdownTimeout", o.ShutdownTimeout, 30 * time.Second},
		{"MaxBodyBytes", o.MaxBodyBytes, int64(1 << 20)},
		{"MaxConcurrentRequests", o.MaxConcurrentRequests, 64},
		{"OpsAddr", o.OpsAddr, "127.0.0.1:9090"},
		{"TLSCertFile", o.TLSCertFile, "/etc/tls/cert.pem"},
		{"TLSKeyFile", o.TLSKeyFile, "/etc/tls/key.pem"},
		{"BaseURL", o.BaseURL, "https://scim.example.com/scim/v2"},
		{"AuditRetention", o.AuditRetention, 90 * 24 * time.Hour},
		{"Authenticate set", o.Authenticate != nil, true},
		{"OAuthToken without OAuth", o.OAuthToken == nil, true},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestAuthenticatorFromConfig: serve's authenticator logs failures with the reason,
// never the credentials.
func TestAuthenticatorFromConfig(t *testing.T) {
	tok, hash := auth.GenerateToken()
	wrong, _ := auth.GenerateToken()
	cfg := config.Default()
	cfg.Auth.BearerTokenHashes = []string{hash}
	cfg.Auth.BearerTokensEnv = ""
	m := app.NewMetrics()
	var logs bytes.Buffer
	a, err := newAuthenticator(cfg, m, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, c := range []struct {
		authz string
		want  int
	}{{"Bearer " + tok, http.StatusNoContent}, {"Bearer " + wrong, http.StatusUnauthorized}, {"", http.StatusUnauthorized}} {
		req := httptest.NewRequest("GET", "/scim/v2/Users", nil)
		if c.authz != "" {
			req.Header.Set("Authorization", c.authz)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%.12q: %d, want %d", c.authz, rec.Code, c.want)
		}
	}
	if !strings.Contains(logs.String(), `"reason":"invalid"`) || !strings.Contains(logs.String(), `"reason":"missing"`) {
		t.Errorf("failures not logged with their reason:\n%s", logs.String())
	}
	for _, s := range []string{tok, wrong, hash} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("log holds a credential:\n%s", logs.String())
		}
	}
	// The count in /metrics is checked on the real binary (testDemo).
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// ---- the real binary, built as the Dockerfile builds it ---------------------------

// outBuf collects a process's output while it runs.
type outBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *outBuf) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *outBuf) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// cleanEnv is the test's environment without PANTHER_ variables (they would override
// configs), plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PANTHER_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

type result struct {
	Stdout, Stderr string
	Code           int
}

// runBin runs the binary to completion within binDeadline.
func runBin(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), binDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%v: did not finish within %s", args, binDeadline)
	case err != nil && !errors.As(err, &ee):
		t.Fatalf("%v: %v", args, err)
	}
	return result{Stdout: out.String(), Stderr: errb.String(), Code: cmd.ProcessState.ExitCode()}
}

func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the binary")
	}
	bin := filepath.Join(t.TempDir(), "panther-scim")
	build := exec.Command(goTool, append(append([]string{"build"}, dockerBuildFlags...), "-o", bin, ".")...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("static and trimmed", func(t *testing.T) { testStatic(t, bin) })
	t.Run("version", func(t *testing.T) {
		r := runBin(t, bin, cleanEnv(), "version")
		if r.Code != 0 || r.Stdout != "panther-scim test\n" {
			t.Errorf("version: %d %q %q", r.Code, r.Stdout, r.Stderr)
		}
	})
	t.Run("token", func(t *testing.T) { testTokenCommand(t, bin) })
	t.Run("check", func(t *testing.T) { testCheckCommand(t, bin) })
	t.Run("check schema", func(t *testing.T) { testCheckSchema(t, bin) })
	t.Run("serve with an incompatible schema", func(t *testing.T) { testServeIncompatible(t, bin) })
	t.Run("admin commands --url", func(t *testing.T) { testAdminCommands(t, bin) })
	t.Run("damaged stores", func(t *testing.T) { testDamagedStores(t, bin) })
	t.Run("demo", func(t *testing.T) { testDemo(t, bin) })
	t.Run("demo --panther-audit", func(t *testing.T) { testDemoPantherAudit(t, bin) })
	t.Run("demo --config", func(t *testing.T) { testDemoConfig(t, bin) })
}

func testStatic(t *testing.T, bin string) {
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("program header %v: not a static binary", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("links %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("symbol table not stripped (-s)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(root+string(filepath.Separator))) {
		t.Errorf("binary holds the build directory %s (-trimpath)", root)
	}
	// The crash seam is built only with -tags crashtest.
	if bytes.Contains(b, []byte(crashEnv)) {
		t.Errorf("the production binary holds the crash seam %s", crashEnv)
	}
}

var (
	tokenRe = regexp.MustCompile(`\b` + auth.TokenPrefix + `[A-Za-z0-9_-]{43}\b`)
	hashRe  = regexp.MustCompile(`(?m)^\s+- ([0-9a-f]{64})$`)
)

func testTokenCommand(t *testing.T, bin string) {
	var seen []string
	for range 2 {
		r := runBin(t, bin, cleanEnv(), "token")
		if r.Code != 0 {
			t.Fatalf("token: %d %s", r.Code, r.Stderr)
		}
		toks := tokenRe.FindAllString(r.Stdout, -1)
		h := hashRe.FindStringSubmatch(r.Stdout)
		if len(toks) < 3 || h == nil {
			t.Fatalf("token output: %s", r.Stdout)
		}
		for _, x := range toks[1:] {
			if x != toks[0] {
				t.Errorf("output shows two tokens: %s", r.Stdout)
			}
		}
		sum := sha256.Sum256([]byte(toks[0]))
		if hex.EncodeToString(sum[:]) != h[1] {
			t.Errorf("hash %s is not the SHA-256 of %s", h[1], toks[0])
		}
		for _, want := range []string{"bearerTokenHashes:", "Okta", "Authorization: Bearer " + toks[0], "Entra", "Secret Token: " + toks[0]} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("token output lacks %q", want)
			}
		}
		// The printed hash is accepted by the config as is.
		cfg := config.Default()
		cfg.Auth.BearerTokenHashes = []string{h[1]}
		hs, err := cfg.BearerTokenHashes()
		if err != nil || len(hs) != 1 || hs[0] != auth.HashToken(toks[0]) {
			t.Errorf("config does not take the printed hash: %v", err)
		}
		seen = append(seen, toks[0])
	}
	if seen[0] == seen[1] {
		t.Error("two runs printed the same token")
	}
}

func testCheckCommand(t *testing.T, bin string) {
	const key = "check-test-panther-key-0123456789"
	secrets := []string{"PANTHER_API_TOKEN=" + key, "PANTHER_SCIM_BEARER_TOKENS=ci-placeholder-token"}

	t.Run("example config offline", func(t *testing.T) {
		r := runBin(t, bin, cleanEnv(secrets...), "check", "--offline", "--config", "../../config.example.yaml")
		if r.Code != 0 || !strings.Contains(r.Stdout, "config: ok") {
			t.Errorf("check --offline: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		// Without the secrets it names what is missing and fails.
		r = runBin(t, bin, cleanEnv(), "check", "--offline", "--config", "../../config.example.yaml")
		if r.Code != 1 || !strings.Contains(r.Stdout, "config: INVALID") || !strings.Contains(r.Stdout, "PANTHER_API_TOKEN") {
			t.Errorf("check --offline without secrets: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})

	fake := pantherfake.New(pantherfake.Options{APIKey: key, Seed: 3})
	url, stop, err := fake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	dir := t.TempDir()
	write := func(name, role string) string {
		p := filepath.Join(dir, name)
		cfg := fmt.Sprintf(`server:
  addr: "127.0.0.1:0"
  baseURL: "https://scim.example.com"
panther:
  url: %q
store:
  path: %q
mapping:
  rules:
    - group: Panther Admins
      role: Admin
    - group: Wizards
      role: %s
  defaultRole: AnalystReadOnly
`, url, filepath.Join(dir, name+".db"), role)
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, unknown := write("good.yaml", "Analyst"), write("unknown.yaml", "Archmage")

	t.Run("roles exist", func(t *testing.T) {
		r := runBin(t, bin, cleanEnv(secrets...), "check", "--config", good)
		if r.Code != 0 || !strings.Contains(r.Stdout, "roles: ok") {
			t.Errorf("check: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
	t.Run("unprotected administrators", func(t *testing.T) {
		for _, u := range [][2]string{{"breakglass@example.com", "Admin"}, {"ops-lead@example.com", "Admin"}, {"ana@example.com", "Analyst"}} {
			if _, err := fake.AddUser(u[0], "A", "B", u[1]); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			for _, u := range fake.Users() {
				_ = fake.RemoveUser(u.ID)
			}
		})
		raw, err := os.ReadFile(good)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "protected.yaml")
		if err := os.WriteFile(p, append(raw, "provisioning:\n  protectedEmails: [BreakGlass@example.com]\n"...), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runBin(t, bin, cleanEnv(secrets...), "check", "--config", p)
		if r.Code != 0 || !strings.Contains(r.Stdout, "warning: Panther user ops-lead@example.com (role Admin) holds UserModify and is not in provisioning.protectedEmails") ||
			strings.Contains(r.Stdout, "breakglass@example.com (role") || strings.Contains(r.Stdout, "ana@example.com") {
			t.Errorf("check: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
	// check only reads Panther, however much it finds to warn about.
	if n := mutationCalls(fake); n != 0 {
		t.Errorf("check sent %d mutations to Panther", n)
	}
	t.Run("unknown role", func(t *testing.T) {
		r := runBin(t, bin, cleanEnv(secrets...), "check", "--config", unknown)
		if r.Code != 1 || !strings.Contains(r.Stdout, "roles: INVALID") || !strings.Contains(r.Stdout, "Archmage") {
			t.Errorf("check: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		// serve refuses to start on it too.
		r = runBin(t, bin, cleanEnv(secrets...), "serve", "--config", unknown)
		if r.Code != 1 || !strings.Contains(r.Stderr, "Archmage") {
			t.Errorf("serve with an unknown role: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
	t.Run("raw token pasted as a hash", func(t *testing.T) {
		tok, _ := auth.GenerateToken()
		p := filepath.Join(dir, "pasted.yaml")
		if err := os.WriteFile(p, []byte(fmt.Sprintf("panther:\n  url: %q\nauth:\n  bearerTokenHashes: [%q]\n", url, tok)), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runBin(t, bin, cleanEnv(secrets...), "check", "--offline", "--config", p)
		if r.Code != 1 || !strings.Contains(r.Stdout, "auth.bearerTokenHashes[0]") {
			t.Errorf("check: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if strings.Contains(r.Stdout+r.Stderr, strings.TrimPrefix(tok, auth.TokenPrefix)) {
			t.Errorf("check echoed the pasted token:\n%s", r.Stdout)
		}
	})
	t.Run("panther rejects the key", func(t *testing.T) {
		const wrong = "revoked-panther-key-0123456789"
		r := runBin(t, bin, cleanEnv("PANTHER_API_TOKEN="+wrong, secrets[1]), "check", "--config", good)
		if r.Code != 1 {
			t.Errorf("check with a wrong key: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if strings.Contains(r.Stdout+r.Stderr, wrong) {
			t.Errorf("check printed the key:\n%s%s", r.Stdout, r.Stderr)
		}
	})
}

// demoRun is `panther-scim demo` running as a subprocess.
type demoRun struct {
	cmd    *exec.Cmd
	done   chan struct{}
	stdout *outBuf
	stderr *outBuf
	fields map[string]string // from the banner: SCIM base URL, Health, Panther double, Data file
}

var bannerRe = regexp.MustCompile(`(?m)^\s+(SCIM base URL|Bearer token|Panther double|Health|Data file)\s+(\S+)`)

func startDemo(t *testing.T, bin string, args ...string) *demoRun {
	t.Helper()
	d := &demoRun{done: make(chan struct{}), stdout: &outBuf{}, stderr: &outBuf{}, fields: map[string]string{}}
	d.cmd = exec.Command(bin, append([]string{"demo"}, args...)...)
	// The demo keeps its data under TMPDIR and removes it when it stops; a test that
	// ends by killing it must not leave the directory behind in the machine's /tmp.
	d.cmd.Env = cleanEnv("TMPDIR=" + t.TempDir())
	d.cmd.Stderr = d.stderr
	pr, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	banner := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			fmt.Fprintln(d.stdout, sc.Text())
			// The banner's last line: the tests read parts of it printed after the
			// fields (the audit trail's source with --panther-audit).
			if !signalled && strings.TrimSpace(sc.Text()) == "Press Ctrl-C to stop." {
				signalled = true
				close(banner)
			}
		}
	}()
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("demo stdout:\n%s\ndemo stderr:\n%s", d.stdout, d.stderr)
		}
	})
	select {
	case <-banner:
	case <-d.done:
		t.Fatalf("demo exited early: %v", d.cmd.ProcessState)
	case <-time.After(binDeadline):
		t.Fatal("demo printed no banner")
	}
	for _, m := range bannerRe.FindAllStringSubmatch(d.stdout.String(), -1) {
		d.fields[m[1]] = m[2]
	}
	return d
}

// poll calls cond until it holds or binDeadline passes.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(binDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testDemo(t *testing.T, bin string) {
	const pantherKey = "demo-test-panther-key-0123456789"
	token, hash := auth.GenerateToken()
	wrong, _ := auth.GenerateToken()
	data := filepath.Join(t.TempDir(), "demo.db")
	d := startDemo(t, bin, "--addr", "127.0.0.1:0", "--panther-addr", "127.0.0.1:0",
		"--panther-key", pantherKey, "--token", token, "--data", data)
	base, health, pantherURL := d.fields["SCIM base URL"], d.fields["Health"], d.fields["Panther double"]
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(health, "/healthz") || pantherURL == "" || d.fields["Bearer token"] != token {
		t.Fatalf("banner fields %v", d.fields)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(url string) (int, string) {
		res, err := client.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	poll(t, "demo /healthz", func() bool { code, _ := get(health); return code == http.StatusOK })

	// The data file exists, readable by its owner only.
	fi, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("data file mode %v, want 0600", fi.Mode().Perm())
	}

	// Provision a user and a group as an IdP would, with the printed token.
	scim := func(method, path, tok string, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/scim+json")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	code, u := scim("POST", "/Users", token, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","name":{"givenName":"Ada","familyName":"Lovelace"},"emails":[{"value":"ada@example.com","primary":true}],"active":true}`)
	if code != http.StatusCreated {
		t.Fatalf("create user: %d %v", code, u)
	}
	id, _ := u["id"].(string)
	if code, g := scim("POST", "/Groups", token, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Panther Admins","members":[{"value":%q}]}`, id)); code != http.StatusCreated {
		t.Fatalf("create group: %d %v", code, g)
	}
	if code, _ := scim("GET", "/Users", wrong, ""); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}
	// The in-memory Panther has the user, with the mapped role.
	req, _ := http.NewRequest("POST", pantherURL, strings.NewReader(`{"query":"{ users { email role { name } } }"}`))
	req.Header.Set("X-API-Key", pantherKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(pb), `"email":"ada@example.com","role":{"name":"Admin"}`) {
		t.Errorf("Panther users: %s", pb)
	}
	ready, readyBody := get(strings.TrimSuffix(health, "/healthz") + "/readyz")
	_, metricsBody := get(strings.TrimSuffix(health, "/healthz") + "/metrics")
	if ready != http.StatusOK || !strings.Contains(metricsBody, `route="/scim/v2/Users"`) ||
		!strings.Contains(metricsBody, "\npanther_scim_auth_failures_total{reason=\"invalid\"} 1\n") {
		t.Errorf("readyz %d %s; metrics:\n%s", ready, readyBody, grepLines(metricsBody, "http_requests_total"))
	}

	// The container health check, by flag and by the Dockerfile's environment variable.
	if r := runBin(t, bin, cleanEnv(), "healthcheck", "--url", health); r.Code != 0 || strings.TrimSpace(r.Stdout) != "ok" {
		t.Errorf("healthcheck --url %s: %d %q %q", health, r.Code, r.Stdout, r.Stderr)
	}
	if r := runBin(t, bin, cleanEnv("PANTHER_SCIM_HEALTH_URL="+health), "healthcheck"); r.Code != 0 {
		t.Errorf("healthcheck with PANTHER_SCIM_HEALTH_URL: %d %q", r.Code, r.Stderr)
	}

	// SIGTERM: a graceful stop, exit status 0, within the deadline.
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(binDeadline):
		t.Fatalf("demo still running %s after SIGTERM", binDeadline)
	}
	if c := d.cmd.ProcessState.ExitCode(); c != 0 {
		t.Errorf("demo exit status %d after SIGTERM", c)
	}
	if r := runBin(t, bin, cleanEnv(), "healthcheck", "--url", health); r.Code != 1 {
		t.Errorf("healthcheck on a closed port: %d %q", r.Code, r.Stdout)
	}
	if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("data file after stop: %v %v", fi, err)
	}

	// The audit trail, read from the file after the server stopped.
	r := runBin(t, bin, cleanEnv(), "audit", "--data", data, "--user", "ada@example.com")
	if r.Code != 0 {
		t.Fatalf("audit: %d %s", r.Code, r.Stderr)
	}
	actions := map[string]map[string]any{}
	for line := range strings.Lines(r.Stdout) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if e["id"] != id {
			t.Errorf("audit --user ada@example.com printed an entry about %v", e["id"])
		}
		actions[e["action"].(string)] = e
	}
	principal := "token:" + hash[:8]
	if c := actions["user.create"]; c == nil || c["actor"] != principal || c["outcome"] != "accepted" {
		t.Errorf("no user.create by %s in:\n%s", principal, r.Stdout)
	}
	if rc := actions["user.role"]; rc == nil || rc["after"].(map[string]any)["role"] != "Admin" {
		t.Errorf("no role change to Admin in:\n%s", r.Stdout)
	}

	// The logs hold no secret.
	logs := d.stderr.String()
	if !strings.Contains(logs, "authentication failed") {
		t.Errorf("demo logged no authentication failure:\n%s", logs)
	}
	for name, s := range map[string]string{"Panther key": pantherKey, "token": token, "token hash": hash, "wrong token": wrong} {
		if strings.Contains(logs, s) {
			t.Errorf("demo stderr holds the %s", name)
		}
		if strings.Contains(metricsBody, s) || strings.Contains(readyBody, s) {
			t.Errorf("/metrics or /readyz holds the %s", name)
		}
	}
}

var sourceLineRe = regexp.MustCompile(`(?m)^\s+curl -s (http://\S+/http/\S+)$`)

// testDemoPantherAudit: demo --panther-audit streams the audit trail to the double's
// HTTP source, and the banner says where to look.
func testDemoPantherAudit(t *testing.T, bin string) {
	token, _ := auth.GenerateToken()
	d := startDemo(t, bin, "--addr", "127.0.0.1:0", "--panther-addr", "127.0.0.1:0", "--token", token, "--panther-audit")
	m := sourceLineRe.FindStringSubmatch(d.stdout.String())
	if m == nil || !strings.Contains(d.stdout.String(), "Audit trail -> Panther HTTP log source") {
		t.Fatalf("the banner does not say where the audit events go:\n%s", d.stdout)
	}
	source, base := m[1], d.fields["SCIM base URL"]
	client := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequest("POST", base+"/Users", strings.NewReader(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","name":{"givenName":"Ada","familyName":"Lovelace"},"active":true}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create user: %d", res.StatusCode)
	}
	var got string
	poll(t, "the user.create event at the HTTP source", func() bool {
		res, err := client.Get(source)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		got = string(b)
		return strings.Contains(got, `"action":"user.create"`) && strings.Contains(got, `"userName":"ada@example.com"`)
	})
	for line := range strings.Lines(got) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil || e["eventId"] == "" || e["time"] == nil {
			t.Errorf("source event %q: %v", line, err)
		}
	}
}

// testDemoConfig: demo --config runs on the file's rules with no secret in the
// environment (the file names PANTHER_API_TOKEN and PANTHER_SCIM_BEARER_TOKENS, which
// the demo replaces with its own key and token).
func testDemoConfig(t *testing.T, bin string) {
	const pantherKey = "demo-config-panther-key-0123456789"
	cfg := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(cfg, []byte(`panther:
  url: https://panther.example.com/public/graphql
  tokenEnv: PANTHER_API_TOKEN
auth:
  bearerTokensEnv: PANTHER_SCIM_BEARER_TOKENS
mapping:
  defaultRole: Analyst
`), 0o600); err != nil {
		t.Fatal(err)
	}
	token, _ := auth.GenerateToken()
	d := startDemo(t, bin, "--config", cfg, "--addr", "127.0.0.1:0", "--panther-addr", "127.0.0.1:0",
		"--panther-key", pantherKey, "--token", token)
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(url, body string, header ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := post(d.fields["SCIM base URL"]+"/Users",
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","name":{"givenName":"Ada","familyName":"Lovelace"},"active":true}`,
		"Authorization", "Bearer "+token, "Content-Type", "application/scim+json")
	if code != http.StatusCreated {
		t.Fatalf("create user: %d %s", code, body)
	}
	// The file's default role, not the built-in example's (AnalystReadOnly).
	code, body = post(d.fields["Panther double"], `{"query":"{ users { email role { name } } }"}`,
		"X-API-Key", pantherKey, "Content-Type", "application/json")
	if code != http.StatusOK || !strings.Contains(body, `{"email":"ada@example.com","role":{"name":"Analyst"}}`) {
		t.Errorf("Panther users: %d %s", code, body)
	}
}

// TestHealthcheckTLS: with server.tls set, the container health check probes the
// server's own HTTPS listener on loopback, whose certificate names the public host.
func TestHealthcheckTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	srv.StartTLS()
	defer srv.Close()
	var out, errb bytes.Buffer
	if err := cmdHealthcheck(context.Background(), []string{"--url", srv.URL + "/healthz"}, &out, &errb); err != nil {
		t.Errorf("healthcheck of a loopback HTTPS listener: %v %s", err, errb.String())
	}
	// A non-loopback name still has its certificate checked.
	u := strings.Replace(srv.URL, "127.0.0.1", "example.com", 1)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}}
	defer tr.CloseIdleConnections()
	if err := healthProbe(context.Background(), u+"/healthz", tr); err == nil {
		t.Error("certificate of a non-loopback host not checked")
	}
	// Failure statuses fail the check.
	if err := cmdHealthcheck(context.Background(), []string{"--url", srv.URL + "/nope"}, &out, &errb); err == nil {
		t.Error("healthcheck passed on a 404")
	}
}

// TestRotationFromConfig: raw tokens from the environment, comma-separated, are all
// accepted; a restart without the old one refuses it.
func TestRotationFromConfig(t *testing.T) {
	old, _ := auth.GenerateToken()
	nu, _ := auth.GenerateToken()
	check := func(tokens string, want map[string]int) {
		t.Helper()
		t.Setenv("TEST_SCIM_TOKENS", tokens)
		cfg := config.Default()
		cfg.Auth.BearerTokensEnv = "TEST_SCIM_TOKENS"
		a, err := newAuthenticator(cfg, app.NewMetrics(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		for tok, code := range want {
			req := httptest.NewRequest("GET", "/scim/v2/Users", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != code {
				t.Errorf("tokens %d: got %d, want %d", strings.Count(tokens, ",")+1, rec.Code, code)
			}
		}
	}
	check(old+", "+nu, map[string]int{old: http.StatusNoContent, nu: http.StatusNoContent})
	check(nu, map[string]int{old: http.StatusUnauthorized, nu: http.StatusNoContent})
}
