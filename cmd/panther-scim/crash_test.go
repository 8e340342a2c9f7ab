package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
)

// These tests run the real binary: built once, started against a Panther double in
// the test process, killed with SIGKILL at the injected crash points, restarted, and
// checked through SCIM, the double and the store file.

const (
	rigPantherKey = "crash-test-panther-api-key-0123456789"
	rigToken      = "crash-test-bearer-token-0123456789"
	// rigDeadline bounds every wait for the process.
	rigDeadline = 15 * time.Second
)

// TestRealBinary builds panther-scim once and runs the crash and reconcile tests on it.
func TestRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the binary")
	}
	bin := filepath.Join(t.TempDir(), "panther-scim")
	// The crash seam is compiled in only with the crashtest tag.
	build := exec.Command(goTool, "build", "-tags", "crashtest", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("crash", func(t *testing.T) { testCrashes(t, bin) })
	t.Run("reconcile command", func(t *testing.T) { testReconcileCommand(t, bin) })
	t.Run("strangers survive crashes", func(t *testing.T) { testStrangersSurviveCrashes(t, bin) })
	t.Run("audit export crash", func(t *testing.T) { testAuditExportCrash(t, bin) })
	t.Run("failover drill", func(t *testing.T) { testFailoverDrill(t, bin) })
}

// rig is one bridge deployment: a config, a store file and a Panther double; the
// process comes and goes.
type rig struct {
	t       testing.TB
	bin     string
	cfg     string
	dbPath  string
	base    string // http://127.0.0.1:port
	fake    *pantherfake.Server
	fakeURL string // the double's base URL
	client  *http.Client
	proc    *exec.Cmd
	done    chan struct{} // closed when proc has exited
	logs    *outBuf
}

func newRig(t testing.TB, bin string) *rig {
	t.Helper()
	fake := pantherfake.New(pantherfake.Options{APIKey: rigPantherKey, Seed: 7, RetryAfter: -1})
	ps := httptest.NewServer(fake.Handler())
	t.Cleanup(ps.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	r := &rig{t: t, bin: bin, cfg: filepath.Join(dir, "config.yaml"), dbPath: filepath.Join(dir, "scim.db"),
		base: "http://" + addr, fake: fake, fakeURL: ps.URL, client: &http.Client{Timeout: 10 * time.Second}, logs: &outBuf{}}
	cfg := fmt.Sprintf(`server:
  addr: %q
  baseURL: %q
  readyCacheTTL: 0s  # drained polls /readyz for fresh counts
  shutdownTimeout: 5s
panther:
  url: %q
  timeout: 2s
  maxRetries: 2
  ratePerSecond: 1000
  burst: 1000
store:
  path: %q
provisioning:
  reconcileInterval: 1h  # on, so that a start-up reconcile runs (startSettled waits for it); never fires during a test
  requestSyncTimeout: 4s
mapping:
  rules:
    - group: Panther Admins
      role: Admin
  defaultRole: AnalystReadOnly
log:
  level: warn
audit:
  retention: 0s
`, addr, "http://"+addr, ps.URL+pantherfake.Path, r.dbPath)
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.proc != nil {
			_ = r.proc.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			t.Logf("bridge output:\n%s", r.logs)
		}
	})
	return r
}

// env is the process environment: the test's own without any PANTHER_ variable (they
// would override the config), plus the secrets and extra.
func (r *rig) env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PANTHER_") {
			env = append(env, kv)
		}
	}
	return append(append(env, "PANTHER_API_TOKEN="+rigPantherKey, "PANTHER_SCIM_BEARER_TOKENS="+rigToken), extra...)
}

// start runs `panther-scim serve`, with the crash hook armed when crashAt is set, and
// waits until it answers /healthz.
func (r *rig) start(crashAt string) {
	r.t.Helper()
	r.launch(crashAt)
	done := r.done
	r.poll("the bridge to answer /healthz", func() bool {
		select {
		case <-done:
			r.t.Fatalf("the bridge exited at start: %v", r.proc.ProcessState)
		default:
		}
		res, err := r.client.Get(r.base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// startSettled is start, then waits for the start-up work (replay of pending intents,
// then a reconcile, which lists Panther's users) to be over. A request sent before could
// have its change applied by that background work, between its store write and its
// crash, and the test could not tell where the process died.
func (r *rig) startSettled(crashAt string) {
	r.t.Helper()
	listed := r.fake.Count("users")
	r.start(crashAt)
	r.poll("the start-up reconcile", func() bool { return r.fake.Count("users") > listed })
}

// launch runs `panther-scim serve` without waiting for it.
func (r *rig) launch(crashAt string) {
	r.t.Helper()
	if r.proc != nil {
		r.t.Fatal("already running")
	}
	var extra []string
	if crashAt != "" {
		extra = append(extra, crashEnv+"="+crashAt)
	}
	cmd := exec.Command(r.bin, "serve", "--config", r.cfg)
	cmd.Env = r.env(extra...)
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.proc, r.done = cmd, make(chan struct{})
	done := r.done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
}

// poll checks cond until it holds or the deadline passes.
func (r *rig) poll(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(rigDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exited waits for the process to end and returns its state.
func (r *rig) exited() *os.ProcessState {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(rigDeadline):
		r.t.Fatal("the bridge did not exit")
	}
	st := r.proc.ProcessState
	r.proc = nil
	return st
}

// stop shuts the bridge down with SIGTERM and expects a clean exit.
func (r *rig) stop() {
	r.t.Helper()
	if err := r.proc.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	if st := r.exited(); !st.Success() {
		r.t.Fatalf("graceful shutdown: %v", st)
	}
}

// killedBySIGKILL waits for the crash hook's SIGKILL.
func (r *rig) killedBySIGKILL() {
	r.t.Helper()
	st := r.exited()
	ws, ok := st.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		r.t.Fatalf("the bridge ended with %v, not SIGKILL", st)
	}
}

type answer struct {
	status int
	body   map[string]any
	raw    string
}

// send makes a SCIM request; err is the transport failure a crash causes.
func (r *rig) send(method, path string, body any) (answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.base+"/scim/v2"+path, rd)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+rigToken)
	req.Header.Set("Content-Type", "application/scim+json")
	res, err := r.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: res.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a, nil
}

// must makes a request that has to succeed with the status.
func (r *rig) must(method, path string, body any, status int) answer {
	r.t.Helper()
	a, err := r.send(method, path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if a.status != status {
		r.t.Fatalf("%s %s: status %d, want %d: %s", method, path, a.status, status, a.raw)
	}
	return a
}

// crashOn sends the request that trips the armed hook: it gets no answer, and the
// process dies by SIGKILL.
func (r *rig) crashOn(method, path string, body any) {
	r.t.Helper()
	if a, err := r.send(method, path, body); err == nil {
		r.t.Fatalf("%s %s answered %d before the crash: %s", method, path, a.status, a.raw)
	}
	r.killedBySIGKILL()
}

// drained waits until /readyz reports the bridge ready with no pending intent.
func (r *rig) drained() {
	r.t.Helper()
	r.poll("/readyz to report 0 pending intents", func() bool {
		res, err := r.client.Get(r.base + "/readyz")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var body struct {
			Pending *int `json:"pendingIntents"`
		}
		raw, _ := io.ReadAll(res.Body)
		return json.Unmarshal(raw, &body) == nil && res.StatusCode == http.StatusOK && body.Pending != nil && *body.Pending == 0
	})
}

// stored opens the store file of the stopped bridge and returns its users and the
// number of pending intents.
func (r *rig) stored() (map[string]provision.User, int) {
	r.t.Helper()
	st, err := store.Open(r.dbPath, store.Options{OpenTimeout: time.Second})
	if err != nil {
		r.t.Fatal(err)
	}
	defer st.Close()
	users := map[string]provision.User{}
	var intents int
	err = st.View(context.Background(), func(tx provision.ReadTx) error {
		if err := tx.ScanUsers(0, func(u provision.User) bool {
			users[u.Email] = u
			return true
		}); err != nil {
			return err
		}
		intents, err = tx.IntentCount()
		return err
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return users, intents
}

// invites counts the inviteUser calls Panther carried out.
func (r *rig) invites() int {
	n := 0
	for _, c := range r.fake.Calls() {
		if c.Op == "inviteUser" && len(c.Errors) == 0 && (c.Status == http.StatusOK || c.Dropped) {
			n++
		}
	}
	return n
}

// copies is the number of Panther users with the email.
func (r *rig) copies(email string) int {
	n := 0
	for _, u := range r.fake.Users() {
		if strings.EqualFold(u.Email, email) {
			n++
		}
	}
	return n
}

func (r *rig) role(email string) string {
	u, ok := r.fake.UserByEmail(email)
	if !ok {
		return ""
	}
	return u.RoleName
}

func scimUser(email, given, family string) map[string]any {
	return map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": email,
		"name":     map[string]any{"givenName": given, "familyName": family},
		"emails":   []any{map[string]any{"primary": true, "value": email, "type": "work"}},
		"active":   true,
	}
}

func scimPatch(op map[string]any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": []any{op}}
}

const (
	crashEmail  = "crash@example.com"
	secondEmail = "second@example.com"
)

// crashCase is one request killed at one point.
type crashCase struct {
	name string
	// setup runs on a clean bridge and returns the ids the request needs.
	setup func(r *rig) map[string]string
	// request is the one that dies.
	request func(ids map[string]string) (method, path string, body any)
	// atCrash checks Panther at the moment of the crash, given whether the Panther
	// mutation had been made; it proves where the process died.
	atCrash func(r *rig, mutated bool) error
	// live checks Panther and the SCIM answers once the restarted bridge is drained.
	live func(r *rig, ids map[string]string) error
	// stored checks the store file of the stopped bridge (users by email).
	stored func(r *rig, users map[string]provision.User) error
}

func testCrashes(t *testing.T, bin string) {
	withUser := func(r *rig) map[string]string {
		a := r.must("POST", "/Users", scimUser(crashEmail, "Cra", "Sh"), http.StatusCreated)
		return map[string]string{"user": a.body["id"].(string)}
	}
	// present: the user is in Panther at the crash exactly when the mutation, which
	// adds or removes them, was made.
	present := func(adds bool) func(r *rig, mutated bool) error {
		return func(r *rig, mutated bool) error {
			want := mutated == adds
			if got := r.copies(crashEmail) == 1; got != want {
				return fmt.Errorf("user in Panther at the crash: %v, want %v", got, want)
			}
			return nil
		}
	}
	// gone: deprovisioning was not lost, and nobody was invited again.
	gone := func(r *rig, _ map[string]string) error {
		if r.copies(crashEmail) != 0 {
			return errors.New("deprovisioning lost: the user is still in Panther")
		}
		if r.invites() != 1 {
			return fmt.Errorf("%d invites, want 1", r.invites())
		}
		return nil
	}
	// linked: one record, active, linked to the one Panther user.
	linked := func(r *rig, users map[string]provision.User) error {
		pu, _ := r.fake.UserByEmail(crashEmail)
		if u, ok := users[crashEmail]; !ok || !u.Active || u.Panther.ID != pu.ID || u.Panther.RoleID != pu.RoleID || len(users) != 1 {
			return fmt.Errorf("record %+v (of %d) does not match Panther user %+v", u, len(users), pu)
		}
		return nil
	}
	cases := []crashCase{
		{
			name: "create",
			request: func(map[string]string) (string, string, any) {
				return "POST", "/Users", scimUser(crashEmail, "Cra", "Sh")
			},
			atCrash: present(true),
			live: func(r *rig, _ map[string]string) error {
				if r.copies(crashEmail) != 1 || r.invites() != 1 || r.role(crashEmail) != "AnalystReadOnly" {
					return fmt.Errorf("%d Panther users with role %q after %d invites, want 1 AnalystReadOnly after 1",
						r.copies(crashEmail), r.role(crashEmail), r.invites())
				}
				// The IdP got no answer; it looks the user up before trying again.
				l := r.must("GET", "/Users?filter="+url.QueryEscape(`userName eq "`+crashEmail+`"`), nil, http.StatusOK)
				if l.body["totalResults"] != float64(1) {
					return fmt.Errorf("lookup after the crash: %s", l.raw)
				}
				// A client that retries the POST blindly gets 409 uniqueness (README), and
				// nothing is invited again.
				if a := r.must("POST", "/Users", scimUser(crashEmail, "Cra", "Sh"), http.StatusConflict); a.body["scimType"] != "uniqueness" || r.invites() != 1 {
					return fmt.Errorf("a retried POST: %s, %d invites", a.raw, r.invites())
				}
				return nil
			},
			stored: linked,
		},
		{
			name:  "deactivate",
			setup: withUser,
			request: func(ids map[string]string) (string, string, any) {
				return "PATCH", "/Users/" + ids["user"], scimPatch(map[string]any{"op": "replace", "path": "active", "value": false})
			},
			atCrash: present(false),
			live:    gone,
			stored: func(_ *rig, users map[string]provision.User) error {
				if u, ok := users[crashEmail]; !ok || u.Active || u.Panther.ID != "" {
					return fmt.Errorf("record %+v", u)
				}
				return nil
			},
		},
		{
			name:  "delete",
			setup: withUser,
			request: func(ids map[string]string) (string, string, any) {
				return "DELETE", "/Users/" + ids["user"], nil
			},
			atCrash: present(false),
			live: func(r *rig, ids map[string]string) error {
				r.must("GET", "/Users/"+ids["user"], nil, http.StatusNotFound)
				return gone(r, ids)
			},
			stored: func(_ *rig, users map[string]provision.User) error {
				if len(users) != 0 {
					return fmt.Errorf("records left: %+v", users)
				}
				return nil
			},
		},
		{
			// One PATCH promotes two users; the crash comes after the first promotion.
			name: "group membership",
			setup: func(r *rig) map[string]string {
				ids := withUser(r)
				a := r.must("POST", "/Users", scimUser(secondEmail, "Sec", "Ond"), http.StatusCreated)
				ids["second"] = a.body["id"].(string)
				g := r.must("POST", "/Groups", map[string]any{
					"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Panther Admins",
				}, http.StatusCreated)
				ids["group"] = g.body["id"].(string)
				return ids
			},
			request: func(ids map[string]string) (string, string, any) {
				return "PATCH", "/Groups/" + ids["group"], scimPatch(map[string]any{"op": "add", "path": "members",
					"value": []any{map[string]any{"value": ids["user"]}, map[string]any{"value": ids["second"]}}})
			},
			atCrash: func(r *rig, mutated bool) error {
				admins := 0
				for _, e := range []string{crashEmail, secondEmail} {
					if r.role(e) == "Admin" {
						admins++
					}
				}
				// The two promotions run concurrently: the second may land before the kill.
				if (admins > 0) != mutated {
					return fmt.Errorf("%d users promoted at the crash", admins)
				}
				return nil
			},
			live: func(r *rig, ids map[string]string) error {
				for _, e := range []string{crashEmail, secondEmail} {
					if r.role(e) != "Admin" || r.copies(e) != 1 {
						return fmt.Errorf("%s: role %q, %d copies", e, r.role(e), r.copies(e))
					}
				}
				if r.invites() != 2 {
					return fmt.Errorf("%d invites, want 2", r.invites())
				}
				g := r.must("GET", "/Groups/"+ids["group"], nil, http.StatusOK)
				if members, _ := g.body["members"].([]any); len(members) != 2 {
					return fmt.Errorf("group members: %s", g.raw)
				}
				return nil
			},
			stored: func(r *rig, users map[string]provision.User) error {
				for _, e := range []string{crashEmail, secondEmail} {
					pu, _ := r.fake.UserByEmail(e)
					if u := users[e]; u.Panther.ID != pu.ID || u.Panther.RoleID != pu.RoleID {
						return fmt.Errorf("record %+v does not match Panther user %+v", u, pu)
					}
				}
				return nil
			},
		},
	}
	for _, c := range cases {
		for _, point := range []string{"after-store-write", "after-panther-call"} {
			t.Run(c.name+"/"+point, func(t *testing.T) {
				t.Parallel()
				r := newRig(t, bin)
				var ids map[string]string
				if c.setup != nil {
					r.start("")
					ids = c.setup(r)
					r.drained()
					r.stop()
				}
				r.startSettled(point)
				method, path, body := c.request(ids)
				r.crashOn(method, path, body)
				if err := c.atCrash(r, point == "after-panther-call"); err != nil {
					t.Fatal(err)
				}

				r.start("")
				r.drained()
				if err := c.live(r, ids); err != nil {
					t.Error(err)
				}
				r.stop()
				users, intents := r.stored()
				if intents != 0 {
					t.Errorf("%d intents left", intents)
				}
				if err := c.stored(r, users); err != nil {
					t.Error(err)
				}
			})
		}
	}

	// A second crash, in the start-up replay of the first one's create, just after it
	// invited the user: the next start adopts that user instead of inviting again.
	t.Run("create/crash again during replay", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, bin)
		r.startSettled("after-store-write")
		r.crashOn("POST", "/Users", scimUser(crashEmail, "Cra", "Sh"))
		r.launch("after-panther-call")
		r.killedBySIGKILL()
		if r.copies(crashEmail) != 1 || r.invites() != 1 {
			t.Fatalf("the replay did not invite before its crash: %d copies", r.copies(crashEmail))
		}
		r.start("")
		r.drained()
		if r.copies(crashEmail) != 1 || r.invites() != 1 {
			t.Errorf("%d Panther users after %d invites, want 1 after 1", r.copies(crashEmail), r.invites())
		}
		r.stop()
		users, intents := r.stored()
		if err := linked(r, users); err != nil || intents != 0 {
			t.Errorf("%v; %d intents left", err, intents)
		}
	})
}

// testReconcileCommand: `reconcile --dry-run` prints the drift and changes nothing;
// `reconcile` repairs it and leaves the unmanaged user alone.
func testReconcileCommand(t *testing.T, bin string) {
	t.Parallel()
	r := newRig(t, bin)
	r.start("")
	for _, e := range []string{"role@example.com", "gone@example.com", "names@example.com"} {
		r.must("POST", "/Users", scimUser(e, "Re", "Con"), http.StatusCreated)
	}
	r.drained()
	r.stop()
	pid := func(email string) string {
		u, ok := r.fake.UserByEmail(email)
		if !ok {
			t.Fatalf("%s not in Panther", email)
		}
		return u.ID
	}
	if err := errors.Join(r.fake.SetUserRole(pid("role@example.com"), "Admin"), r.fake.RemoveUser(pid("gone@example.com")),
		r.fake.SetUserNames(pid("names@example.com"), "Changed", "Behind")); err != nil {
		t.Fatal(err)
	}
	stranger, err := r.fake.AddUser("stranger@example.com", "Str", "Anger", "Admin")
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(r.bin, append([]string{"reconcile", "--config", r.cfg}, args...)...)
		cmd.Env = r.env()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("reconcile %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	mutations := func() int {
		return r.fake.Count("inviteUser") + r.fake.Count("updateUser") + r.fake.Count("deleteUser")
	}

	before := mutations()
	out := run("--dry-run")
	for _, want := range []string{
		"plan (dry run, nothing changed)",
		"role@example.com", "role: Admin -> AnalystReadOnly",
		"invite  gone@example.com",
		"names@example.com", "givenName: Changed -> Re", "familyName: Behind -> Con",
		"3 drifted, 0 pending removals, 1 Panther users not managed here (left alone)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "stranger@example.com") || mutations() != before || r.copies("gone@example.com") != 0 {
		t.Fatalf("the dry run changed something or planned to touch the stranger:\n%s", out)
	}

	out = run()
	if !strings.Contains(out, "repaired 3, failed 0") {
		t.Errorf("repair output:\n%s", out)
	}
	for email, want := range map[string]string{"role@example.com": "AnalystReadOnly", "gone@example.com": "AnalystReadOnly"} {
		if got := r.role(email); got != want {
			t.Errorf("%s: role %q, want %q", email, got, want)
		}
	}
	if u, _ := r.fake.UserByEmail("names@example.com"); u.GivenName != "Re" || u.FamilyName != "Con" {
		t.Errorf("names not repaired: %+v", u)
	}
	if u, ok := r.fake.UserByEmail("stranger@example.com"); !ok || u != stranger {
		t.Errorf("the unmanaged user was touched: %+v", u)
	}
	if out := run("--dry-run"); !strings.Contains(out, "no drift") {
		t.Errorf("drift after the repair:\n%s", out)
	}
}
