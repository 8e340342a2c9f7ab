package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/panther-scim/panther-scim/internal/config"
	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
)

// `reconcile` on a stopped server's store logs each repair that fails, with the
// user, as serve's reconciler does: its provisioning service has the command's logger.
func TestReconcileCommandLogsFailedRepairs(t *testing.T) {
	const key = "reconcile-cmd-panther-key-0123456789"
	t.Setenv("PANTHER_API_TOKEN", key)
	t.Setenv("PANTHER_SCIM_BEARER_TOKENS", "ci-placeholder-token")
	fake := pantherfake.New(pantherfake.Options{APIKey: key, RetryAfter: -1})
	ps := httptest.NewServer(fake.Handler())
	t.Cleanup(ps.Close)
	cfgPath := writeConfig(t, t.TempDir(), "reconcile.yaml", ps.URL+"/public/graphql", "")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	// A user provisioned by an earlier run, whose names were then changed in Panther.
	ctx := context.Background()
	st, err := store.Open(cfg.Store.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	client, err := panther.New(panther.Config{URL: cfg.Panther.URL, Token: key, RatePerSecond: -1})
	if err != nil {
		t.Fatal(err)
	}
	u, err := provision.New(st, client, provision.Options{Mapping: cfg.Mapping}).CreateUser(ctx, provision.UserFields{
		UserName: "drift@example.com", Active: true,
		Attributes: map[string]any{"name": map[string]any{"givenName": "Dee", "familyName": "Rift"}},
	})
	if err != nil || u.Panther.ID == "" {
		t.Fatalf("create: %+v, %v", u, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fake.SetUserNames(u.Panther.ID, "Changed", "Behind"); err != nil {
		t.Fatal(err)
	}
	// The repair's update fails, retries included (panther.maxRetries is 1).
	fake.FailNext("updateUser", 10, http.StatusInternalServerError)

	var stdout, stderr bytes.Buffer
	rctx, cancel := context.WithTimeout(ctx, binDeadline)
	defer cancel()
	err = run(rctx, []string{"reconcile", "--config", cfgPath}, &stdout, &stderr)
	if !errors.Is(err, errSilent) || !strings.Contains(stdout.String(), "repaired 0, failed 1") {
		t.Fatalf("reconcile: %v\n%s", err, stdout.String())
	}
	line := grepLines(stderr.String(), "reconcile repair failed")
	if !strings.Contains(line, `"user":"`+u.ID+`"`) {
		t.Errorf("the failed repair of %s is not logged:\n%s", u.ID, stderr.String())
	}
}
