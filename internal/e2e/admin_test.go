package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/provision"
)

var adminPaths = []struct{ method, path string }{
	{"GET", "/admin/backup"}, {"GET", "/admin/audit"}, {"GET", "/admin/explain?user=x"},
	{"GET", "/admin/reconcile"}, {"POST", "/admin/reconcile"},
}

// admin calls an admin endpoint on base with the admin token (or authz as given).
func (e *env) admin(method, base, path string, authz ...string) resp {
	e.t.Helper()
	h := []string{"Authorization", "Bearer " + e.AdminToken}
	if len(authz) > 0 {
		h = []string{"Authorization", authz[0]}
	}
	return e.do(method, base+path, nil, h...)
}

// TestAdminCredential: the admin endpoints take the admin token only; the IdP's SCIM token,
// a wrong token or none get 401, and the admin token opens nothing else.
func TestAdminCredential(t *testing.T) {
	e := newEnv(t)
	e.createUser("ada@example.com", "Ada", "Lovelace")
	wrong := "Bearer pscim_" + strings.Repeat("x", 43)
	for _, p := range adminPaths {
		for name, authz := range map[string]string{"SCIM token": "Bearer " + e.Token, "wrong token": wrong, "none": ""} {
			if r := e.admin(p.method, e.root(), p.path, authz); r.Status != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d %s", p.method, p.path, name, r.Status, r.Raw)
			}
		}
		if r := e.admin(p.method, e.root(), p.path); r.Status == http.StatusUnauthorized || r.Status >= 500 {
			t.Errorf("%s %s with the admin token: %d %s", p.method, p.path, r.Status, r.Raw)
		}
	}
	// The admin token is not a SCIM credential.
	e.do("GET", "/Users", nil, "Authorization", "Bearer "+e.AdminToken).scimErr(t, http.StatusUnauthorized, "")

	// Without an admin credential configured, nobody gets in.
	e.opts.AdminAuthenticate = nil
	e.restart()
	if r := e.admin("GET", e.root(), "/admin/backup"); r.Status != http.StatusUnauthorized {
		t.Errorf("no admin credential configured: %d", r.Status)
	}
}

// TestAdminOnOpsListener: with an ops listener, the admin endpoints are served there only.
func TestAdminOnOpsListener(t *testing.T) {
	e := newEnv(t, func(o *app.Options) { o.OpsAddr = "127.0.0.1:0" })
	ops := "http://" + e.App.OpsAddr()
	for _, p := range adminPaths {
		if r := e.admin(p.method, e.root(), p.path); r.Status != http.StatusNotFound && r.Status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s on the SCIM listener: %d", p.method, p.path, r.Status)
		}
		if r := e.admin(p.method, ops, p.path, "Bearer "+e.Token); r.Status != http.StatusUnauthorized {
			t.Errorf("%s %s on the ops listener with the SCIM token: %d", p.method, p.path, r.Status)
		}
	}
	r := e.admin("GET", ops, "/admin/backup")
	if r.Status != http.StatusOK || len(r.Raw) < 1024 {
		t.Errorf("backup on the ops listener: %d, %d bytes", r.Status, len(r.Raw))
	}
	// Admin requests are logged with a request id and the principal, like SCIM ones.
	if logs := e.Logs.String(); !strings.Contains(logs, `"route":"/admin/backup","path":"/admin/backup","status":200`) {
		t.Errorf("admin request not in the access log:\n%s", grep(logs, "admin"))
	}
}

// TestAdminExplainAuditReconcile: the answers of the admin endpoints while the server runs.
func TestAdminExplainAuditReconcile(t *testing.T) {
	e := newEnv(t)
	ada := e.createUser("ada@example.com", "Ada", "Lovelace")
	bob := e.createUser("bob@example.com", "Bob", "Babbage")
	// Ada is in both mapped groups; the Analysts group comes first in her list.
	e.createGroup("Panther Analysts", ada)
	e.createGroup("Panther Admins", ada)

	r := e.admin("GET", e.root(), "/admin/explain?user="+url.QueryEscape("ADA@example.com"))
	r.must(t, http.StatusOK)
	var ex provision.Explanation
	if err := json.Unmarshal([]byte(r.Raw), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.User.ID != ada || ex.Role != "Admin" || ex.MatchedRule == nil || ex.MatchedRule.Group != "Panther Admins" || ex.MatchedRule.Role != "Admin" || ex.PantherRole != "Admin" {
		t.Errorf("explain ada: %s", r.Raw)
	}
	for _, key := range []string{`"role"`, `"matchedRule"`, `"pantherRole"`, `"groups"`, `"pendingIntents"`, `"audit"`} {
		if !strings.Contains(r.Raw, key+":") {
			t.Errorf("explain JSON lacks %s: %s", key, r.Raw)
		}
	}
	// Panther changed behind our back: explain shows Panther's role, not ours.
	pu, _ := e.Fake.UserByEmail("bob@example.com")
	if err := e.Fake.SetUserRole(pu.ID, "Analyst"); err != nil {
		t.Fatal(err)
	}
	r = e.admin("GET", e.root(), "/admin/explain?user="+bob)
	if err := json.Unmarshal([]byte(r.Raw), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Role != "AnalystReadOnly" || ex.PantherRole != "Analyst" || !strings.Contains(r.Raw, `"matchedRule": null`) {
		t.Errorf("explain bob: %s", r.Raw)
	}
	e.admin("GET", e.root(), "/admin/explain?user=nobody@example.com").must(t, http.StatusNotFound)
	e.admin("GET", e.root(), "/admin/explain").must(t, http.StatusBadRequest)

	// The audit trail of one user, as JSON lines.
	r = e.admin("GET", e.root(), "/admin/audit?user=bob@example.com")
	r.must(t, http.StatusOK)
	lines := 0
	for l := range strings.Lines(r.Raw) {
		var entry provision.AuditEntry
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		if entry.ID != bob {
			t.Errorf("audit --user bob printed an entry about %s", entry.ID)
		}
		lines++
	}
	if lines == 0 {
		t.Error("no audit entry about bob")
	}
	e.admin("GET", e.root(), "/admin/audit?since=yesterday").must(t, http.StatusBadRequest)

	// A dry run finds the drift and changes nothing; POST repairs it.
	r = e.admin("GET", e.root(), "/admin/reconcile")
	r.must(t, http.StatusOK)
	var plan provision.Plan
	if err := json.Unmarshal([]byte(r.Raw), &plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.Drift) != 1 || plan.Drift[0].Email != "bob@example.com" || plan.Repaired != 0 {
		t.Errorf("dry-run plan: %s", r.Raw)
	}
	if got := e.pantherRole("bob@example.com"); got != "Analyst" {
		t.Errorf("the dry run changed Panther: bob is %s", got)
	}
	r = e.admin("POST", e.root(), "/admin/reconcile")
	if err := json.Unmarshal([]byte(r.Raw), &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Repaired != 1 || e.pantherRole("bob@example.com") != "AnalystReadOnly" {
		t.Errorf("reconcile: %s; bob is %s", r.Raw, e.pantherRole("bob@example.com"))
	}
}
