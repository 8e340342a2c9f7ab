package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
)

// TestUnclassifiedPantherErrors: a Panther answer in words the client does not know is
// counted in panther_scim_panther_unclassified_errors_total by operation, and logged once
// with Panther's code and message.
func TestUnclassifiedPantherErrors(t *testing.T) {
	e := newEnv(t)
	// In front of the double: the users query is answered in words no client knows.
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct{ OperationName string }
		_ = json.Unmarshal(body, &req)
		if req.OperationName == "users" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"data":null,"errors":[{"message":"Request could not be fulfilled: quota kaput","extensions":{"code":"E_QUOTA_KAPUT"}}]}`)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		e.Fake.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(ps.Close)
	// The bridge again, with a client through that proxy reporting to fresh metrics.
	if err := e.App.Close(); err != nil {
		t.Fatal(err)
	}
	e.metrics = app.NewMetrics()
	c, err := panther.New(panther.Config{
		URL: ps.URL + pantherfake.Path, Token: pantherKey, Timeout: 2 * time.Second, MaxRetries: 1, RatePerSecond: -1,
		Observer: e.metrics, Logger: slog.New(slog.NewJSONHandler(e.Logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.Panther, e.opts.Panther = c, c
	e.start()

	_, ss := e.scrape()
	if v, ok := metric(ss, "panther_scim_panther_unclassified_errors_total", map[string]string{"operation": "users"}); !ok || v != 0 {
		t.Errorf("before: users series %v (exported %v), want 0 from the start", v, ok)
	}
	for range 3 {
		if _, err := e.App.Service.Reconcile(context.Background(), true); err == nil || !strings.Contains(err.Error(), "quota kaput") {
			t.Fatalf("reconcile: %v", err)
		}
	}
	_, ss = e.scrape()
	if v, _ := metric(ss, "panther_scim_panther_unclassified_errors_total", map[string]string{"operation": "users"}); v != 3 {
		t.Errorf("users: %v unclassified errors, want 3", v)
	}
	if v, _ := metric(ss, "panther_scim_panther_unclassified_errors_total", map[string]string{"operation": "roles"}); v != 0 {
		t.Errorf("roles: %v unclassified errors, want 0", v)
	}
	logs := e.Logs.String()
	if n := strings.Count(logs, "does not recognise"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, grep(logs, "recognise"))
	}
	if !strings.Contains(logs, `"operation":"users","code":"E_QUOTA_KAPUT","message":"Request could not be fulfilled: quota kaput"`) {
		t.Errorf("log lacks operation, code and message:\n%s", grep(logs, "recognise"))
	}
	if strings.Contains(logs, pantherKey) {
		t.Error("the Panther key was logged")
	}
}
