package panther_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/panther-scim/panther-scim/internal/panther"
)

// countingRecorder is a recorder that also counts unclassified errors by operation.
type countingRecorder struct {
	recorder
	mu           sync.Mutex
	unclassified map[string]int
}

func (r *countingRecorder) Unclassified(op string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unclassified == nil {
		r.unclassified = map[string]int{}
	}
	r.unclassified[op]++
}

func (r *countingRecorder) count(op string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unclassified[op]
}

// TestUnclassifiedErrors: an error Panther answers that fits no class is counted every time
// and logged once per (operation, code, message), with those three and never the token.
func TestUnclassifiedErrors(t *testing.T) {
	var answer atomic.Value // the GraphQL error to answer: [code, message]
	answer.Store([2]string{"E_WEIRD", "Computer says no"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answer.Load().([2]string)
		e := map[string]any{"message": a[1]}
		if a[0] != "" {
			e["extensions"] = map[string]any{"code": a[0]}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": nil, "errors": []any{e}})
	}))
	t.Cleanup(srv.Close)
	var logs bytes.Buffer
	var mu sync.Mutex
	rec := &countingRecorder{}
	cfg := testConfig(srv.URL)
	cfg.Observer = rec
	cfg.Logger = slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))
	c, err := panther.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	logged := func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		var out []map[string]any
		for l := range strings.Lines(logs.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			out = append(out, m)
		}
		return out
	}

	for range 3 {
		if _, err := c.Users(ctx); err == nil || !strings.Contains(err.Error(), "Computer says no") {
			t.Fatalf("Users: %v", err)
		}
	}
	if _, err := c.RoleByName(ctx, "Admin"); err == nil {
		t.Fatal("RoleByName succeeded")
	}
	if n := rec.count("users"); n != 3 {
		t.Errorf("users counted %d times, want 3", n)
	}
	if n := rec.count("roleByName"); n != 1 {
		t.Errorf("roleByName counted %d times, want 1", n)
	}
	ls := logged()
	if len(ls) != 2 {
		t.Fatalf("%d log lines, want one per operation:\n%s", len(ls), logs.String())
	}
	for i, op := range []string{"users", "roleByName"} {
		if ls[i]["level"] != "WARN" || ls[i]["operation"] != op || ls[i]["code"] != "E_WEIRD" || ls[i]["message"] != "Computer says no" {
			t.Errorf("log line %d: %v", i, ls[i])
		}
	}

	// Another message is another line; an echoed token is not written.
	answer.Store([2]string{"E_WEIRD", fmt.Sprintf("request with key %s refused for reasons", token)})
	_, _ = c.Users(ctx)
	_, _ = c.Users(ctx)
	if ls := logged(); len(ls) != 3 || !strings.Contains(ls[2]["message"].(string), "[REDACTED]") {
		t.Errorf("after a new message: %d lines: %v", len(ls), ls)
	}
	// A token in the code is not written either.
	answer.Store([2]string{"E_" + token, "odd code"})
	_, _ = c.Users(ctx)
	if ls := logged(); len(ls) != 4 || ls[3]["code"] != "E_[REDACTED]" {
		t.Errorf("a code holding the token: %v", ls)
	}
	// Without a code too.
	answer.Store([2]string{"", "Something odd"})
	_, _ = c.Users(ctx)
	if ls := logged(); len(ls) != 5 || ls[4]["code"] != "" || ls[4]["message"] != "Something odd" {
		t.Errorf("without a code: %v", ls)
	}
	// A classified error is neither counted nor logged.
	answer.Store([2]string{"NOT_FOUND", "no such role"})
	before := rec.count("roleByName")
	_, _ = c.RoleByName(ctx, "Nope")
	if rec.count("roleByName") != before || len(logged()) != 5 {
		t.Errorf("a NOT_FOUND error was noted as unclassified: %v", logged())
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), token) {
		t.Errorf("the token was logged:\n%s", logs.String())
	}
	if n := rec.count("users"); n != 7 {
		t.Errorf("users counted %d times, want 7", n)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
