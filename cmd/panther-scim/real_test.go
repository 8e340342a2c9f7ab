package main

// Tests of issue 16 on the real binary: check and serve against `fake-panther --schema`.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/auth"
	"github.com/panther-scim/panther-scim/internal/panther"
)

// startFakePanther runs `panther-scim fake-panther` on a loopback port with extra flags and
// returns its GraphQL URL. It is killed when the test ends.
func startFakePanther(t *testing.T, bin, key string, flags ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"fake-panther", "--addr", "127.0.0.1:0", "--api-key", key}, flags...)...)
	cmd.Env = cleanEnv()
	stderr := &outBuf{}
	cmd.Stderr = stderr
	pr, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case l := <-lines:
		i := strings.Index(l, "http://")
		if i < 0 {
			t.Fatalf("fake-panther printed %q", l)
		}
		return strings.Fields(l[i:])[0]
	case <-done:
		t.Fatalf("fake-panther exited: %s", stderr)
	case <-time.After(binDeadline):
		t.Fatal("fake-panther printed nothing")
	}
	return ""
}

// writeConfig writes a config for a Panther at url and returns its path.
func writeConfig(t *testing.T, dir, name, url, extra string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	cfg := fmt.Sprintf(`server:
  addr: "127.0.0.1:0"
  baseURL: "https://scim.example.com"
panther:
  url: %q
  maxRetries: 1
store:
  path: %q
mapping:
  rules:
    - group: Panther Admins
      role: Admin
    - group: Panther Analysts
      role: Analyst
  defaultRole: AnalystReadOnly
%s`, url, filepath.Join(dir, name+".db"), extra)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testCheckSchema: check against fake-panther --schema with each changed schema fails and
// names the operation; the unchanged schema passes.
func testCheckSchema(t *testing.T, bin string) {
	const key = "check-schema-panther-key-0123456789"
	env := cleanEnv("PANTHER_API_TOKEN="+key, "PANTHER_SCIM_BEARER_TOKENS=ci-placeholder-token")
	dir := t.TempDir()
	unchanged := filepath.Join(dir, "unchanged.graphql")
	if err := os.WriteFile(unchanged, []byte(panther.Schema), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("unchanged", func(t *testing.T) {
		url := startFakePanther(t, bin, key, "--schema", unchanged)
		r := runBin(t, bin, env, "check", "--config", writeConfig(t, dir, "unchanged.yaml", url, ""))
		if r.Code != 0 || !strings.Contains(r.Stdout, "\nschema: ok (10 operations valid against Panther's schema)\n") {
			t.Errorf("check: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
	for i, c := range schemaChanges {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("changed%d.graphql", i))
			if err := os.WriteFile(file, []byte(schemaEdit(t, c.from, c.to)), 0o600); err != nil {
				t.Fatal(err)
			}
			url := startFakePanther(t, bin, key, "--schema", file)
			r := runBin(t, bin, env, "check", "--config", writeConfig(t, dir, fmt.Sprintf("changed%d.yaml", i), url, ""))
			if r.Code != 1 || !strings.Contains(r.Stdout, "\nschema: INCOMPATIBLE\n") || !strings.Contains(r.Stdout, "\n  "+c.want+"\n") {
				t.Errorf("check: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
		})
	}
	t.Run("introspection refused", func(t *testing.T) {
		url := startFakePanther(t, bin, key, "--no-introspection")
		r := runBin(t, bin, env, "check", "--config", writeConfig(t, dir, "refused.yaml", url, ""))
		if r.Code != 0 || !strings.Contains(r.Stdout, "\nschema: not verified: Panther refused the introspection query") ||
			!strings.Contains(r.Stdout, "\ntoken: ok") || !strings.Contains(r.Stdout, "\nroles: ok") {
			t.Errorf("check: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
}

// serveRun is `panther-scim serve` running as a subprocess.
type serveRun struct {
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *outBuf
	SCIM   string // SCIM base URL
	Ops    string // http://host:port of the ops listener (the SCIM one when shared)
}

// startServe runs `serve --config cfg` and waits for its "serving" log line. It is stopped
// (SIGKILL) when the test ends.
func startServe(t *testing.T, bin, cfg string, env []string) *serveRun {
	t.Helper()
	return startServeArgs(t, bin, env, "serve", "--config", cfg)
}

// startServeArgs is startServe with the command line given.
func startServeArgs(t *testing.T, bin string, env []string, args ...string) *serveRun {
	t.Helper()
	s := &serveRun{done: make(chan struct{}), stderr: &outBuf{}}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = env
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("serve stderr:\n%s", s.stderr)
		}
	})
	poll(t, "serve to log that it is serving", func() bool {
		select {
		case <-s.done:
			t.Fatalf("serve exited: %s", s.stderr)
		default:
		}
		for l := range strings.Lines(s.stderr.String()) {
			var rec struct {
				Msg, SCIM, Ops string
			}
			if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "panther-scim serving" {
				s.SCIM, s.Ops = rec.SCIM, "http://"+rec.Ops
				return true
			}
		}
		return false
	})
	return s
}

// get answers GET url's status and body.
func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := (&http.Client{Timeout: binDeadline}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// testServeIncompatible: serve against a Panther whose schema changed answers /readyz 503
// naming the operation, and says 0 in the schema gauge.
func testServeIncompatible(t *testing.T, bin string) {
	const key = "serve-schema-panther-key-0123456789"
	tok, _ := auth.GenerateToken()
	env := cleanEnv("PANTHER_API_TOKEN="+key, "PANTHER_SCIM_BEARER_TOKENS="+tok)
	dir := t.TempDir()
	c := schemaChanges[0]
	file := filepath.Join(dir, "renamed.graphql")
	if err := os.WriteFile(file, []byte(schemaEdit(t, c.from, c.to)), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startFakePanther(t, bin, key, "--schema", file)
	s := startServe(t, bin, writeConfig(t, dir, "serve.yaml", url, "log:\n  level: info\n"), env)
	code, body := get(t, s.Ops+"/readyz")
	var ready struct{ Checks map[string]string }
	_ = json.Unmarshal([]byte(body), &ready)
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(ready.Checks["panther"], "incompatible schema: "+c.want+";") {
		t.Errorf("readyz: %d %s", code, body)
	}
	if _, m := get(t, s.Ops+"/metrics"); !strings.Contains(m, "\npanther_scim_panther_schema_compatible 0\n") {
		t.Errorf("metrics: %s", grepLines(m, "schema"))
	}
	if !strings.Contains(s.stderr.String(), `"level":"ERROR","msg":"Panther's schema is incompatible`) {
		t.Errorf("no error logged:\n%s", s.stderr)
	}
}

// call sends a JSON request with a bearer token (or an API key for Panther) and decodes the
// JSON answer into out when it is not nil.
func call(t *testing.T, method, url string, header []string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := (&http.Client{Timeout: binDeadline}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
	return res.StatusCode
}

// testAdminCommands: explain, audit and reconcile --dry-run against the running server
// with --url and the admin token; the SCIM token gets 401 there.
func testAdminCommands(t *testing.T, bin string) {
	const key = "admin-cmd-panther-key-0123456789"
	scimTok, _ := auth.GenerateToken()
	adminTok, _ := auth.GenerateToken()
	dir := t.TempDir()
	pantherURL := startFakePanther(t, bin, key)
	cfg := writeConfig(t, dir, "admin.yaml", pantherURL, "")
	serveEnv := cleanEnv("PANTHER_API_TOKEN="+key, "PANTHER_SCIM_BEARER_TOKENS="+scimTok, "PANTHER_SCIM_ADMIN_TOKENS="+adminTok)

	// A token that is both is refused.
	if r := runBin(t, bin, cleanEnv("PANTHER_API_TOKEN="+key, "PANTHER_SCIM_BEARER_TOKENS="+scimTok, "PANTHER_SCIM_ADMIN_TOKENS="+scimTok),
		"serve", "--config", cfg); r.Code != 1 || !strings.Contains(r.Stderr, "both a SCIM bearer token and an admin token") {
		t.Errorf("serve with a shared token: %d %s", r.Code, r.Stderr)
	}

	s := startServe(t, bin, cfg, serveEnv)
	scim := func(method, path string, body any) map[string]any {
		t.Helper()
		var out map[string]any
		if code := call(t, method, s.SCIM+path, []string{"Authorization", "Bearer " + scimTok, "Content-Type", "application/scim+json"}, body, &out); code/100 != 2 {
			t.Fatalf("%s %s: %d %v", method, path, code, out)
		}
		return out
	}
	user := func(email, given string) string {
		return scim("POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName": email, "name": map[string]any{"givenName": given, "familyName": "Test"},
			"emails": []any{map[string]any{"value": email, "primary": true}}, "active": true})["id"].(string)
	}
	group := func(name string, members ...string) {
		var ms []any
		for _, m := range members {
			ms = append(ms, map[string]any{"value": m})
		}
		scim("POST", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name, "members": ms})
	}
	ada := user("ada@example.com", "Ada")
	bob := user("bob@example.com", "Bob")
	group("Panther Analysts", ada) // first in Ada's list, second in the rules
	group("Panther Admins", ada)

	admin := cleanEnv(adminTokenEnv + "=" + adminTok)
	t.Run("explain --url --json", func(t *testing.T) {
		r := runBin(t, bin, admin, "explain", "--url", s.Ops, "--json", "ada@example.com")
		var ex struct {
			Role        string
			MatchedRule *struct{ Group, Role string }
			PantherRole string
			Groups      []struct{ DisplayName string }
		}
		if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &ex) != nil {
			t.Fatalf("explain: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if ex.Role != "Admin" || ex.MatchedRule == nil || ex.MatchedRule.Group != "Panther Admins" || ex.MatchedRule.Role != "Admin" ||
			ex.PantherRole != "Admin" || len(ex.Groups) != 2 {
			t.Errorf("explain ada: %s", r.Stdout)
		}
		// Flags after the user work too, and the text form says the same.
		r = runBin(t, bin, admin, "explain", "ada@example.com", "--url", s.Ops)
		for _, want := range []string{"\nrule      rule 1: group \"Panther Admins\" -> Admin", "\nrole      Admin: rule 1", "role Admin in Panther"} {
			if r.Code != 0 || !strings.Contains(r.Stdout, want) {
				t.Errorf("explain (text) lacks %q: %d\n%s%s", want, r.Code, r.Stdout, r.Stderr)
			}
		}
	})
	t.Run("audit --url --user", func(t *testing.T) {
		r := runBin(t, bin, admin, "audit", "--url", s.Ops, "--user", "bob@example.com")
		n := 0
		for l := range strings.Lines(r.Stdout) {
			var e struct{ ID, Action string }
			if err := json.Unmarshal([]byte(l), &e); err != nil || e.ID != bob {
				t.Errorf("audit line %q (%v), want entries about %s only", l, err, bob)
			}
			n++
		}
		if r.Code != 0 || n == 0 {
			t.Errorf("audit: %d, %d lines\n%s", r.Code, n, r.Stderr)
		}
	})
	t.Run("reconcile --dry-run --url", func(t *testing.T) {
		// Someone moves Bob in Panther's console.
		var res struct {
			Data struct{ UserByEmail struct{ ID string } }
		}
		call(t, "POST", pantherURL, []string{"X-API-Key", key}, map[string]any{"query": `{ userByEmail(email: "bob@example.com") { id } }`}, &res)
		call(t, "POST", pantherURL, []string{"X-API-Key", key}, map[string]any{
			"query":     `mutation($id: ID!) { updateUser(input: {id: $id, role: {kind: NAME, value: "Analyst"}}) { user { id } } }`,
			"variables": map[string]any{"id": res.Data.UserByEmail.ID}}, nil)
		r := runBin(t, bin, admin, "reconcile", "--dry-run", "--url", s.Ops)
		if r.Code != 0 || !strings.Contains(r.Stdout, "plan (dry run, nothing changed):") || !strings.Contains(r.Stdout, "bob@example.com") ||
			!strings.Contains(r.Stdout, "1 drifted") {
			t.Errorf("reconcile --dry-run --url: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		r = runBin(t, bin, admin, "explain", "--url", s.Ops, "--json", "bob@example.com")
		if !strings.Contains(r.Stdout, `"pantherRole": "Analyst"`) {
			t.Errorf("the dry run changed Bob's role in Panther:\n%s", r.Stdout)
		}
	})
	t.Run("SCIM token gets 401", func(t *testing.T) {
		withSCIM := cleanEnv(adminTokenEnv + "=" + scimTok)
		for _, args := range [][]string{
			{"explain", "--url", s.Ops, "ada@example.com"},
			{"audit", "--url", s.Ops},
			{"reconcile", "--dry-run", "--url", s.Ops},
			{"backup", "--url", s.Ops, "--out", filepath.Join(dir, "stolen.db")},
		} {
			r := runBin(t, bin, withSCIM, args...)
			if r.Code != 1 || !strings.Contains(r.Stderr, "401") {
				t.Errorf("%v with the SCIM token: %d\n%s%s", args, r.Code, r.Stdout, r.Stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "stolen.db")); err == nil {
			t.Error("backup with the SCIM token wrote a file")
		}
		r := runBin(t, bin, cleanEnv(), "explain", "--url", s.Ops, "ada@example.com")
		if r.Code != 1 || !strings.Contains(r.Stderr, adminTokenEnv) {
			t.Errorf("without a token: %d %s", r.Code, r.Stderr)
		}
		// With the admin token, backup works.
		out := filepath.Join(dir, "backup.db")
		if r := runBin(t, bin, admin, "backup", "--url", s.Ops, "--out", out); r.Code != 0 {
			t.Errorf("backup --url: %d %s", r.Code, r.Stderr)
		}
		if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
			t.Errorf("backup file: %v", err)
		}
	})
	t.Run("explain on the stopped server's file", func(t *testing.T) {
		s.stop(t)
		r := runBin(t, bin, cleanEnv("PANTHER_API_TOKEN="+key, "PANTHER_SCIM_BEARER_TOKENS="+scimTok), "explain", "--config", cfg, "--json", ada)
		if r.Code != 0 || !strings.Contains(r.Stdout, `"role": "Admin"`) || !strings.Contains(r.Stdout, `"pantherRole": "Admin"`) {
			t.Errorf("explain --config: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
}

// stop ends serve with SIGTERM and waits for it.
func (s *serveRun) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(binDeadline):
		t.Fatal("serve did not stop after SIGTERM")
	}
}
