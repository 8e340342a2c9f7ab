package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/auditexport"
	"github.com/panther-scim/panther-scim/internal/auditexport/schemacheck"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
)

// The audit trail streamed to the double's HTTP source, through the whole server.

const sourceSecret = "e2e-http-source-secret-0123456789"

// withAuditExport streams the audit trail to the double's HTTP source (the harness
// fills the URL and gives the source the same credential), records SCIM
// authentication failures in the trail, and reports delayed deprovisioning.
func withAuditExport(secret string) option {
	return func(o *app.Options) {
		o.AuditExport = &auditexport.Options{
			Auth:     auditexport.Auth{Method: auditexport.AuthHMAC, Header: "X-Panther-SCIM-Signature", Algorithm: "sha256", Secret: secret},
			Interval: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		}
		o.AuthFailures = app.NewAuthFailureLog()
		o.DeprovisionAlertAfter = 200 * time.Millisecond
	}
}

// received is what the source accepted, in order, duplicates included.
func (e *env) received() []map[string]any { return e.Fake.SourceEvents() }

func ids(events []map[string]any) []string {
	var out []string
	for _, ev := range events {
		id, _ := ev["eventId"].(string)
		out = append(out, id)
	}
	return out
}

// trail is the store's audit trail, oldest first.
func (e *env) trail() []provision.AuditEntry {
	e.t.Helper()
	var out []provision.AuditEntry
	err := e.App.Store.View(context.Background(), func(tx provision.ReadTx) error {
		return tx.ScanAudit(time.Time{}, func(a provision.AuditEntry) bool { out = append(out, a); return true })
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// exportBacklog is the number of audit events not yet acknowledged by the source.
func (e *env) exportBacklog() int {
	e.t.Helper()
	n, _, err := e.App.Store.ExportBacklog(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// exported waits until every event of the trail has been acknowledged.
func (e *env) exported() {
	e.t.Helper()
	waitFor(e.t, "the export queue to drain", func() bool { return e.exportBacklog() == 0 })
}

func (e *env) sawAction(action string) bool {
	for _, ev := range e.received() {
		if ev["action"] == action {
			return true
		}
	}
	return false
}

// checkReceivedOnce checks that the source got every event of the trail exactly once,
// each valid under the shipped schema, and in the trail's order (auth.failed events
// aside: they carry the time of the failure but are written up to a second later, so
// the trail's time order and the export's commit order may differ for them).
func (e *env) checkReceivedOnce() {
	e.t.Helper()
	schema, err := schemacheck.Load(schemacheck.AuditSchemaPath())
	if err != nil {
		e.t.Fatal(err)
	}
	got := e.received()
	gotIDs := ids(got)
	seen := map[string]bool{}
	for _, id := range gotIDs {
		if seen[id] {
			e.t.Errorf("event %s received twice", id)
		}
		seen[id] = true
	}
	var want, gotOrdered, wantOrdered []string
	for _, a := range e.trail() {
		want = append(want, a.EventID)
		if a.Action != app.ActionAuthFailed {
			wantOrdered = append(wantOrdered, a.EventID)
		}
	}
	for _, ev := range got {
		if ev["action"] != app.ActionAuthFailed {
			gotOrdered = append(gotOrdered, ev["eventId"].(string))
		}
		line, _ := json.Marshal(ev)
		for _, p := range schema.Check(line) {
			e.t.Errorf("event %s does not fit the schema: %s", ev["eventId"], p)
		}
	}
	sortedGot, sortedWant := slices.Sorted(slices.Values(gotIDs)), slices.Sorted(slices.Values(want))
	if !slices.Equal(sortedGot, sortedWant) {
		e.t.Errorf("received %d events, the trail has %d", len(gotIDs), len(want))
	}
	if !slices.Equal(gotOrdered, wantOrdered) {
		e.t.Errorf("events out of order:\n got %v\nwant %v", gotOrdered, wantOrdered)
	}
}

// Every kind of event the bridge writes reaches the HTTP source, once, in order, and
// fits the shipped schema; the provisioning events carry the role and whether it
// holds UserModify.
func TestAuditExportEveryAction(t *testing.T) {
	e := newEnv(t, withAuditExport(sourceSecret))
	ctx := context.Background()
	for _, r := range []string{"Admin", "Analyst", "AnalystReadOnly"} { // as serve does at start
		if _, err := e.App.Service.RoleFor(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	ada := e.createUser("ada@example.com", "Ada", "Lovelace")
	bob := e.createUser("bob@example.com", "Bob", "Byron")
	admins := e.createGroup("Panther Admins", ada)
	// Ownership (issue 14): an analyst made in Panther's console is adopted, an
	// administrator made there is refused (provisioning.adopt: nonAdmin).
	for email, role := range map[string]string{"ana@example.com": "Analyst", "boss@example.com": "Admin"} {
		if _, err := e.Fake.AddUser(email, "Con", "Sole", role); err != nil {
			t.Fatal(err)
		}
	}
	e.createUser("ana@example.com", "Ana", "Lyst")
	e.do("POST", "/Users", newUser("boss@example.com", "Bo", "Ss")).scimErr(t, http.StatusConflict, "uniqueness")
	e.do("PATCH", "/Users/"+ada, patchOp(map[string]any{"op": "replace", "path": "name.familyName", "value": "King"})).must(t, http.StatusOK)
	e.do("GET", "/Users", nil, "Authorization", "Bearer not-the-token").must(t, http.StatusUnauthorized)

	// Someone raises Bob's role in Panther's console; the reconciler puts it back.
	pbob, _ := e.Fake.UserByEmail("bob@example.com")
	if err := e.Fake.SetUserRole(pbob.ID, "Admin"); err != nil {
		t.Fatal(err)
	}
	if plan, err := e.App.Service.Reconcile(ctx, false); err != nil || plan.Repaired != 1 {
		t.Fatalf("reconcile: %+v, %v", plan, err)
	}

	// Bob leaves while Panther refuses to delete him: the removal stays pending.
	e.Fake.FailNext("deleteUser", 1000, http.StatusServiceUnavailable)
	e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "replace", "path": "active", "value": false})).must(t, http.StatusOK)
	waitFor(t, "deprovision.delayed at the source", func() bool { return e.sawAction(provision.ActionDeprovisionDelayed) })
	e.Fake.ClearFaults()
	e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "replace", "path": "active", "value": true})).must(t, http.StatusOK)

	e.do("PATCH", "/Groups/"+admins, patchOp(map[string]any{"op": "replace", "path": "displayName", "value": "Panther Admins (old)"})).must(t, http.StatusNoContent)
	e.do("DELETE", "/Groups/"+admins, nil).must(t, http.StatusNoContent)
	e.do("DELETE", "/Users/"+ada, nil).must(t, http.StatusNoContent)

	waitFor(t, "every action at the source", func() bool {
		for _, a := range auditexport.Actions {
			if !e.sawAction(a) {
				return false
			}
		}
		return true
	})
	e.exported()
	e.checkReceivedOnce()

	// What the detections read, as they read it.
	byAction := map[string]map[string]any{}
	for _, ev := range e.received() {
		a := ev["action"].(string)
		if _, ok := byAction[a]; !ok && (ev["resourceId"] == ada || a == app.ActionAuthFailed) {
			byAction[a] = ev // the first of each
		}
	}
	role := byAction["user.role"]
	if role["role"] != "Admin" || role["roleHasUserModify"] != true || role["previousRole"] != "AnalystReadOnly" ||
		role["previousRoleHasUserModify"] != false || role["email"] != "ada@example.com" {
		t.Errorf("user.role event: %v", role)
	}
	if del := byAction["user.delete"]; del["access"] != false || del["previousAccess"] != true {
		t.Errorf("user.delete event: %v", del)
	}
	if af := byAction[app.ActionAuthFailed]; af["sourceIP"] != "127.0.0.1" || af["auth"].(map[string]any)["reason"] != "invalid" {
		t.Errorf("auth.failed event: %v", af)
	}
	for _, ev := range e.received() {
		switch ev["action"] {
		case "user.adopt":
			if ev["email"] != "ana@example.com" || ev["previousRole"] != "Analyst" || ev["role"] != "AnalystReadOnly" || ev["outcome"] != "adopted" {
				t.Errorf("user.adopt event: %v", ev)
			}
		case "user.refuse":
			if a, _ := ev["after"].(map[string]any); ev["email"] != "boss@example.com" || a["reason"] != provision.RefuseAdoptAdmin || a["pantherRole"] != "Admin" {
				t.Errorf("user.refuse event: %v", ev)
			}
		case provision.ActionDeprovisionDelayed:
			if ev["resourceId"] != bob || ev["deprovision"].(map[string]any)["reason"] != "deactivated" {
				t.Errorf("deprovision.delayed event: %v", ev)
			}
		case "drift.detected":
			if d := ev["drift"].(map[string]any); ev["resourceId"] != bob || d["field"] != "role" || d["found"] != "Admin" ||
				d["expected"] != "AnalystReadOnly" || d["repair"] != "update: repaired" {
				t.Errorf("drift.detected event: %v", ev)
			}
		}
	}
}

// While the source is down, SCIM goes on (every request answered as usual), /readyz
// stays ready and shows the backlog; when it is back everything arrives, once, in
// order.
func TestAuditExportSourceDownThenBack(t *testing.T) {
	e := newEnv(t, withAuditExport(sourceSecret))
	e.createUser("first@example.com", "First", "User")
	e.exported()
	e.Fake.HTTPSourceDown(true)
	var users []string
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		users = append(users, e.createUser(name+"@example.com", strings.ToUpper(name), "Down"))
	}
	e.createGroup("Panther Analysts", users...)
	waitFor(t, "failed attempts", func() bool {
		return strings.Contains(e.do("GET", e.opsURL("/metrics"), nil).Raw, `panther_scim_audit_export_failures_total{reason="server_error"}`)
	})
	// /readyz is cached for a few seconds: an answer computed before the first failure
	// may still be served, so wait for one computed after it.
	waitFor(t, "/readyz to show the backlog and the failure", func() bool {
		rz := e.readyState().must(t, http.StatusOK)
		ae, _ := rz.Body["auditExport"].(map[string]any)
		return ae != nil && ae["pendingEvents"].(float64) >= 6 && ae["lastFailureReason"] == "server_error"
	})
	if n := len(e.received()); n != 1 {
		t.Fatalf("the source took %d events while down", n)
	}
	e.Fake.HTTPSourceDown(false)
	e.exported()
	e.checkReceivedOnce()
}

// A wrong secret: the source answers 401, the exporter retries and counts it as
// unauthorized (what the alert watches), the server stays ready; with the right
// secret on the source the backlog goes through.
func TestAuditExportWrongSecret(t *testing.T) {
	e := newEnv(t, withAuditExport(sourceSecret))
	e.Fake.SetHTTPSourceAuth(pantherfakeAuth("the-source-has-another-secret"))
	e.createUser("zed@example.com", "Zed", "Zero")
	metric := func() string {
		for _, l := range strings.Split(e.do("GET", e.opsURL("/metrics"), nil).Raw, "\n") {
			if strings.HasPrefix(l, `panther_scim_audit_export_failures_total{reason="unauthorized"}`) {
				return strings.Fields(l)[1]
			}
		}
		return ""
	}
	waitFor(t, "three refusals", func() bool {
		n := 0
		for _, r := range e.Fake.SourceRequests() {
			if r.Status == http.StatusUnauthorized {
				n++
			}
		}
		return n >= 3 && metric() != "0" && metric() != ""
	})
	rz := e.readyState().must(t, http.StatusOK)
	if ae, _ := rz.Body["auditExport"].(map[string]any); ae["lastFailureReason"] != "unauthorized" || ae["pendingEvents"].(float64) < 1 {
		t.Errorf("readyz: %s", rz.Raw)
	}
	if strings.Contains(rz.Raw, sourceSecret) || strings.Contains(e.Logs.String(), sourceSecret) {
		t.Error("the source's secret shows in /readyz or the logs")
	}
	if len(e.received()) != 0 {
		t.Fatal("a refused request's events were kept")
	}
	e.Fake.SetHTTPSourceAuth(pantherfakeAuth(sourceSecret))
	e.exported()
	e.checkReceivedOnce()
}

// pantherfakeAuth is the double's source credential matching withAuditExport's.
func pantherfakeAuth(secret string) pantherfake.HTTPSourceAuth {
	return pantherfake.HTTPSourceAuth{Method: pantherfake.SourceAuthHMAC, Header: "X-Panther-SCIM-Signature", Algorithm: "sha256", Secret: secret}
}
