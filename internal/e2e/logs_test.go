package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/provision"
)

// Every line a request causes carries its request id: the access line, the
// provisioning change and the Panther call, with the SCIM id and the operations.
func TestLogsCarryRequestID(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/Users", newUser("log@example.com", "Log", "Line")).must(t, http.StatusCreated)
	rid := r.Header.Get("X-Request-Id")
	if rid == "" {
		t.Fatal("no X-Request-Id")
	}
	id := r.str("id")
	var saw = map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(e.Logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["request_id"] != rid {
			continue
		}
		switch rec["msg"] {
		case "request":
			saw["access"] = rec["route"] == "/scim/v2/Users" && rec["method"] == "POST"
		case "provisioning change":
			saw["change"] = rec["action"] == "user.create" && rec["scim_id"] == id
		case "panther call":
			saw["panther"] = rec["op"] == "inviteUser" && rec["scim_id"] == id && rec["panther_id"] != ""
		}
		// The access line is written outside authentication; every other line knows who asked.
		if p, _ := rec["principal"].(string); rec["msg"] != "request" && !strings.HasPrefix(p, "token:") {
			t.Errorf("line without the principal: %s", line)
		}
	}
	for _, k := range []string{"access", "change", "panther"} {
		if !saw[k] {
			t.Errorf("no %s line with request id %s:\n%s", k, rid, e.Logs.String())
		}
	}
}

// faultyPanther puts a switch in front of the double: while answer is set, every
// Panther request gets it (status and body) instead of reaching the double.
type faultyPanther struct {
	mu     sync.Mutex
	status int
	body   string
}

func (f *faultyPanther) set(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *faultyPanther) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		status, body := f.status, f.body
		f.mu.Unlock()
		if status == 0 {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	})
}

// logLines returns the JSON log records written after the first skip bytes.
func logLines(t *testing.T, logs string, skip int) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs[skip:]), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, rec)
	}
	return out
}

// Panther's error messages quote email addresses: the logs never hold one (a tag
// stands in), and a failure that repeats at every retry is logged when it starts,
// not at every retry.
func TestPantherErrorsLogged(t *testing.T) {
	const email = "leaver@example.com"
	tag := "[email " + hashHex(email)[:12] + "]"
	cases := []struct {
		name   string
		status int
		body   string
		// warnings is the most WARN lines the retries may add.
		warnings int
	}{
		{"outage", http.StatusInternalServerError,
			`{"errors":[{"message":"internal error while deleting ` + email + `"}]}`, 0},
		{"refused", http.StatusOK,
			`{"errors":[{"message":"user ` + email + ` is invalid","extensions":{"code":"BAD_USER_INPUT"}}]}`, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			faults := &faultyPanther{}
			ps := httptest.NewServer(faults.wrap(e.Fake.Handler()))
			t.Cleanup(ps.Close)
			client, err := panther.New(panther.Config{
				URL: ps.URL + "/public/graphql", Token: pantherKey, Timeout: 2 * time.Second, MaxRetries: 1,
				BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, RatePerSecond: -1,
			})
			if err != nil {
				t.Fatal(err)
			}
			e.opts.Panther = client
			e.restart()
			id := e.createUser(email, "Lea", "Ver")

			faults.set(c.status, c.body)
			e.do("PATCH", "/Users/"+id, deactivateOp())
			if e.pending() != 1 {
				t.Fatalf("%d pending intents, want the deactivation queued", e.pending())
			}
			mark := len(e.Logs.String())
			for range 5 { // five retries, made due one after the other
				if err := e.App.Store.Update(context.Background(), func(tx provision.Tx) error {
					in, err := tx.Intent(id)
					if err != nil {
						return err
					}
					in.NextAttempt = time.Time{}
					return tx.PutIntent(in)
				}); err != nil {
					t.Fatal(err)
				}
				if d, f := e.App.Service.Replay(context.Background(), false); d != 0 || f > 1 {
					t.Fatalf("replay: %d done, %d failed", d, f)
				}
			}
			logs := e.Logs.String()
			if strings.Contains(logs, email) {
				t.Errorf("the logs hold the email address:\n%s", logs)
			}
			if !strings.Contains(logs, tag) {
				t.Errorf("no %s in the logs (Panther's message not logged at all?):\n%s", tag, logs)
			}
			warnings := 0
			for _, rec := range logLines(t, logs, mark) {
				if rec["level"] == "WARN" || rec["level"] == "ERROR" {
					warnings++
				}
			}
			if warnings > c.warnings {
				t.Errorf("five retries logged %d warnings, want at most %d:\n%s", warnings, c.warnings, logs[mark:])
			}
			faults.set(0, "")
		})
	}
}
