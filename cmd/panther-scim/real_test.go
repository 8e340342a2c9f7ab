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
	s := &serveRun{done: make(chan struct{}), stderr: &outBuf{}}
	s.cmd = exec.Command(bin, "serve", "--config", cfg)
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
