package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
)

// withSchemaCheck checks Panther's schema at start and every interval, as serve does.
func withSchemaCheck(every time.Duration) option {
	return func(o *app.Options) {
		o.CheckSchema = o.Panther.(*panther.Client).CheckSchema
		o.SchemaCheckInterval = every
	}
}

// renamedGivenName is Panther's schema with InviteUserInput.givenName renamed firstName.
func renamedGivenName(t *testing.T) *ast.Schema {
	t.Helper()
	const from = "  familyName: String!\n  givenName: String!\n  role: UserRoleInput!\n}\n\ntype InviteUserOutput"
	if !strings.Contains(panther.Schema, from) {
		t.Fatal("schema.graphql changed: update the test's edit")
	}
	s, err := pantherfake.LoadSchema("renamed.graphql",
		strings.Replace(panther.Schema, from, strings.Replace(from, "givenName", "firstName", 1), 1))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) schemaGauge() float64 {
	e.t.Helper()
	_, ss := e.scrape()
	v, ok := metric(ss, "panther_scim_panther_schema_compatible", nil)
	if !ok {
		e.t.Fatal("panther_scim_panther_schema_compatible not exported")
	}
	return v
}

const wantIncompatible = `incompatible schema: inviteUser: unknown field "givenName" on input InviteUserInput; ` +
	`inviteUser: input InviteUserInput requires field "firstName" (String!), which panther-scim does not send`

// TestSchemaCheckWhileServing: Panther's API changes under the running bridge; the periodic
// check finds it, /readyz answers 503 naming the operation, the gauge says 0, the error is
// logged; when Panther is fixed all returns to ready. A refusal of introspection is a warning.
func TestSchemaCheckWhileServing(t *testing.T) {
	e := newEnv(t, withSchemaCheck(20*time.Millisecond))
	if r := e.readiness(); r.Status != http.StatusOK || r.Checks["panther"] != "ok" {
		t.Fatalf("readyz at start: %s", r.Raw)
	}
	if g := e.schemaGauge(); g != 1 {
		t.Errorf("gauge at start %v, want 1", g)
	}

	e.Fake.SetSchema(renamedGivenName(t))
	var r readiness
	waitFor(t, "/readyz to see the incompatible schema", func() bool { r = e.readiness(); return r.Status != http.StatusOK })
	if r.Status != http.StatusServiceUnavailable || r.State != "not ready" || r.Checks["panther"] != wantIncompatible || r.Checks["store"] != "ok" {
		t.Errorf("readyz with an incompatible schema: %s", r.Raw)
	}
	if g := e.schemaGauge(); g != 0 {
		t.Errorf("gauge with an incompatible schema %v, want 0", g)
	}
	logs := e.Logs.String()
	if !strings.Contains(logs, `"level":"ERROR","msg":"Panther's schema is incompatible`) || !strings.Contains(logs, `inviteUser: unknown field \"givenName\" on input InviteUserInput`) {
		t.Errorf("incompatibility not logged at error level:\n%s", grep(logs, "schema"))
	}

	e.Fake.SetSchema(nil)
	waitFor(t, "/readyz to recover", func() bool { return e.readiness().Status == http.StatusOK })
	if g := e.schemaGauge(); g != 1 {
		t.Errorf("gauge after the fix %v, want 1", g)
	}

	e.Fake.RefuseIntrospection(true)
	waitFor(t, "the gauge to say unknown", func() bool { return e.schemaGauge() == -1 })
	if r := e.readiness(); r.Status != http.StatusOK {
		t.Errorf("readyz with introspection refused: %s", r.Raw)
	}
	logs = e.Logs.String()
	if n := strings.Count(logs, `"level":"WARN","msg":"Panther refused the introspection query`); n != 1 {
		t.Errorf("refusal warned %d times, want once (it is a state, not an event):\n%s", n, grep(logs, "introspection"))
	}
}

// TestSchemaCheckAtStart: an incompatible schema is known before the first request is
// served.
func TestSchemaCheckAtStart(t *testing.T) {
	e := newEnv(t, withSchemaCheck(0))
	e.Fake.SetSchema(renamedGivenName(t))
	// A slow Panther: a check still running when Start returned would leave the gauge at -1
	// for the scrape below, which does not wait for Panther.
	e.Fake.SetLatency(300*time.Millisecond, 0)
	e.restart()
	if g := e.schemaGauge(); g != 0 {
		t.Errorf("gauge right after start %v, want 0", g)
	}
	if r := e.readiness(); r.Status != http.StatusServiceUnavailable || r.Checks["panther"] != wantIncompatible {
		t.Errorf("readyz right after start: %s", r.Raw)
	}
}

func grep(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
