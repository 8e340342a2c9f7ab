package panther_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
)

const token = "tok-SECRET-4f1d9c2e7a"

// recorder is an Observer that keeps what it is told and can run a hook on each call.
type recorder struct {
	mu      sync.Mutex
	calls   []string // "op outcome"
	retries []string // "op reason"
	onCall  func(op, outcome string)
}

func (r *recorder) Call(op, outcome string, _ time.Duration) {
	r.mu.Lock()
	r.calls = append(r.calls, op+" "+outcome)
	hook := r.onCall
	r.mu.Unlock()
	if hook != nil {
		hook(op, outcome)
	}
}

func (r *recorder) Retry(op, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retries = append(r.retries, op+" "+reason)
}

func (r *recorder) snapshot() (calls, retries []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...), append([]string(nil), r.retries...)
}

// testConfig is a Config with small waits, so that retry tests stay fast.
func testConfig(url string) panther.Config {
	return panther.Config{
		URL:           url,
		Token:         token,
		Timeout:       2 * time.Second,
		MaxRetries:    4,
		MaxElapsed:    5 * time.Second,
		BaseBackoff:   2 * time.Millisecond,
		MaxBackoff:    20 * time.Millisecond,
		RatePerSecond: -1,
	}
}

// setup starts a fake and a client for it. change may adjust the client's config.
func setup(t *testing.T, opts pantherfake.Options, change func(*panther.Config)) (*pantherfake.Server, *panther.Client, *recorder) {
	t.Helper()
	opts.APIKey = token
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = -1 // no Retry-After unless a test asks: retries stay on the short backoff
	}
	fake := pantherfake.New(opts)
	url, stop, err := fake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	cfg := testConfig(url)
	rec := &recorder{}
	cfg.Observer = rec
	if change != nil {
		change(&cfg)
	}
	c, err := panther.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fake, c, rec
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func byName(name string) provision.RoleRef { return provision.RoleRef{Value: name} }

func ptr[T any](v T) *T { return &v }

func TestEveryOperation(t *testing.T) {
	fake, c, _ := setup(t, pantherfake.Options{}, nil)
	ctx := ctxT(t)

	roles, err := c.Roles(ctx)
	if err != nil || len(roles) != 3 {
		t.Fatalf("Roles = %v, %v", roles, err)
	}
	analyst, err := c.RoleByName(ctx, "analyst")
	if err != nil || analyst.Name != "Analyst" || len(analyst.Permissions) == 0 {
		t.Fatalf("RoleByName = %+v, %v", analyst, err)
	}
	if r, err := c.RoleByID(ctx, analyst.ID); err != nil || r.Name != "Analyst" {
		t.Fatalf("RoleByID = %+v, %v", r, err)
	}

	u, err := c.InviteUser(ctx, provision.InviteInput{Email: "ada@example.com", GivenName: "Ada", FamilyName: "Lovelace", Role: byName("Analyst")})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == "" || u.Email != "ada@example.com" || u.GivenName != "Ada" || u.FamilyName != "Lovelace" ||
		u.RoleID != analyst.ID || u.RoleName != "Analyst" || u.Status != "INVITED" || !u.Enabled || u.CreatedAt.IsZero() {
		t.Fatalf("invited %+v", u)
	}
	admin, err := c.RoleByName(ctx, "Admin")
	if err != nil {
		t.Fatal(err)
	}
	u2, err := c.InviteUser(ctx, provision.InviteInput{Email: "bob@example.com", GivenName: "Bob", FamilyName: "B",
		Role: provision.RoleRef{ByID: true, Value: admin.ID}})
	if err != nil || u2.RoleName != "Admin" {
		t.Fatalf("invite by role id = %+v, %v", u2, err)
	}

	got, err := c.UserByID(ctx, u.ID)
	if err != nil || got != u {
		t.Fatalf("UserByID = %+v, %v; want %+v", got, err, u)
	}
	got, err = c.UserByEmail(ctx, "ADA@example.com")
	if err != nil || got.ID != u.ID {
		t.Fatalf("UserByEmail = %+v, %v", got, err)
	}
	all, err := c.Users(ctx)
	if err != nil || len(all) != 2 || all[0].ID != u.ID || all[1].ID != u2.ID {
		t.Fatalf("Users = %+v, %v", all, err)
	}

	// Only the given fields change.
	upd, err := c.UpdateUser(ctx, provision.UpdateInput{ID: u.ID, FamilyName: ptr("King")})
	if err != nil || upd.FamilyName != "King" || upd.GivenName != "Ada" || upd.RoleName != "Analyst" {
		t.Fatalf("UpdateUser names = %+v, %v", upd, err)
	}
	upd, err = c.UpdateUser(ctx, provision.UpdateInput{ID: u.ID, Role: &provision.RoleRef{ByID: true, Value: admin.ID},
		Email: ptr("ada.king@example.com"), GivenName: ptr("Augusta")})
	if err != nil || upd.RoleID != admin.ID || upd.Email != "ada.king@example.com" || upd.GivenName != "Augusta" || upd.FamilyName != "King" {
		t.Fatalf("UpdateUser role+email = %+v, %v", upd, err)
	}
	if v := fake.Calls()[len(fake.Calls())-1].Variables; fmt.Sprint(v["input"]) != fmt.Sprintf(
		"map[email:ada.king@example.com givenName:Augusta id:%s role:map[kind:ID value:%s]]", u.ID, admin.ID) {
		t.Errorf("updateUser sent %v; absent fields must be left out", v)
	}
	same, err := c.UpdateUser(ctx, provision.UpdateInput{ID: u.ID})
	if err != nil || same != upd {
		t.Fatalf("empty UpdateUser = %+v, %v", same, err)
	}

	if err := c.DeleteUser(ctx, u2.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := fake.UserByEmail("bob@example.com"); ok {
		t.Fatal("deleted user still in Panther")
	}

	role, err := c.CreateRole(ctx, "Provisioners", []string{"UserRead", "UserModify"})
	if err != nil || role.Name != "Provisioners" || strings.Join(role.Permissions, ",") != "UserRead,UserModify" {
		t.Fatalf("CreateRole = %+v, %v", role, err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestLegacyURL(t *testing.T) {
	fake := pantherfake.New(pantherfake.Options{APIKey: token, Seed: 1})
	url, stop, err := fake.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, err := panther.New(testConfig(strings.Replace(url, pantherfake.Path, pantherfake.LegacyPath, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Roles(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestErrorClasses(t *testing.T) {
	tests := []struct {
		name    string
		opts    pantherfake.Options
		cfg     func(*panther.Config)
		prepare func(*pantherfake.Server)
		call    func(context.Context, *panther.Client) error
		want    error
		outcome string
		msg     string // part of Panther's message the error must keep
		calls   int    // requests the fake must have seen for the operation
	}{
		{
			name: "not found",
			call: func(ctx context.Context, c *panther.Client) error { _, err := c.UserByID(ctx, "nope"); return err },
			want: panther.ErrNotFound, outcome: "not_found", msg: "not found", calls: 1,
		},
		{
			name:    "conflict",
			prepare: func(f *pantherfake.Server) { f.AddUser("dup@example.com", "D", "Up", "Admin") },
			call: func(ctx context.Context, c *panther.Client) error {
				_, err := c.InviteUser(ctx, provision.InviteInput{Email: "DUP@example.com", GivenName: "D", FamilyName: "Up", Role: byName("Admin")})
				return err
			},
			want: panther.ErrConflict, outcome: "conflict", msg: "already exists", calls: 1,
		},
		{
			name: "invalid email",
			call: func(ctx context.Context, c *panther.Client) error {
				_, err := c.InviteUser(ctx, provision.InviteInput{Email: "not-an-address", GivenName: "A", FamilyName: "B", Role: byName("Admin")})
				return err
			},
			want: panther.ErrInvalid, outcome: "invalid", msg: `invalid email address "not-an-address"`, calls: 1,
		},
		{
			name: "unknown role",
			call: func(ctx context.Context, c *panther.Client) error {
				_, err := c.InviteUser(ctx, provision.InviteInput{Email: "a@example.com", GivenName: "A", FamilyName: "B", Role: byName("Wizards")})
				return err
			},
			want: panther.ErrInvalid, outcome: "invalid", msg: "Wizards", calls: 1,
		},
		{
			name: "unknown permission",
			call: func(ctx context.Context, c *panther.Client) error {
				_, err := c.CreateRole(ctx, "x", []string{"FlyPlanes"})
				return err
			},
			want: panther.ErrInvalid, outcome: "invalid", msg: "FlyPlanes", calls: 1,
		},
		{
			name: "unauthorized",
			cfg:  func(c *panther.Config) { c.Token = "wrong-token-value" },
			call: func(ctx context.Context, c *panther.Client) error { _, err := c.Users(ctx); return err },
			want: panther.ErrUnauthorized, outcome: "unauthorized", msg: "X-API-Key", calls: 1,
		},
		{
			// The key is valid but lacks a permission: the error names the one Panther's
			// console shows, which the README's troubleshooting quotes.
			name: "token without Manage Users",
			opts: pantherfake.Options{TokenPermissions: []string{"UserRead"}},
			call: func(ctx context.Context, c *panther.Client) error {
				_, err := c.InviteUser(ctx, provision.InviteInput{Email: "a@example.com", GivenName: "A", FamilyName: "B", Role: byName("Admin")})
				return err
			},
			want: panther.ErrUnauthorized, outcome: "unauthorized", msg: "(the API token needs Panther's Manage Users permission)", calls: 1,
		},
		{
			name: "token without Read User Info",
			opts: pantherfake.Options{TokenPermissions: []string{"UserModify"}},
			call: func(ctx context.Context, c *panther.Client) error { _, err := c.Users(ctx); return err },
			want: panther.ErrUnauthorized, outcome: "unauthorized", msg: "(the API token needs Panther's Read User Info permission)", calls: 1,
		},
		{
			name:    "rate limited after retries",
			cfg:     func(c *panther.Config) { c.MaxRetries = 2 },
			prepare: func(f *pantherfake.Server) { f.FailNext("users", 10, http.StatusTooManyRequests) },
			call:    func(ctx context.Context, c *panther.Client) error { _, err := c.Users(ctx); return err },
			want:    panther.ErrRateLimited, outcome: "rate_limited", msg: "Too Many Requests", calls: 3,
		},
		{
			name:    "5xx after retries",
			cfg:     func(c *panther.Config) { c.MaxRetries = 3 },
			prepare: func(f *pantherfake.Server) { f.FailNext("roles", 10, http.StatusBadGateway) },
			call:    func(ctx context.Context, c *panther.Client) error { _, err := c.Roles(ctx); return err },
			want:    panther.ErrUnavailable, outcome: "unavailable", msg: "Bad Gateway", calls: 4,
		},
		{
			name:    "down",
			cfg:     func(c *panther.Config) { c.MaxRetries = 1 },
			prepare: func(f *pantherfake.Server) { f.Down(true) },
			call:    func(ctx context.Context, c *panther.Client) error { _, err := c.RoleByName(ctx, "Admin"); return err },
			want:    panther.ErrUnavailable, outcome: "unavailable", msg: "Service Unavailable", calls: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, c, rec := setup(t, tt.opts, tt.cfg)
			if tt.prepare != nil {
				tt.prepare(fake)
			}
			err := tt.call(ctxT(t), c)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not keep Panther's message %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error %q contains the token", err)
			}
			if got := len(fake.Calls()); got != tt.calls {
				t.Errorf("fake saw %d requests, want %d", got, tt.calls)
			}
			calls, _ := rec.snapshot()
			if len(calls) != 1 || !strings.HasSuffix(calls[0], " "+tt.outcome) {
				t.Errorf("observer calls %v, want one with outcome %s", calls, tt.outcome)
			}
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	fake, c, rec := setup(t, pantherfake.Options{RetryAfter: time.Second}, nil)
	fake.FailNext("users", 1, http.StatusTooManyRequests)
	if _, err := c.Users(ctxT(t)); err != nil {
		t.Fatalf("429 then success: %v", err)
	}
	calls := fake.Calls()
	if len(calls) != 2 || calls[0].Status != 429 || calls[1].Status != 200 {
		t.Fatalf("calls %+v", calls)
	}
	// The client's own backoff is at most 20ms here: only Retry-After explains a 1s gap.
	if gap := calls[1].Time.Sub(calls[0].Time); gap < 950*time.Millisecond {
		t.Errorf("retried after %s, want Retry-After's 1s", gap)
	}
	if _, retries := rec.snapshot(); len(retries) != 1 || retries[0] != "users status_429" {
		t.Errorf("retries %v", retries)
	}
	if st := c.Stats()["users"]; st["ok"] != 1 || st[panther.RetriesKey] != 1 {
		t.Errorf("stats %v", st)
	}
}

func TestRetryAfterBeyondBudgetIsReturned(t *testing.T) {
	fake, c, _ := setup(t, pantherfake.Options{RetryAfter: 30 * time.Second}, func(c *panther.Config) { c.MaxElapsed = time.Second })
	fake.FailNext("users", 1, http.StatusTooManyRequests)
	start := time.Now()
	_, err := c.Users(ctxT(t))
	if !errors.Is(err, panther.ErrRateLimited) || provision.RetryAfter(err) != 30*time.Second {
		t.Fatalf("err %v, RetryAfter %s", err, provision.RetryAfter(err))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waited %s although Retry-After (30s) exceeds MaxElapsed", d)
	}
}

func TestTimeout(t *testing.T) {
	_, c, rec := setup(t, pantherfake.Options{Latency: 3 * time.Second}, func(c *panther.Config) {
		c.Timeout = 50 * time.Millisecond
		c.MaxRetries = 1
	})
	start := time.Now()
	_, err := c.Roles(ctxT(t))
	if !errors.Is(err, panther.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want unavailable and a deadline", err)
	}
	if !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Errorf("err %q", err)
	}
	// Without the timeout, two attempts would take 6s.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("two 50ms attempts took %s", d)
	}
	if _, retries := rec.snapshot(); len(retries) != 1 || retries[0] != "roles timeout" {
		t.Errorf("retries %v", retries)
	}
}

func TestCallerCancellationStopsRetries(t *testing.T) {
	fake, c, _ := setup(t, pantherfake.Options{}, func(c *panther.Config) {
		c.MaxRetries = 100
		c.BaseBackoff, c.MaxBackoff = 50*time.Millisecond, 50*time.Millisecond
	})
	fake.Down(true)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Users(ctx)
	if !errors.Is(err, panther.ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
	// Without the cancellation, 100 retries would take 5s.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s after the caller's deadline", d)
	}
}

func TestMaxElapsedBoundsRetries(t *testing.T) {
	fake, c, _ := setup(t, pantherfake.Options{}, func(c *panther.Config) {
		c.MaxRetries = 1000
		c.MaxElapsed = 400 * time.Millisecond
		c.BaseBackoff, c.MaxBackoff = 20*time.Millisecond, 40*time.Millisecond
	})
	fake.Down(true)
	start := time.Now()
	_, err := c.Users(ctxT(t))
	if !errors.Is(err, panther.ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
	// Without the bound, 1000 retries would take 30s or more.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("MaxElapsed 400ms, call took %s", d)
	}
	if n := fake.Count("users"); n < 2 {
		t.Errorf("only %d attempts in 400ms", n)
	}
}

func TestInviteDroppedResponse(t *testing.T) {
	fake, c, _ := setup(t, pantherfake.Options{}, nil)
	fake.DropNext("inviteUser", 1)
	u, err := c.InviteUser(ctxT(t), provision.InviteInput{Email: "drop@example.com", GivenName: "D", FamilyName: "Rop", Role: byName("Analyst")})
	if err != nil {
		t.Fatalf("InviteUser: %v", err)
	}
	users := fake.Users()
	if len(users) != 1 || users[0].ID != u.ID || u.Email != "drop@example.com" || u.RoleName != "Analyst" {
		t.Fatalf("Panther has %+v; client returned %+v", users, u)
	}
	if fake.Count("inviteUser") != 1 || fake.Count("userByEmail") != 1 {
		t.Errorf("invites %d, lookups %d; want 1 and 1 (the lookup finds the user)", fake.Count("inviteUser"), fake.Count("userByEmail"))
	}
	if st := c.Stats()["inviteUser"]; st["ok"] != 1 {
		t.Errorf("stats %v", st)
	}
}

// An invite whose answer is lost, for an email a Panther user already had, did not
// create that user: the client's lookup finds it, and reports a conflict rather than
// handing back someone else's account as the one it invited (issue 14).
func TestInviteDroppedResponseForAnExistingUser(t *testing.T) {
	fake, c, _ := setup(t, pantherfake.Options{}, nil)
	existing, err := fake.AddUser("boss@example.com", "Bo", "Ss", "Admin")
	if err != nil {
		t.Fatal(err)
	}
	fake.DropNext("inviteUser", 1)
	u, err := c.InviteUser(ctxT(t), provision.InviteInput{Email: "boss@example.com", GivenName: "B", FamilyName: "S", Role: byName("Analyst")})
	if !errors.Is(err, provision.ErrConflict) || u.ID != "" {
		t.Fatalf("InviteUser = %+v, %v; want ErrConflict", u, err)
	}
	if got, _ := fake.UserByEmail("boss@example.com"); got != existing {
		t.Errorf("the existing user changed: %+v", got)
	}
}

func TestInviteRetrySafety(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		invites int
		lookups int
	}{
		// 429 and 503 reject a request before processing: the invite is simply sent again.
		{"429 is re-sent without a lookup", http.StatusTooManyRequests, 2, 0},
		{"503 is re-sent without a lookup", http.StatusServiceUnavailable, 2, 0},
		// 500 may come after the work was done: look first, then send again.
		{"500 is looked up, then re-sent", http.StatusInternalServerError, 2, 1},
		{"504 is looked up, then re-sent", http.StatusGatewayTimeout, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, c, _ := setup(t, pantherfake.Options{}, nil)
			fake.FailNext("inviteUser", 1, tt.status)
			u, err := c.InviteUser(ctxT(t), provision.InviteInput{Email: "r@example.com", GivenName: "R", FamilyName: "E", Role: byName("Admin")})
			if err != nil || u.ID == "" {
				t.Fatalf("InviteUser = %+v, %v", u, err)
			}
			if len(fake.Users()) != 1 {
				t.Errorf("%d users", len(fake.Users()))
			}
			if fake.Count("inviteUser") != tt.invites || fake.Count("userByEmail") != tt.lookups {
				t.Errorf("invites %d lookups %d, want %d %d", fake.Count("inviteUser"), fake.Count("userByEmail"), tt.invites, tt.lookups)
			}
		})
	}
}

// TestInviteConflictAfterAmbiguousAttempt covers a first attempt that lands after the lookup:
// the re-sent invite then conflicts with it, and a second lookup returns it.
func TestInviteConflictAfterAmbiguousAttempt(t *testing.T) {
	fake, c, rec := setup(t, pantherfake.Options{}, nil)
	fake.FailNext("inviteUser", 1, http.StatusInternalServerError)
	var once sync.Once
	var late provision.PantherUser
	rec.onCall = func(op, outcome string) {
		if op == "userByEmail" && outcome == "not_found" {
			once.Do(func() { late, _ = fake.AddUser("late@example.com", "L", "Ate", "Admin") })
		}
	}
	u, err := c.InviteUser(ctxT(t), provision.InviteInput{Email: "late@example.com", GivenName: "L", FamilyName: "Ate", Role: byName("Admin")})
	if err != nil || u.ID != late.ID {
		t.Fatalf("InviteUser = %+v, %v; want the user %s", u, err, late.ID)
	}
	if got := strings.Join(opsOf(fake), ","); got != "inviteUser,userByEmail,inviteUser,userByEmail" {
		t.Errorf("requests %s", got)
	}
}

func opsOf(fake *pantherfake.Server) []string {
	var ops []string
	for _, c := range fake.Calls() {
		ops = append(ops, c.Op)
	}
	return ops
}

func TestInviteNotSentIsRetriedWithoutLookup(t *testing.T) {
	// A port that refuses connections: the request is never written, so re-sending is safe.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rec := &recorder{}
	cfg := testConfig("http://" + addr + "/public/graphql")
	cfg.MaxRetries, cfg.Observer = 2, rec
	c, err := panther.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.InviteUser(ctxT(t), provision.InviteInput{Email: "n@example.com", GivenName: "N", FamilyName: "S", Role: byName("Admin")})
	if !errors.Is(err, panther.ErrUnavailable) || !strings.Contains(err.Error(), "request not sent") {
		t.Fatalf("err %v", err)
	}
	calls, retries := rec.snapshot()
	if strings.Join(calls, ",") != "inviteUser unavailable" || len(retries) != 2 {
		t.Errorf("calls %v retries %v; want two plain re-sends and no lookup", calls, retries)
	}
}

func TestDeleteDroppedResponse(t *testing.T) {
	fake, c, _ := setup(t, pantherfake.Options{}, nil)
	u, _ := fake.AddUser("gone@example.com", "G", "One", "Admin")
	fake.DropNext("deleteUser", 1)
	if err := c.DeleteUser(ctxT(t), u.ID); err != nil {
		t.Fatalf("DeleteUser after a dropped answer: %v", err)
	}
	if fake.Count("deleteUser") != 2 || len(fake.Users()) != 0 {
		t.Errorf("deletes %d, users %d", fake.Count("deleteUser"), len(fake.Users()))
	}
	// Without an ambiguous attempt, not found is reported.
	if err := c.DeleteUser(ctxT(t), u.ID); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("deleting a missing user: %v", err)
	}
}

func TestUpdateDroppedResponseIsRetried(t *testing.T) {
	fake, c, _ := setup(t, pantherfake.Options{}, nil)
	u, _ := fake.AddUser("up@example.com", "U", "P", "AnalystReadOnly")
	fake.DropNext("updateUser", 1)
	got, err := c.UpdateUser(ctxT(t), provision.UpdateInput{ID: u.ID, Role: &provision.RoleRef{Value: "Analyst"}})
	if err != nil || got.RoleName != "Analyst" {
		t.Fatalf("UpdateUser = %+v, %v", got, err)
	}
	if fake.Count("updateUser") != 2 {
		t.Errorf("updates %d, want 2", fake.Count("updateUser"))
	}
}

func TestCreateRoleDroppedResponse(t *testing.T) {
	fake, c, _ := setup(t, pantherfake.Options{}, nil)
	fake.DropNext("createRole", 1)
	r, err := c.CreateRole(ctxT(t), "Auditors", []string{"UserRead"})
	if err != nil || r.Name != "Auditors" {
		t.Fatalf("CreateRole = %+v, %v", r, err)
	}
	n := 0
	for _, role := range fake.Roles() {
		if role.Name == "Auditors" {
			n++
		}
	}
	if n != 1 || fake.Count("createRole") != 1 || fake.Count("roleByName") != 1 {
		t.Errorf("%d Auditors roles, %d creates, %d lookups", n, fake.Count("createRole"), fake.Count("roleByName"))
	}
}

func TestConcurrencyLimit(t *testing.T) {
	fake, c, _ := setup(t, pantherfake.Options{Latency: 25 * time.Millisecond}, func(c *panther.Config) { c.MaxConcurrent = 3 })
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i%2 == 0 {
				_, err = c.Users(ctx)
			} else {
				_, err = c.RoleByName(ctx, "Admin")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := fake.MaxInFlight(); m > 3 || m < 2 {
		t.Errorf("max in flight %d, want at most 3 (and the limit reached)", m)
	}
	st := c.Stats()
	if st["users"]["ok"] != 12 || st["roleByName"]["ok"] != 12 {
		t.Errorf("stats %v", st)
	}
}

func TestRateLimit(t *testing.T) {
	fake, c, _ := setup(t, pantherfake.Options{}, func(c *panther.Config) {
		c.RatePerSecond, c.Burst = 40, 1
	})
	ctx := ctxT(t)
	start := time.Now()
	var wg sync.WaitGroup
	for range 9 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Roles(ctx)
		}()
	}
	wg.Wait()
	// 9 requests at 40/s with a burst of 1: the last leaves 8/40 s = 200ms after the first.
	if d := time.Since(start); d < 180*time.Millisecond {
		t.Errorf("9 requests took %s, want >= 200ms at 40/s", d)
	}
	if fake.Count("roles") != 9 {
		t.Errorf("%d requests", fake.Count("roles"))
	}
}

// echoServer answers every request with a body made by answer, over real loopback HTTP.
func echoServer(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(answer)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/public/graphql"
}

func TestTokenNeverInErrors(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
		want   error
	}{
		{"graphql error echoing the key", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"data":null,"errors":[{"message":"bad key %s for user","extensions":{"code":"BAD_USER_INPUT"}}]}`, r.Header.Get("X-API-Key"))
		}, panther.ErrInvalid},
		{"401 echoing the key", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(401)
			fmt.Fprintf(w, `{"message":"token %s rejected"}`, r.Header.Get("X-API-Key"))
		}, panther.ErrUnauthorized},
		{"500 text echoing the key", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			fmt.Fprintf(w, "<html>oops, X-API-Key: %s</html>", r.Header.Get("X-API-Key"))
		}, panther.ErrUnavailable},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/steal?k="+r.Header.Get("X-API-Key"), http.StatusTemporaryRedirect)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(echoServer(t, tt.answer))
			cfg.MaxRetries = 1
			c, err := panther.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.UserByEmail(ctxT(t), "a@example.com")
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error contains the token: %q", err)
			}
			if !strings.Contains(err.Error(), "[REDACTED]") {
				t.Errorf("error %q: the echoed token should show as [REDACTED]", err)
			}
		})
	}
	// A network failure, and the Config itself when printed.
	cfg := testConfig("http://127.0.0.1:1/public/graphql")
	cfg.MaxRetries = -1
	c, _ := panther.New(cfg)
	if _, err := c.Users(ctxT(t)); err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("network error %v", err)
	}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), cfg.String()} {
		if strings.Contains(s, token) {
			t.Errorf("printed Config contains the token: %s", s)
		}
	}
}

func TestUnknownPermissionIsKept(t *testing.T) {
	url := echoServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"data":{"roles":[{"id":"r1","name":"AI","permissions":["UserRead","McpServerRead","SomethingFrom2031"]}]}}`)
	})
	c, err := panther.New(testConfig(url))
	if err != nil {
		t.Fatal(err)
	}
	roles, err := c.Roles(ctxT(t))
	if err != nil || len(roles) != 1 || strings.Join(roles[0].Permissions, ",") != "UserRead,McpServerRead,SomethingFrom2031" {
		t.Fatalf("Roles = %+v, %v", roles, err)
	}
}

func TestGarbledAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"truncated 200 is retryable", 200, `{"data":{"users":[`, panther.ErrUnavailable},
		{"wrong shape is not", 200, `{"data":{"users":{"id":5}}}`, nil},
		{"400 text", 400, `bad request`, panther.ErrInvalid},
		{"404 endpoint", 404, `no such route`, nil},
		{"graphql error without code", 200, `{"data":null,"errors":[{"message":"Could not find user with ID x"}]}`, panther.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := echoServer(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			cfg := testConfig(url)
			cfg.MaxRetries = -1
			c, _ := panther.New(cfg)
			_, err := c.Users(ctxT(t))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
			if tt.want == nil && provision.Retryable(err) {
				t.Errorf("err %v should not be retryable", err)
			}
		})
	}
}

func TestNewChecksConfig(t *testing.T) {
	for _, cfg := range []panther.Config{
		{URL: "", Token: "t"},
		{URL: "api.example.com/public/graphql", Token: "t"},
		{URL: "ftp://api.example.com/public/graphql", Token: "t"},
		{URL: "https://api.example.com/public/graphql"},
		{URL: "https://api.example.com/public/graphql", Token: "a\nb"},
	} {
		if _, err := panther.New(cfg); err == nil {
			t.Errorf("New(%v) accepted", cfg)
		}
	}
	if _, err := panther.New(panther.Config{URL: "https://api.example.com/v1/public/graphql", Token: "t"}); err != nil {
		t.Error(err)
	}
}

func TestEmptyArgumentsAreInvalid(t *testing.T) {
	_, c, _ := setup(t, pantherfake.Options{}, nil)
	ctx := ctxT(t)
	for name, err := range map[string]error{
		"UserByID":    second(c.UserByID(ctx, "")),
		"UserByEmail": second(c.UserByEmail(ctx, "")),
		"UpdateUser":  second(c.UpdateUser(ctx, provision.UpdateInput{})),
		"DeleteUser":  c.DeleteUser(ctx, ""),
		"RoleByID":    second(c.RoleByID(ctx, "")),
		"RoleByName":  second(c.RoleByName(ctx, "")),
	} {
		if !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestNullDataWithoutErrors(t *testing.T) {
	url := echoServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"data":null}`)
	})
	c, err := panther.New(testConfig(url))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if _, err := c.UserByEmail(ctx, "a@example.com"); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("lookup: %v", err)
	}
	if _, err := c.RoleByName(ctx, "Admin"); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("role lookup: %v", err)
	}
	u, err := c.InviteUser(ctx, provision.InviteInput{Email: "a@example.com", GivenName: "A", FamilyName: "B", Role: byName("Admin")})
	if err == nil || errors.Is(err, panther.ErrNotFound) || u.ID != "" {
		t.Errorf("invite: %+v, %v", u, err)
	}
}

// Ping is for readiness probes: it spends none of the budget the provisioning calls
// share, and its own budget admits one call a second.
func TestPingOutsideCallBudget(t *testing.T) {
	fake, c, _ := setup(t, pantherfake.Options{}, func(cfg *panther.Config) {
		cfg.RatePerSecond, cfg.Burst, cfg.MaxConcurrent = 0.001, 1, 1 // one token, then one per 1000 s
	})
	if err := c.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	// The provisioning budget's one token is still there.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.Roles(ctx); err != nil {
		t.Fatalf("a call after a Ping: %v", err)
	}

	// Probes in a burst: the first goes out, the others find no token in time.
	before := fake.Count("roles")
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if c.Ping(ctx) != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := fake.Count("roles") - before; n > 1 || failed.Load() < 19 {
		t.Errorf("20 probes at once: %d reached Panther, %d failed; want at most 1 and 19 failed", n, failed.Load())
	}
}
