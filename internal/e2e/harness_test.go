package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/auth"
	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
	"github.com/panther-scim/panther-scim/mappings"
)

const pantherKey = "e2e-panther-api-key-0123456789"

// env is one running bridge with its Panther double.
type env struct {
	t     testing.TB
	Fake  *pantherfake.Server
	App   *app.App
	Token string
	// AdminToken is accepted by the /admin/... endpoints (and Token is not).
	AdminToken string
	Base       string // SCIM base URL
	Client     *http.Client
	Logs       *syncBuffer
	Panther    *panther.Client
	// PantherURL is the double's GraphQL endpoint.
	PantherURL string
	opts       app.Options
	metrics    *app.Metrics
	// storePath is the bbolt file each start opens for the App.
	storePath string
}

// syncBuffer collects logs from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// exampleMapping is the mapping of config.example.yaml.
var exampleMapping = mappings.Mapping{
	Rules: []mappings.Rule{
		{Group: "Panther Admins", Role: "Admin"},
		{Group: "Panther Analysts", Role: "Analyst"},
	},
	DefaultRole: "AnalystReadOnly",
}

type option func(*app.Options)

// consoleAdmin is the Panther administrator who set Panther up, in its console: every
// env's Panther starts with this one user, as every real Panther does (removeConsoleAdmin
// takes it away).
const consoleAdmin = "console-admin@example.com"

// removeConsoleAdmin deletes the console's administrator from Panther.
func (e *env) removeConsoleAdmin() {
	e.t.Helper()
	u, ok := e.Fake.UserByEmail(consoleAdmin)
	if !ok {
		e.t.Fatal("no console admin")
	}
	if err := e.Fake.RemoveUser(u.ID); err != nil {
		e.t.Fatal(err)
	}
}

func withMapping(m mappings.Mapping) option {
	return func(o *app.Options) { o.Provision.Mapping = m }
}

func withProtected(emails ...string) option {
	return func(o *app.Options) { o.Provision.ProtectedEmails = emails }
}

// newEnv starts the Panther double and the bridge on loopback ports; both stop when
// the test ends.
func newEnv(t testing.TB, opts ...option) *env {
	t.Helper()
	fake := pantherfake.New(pantherfake.Options{APIKey: pantherKey, Seed: 1})
	if _, err := fake.AddUser(consoleAdmin, "Console", "Admin", "Admin"); err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(fake.Handler())
	t.Cleanup(ps.Close)
	e := &env{t: t, Fake: fake, Logs: &syncBuffer{}, Client: &http.Client{Timeout: 30 * time.Second},
		storePath: filepath.Join(t.TempDir(), "scim.db")}
	e.metrics = app.NewMetrics()
	client, err := panther.New(panther.Config{
		URL: ps.URL + "/public/graphql", Token: pantherKey, Timeout: 2 * time.Second,
		MaxRetries: 2, BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		MaxElapsed: 5 * time.Second, RatePerSecond: -1, Observer: e.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.Panther, e.PantherURL = client, ps.URL+"/public/graphql"
	tok, _ := auth.GenerateToken()
	e.Token = tok
	log := slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := auth.New(auth.Options{TokenHashes: []auth.Hash{auth.HashToken(tok)}, OnFailure: func(f auth.Failure) {
		e.metrics.AuthFailed(f.Reason)
		if l := e.opts.AuthFailures; l != nil {
			l.Record(f)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.AdminToken, _ = auth.GenerateToken()
	admin, err := auth.New(auth.Options{TokenHashes: []auth.Hash{auth.HashToken(e.AdminToken)}, OnFailure: func(f auth.Failure) { e.metrics.AuthFailed(f.Reason) }})
	if err != nil {
		t.Fatal(err)
	}
	o := app.Options{
		Addr: "127.0.0.1:0", Panther: client,
		Provision:    provision.Options{Mapping: exampleMapping, RequestSyncTimeout: 5 * time.Second},
		Authenticate: a.Middleware, AdminAuthenticate: admin.Middleware, Logger: log, WorkerTick: 50 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
	}
	for _, f := range opts {
		f(&o)
	}
	if x := o.AuditExport; x != nil && x.URL == "" {
		// The export goes to the double's HTTP source, which checks its credential.
		x.URL = ps.URL + pantherfake.HTTPSourcePath + "e2e"
		fake.SetHTTPSourceAuth(pantherfake.HTTPSourceAuth{Method: x.Auth.Method, Header: x.Auth.Header, Algorithm: x.Auth.Algorithm, Secret: x.Auth.Secret})
	}
	e.opts = o
	e.start()
	return e
}

// openStore opens the env's store file for the next App, as serve does.
func (e *env) openStore() *store.Bolt {
	e.t.Helper()
	st, err := store.Open(e.storePath, store.Options{OnDamagedRecord: app.LogDamagedRecord(e.opts.Logger)})
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) start() {
	e.t.Helper()
	e.opts.Store = e.openStore()
	srv, err := app.Start(context.Background(), e.opts, e.metrics)
	if err != nil {
		e.t.Fatal(err)
	}
	e.App = srv
	e.Base = srv.URL()
	e.t.Cleanup(func() { _ = srv.Close() })
}

// restart closes the bridge and starts it again on the same store.
func (e *env) restart() {
	e.t.Helper()
	if err := e.App.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.metrics = app.NewMetrics()
	e.start()
}

// resp is an HTTP answer with its JSON body decoded.
type resp struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (e *env) do(method, path string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = e.Base + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if http.CanonicalHeaderKey(headers[i]) == "Host" {
			req.Host = headers[i+1] // Go sends req.Host, not a Host header
			continue
		}
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.Client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out.Body)
	}
	return out
}

// must fails the test unless the answer has the status.
func (r resp) must(t testing.TB, status int) resp {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Raw)
	}
	return r
}

func (r resp) str(key string) string {
	v, _ := r.Body[key].(string)
	return v
}

// scimErr checks an RFC 7644 error body.
func (r resp) scimErr(t testing.TB, status int, scimType string) {
	t.Helper()
	r.must(t, status)
	if r.str("status") != fmt.Sprint(status) {
		t.Fatalf("error body status %q, want %q: %s", r.str("status"), fmt.Sprint(status), r.Raw)
	}
	if scimType != "" && r.str("scimType") != scimType {
		t.Fatalf("scimType %q, want %q: %s", r.str("scimType"), scimType, r.Raw)
	}
	if r.str("detail") == "" {
		t.Fatalf("error without detail: %s", r.Raw)
	}
	schemas, _ := r.Body["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Fatalf("error schemas: %s", r.Raw)
	}
}

// newUser is a minimal Okta-style user body.
func newUser(userName, given, family string) map[string]any {
	return map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName,
		"name":     map[string]any{"givenName": given, "familyName": family},
		"emails":   []any{map[string]any{"primary": true, "value": userName, "type": "work"}},
		"active":   true,
	}
}

func (e *env) createUser(userName, given, family string) string {
	e.t.Helper()
	r := e.do("POST", "/Users", newUser(userName, given, family)).must(e.t, http.StatusCreated)
	return r.str("id")
}

func (e *env) createGroup(name string, members ...string) string {
	e.t.Helper()
	var ms []any
	for _, m := range members {
		ms = append(ms, map[string]any{"value": m})
	}
	body := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name}
	if ms != nil {
		body["members"] = ms
	}
	return e.do("POST", "/Groups", body).must(e.t, http.StatusCreated).str("id")
}

func patchOp(ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, o := range ops {
		list[i] = o
	}
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": list}
}

// pantherRole returns the role name Panther holds for an email, "" when the user is absent.
func (e *env) pantherRole(email string) string {
	e.t.Helper()
	u, ok := e.Fake.UserByEmail(email)
	if !ok {
		return ""
	}
	return u.RoleName
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pending returns the number of pending intents.
func (e *env) pending() int {
	n, _, err := e.App.Service.Pending(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}
