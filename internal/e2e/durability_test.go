package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
	"github.com/panther-scim/panther-scim/mappings"
)

// The durability tests: Panther down, rate limiting, slow and lost answers, and
// concurrent writes. Each proves that what the bridge accepted reaches Panther exactly
// once, and that what it refused left nothing behind.

// appliedCalls counts the calls of op that Panther carried out: answered without a GraphQL
// error, or executed with the answer dropped.
func appliedCalls(f *pantherfake.Server, op string) int {
	n := 0
	for _, c := range f.Calls() {
		if c.Op == op && len(c.Errors) == 0 && (c.Status == http.StatusOK || c.Dropped) {
			n++
		}
	}
	return n
}

// pantherCopies is the number of Panther users with the email.
func pantherCopies(f *pantherfake.Server, email string) int {
	n := 0
	for _, u := range f.Users() {
		if strings.EqualFold(u.Email, email) {
			n++
		}
	}
	return n
}

// pendingList returns the pending intents.
func (e *env) pendingList() []provision.Intent {
	e.t.Helper()
	var out []provision.Intent
	err := e.App.Store.View(context.Background(), func(tx provision.ReadTx) error {
		return tx.ScanIntents(func(in provision.Intent) bool {
			out = append(out, in)
			return true
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// storedUser returns the stored user, and whether there is one.
func (e *env) storedUser(id string) (provision.User, bool) {
	e.t.Helper()
	var u provision.User
	err := e.App.Store.View(context.Background(), func(tx provision.ReadTx) error {
		var err error
		u, err = tx.User(id)
		return err
	})
	if errors.Is(err, provision.ErrNotFound) {
		return u, false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return u, true
}

// recordCount is the number of user records.
func (e *env) recordCount() int {
	e.t.Helper()
	var n int
	err := e.App.Store.View(context.Background(), func(tx provision.ReadTx) error {
		var err error
		n, err = tx.UserCount()
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// waitDrained waits until every pending intent has been applied.
func (e *env) waitDrained() {
	e.t.Helper()
	waitFor(e.t, "pending intents to drain", func() bool { return e.pending() == 0 })
}

// readyState fetches /readyz.
func (e *env) readyState() resp {
	e.t.Helper()
	return e.do("GET", "http://"+e.App.OpsAddr()+"/readyz", nil)
}

// idpRetry sends a request again, as an IdP does, while the answer is 503 or 429, and
// returns the first other answer. Every 503 and 429 must carry Retry-After. It reports
// failures with Errorf, so it may run in any goroutine; a failed call returns status 0.
func (e *env) idpRetry(method, path string, body any) resp {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := e.tryDo(method, path, body)
		if err != nil {
			e.t.Error(err)
			return resp{}
		}
		if r.Status != http.StatusServiceUnavailable && r.Status != http.StatusTooManyRequests {
			return r
		}
		if r.Header.Get("Retry-After") == "" {
			e.t.Errorf("%s %s: %d without Retry-After", method, path, r.Status)
		}
		if time.Now().After(deadline) {
			e.t.Errorf("%s %s: still %d at the deadline: %s", method, path, r.Status, r.Raw)
			return resp{}
		}
		time.Sleep(10 * time.Millisecond) // the IdP's retry delay, shortened
	}
}

// wantStatus is must for any goroutine: it reports a wrong status with Errorf.
func (r resp) wantStatus(t *testing.T, status int) resp {
	t.Helper()
	if r.Status != status {
		t.Errorf("status %d, want %d; body: %s", r.Status, status, r.Raw)
	}
	return r
}

// tryDo is do without the test: safe from any goroutine, it returns transport errors.
func (e *env) tryDo(method, path string, body any) (resp, error) {
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			return resp{}, err
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.Base+path, rd)
	if err != nil {
		return resp{}, err
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	res, err := e.Client.Do(req)
	if err != nil {
		return resp{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return resp{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	out := resp{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out.Body)
	}
	return out, nil
}

// idsByUserName returns the SCIM ids of the records with the userName (an Okta-style lookup).
func (e *env) idsByUserName(userName string) []string {
	e.t.Helper()
	r := e.do("GET", "/Users?filter="+url.QueryEscape(fmt.Sprintf("userName eq %q", userName)), nil).must(e.t, http.StatusOK)
	var ids []string
	res, _ := r.Body["Resources"].([]any)
	for _, x := range res {
		ids = append(ids, x.(map[string]any)["id"].(string))
	}
	return ids
}

// usePantherClient restarts the bridge with its own Panther client over the same double,
// configured by cfg (URL and token are filled in).
func (e *env) usePantherClient(cfg panther.Config) {
	e.t.Helper()
	ps := httptest.NewServer(e.Fake.Handler())
	e.t.Cleanup(ps.Close)
	cfg.URL, cfg.Token, cfg.RatePerSecond = ps.URL+pantherfake.Path, pantherKey, -1
	c, err := panther.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.Panther, e.opts.Panther = c, c
	e.restart()
}

func deactivateOp() map[string]any {
	return patchOp(map[string]any{"op": "replace", "path": "active", "value": false})
}

func renameOp(given, family string) map[string]any {
	return patchOp(map[string]any{"op": "replace", "value": map[string]any{
		"name.givenName": given, "name.familyName": family}})
}

func addMemberOp(id string) map[string]any {
	return patchOp(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": id}}})
}

// TestPantherDownThenBack: while Panther is down a create answers 503 with Retry-After
// and leaves nothing; deprovisioning answers 2xx; other changes answer 503 but stay
// queued; /readyz counts them. When Panther comes back the background worker applies
// every queued change once.
func TestPantherDownThenBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	leaver := e.createUser("leaver@example.com", "Lea", "Ver")
	gone := e.createUser("gone@example.com", "Gone", "Soon")
	renamed := e.createUser("renamed@example.com", "Old", "Name")
	promoted := e.createUser("promoted@example.com", "Pro", "Moted")
	admins := e.createGroup("Panther Admins")
	invites := appliedCalls(e.Fake, "inviteUser")

	e.Fake.SetRateLimitRate(0, -1) // no Retry-After from Panther: the client retries at once
	e.Fake.Down(true)

	// A create is refused and rolled back: no record, no intent, nothing in Panther.
	r := e.do("POST", "/Users", newUser("newcomer@example.com", "New", "Comer"))
	r.scimErr(t, http.StatusServiceUnavailable, "")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra <= 0 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if ids := e.idsByUserName("newcomer@example.com"); len(ids) != 0 || e.pending() != 0 || e.recordCount() != 4 {
		t.Fatalf("refused create left records %v, %d intents", ids, e.pending())
	}

	// Deprovisioning is accepted and queued.
	d := e.do("PATCH", "/Users/"+leaver, deactivateOp()).must(t, http.StatusOK)
	if d.Body["active"] != false {
		t.Errorf("deactivation answer: %s", d.Raw)
	}
	e.do("DELETE", "/Users/"+gone, nil).must(t, http.StatusNoContent)
	e.do("GET", "/Users/"+gone, nil).scimErr(t, http.StatusNotFound, "")

	// Other changes answer 503 so the IdP retries, but are recorded and queued.
	e.do("PATCH", "/Users/"+renamed, renameOp("New", "Name")).scimErr(t, http.StatusServiceUnavailable, "")
	g := e.do("GET", "/Users/"+renamed, nil).must(t, http.StatusOK)
	if n, _ := g.Body["name"].(map[string]any); n["givenName"] != "New" {
		t.Errorf("queued rename not recorded: %s", g.Raw)
	}
	e.do("PATCH", "/Groups/"+admins, addMemberOp(promoted)).scimErr(t, http.StatusServiceUnavailable, "")
	if e.pending() != 4 {
		t.Fatalf("pending intents %d, want 4: %+v", e.pending(), e.pendingList())
	}

	rz := e.readyState().must(t, http.StatusServiceUnavailable)
	if rz.Body["pendingIntents"] != float64(4) {
		t.Errorf("readyz while down: %s", rz.Raw)
	}
	if age, ok := rz.Body["oldestPendingAgeSeconds"].(float64); !ok || age < 0 {
		t.Errorf("readyz oldestPendingAgeSeconds: %s", rz.Raw)
	}

	// The worker keeps trying in the background while Panther is down.
	waitFor(t, "a background retry", func() bool {
		for _, in := range e.pendingList() {
			if in.Attempts >= 2 {
				return true
			}
		}
		return false
	})
	if _, ok := e.Fake.UserByEmail("leaver@example.com"); !ok {
		t.Fatal("leaver removed while Panther was down?")
	}

	e.Fake.Down(false)
	e.waitDrained()

	if pantherCopies(e.Fake, "leaver@example.com")+pantherCopies(e.Fake, "gone@example.com") != 0 {
		t.Error("deprovisioning lost: a leaver is still in Panther")
	}
	if pu, _ := e.Fake.UserByEmail("renamed@example.com"); pu.GivenName != "New" {
		t.Errorf("rename not applied: %+v", pu)
	}
	if e.pantherRole("promoted@example.com") != "Admin" {
		t.Errorf("promotion not applied: role %q", e.pantherRole("promoted@example.com"))
	}
	if _, ok := e.Fake.UserByEmail("newcomer@example.com"); ok {
		t.Error("a refused create reached Panther")
	}
	if got := appliedCalls(e.Fake, "inviteUser"); got != invites {
		t.Errorf("inviteUser applied %d times, want %d (no re-invite)", got, invites)
	}
	rz = e.readyState().must(t, http.StatusOK)
	if rz.Body["pendingIntents"] != float64(0) || rz.Body["oldestPendingAgeSeconds"] != nil {
		t.Errorf("readyz after recovery: %s", rz.Raw)
	}

	// The IdP's retries now succeed, and its retried PATCH is a no-op.
	id := e.createUser("newcomer@example.com", "New", "Comer")
	e.do("PATCH", "/Users/"+renamed, renameOp("New", "Name")).must(t, http.StatusOK)
	if pantherCopies(e.Fake, "newcomer@example.com") != 1 || e.recordCount() != 4 {
		t.Errorf("after the IdP's retry: %d Panther copies, %d records", pantherCopies(e.Fake, "newcomer@example.com"), e.recordCount())
	}
	if u, _ := e.storedUser(id); u.Panther.ID == "" {
		t.Error("retried create not linked")
	}
}

// TestReadyzPendingAge: /readyz reports the pending intents and the age of the oldest
// while Panther is down.
func TestReadyzPendingAge(t *testing.T) {
	t.Parallel()
	const skew = 90 * time.Second
	e := newEnv(t, func(o *app.Options) {
		o.Provision.Now = func() time.Time { return time.Now().Add(-skew) }
	})
	a := e.createUser("a@example.com", "A", "A")
	b := e.createUser("b@example.com", "B", "B")
	rz := e.readyState().must(t, http.StatusOK)
	if rz.Body["pendingIntents"] != float64(0) || rz.Body["oldestPendingAgeSeconds"] != nil {
		t.Errorf("readyz with nothing pending: %s", rz.Raw)
	}
	e.Fake.SetRateLimitRate(0, -1)
	e.Fake.Down(true)
	e.do("DELETE", "/Users/"+a, nil).must(t, http.StatusNoContent)
	e.do("PATCH", "/Users/"+b, deactivateOp()).must(t, http.StatusOK)
	rz = e.readyState().must(t, http.StatusServiceUnavailable)
	checks, _ := rz.Body["checks"].(map[string]any)
	age, _ := rz.Body["oldestPendingAgeSeconds"].(float64)
	if rz.Body["pendingIntents"] != float64(2) || checks["panther"] != "unreachable" || age < skew.Seconds()-5 || age > skew.Seconds()+30 {
		t.Errorf("readyz while down: %s", rz.Raw)
	}
	if strings.Contains(rz.Raw, pantherKey) {
		t.Error("readyz shows the Panther key")
	}
	e.Fake.Down(false)
	e.waitDrained()
	if len(e.Fake.Users()) != 1 { // the console's administrator
		t.Errorf("deprovisioning lost: %+v", e.Fake.Users())
	}
}

// TestLeavingLastGroupWhileDown: with no default role, leaving the last mapped group
// is a deprovisioning. While Panther is down the group write answers 503 but the
// removal stays queued, and the IdP's retry does not undo it.
func TestLeavingLastGroupWhileDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withMapping(mappings.Mapping{Rules: []mappings.Rule{{Group: "Panther Admins", Role: "Admin"}}}))
	id := e.createUser("leaver@example.com", "Lea", "Ver")
	stay := e.createUser("stay@example.com", "St", "Ay")
	g := e.createGroup("Panther Admins", id, stay)
	if e.pantherRole("leaver@example.com") != "Admin" {
		t.Fatalf("setup: role %q", e.pantherRole("leaver@example.com"))
	}
	e.Fake.SetRateLimitRate(0, -1)
	e.Fake.Down(true)
	remove := patchOp(map[string]any{"op": "remove", "path": fmt.Sprintf("members[value eq %q]", id)})
	e.do("PATCH", "/Groups/"+g, remove).scimErr(t, http.StatusServiceUnavailable, "")
	if ps := e.pendingList(); len(ps) != 1 || ps[0].UserID != id {
		t.Fatalf("pending: %+v", ps)
	}
	e.do("PATCH", "/Groups/"+g, remove).must(t, http.StatusNoContent) // the IdP's retry: already recorded
	e.Fake.Down(false)
	e.waitDrained()
	if pantherCopies(e.Fake, "leaver@example.com") != 0 {
		t.Fatal("deprovisioning lost: the leaver is still in Panther")
	}
	if e.pantherRole("stay@example.com") != "Admin" {
		t.Errorf("the remaining member's role %q", e.pantherRole("stay@example.com"))
	}
	if u, ok := e.storedUser(id); !ok || !u.Active || u.Panther.ID != "" {
		t.Errorf("leaver's record %+v", u)
	}
}

// TestRateLimitStorm: with Panther answering 429 to most calls, an IdP that retries its
// 503s gets every change through, and Panther ends up holding each user exactly once
// with the right role.
func TestRateLimitStorm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	analysts := e.createGroup("Panther Analysts")

	// A 429 that outlasts the client's retries reaches the IdP as 503 with Panther's Retry-After.
	keep := e.createUser("keep@example.com", "Keep", "Me")
	e.Fake.FailNext("updateUser", 3, http.StatusTooManyRequests)
	r := e.do("PATCH", "/Users/"+keep, renameOp("Kept", "Me"))
	r.scimErr(t, http.StatusServiceUnavailable, "")
	if r.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want Panther's 1", r.Header.Get("Retry-After"))
	}

	e.Fake.SetRateLimitRate(0.6, -1)
	const n = 12
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = e.idpRetry("POST", "/Users", newUser(fmt.Sprintf("storm%d@example.com", i), "Storm", fmt.Sprint(i))).
				wantStatus(t, http.StatusCreated).str("id")
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i := range n / 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.idpRetry("PATCH", "/Groups/"+analysts, addMemberOp(ids[i])).wantStatus(t, http.StatusNoContent)
		}()
	}
	wg.Wait()
	e.idpRetry("PATCH", "/Users/"+ids[n-1], deactivateOp()).must(t, http.StatusOK)
	e.idpRetry("DELETE", "/Users/"+ids[n-2], nil).must(t, http.StatusNoContent)
	e.Fake.SetRateLimitRate(0, -1)
	e.waitDrained()

	if e.Fake.Count("inviteUser") == appliedCalls(e.Fake, "inviteUser") {
		t.Log("no invite was rate limited; the storm was mild")
	}
	for i := range n {
		email := fmt.Sprintf("storm%d@example.com", i)
		want := map[bool]string{true: "Analyst", false: "AnalystReadOnly"}[i < n/2]
		if i >= n-2 {
			want = ""
		}
		if got := e.pantherRole(email); got != want {
			t.Errorf("%s: Panther role %q, want %q", email, got, want)
		}
		if c := pantherCopies(e.Fake, email); c > 1 {
			t.Errorf("%s: %d Panther users", email, c)
		}
	}
	if got := appliedCalls(e.Fake, "inviteUser"); got != n+1 {
		t.Errorf("inviteUser applied %d times, want %d", got, n+1)
	}
	if e.recordCount() != n { // n created + keep - the deleted one
		t.Errorf("%d records, want %d", e.recordCount(), n)
	}
	if pu, _ := e.Fake.UserByEmail("keep@example.com"); pu.GivenName != "Kept" {
		t.Errorf("the queued rename was not applied: %+v", pu)
	}
}

// TestPantherSlowerThanTimeout: answers slower than the client's timeout fail the
// request as Panther being down does, and leave the same state behind.
func TestPantherSlowerThanTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.usePantherClient(panther.Config{Timeout: 250 * time.Millisecond, MaxRetries: 1, MaxElapsed: 2 * time.Second,
		BaseBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	create := func(email string) string {
		return e.idpRetry("POST", "/Users", newUser(email, "Slow", "Poke")).must(t, http.StatusCreated).str("id")
	}
	slow := create("slow@example.com")
	leaver := create("leaver@example.com")
	gone := create("gone@example.com")

	e.Fake.SetLatency(time.Second, 0)
	e.do("POST", "/Users", newUser("late@example.com", "Late", "Comer")).scimErr(t, http.StatusServiceUnavailable, "")
	e.do("PATCH", "/Users/"+slow, renameOp("Quick", "Poke")).scimErr(t, http.StatusServiceUnavailable, "")
	e.do("PATCH", "/Users/"+leaver, deactivateOp()).must(t, http.StatusOK)
	e.do("DELETE", "/Users/"+gone, nil).must(t, http.StatusNoContent)
	if e.pending() != 3 || len(e.idsByUserName("late@example.com")) != 0 {
		t.Fatalf("after timeouts: %d intents, late records %v", e.pending(), e.idsByUserName("late@example.com"))
	}
	e.Fake.SetLatency(0, 0)
	e.waitDrained()
	e.idpRetry("POST", "/Users", newUser("late@example.com", "Late", "Comer")).must(t, http.StatusCreated)

	want := map[string]string{"slow@example.com": "Quick", "late@example.com": "Late", consoleAdmin: "Console"}
	got := map[string]string{}
	for _, u := range e.Fake.Users() {
		got[u.Email] = u.GivenName
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Panther holds %v, want %v", got, want)
	}
	if appliedCalls(e.Fake, "inviteUser") != 4 {
		t.Errorf("inviteUser applied %d times, want 4", appliedCalls(e.Fake, "inviteUser"))
	}
}

// lossyPanther loses the answer of an inviteUser that Panther applied, as if the
// connection broke and the client's own check failed as well.
type lossyPanther struct {
	provision.Panther
	loseInvite atomic.Bool
}

func (p *lossyPanther) InviteUser(ctx context.Context, in provision.InviteInput) (provision.PantherUser, error) {
	u, err := p.Panther.InviteUser(ctx, in)
	if err == nil && p.loseInvite.CompareAndSwap(true, false) {
		return provision.PantherUser{}, fmt.Errorf("invite %s: answer lost: %w", in.Email, provision.ErrUnavailable)
	}
	return u, err
}

// TestDroppedResponses: Panther applies a mutation and the answer never arrives, on
// every mutation the bridge makes. After the client's retry, or the IdP's next attempt,
// there is exactly one Panther user and one record (none for a deletion).
func TestDroppedResponses(t *testing.T) {
	t.Parallel()
	const attempts = 3 // newEnv's client: MaxRetries 2
	cases := []struct {
		name string
		// act makes the change with faults set; it returns the user's id and email.
		act func(e *env, lossy *lossyPanther) (id, email string)
		// exists: the user should be in Panther (and have a record) at the end.
		exists     bool
		given      string
		role       string
		wantInvite int
	}{
		{"invite, answer dropped once", func(e *env, _ *lossyPanther) (string, string) {
			e.Fake.DropNext("inviteUser", 1)
			return e.createUser("drop@example.com", "Drop", "Once"), "drop@example.com"
		}, true, "Drop", "AnalystReadOnly", 1},
		{"invite, answer lost for good; the IdP retries the POST", func(e *env, lossy *lossyPanther) (string, string) {
			lossy.loseInvite.Store(true)
			// Normally 503 (rolled back), then the IdP's retry adopts the invited user. If
			// the start-up replay took the fresh intent first, the POST itself adopts.
			id := e.idpRetry("POST", "/Users", newUser("lost@example.com", "Lost", "Answer")).must(e.t, http.StatusCreated).str("id")
			if lossy.loseInvite.Load() {
				e.t.Fatal("no invite answer was lost")
			}
			return id, "lost@example.com"
		}, true, "Lost", "AnalystReadOnly", 1},
		{"updateUser, every answer dropped", func(e *env, _ *lossyPanther) (string, string) {
			id := e.createUser("upd@example.com", "Up", "Date")
			e.Fake.DropNext("updateUser", attempts)
			e.do("PATCH", "/Users/"+id, renameOp("Updated", "Date")).scimErr(e.t, http.StatusServiceUnavailable, "")
			e.do("PATCH", "/Users/"+id, renameOp("Updated", "Date")).must(e.t, http.StatusOK) // the IdP's retry
			return id, "upd@example.com"
		}, true, "Updated", "AnalystReadOnly", 1},
		{"updateUser of a role, every answer dropped", func(e *env, _ *lossyPanther) (string, string) {
			id := e.createUser("role@example.com", "Ro", "Le")
			g := e.createGroup("Panther Admins")
			e.Fake.DropNext("updateUser", attempts)
			e.do("PATCH", "/Groups/"+g, addMemberOp(id)).scimErr(e.t, http.StatusServiceUnavailable, "")
			e.do("PATCH", "/Groups/"+g, addMemberOp(id)).must(e.t, http.StatusNoContent)
			return id, "role@example.com"
		}, true, "Ro", "Admin", 1},
		{"deleteUser on DELETE, answer dropped once", func(e *env, _ *lossyPanther) (string, string) {
			id := e.createUser("del@example.com", "De", "Lete")
			e.Fake.DropNext("deleteUser", 1)
			e.do("DELETE", "/Users/"+id, nil).must(e.t, http.StatusNoContent)
			return id, "del@example.com"
		}, false, "", "", 1},
		{"deleteUser on DELETE, every answer dropped", func(e *env, _ *lossyPanther) (string, string) {
			id := e.createUser("del@example.com", "De", "Lete")
			e.Fake.DropNext("deleteUser", attempts)
			e.do("DELETE", "/Users/"+id, nil).must(e.t, http.StatusNoContent)
			e.do("DELETE", "/Users/"+id, nil).scimErr(e.t, http.StatusNotFound, "")
			return id, "del@example.com"
		}, false, "", "", 1},
		{"deleteUser on deactivation, every answer dropped", func(e *env, _ *lossyPanther) (string, string) {
			id := e.createUser("off@example.com", "Off", "Board")
			e.Fake.DropNext("deleteUser", attempts)
			e.do("PATCH", "/Users/"+id, deactivateOp()).must(e.t, http.StatusOK)
			return id, "off@example.com"
		}, false, "", "", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			lossy := &lossyPanther{}
			e := newEnv(t, func(o *app.Options) { lossy.Panther, o.Panther = o.Panther, lossy })
			id, email := c.act(e, lossy)
			e.waitDrained()
			dropped := 0
			for _, call := range e.Fake.Calls() {
				if call.Dropped {
					dropped++
				}
			}
			if dropped == 0 && !strings.Contains(c.name, "lost for good") {
				t.Fatal("no answer was dropped")
			}
			if got := pantherCopies(e.Fake, email); got != map[bool]int{true: 1, false: 0}[c.exists] {
				t.Fatalf("%d Panther users with %s: %+v", got, email, e.Fake.Users())
			}
			if got := appliedCalls(e.Fake, "inviteUser"); got != c.wantInvite {
				t.Errorf("inviteUser applied %d times, want %d", got, c.wantInvite)
			}
			u, ok := e.storedUser(id)
			deleted := strings.HasPrefix(c.name, "deleteUser on DELETE")
			if ok == deleted || e.recordCount() != map[bool]int{true: 0, false: 1}[deleted] {
				t.Fatalf("record present %v, %d records", ok, e.recordCount())
			}
			if !c.exists {
				return
			}
			pu, _ := e.Fake.UserByEmail(email)
			if pu.GivenName != c.given || pu.RoleName != c.role || u.Panther.ID != pu.ID {
				t.Errorf("Panther user %+v, link %+v; want givenName %q role %q", pu, u.Panther, c.given, c.role)
			}
		})
	}
}

// TestConcurrentPatches (run with -race): concurrent PATCHes adding different members to
// one group, and concurrent PATCHes of different attributes of one user, all land, and
// Panther's roles and names match the final records.
func TestConcurrentPatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Fake.SetLatency(0, 5*time.Millisecond) // interleave the Panther calls

	const n = 16
	members := make([]string, n)
	for i := range n {
		members[i] = e.createUser(fmt.Sprintf("m%d@example.com", i), "Mem", fmt.Sprint(i))
	}
	admins := e.createGroup("Panther Admins")
	var wg sync.WaitGroup
	for _, id := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.idpRetry("PATCH", "/Groups/"+admins, addMemberOp(id)).wantStatus(t, http.StatusNoContent)
		}()
	}
	wg.Wait()

	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:"
	u := e.createUser("busy@example.com", "Busy", "Bee")
	attrs := map[string]string{
		"name.givenName": "Given", "name.familyName": "Family", "name.middleName": "Middle",
		"displayName": "Display", "nickName": "Nick", "title": "Title", "userType": "Employee",
		"preferredLanguage": "en-GB", "locale": "en-GB", "timezone": "Europe/London",
		ent + "department": "Security", ent + "employeeNumber": "42", ent + "costCenter": "CC1",
		ent + "organization": "Org", ent + "division": "Div",
	}
	for path, v := range attrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op := patchOp(map[string]any{"op": "replace", "path": path, "value": v})
			e.idpRetry("PATCH", "/Users/"+u, op).wantStatus(t, http.StatusOK)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	e.waitDrained()

	g := e.do("GET", "/Groups/"+admins, nil).must(t, http.StatusOK)
	got, _ := g.Body["members"].([]any)
	if len(got) != n {
		t.Errorf("group has %d members, want %d: %s", len(got), n, g.Raw)
	}
	for i := range n {
		if r := e.pantherRole(fmt.Sprintf("m%d@example.com", i)); r != "Admin" {
			t.Errorf("m%d: Panther role %q, want Admin", i, r)
		}
	}

	rec := e.do("GET", "/Users/"+u, nil).must(t, http.StatusOK)
	for path, v := range attrs {
		var cur any = rec.Body
		if rest, ok := strings.CutPrefix(path, ent); ok {
			cur, path = rec.Body[strings.TrimSuffix(ent, ":")], rest
		}
		for _, part := range strings.Split(path, ".") {
			m, _ := cur.(map[string]any)
			cur = m[part]
		}
		if cur != v {
			t.Errorf("%s = %v, want %q (a concurrent PATCH was lost)", path, cur, v)
		}
	}
	pu, _ := e.Fake.UserByEmail("busy@example.com")
	if pu.GivenName != "Given" || pu.FamilyName != "Family" || pu.RoleName != "AnalystReadOnly" {
		t.Errorf("Panther user %+v does not match the record", pu)
	}
	if pantherCopies(e.Fake, "busy@example.com") != 1 || appliedCalls(e.Fake, "inviteUser") != n+1 {
		t.Errorf("invites: %d", appliedCalls(e.Fake, "inviteUser"))
	}
}

// interleavingPanther runs a function once, in the middle of the next lookup of an
// email: after Panther has answered it and before the bridge acts on the answer.
type interleavingPanther struct {
	provision.Panther
	mu     sync.Mutex
	email  string
	during func()
}

func (p *interleavingPanther) UserByEmail(ctx context.Context, email string) (provision.PantherUser, error) {
	u, err := p.Panther.UserByEmail(ctx, email)
	p.mu.Lock()
	f := p.during
	if !strings.EqualFold(email, p.email) {
		f = nil
	}
	if f != nil {
		p.during = nil
	}
	p.mu.Unlock()
	if f != nil {
		f()
	}
	return u, err
}

// TestRehireDuringQueuedRemoval: a user is deleted while Panther fails the deletion
// (queued), and the IdP creates them again at once. The re-create looks the email up
// and finds the old Panther user; the queued removal runs right then. Whatever the
// order, the new record must end up linked to a Panther user that exists.
func TestRehireDuringQueuedRemoval(t *testing.T) {
	t.Parallel()
	ip := &interleavingPanther{}
	e := newEnv(t, func(o *app.Options) { ip.Panther, o.Panther = o.Panther, ip })
	old := e.createUser("rehire@example.com", "Re", "Hire")
	e.Fake.SetRateLimitRate(0, -1)
	e.Fake.FailNext("deleteUser", 3, http.StatusServiceUnavailable)
	e.do("DELETE", "/Users/"+old, nil).must(t, http.StatusNoContent)
	if pantherCopies(e.Fake, "rehire@example.com") != 1 || e.pending() != 1 {
		t.Fatal("setup: the deletion should be queued")
	}

	// The queued removal runs while the re-create is between its lookup and its link.
	removal := make(chan error, 1)
	ip.mu.Lock()
	ip.email = "rehire@example.com"
	ip.during = func() {
		go func() { removal <- e.App.Service.SyncUser(context.Background(), old, false) }()
		select {
		case <-removal:
			removal <- nil
		case <-time.After(300 * time.Millisecond): // serialised behind the re-create: fine too
		}
	}
	ip.mu.Unlock()
	id := e.createUser("rehire@example.com", "Re", "Hire")
	select {
	case err := <-removal:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the removal never ran")
	}
	e.waitDrained()

	u, ok := e.storedUser(id)
	pu, found := e.Fake.UserByEmail("rehire@example.com")
	if !ok || !found || u.Panther.ID != pu.ID {
		t.Fatalf("the rehired user has no Panther access: link %+v, Panther user %+v (found %v)", u.Panther, pu, found)
	}
	if pantherCopies(e.Fake, "rehire@example.com") != 1 {
		t.Errorf("%d Panther users", pantherCopies(e.Fake, "rehire@example.com"))
	}
}

// TestDeactivationRacingStartupReplay: the process died after Panther invited a user and
// before the link was saved. At the restart the IdP deactivates the user before the
// start-up replay gets to the leftover intent. The deactivation's own sync must still
// treat the intent as uncertain, look the email up and remove the invited user.
func TestDeactivationRacingStartupReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	recorded := time.Now().UTC() // the invite is recorded before it is sent
	id := e.createUser("racer@example.com", "Ra", "Cer")
	if err := e.App.Close(); err != nil {
		t.Fatal(err)
	}
	// The state a kill after the invite leaves: Panther has the user, the record has no
	// link, and the intent has never failed; it records the invite, made before it.
	st, err := store.Open(e.storePath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx provision.Tx) error {
		u, err := tx.User(id)
		if err != nil {
			return err
		}
		u.Panther = provision.PantherLink{}
		if err := tx.PutUser(u); err != nil {
			return err
		}
		return tx.PutIntent(provision.Intent{UserID: id, Since: time.Now().UTC(), Gen: 1,
			Invites: []provision.InviteAttempt{{Email: "racer@example.com", At: recorded}}})
	})
	if err := errors.Join(err, st.Close()); err != nil {
		t.Fatal(err)
	}

	// Slow Panther down so that the deactivation, which needs no Panther call when it
	// believes the user was never invited, overtakes the start-up work.
	e.Fake.SetLatency(300*time.Millisecond, 0)
	e.metrics = app.NewMetrics()
	e.start()
	e.do("PATCH", "/Users/"+id, deactivateOp()).must(t, http.StatusOK)
	e.Fake.SetLatency(0, 0)
	e.waitDrained()
	waitFor(t, "the invited user to be removed", func() bool { return pantherCopies(e.Fake, "racer@example.com") == 0 })
}
