package pantherfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

const testKey = "test-key-0123456789"

// start runs a fresh fake on a loopback port for the test.
func start(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	s := New(opts)
	url, stop, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s, url
}

type gqlResult struct {
	Status int
	Body   []byte
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	hasData bool
}

func (r gqlResult) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// post sends a GraphQL request as JSON and decodes the answer.
func post(t *testing.T, url, key, query string, vars map[string]any) gqlResult {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	return postRaw(t, url, key, body)
}

func postRaw(t *testing.T, url, key string, body []byte) gqlResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := gqlResult{Status: resp.StatusCode, Body: raw}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, raw)
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(raw, &keys)
	_, r.hasData = keys["data"]
	return r
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return v
}

const inviteMutation = `mutation($input: InviteUserInput!) {
  inviteUser(input: $input) { user { id email givenName familyName status enabled createdAt role { id name } } }
}`

func invite(email, given, family, roleKind, roleValue string) map[string]any {
	return map[string]any{"input": map[string]any{
		"email": email, "givenName": given, "familyName": family,
		"role": map[string]any{"kind": roleKind, "value": roleValue},
	}}
}

type userJSON struct {
	ID         string `json:"id"`
	Email      string `json:"email"`
	GivenName  string `json:"givenName"`
	FamilyName string `json:"familyName"`
	Status     string `json:"status"`
	Enabled    bool   `json:"enabled"`
	CreatedAt  string `json:"createdAt"`
	Role       struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"role"`
}

func TestDefaultRoles(t *testing.T) {
	_, url := start(t, Options{})
	r := post(t, url, testKey, `{ roles { name permissions logTypeAccessKind updatedBy { __typename } } }`, nil)
	if r.Status != 200 || len(r.Errors) > 0 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	got := decode[struct {
		Roles []struct {
			Name        string   `json:"name"`
			Permissions []string `json:"permissions"`
		} `json:"roles"`
	}](t, r.Data)
	var names []string
	perms := map[string][]string{}
	for _, role := range got.Roles {
		names = append(names, role.Name)
		perms[role.Name] = role.Permissions
	}
	if want := []string{"Admin", "Analyst", "AnalystReadOnly"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("roles %v, want %v", names, want)
	}
	has := func(role, p string) bool {
		for _, x := range perms[role] {
			if x == p {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		role, perm string
		want       bool
	}{
		{"Admin", "UserModify", true}, {"Admin", "RuleRead", true},
		{"Analyst", "RuleModify", true}, {"Analyst", "UserModify", false},
		{"AnalystReadOnly", "AlertRead", true}, {"AnalystReadOnly", "AlertModify", false},
	} {
		if has(c.role, c.perm) != c.want {
			t.Errorf("%s has %s = %v, want %v", c.role, c.perm, !c.want, c.want)
		}
	}
}

func TestInviteAndLookups(t *testing.T) {
	s, url := start(t, Options{})
	r := post(t, url, testKey, inviteMutation, invite("Ada@Example.com", "Ada", "Lovelace", "NAME", "analyst"))
	if len(r.Errors) > 0 {
		t.Fatalf("invite: %s", r.Body)
	}
	u := decode[struct {
		InviteUser struct{ User userJSON } `json:"inviteUser"`
	}](t, r.Data).InviteUser.User
	if u.Email != "Ada@Example.com" || u.Status != "INVITED" || !u.Enabled || u.Role.Name != "Analyst" {
		t.Fatalf("invited user %+v", u)
	}
	if len(u.ID) != 36 || strings.Count(u.ID, "-") != 4 {
		t.Errorf("id %q is not a UUID", u.ID)
	}
	if _, err := time.Parse(time.RFC3339, u.CreatedAt); err != nil {
		t.Errorf("createdAt %q: %v", u.CreatedAt, err)
	}

	byEmail := post(t, url, testKey, `query($e: String!) { userByEmail(email: $e) { id } }`, map[string]any{"e": "ada@EXAMPLE.com"})
	if !strings.Contains(string(byEmail.Data), u.ID) {
		t.Errorf("userByEmail (other case): %s", byEmail.Body)
	}
	byID := post(t, url, testKey, `query($id: ID!) { userById(id: $id) { email role { name } } }`, map[string]any{"id": u.ID})
	if !strings.Contains(string(byID.Data), "Ada@Example.com") {
		t.Errorf("userById: %s", byID.Body)
	}
	role := post(t, url, testKey, `{ roleByName(name: "ANALYSTREADONLY") { id name } }`, nil)
	if !strings.Contains(string(role.Data), `"name":"AnalystReadOnly"`) {
		t.Errorf("roleByName is not case-insensitive: %s", role.Body)
	}
	if got, ok := s.UserByEmail("ADA@example.com"); !ok || got.ID != u.ID || got.RoleName != "Analyst" {
		t.Errorf("helper UserByEmail = %+v, %v", got, ok)
	}
}

func TestInviteValidation(t *testing.T) {
	s, url := start(t, Options{})
	if _, err := s.AddUser("taken@example.com", "T", "Aken", "Admin"); err != nil {
		t.Fatal(err)
	}
	adminID := s.Roles()[0].ID
	tests := []struct {
		name string
		vars map[string]any
		code string
	}{
		{"bad email", invite("not-an-email", "A", "B", "NAME", "Admin"), codeBadUserInput},
		{"email with display name", invite("A <a@example.com>", "A", "B", "NAME", "Admin"), codeBadUserInput},
		{"email without dotted domain", invite("a@localhost", "A", "B", "NAME", "Admin"), codeBadUserInput},
		{"empty given name", invite("a@example.com", " ", "B", "NAME", "Admin"), codeBadUserInput},
		{"empty family name", invite("a@example.com", "A", "", "NAME", "Admin"), codeBadUserInput},
		{"unknown role name", invite("a@example.com", "A", "B", "NAME", "Nope"), codeBadUserInput},
		{"unknown role id", invite("a@example.com", "A", "B", "ID", "00000000-0000-4000-8000-000000000000"), codeBadUserInput},
		{"duplicate email, other case", invite("TAKEN@example.com", "A", "B", "NAME", "Admin"), codeAlreadyExists},
		{"role by id works", invite("b@example.com", "A", "B", "ID", adminID), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, url, testKey, inviteMutation, tt.vars)
			if r.code() != tt.code {
				t.Fatalf("code %q, want %q: %s", r.code(), tt.code, r.Body)
			}
			if tt.code != "" && string(r.Data) != "null" {
				t.Errorf("data = %s, want null", r.Data)
			}
		})
	}
	if n := len(s.Users()); n != 2 {
		t.Errorf("%d users, want 2", n)
	}
}

func TestLookupMissesAreErrors(t *testing.T) {
	_, url := start(t, Options{})
	const missing = "00000000-0000-4000-8000-000000000000"
	tests := []struct{ name, query string }{
		{"userById", `{ userById(id: "` + missing + `") { id } }`},
		{"userByEmail", `{ userByEmail(email: "nobody@example.com") { id } }`},
		{"roleById", `{ roleById(id: "` + missing + `") { id } }`},
		{"roleByName", `{ roleByName(name: "Nope") { id } }`},
		{"deleteUser", `mutation { deleteUser(input: {id: "` + missing + `"}) { id } }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, url, testKey, tt.query, nil)
			if r.Status != 200 || r.code() != codeNotFound || string(r.Data) != "null" || !r.hasData {
				t.Fatalf("status %d code %q data %s: %s", r.Status, r.code(), r.Data, r.Body)
			}
			if !strings.Contains(r.Errors[0].Message, "not found") {
				t.Errorf("message %q", r.Errors[0].Message)
			}
			if len(r.Errors[0].Path) != 1 || r.Errors[0].Path[0] != tt.name {
				t.Errorf("path %v", r.Errors[0].Path)
			}
		})
	}
}

func TestQueryValidation(t *testing.T) {
	_, url := start(t, Options{})
	tests := []struct {
		name    string
		query   string
		vars    map[string]any
		status  int
		code    string
		message string
	}{
		{"unknown field", `{ users { id nickname } }`, nil, 200, codeValidationFailed, `Cannot query field "nickname" on type "User"`},
		{"unknown root field", `{ deactivateUser(id: "x") { id } }`, nil, 200, codeValidationFailed, "Cannot query field"},
		{"wrong argument type", `{ roleByName(name: 42) { id } }`, nil, 200, codeValidationFailed, "String"},
		{"missing required argument", `{ userById { id } }`, nil, 200, codeValidationFailed, `argument "id"`},
		{"scalar without selection needed", `{ users }`, nil, 200, codeValidationFailed, "must have a selection"},
		{"missing required input field", inviteMutation, map[string]any{"input": map[string]any{
			"email": "a@example.com", "givenName": "A", "familyName": "B"}}, 200, codeBadUserInput, "must be defined"},
		{"unknown input field", inviteMutation, map[string]any{"input": map[string]any{
			"email": "a@example.com", "givenName": "A", "familyName": "B", "enabled": false,
			"role": map[string]any{"kind": "NAME", "value": "Admin"}}}, 200, codeBadUserInput, "unknown field"},
		{"bad enum value", `mutation($p: [Permission!]!) { createRole(input: {name: "x", permissions: $p}) { role { id } } }`,
			map[string]any{"p": []any{"FlyPlanes"}}, 200, codeBadUserInput, "not a valid Permission"},
		{"missing variable", `query($id: ID!) { userById(id: $id) { id } }`, nil, 200, codeBadUserInput, "must be defined"},
		{"unparsable", `{ users { id `, nil, 400, codeParseFailed, "Expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: the second answer comes from the parsed-document cache.
			for range 2 {
				r := post(t, url, testKey, tt.query, tt.vars)
				if r.Status != tt.status || r.code() != tt.code {
					t.Fatalf("status %d code %q, want %d %q: %s", r.Status, r.code(), tt.status, tt.code, r.Body)
				}
				if r.hasData {
					t.Errorf("a request rejected before execution must have no data: %s", r.Body)
				}
				if !strings.Contains(r.Errors[0].Message, tt.message) {
					t.Errorf("message %q does not contain %q", r.Errors[0].Message, tt.message)
				}
			}
		})
	}
	r := postRaw(t, url, testKey, []byte(`{"query": 5}`))
	if r.Status != 400 {
		t.Errorf("a non-GraphQL body: status %d", r.Status)
	}
}

// One document, cached, serves concurrent calls with different variables (run with
// -race); the cache stops growing at its bound.
func TestCachedDocumentsConcurrently(t *testing.T) {
	srv, url := start(t, Options{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := fmt.Sprintf("c%d@example.com", i)
			r := post(t, url, testKey, inviteMutation, invite(email, "C", "D", "NAME", "Analyst"))
			if len(r.Errors) > 0 {
				t.Errorf("invite %s: %s", email, r.Body)
				return
			}
			u := decode[struct{ InviteUser struct{ User userJSON } }](t, r.Data).InviteUser.User
			if u.Email != email || u.Role.Name != "Analyst" {
				t.Errorf("invited %+v, want %s", u, email)
			}
		}()
	}
	wg.Wait()
	for i := range maxCachedDocs + 10 {
		post(t, url, testKey, fmt.Sprintf("query q%d { roles { id } }", i), nil)
	}
	srv.docs.mu.RLock()
	n := len(srv.docs.m)
	srv.docs.mu.RUnlock()
	if n != maxCachedDocs {
		t.Errorf("cached documents: %d, want the bound %d", n, maxCachedDocs)
	}
}

func TestAuth(t *testing.T) {
	s, url := start(t, Options{})
	for _, key := range []string{"", "wrong", testKey + "x"} {
		r := post(t, url, key, `{ users { id } }`, nil)
		if r.Status != http.StatusUnauthorized || r.code() != codeUnauthenticated {
			t.Errorf("key %q: status %d code %q", key, r.Status, r.code())
		}
	}
	if r := post(t, url, testKey, `{ users { id } }`, nil); r.Status != 200 {
		t.Errorf("right key: status %d", r.Status)
	}
	if got := s.Count("users"); got != 4 {
		t.Errorf("Count(users) = %d, want 4 (refused calls are logged too)", got)
	}
}

func TestProjection(t *testing.T) {
	_, url := start(t, Options{})
	created := post(t, url, testKey, `mutation { createRole(input: {name: "Auditors", permissions: [UserRead, AlertRead]}) { role { id } } }`, nil)
	if len(created.Errors) > 0 {
		t.Fatal(string(created.Body))
	}
	r := post(t, url, testKey, `
query Look($skip: Boolean!) {
  a: roleByName(name: "auditors") { ...R kind: __typename }
  b: roleByName(name: "Admin") { name updatedBy { __typename } }
  __typename
}
fragment R on Role {
  name
  name
  perms: permissions
  secret: id @skip(if: $skip)
  updatedBy {
    __typename
    ... on APIToken { name createdBy { email role { name } } }
    ... on User { email }
  }
}`, map[string]any{"skip": true})
	if len(r.Errors) > 0 {
		t.Fatal(string(r.Body))
	}
	want := `{"a":{"name":"Auditors","perms":["UserRead","AlertRead"],"updatedBy":{"__typename":"APIToken","name":"pantherfake",` +
		`"createdBy":{"email":"owner@pantherfake.example","role":{"name":"Admin"}}},"kind":"Role"},` +
		`"b":{"name":"Admin","updatedBy":null},"__typename":"Query"}`
	if string(r.Data) != want {
		t.Errorf("data\n got %s\nwant %s", r.Data, want)
	}
}

func TestUpdateUser(t *testing.T) {
	s, url := start(t, Options{})
	u, err := s.AddUser("grace@example.com", "Grace", "Hopper", "AnalystReadOnly")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddUser("other@example.com", "O", "Ther", "Admin"); err != nil {
		t.Fatal(err)
	}
	const m = `mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { email givenName familyName role { name } } } }`
	tests := []struct {
		name  string
		input map[string]any
		code  string
		want  string
	}{
		{"role only", map[string]any{"id": u.ID, "role": map[string]any{"kind": "NAME", "value": "Admin"}}, "",
			`{"email":"grace@example.com","givenName":"Grace","familyName":"Hopper","role":{"name":"Admin"}}`},
		{"null fields are ignored", map[string]any{"id": u.ID, "givenName": nil, "familyName": "Murray Hopper"}, "",
			`{"email":"grace@example.com","givenName":"Grace","familyName":"Murray Hopper","role":{"name":"Admin"}}`},
		{"email", map[string]any{"id": u.ID, "email": "Grace.Hopper@example.com"}, "",
			`{"email":"Grace.Hopper@example.com","givenName":"Grace","familyName":"Murray Hopper","role":{"name":"Admin"}}`},
		{"bad email", map[string]any{"id": u.ID, "email": "nope"}, codeBadUserInput, ""},
		{"taken email", map[string]any{"id": u.ID, "email": "OTHER@example.com"}, codeAlreadyExists, ""},
		{"empty name", map[string]any{"id": u.ID, "givenName": ""}, codeBadUserInput, ""},
		{"unknown role, nothing applied", map[string]any{"id": u.ID, "givenName": "G", "role": map[string]any{"kind": "NAME", "value": "x"}}, codeBadUserInput, ""},
		{"unknown user", map[string]any{"id": "nope", "givenName": "G"}, codeNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, url, testKey, m, map[string]any{"input": tt.input})
			if r.code() != tt.code {
				t.Fatalf("code %q, want %q: %s", r.code(), tt.code, r.Body)
			}
			if tt.want != "" && !strings.Contains(string(r.Data), tt.want) {
				t.Errorf("data %s, want user %s", r.Data, tt.want)
			}
		})
	}
	got, ok := s.UserByEmail("grace.hopper@example.com")
	if !ok || got.GivenName != "Grace" || got.RoleName != "Admin" {
		t.Errorf("final user %+v", got)
	}
	if _, ok := s.UserByEmail("grace@example.com"); ok {
		t.Error("old email still indexed")
	}
}

func TestDeleteUserAndRoles(t *testing.T) {
	s, url := start(t, Options{})
	u, _ := s.AddUser("del@example.com", "D", "El", "Admin")
	r := post(t, url, testKey, `mutation($id: ID!) { deleteUser(input: {id: $id}) { id } }`, map[string]any{"id": u.ID})
	if want := `{"deleteUser":{"id":"` + u.ID + `"}}`; string(r.Data) != want {
		t.Fatalf("got %s", r.Body)
	}
	if len(s.Users()) != 0 {
		t.Error("user still there")
	}
	dup := post(t, url, testKey, `mutation { createRole(input: {name: "admin", permissions: []}) { role { id } } }`, nil)
	if dup.code() != codeAlreadyExists {
		t.Errorf("duplicate role name: %s", dup.Body)
	}
	ok := post(t, url, testKey, `mutation { createRole(input: {name: "Empty", permissions: []}) { role { name permissions logTypeAccessKind } } }`, nil)
	if want := `{"createRole":{"role":{"name":"Empty","permissions":[],"logTypeAccessKind":"ALLOW_ALL"}}}`; string(ok.Data) != want {
		t.Errorf("createRole: %s", ok.Body)
	}
}

func TestFailNextAndDown(t *testing.T) {
	s, url := start(t, Options{RetryAfter: 2 * time.Second})
	s.FailNext("users", 2, http.StatusTooManyRequests)
	s.FailNext("", 1, http.StatusBadGateway)
	req := func() *http.Response {
		t.Helper()
		hreq, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"query":"{ users { id } }"}`))
		hreq.Header.Set("X-API-Key", testKey)
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i, want := range []int{429, 429, 502, 200} {
		resp := req()
		if resp.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, want)
		}
		if want == 429 && resp.Header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
	}
	s.Down(true)
	if resp := req(); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("down: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	s.Down(false)
	if resp := req(); resp.StatusCode != 200 {
		t.Errorf("up again: %d", resp.StatusCode)
	}
	var statuses []int
	for _, c := range s.Calls() {
		statuses = append(statuses, c.Status)
	}
	if want := []int{429, 429, 502, 200, 503, 200}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("call log statuses %v, want %v", statuses, want)
	}
}

func TestDropNextAppliesThenDrops(t *testing.T) {
	s, url := start(t, Options{})
	s.DropNext("inviteUser", 1)
	body, _ := json.Marshal(map[string]any{"query": inviteMutation, "variables": invite("drop@example.com", "D", "Rop", "NAME", "Admin")})
	hreq, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	hreq.Header.Set("X-API-Key", testKey)
	resp, err := http.DefaultClient.Do(hreq)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer (%d), want a dropped connection", resp.StatusCode)
	}
	if _, ok := s.UserByEmail("drop@example.com"); !ok {
		t.Fatal("the dropped invite was not applied")
	}
	calls := s.Calls()
	if last := calls[len(calls)-1]; !last.Dropped || last.Op != "inviteUser" || last.Status != 0 {
		t.Errorf("call log %+v", last)
	}
	if r := post(t, url, testKey, inviteMutation, invite("drop2@example.com", "D", "Rop", "NAME", "Admin")); len(r.Errors) > 0 {
		t.Errorf("only one response should drop: %s", r.Body)
	}
}

func TestLatencyAndInFlight(t *testing.T) {
	s, url := start(t, Options{Latency: 40 * time.Millisecond})
	t0 := time.Now()
	done := make(chan struct{})
	for range 3 {
		go func() {
			defer func() { done <- struct{}{} }()
			post(t, url, testKey, `{ users { id } }`, nil)
		}()
	}
	for range 3 {
		<-done
	}
	if d := time.Since(t0); d < 40*time.Millisecond {
		t.Errorf("answers took %s, want at least the latency", d)
	}
	if s.MaxInFlight() < 2 {
		t.Errorf("MaxInFlight = %d; three overlapping requests should overlap", s.MaxInFlight())
	}
}

func TestSeededFaultsAreDeterministic(t *testing.T) {
	run := func() ([]int, []string) {
		s, url := start(t, Options{Seed: 42, ErrorRate: 0.3, RateLimitRate: 0.2})
		for i := range 20 {
			postRawNoCheck(url, `{"query":"mutation { createRole(input: {name: \"r`+string(rune('a'+i))+`\", permissions: []}) { role { id } } }"}`)
		}
		var st []int
		for _, c := range s.Calls() {
			st = append(st, c.Status)
		}
		var ids []string
		for _, r := range s.Roles() {
			ids = append(ids, r.ID)
		}
		return st, ids
	}
	st1, ids1 := run()
	st2, ids2 := run()
	if !reflect.DeepEqual(st1, st2) || !reflect.DeepEqual(ids1, ids2) {
		t.Errorf("same seed, different runs:\n%v %v\n%v %v", st1, ids1, st2, ids2)
	}
	var ok, failed int
	for _, s := range st1 {
		if s == 200 {
			ok++
		} else {
			failed++
		}
	}
	if ok == 0 || failed == 0 {
		t.Errorf("with 30%% 5xx and 20%% 429 over 20 calls, got %d ok and %d failures", ok, failed)
	}
}

func postRawNoCheck(url, body string) {
	hreq, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	hreq.Header.Set("X-API-Key", testKey)
	if resp, err := http.DefaultClient.Do(hreq); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func TestStateHelpers(t *testing.T) {
	s := New(Options{Seed: 7})
	u, err := s.AddUser("h@example.com", "H", "Elper", "analyst")
	if err != nil || u.RoleName != "Analyst" || u.Status != "INVITED" || !u.Enabled {
		t.Fatalf("AddUser = %+v, %v", u, err)
	}
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"duplicate", second(s.AddUser("H@example.com", "H", "E", "Admin")), provision.ErrConflict},
		{"unknown role", second(s.AddUser("x@example.com", "H", "E", "Nope")), provision.ErrNotFound},
		{"bad email", second(s.AddUser("x", "H", "E", "Admin")), provision.ErrInvalid},
		{"SetUserRole unknown user", s.SetUserRole("nope", "Admin"), provision.ErrNotFound},
		{"SetUserRole unknown role", s.SetUserRole(u.ID, "Nope"), provision.ErrNotFound},
		{"RemoveUser unknown", s.RemoveUser("nope"), provision.ErrNotFound},
		{"AddRole duplicate", second(s.AddRole("ADMIN", nil)), provision.ErrConflict},
		{"AddRole bad permission", second(s.AddRole("x", []string{"Nope"})), provision.ErrInvalid},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	if err := s.SetUserRole(u.ID, "Admin"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserNames(u.ID, "Hal", "Per"); err != nil {
		t.Fatal(err)
	}
	got, _ := s.UserByEmail("h@example.com")
	if got.RoleName != "Admin" || got.GivenName != "Hal" || got.FamilyName != "Per" {
		t.Errorf("after changes: %+v", got)
	}
	if err := s.RemoveUser(u.ID); err != nil || len(s.Users()) != 0 {
		t.Errorf("RemoveUser: %v, %d users left", err, len(s.Users()))
	}
}

func second[T any](_ T, err error) error { return err }

func TestLegacyPathAndHealth(t *testing.T) {
	_, url := start(t, Options{})
	base := strings.TrimSuffix(url, Path)
	if r := post(t, base+LegacyPath, testKey, `{ roles { id } }`, nil); r.Status != 200 || len(r.Errors) > 0 {
		t.Errorf("legacy path: %d %s", r.Status, r.Body)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
}

// syncBuffer is an io.Writer that Run can write while the test reads.
type syncBuffer struct {
	ch chan string
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.ch <- string(p)
	return len(p), nil
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{ch: make(chan string, 16)}
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, []string{"--addr", "127.0.0.1:0", "--api-key", testKey, "--latency", "1ms", "--seed", "3"}, out)
	}()
	var line string
	select {
	case line = <-out.ch:
	case err := <-errc:
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run printed nothing")
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("no URL in %q", line)
	}
	url := strings.Fields(line[i:])[0]
	if r := post(t, url, testKey, `{ users { id } }`, nil); r.Status != 200 {
		t.Errorf("status %d: %s", r.Status, r.Body)
	}
	if strings.Contains(line, testKey) {
		t.Error("Run printed the API key")
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestRunFlagErrors(t *testing.T) {
	t.Setenv(APIKeyEnv, "")
	for _, args := range [][]string{
		{},                                      // no key
		{"--api-key", "k", "--error-rate", "2"}, // rate out of range
		{"--api-key", "k", "extra"},
		{"--bogus"},
	} {
		if err := Run(context.Background(), args, io.Discard); err == nil {
			t.Errorf("Run(%q) succeeded", args)
		}
	}
}

func TestRolesFilterAndSort(t *testing.T) {
	_, url := start(t, Options{})
	tests := []struct {
		query string
		want  string
	}{
		{`{ roles(input: {nameContains: "ANALYST"}) { name } }`, `{"roles":[{"name":"Analyst"},{"name":"AnalystReadOnly"}]}`},
		{`{ roles(input: {sortDir: descending}) { name } }`, `{"roles":[{"name":"AnalystReadOnly"},{"name":"Analyst"},{"name":"Admin"}]}`},
		{`{ roles(input: {nameContains: "nobody"}) { name } }`, `{"roles":[]}`},
	}
	for _, tt := range tests {
		r := post(t, url, testKey, tt.query, nil)
		if string(r.Data) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.query, r.Data, tt.want)
		}
	}
}

// The double keeps what the ownership rules read: createdAt, enabled (which only the
// console changes) and the role's permissions with the user; and a duplicate can be
// answered in words no client knows.
func TestOwnershipFacts(t *testing.T) {
	s, url := start(t, Options{})
	admin, err := s.AddUser("root@example.com", "Ro", "Ot", "Admin")
	if err != nil {
		t.Fatal(err)
	}
	if !admin.Admin || !admin.Enabled || admin.CreatedAt.IsZero() {
		t.Fatalf("console admin %+v", admin)
	}
	if err := s.SetUserEnabled(admin.ID, false); err != nil {
		t.Fatal(err)
	}
	r := post(t, url, testKey, `query($id: ID!) { userById(id: $id) { enabled createdAt role { permissions } } }`, map[string]any{"id": admin.ID})
	got := decode[struct {
		UserByID struct {
			Enabled   bool
			CreatedAt string
			Role      struct{ Permissions []string }
		} `json:"userById"`
	}](t, r.Data).UserByID
	if got.Enabled || got.CreatedAt != admin.CreatedAt.UTC().Format(time.RFC3339Nano) || !provision.HoldsUserModify(got.Role.Permissions) {
		t.Errorf("userById: %s", r.Body)
	}

	dup := post(t, url, testKey, inviteMutation, invite("ROOT@example.com", "A", "B", "NAME", "Analyst"))
	if dup.code() != codeAlreadyExists {
		t.Errorf("documented duplicate: %s", dup.Body)
	}
	s.SetDuplicateAnswer("E4711", "Operation could not be completed")
	dup = post(t, url, testKey, inviteMutation, invite("ROOT@example.com", "A", "B", "NAME", "Analyst"))
	if dup.code() != "E4711" || len(dup.Errors) != 1 || dup.Errors[0].Message != "Operation could not be completed" {
		t.Errorf("undocumented duplicate: %s", dup.Body)
	}
	if len(s.Users()) != 1 {
		t.Errorf("the duplicate was created: %+v", s.Users())
	}
	s.ClearFaults()
	if dup = post(t, url, testKey, inviteMutation, invite("root@example.com", "A", "B", "NAME", "Analyst")); dup.code() != codeAlreadyExists {
		t.Errorf("after ClearFaults: %s", dup.Body)
	}
}

func TestRateCeiling(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	s, url := start(t, Options{RateCeiling: 5, RetryAfter: 2 * time.Second, Now: clock})
	statuses := func(n int) (ok, refused int) {
		t.Helper()
		for range n {
			hreq, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"query":"{ users { id } }"}`))
			hreq.Header.Set("X-API-Key", testKey)
			resp, err := http.DefaultClient.Do(hreq)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				refused++
				if ra := resp.Header.Get("Retry-After"); ra != "2" {
					t.Errorf("Retry-After %q, want 2", ra)
				}
			default:
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		return ok, refused
	}
	// The clock stands still: the burst (one second's worth) passes, the rest is refused.
	if ok, refused := statuses(12); ok != 5 || refused != 7 {
		t.Errorf("at once: %d answered, %d refused; want 5 and 7", ok, refused)
	}
	advance(400 * time.Millisecond) // two more tokens
	if ok, refused := statuses(3); ok != 2 || refused != 1 {
		t.Errorf("after 0.4 s: %d answered, %d refused; want 2 and 1", ok, refused)
	}
	if got := s.Count("users"); got != 15 {
		t.Errorf("Count(users) = %d, want 15 (refused calls count)", got)
	}
	s.SetRateCeiling(0)
	if ok, refused := statuses(10); ok != 10 || refused != 0 {
		t.Errorf("without a ceiling: %d answered, %d refused", ok, refused)
	}
	s.SetRateCeiling(1)
	s.ClearFaults()
	if ok, _ := statuses(3); ok != 3 {
		t.Errorf("after ClearFaults: %d of 3 answered", ok)
	}
}

func TestBoundedCallLog(t *testing.T) {
	s, url := start(t, Options{MaxCallLog: 10})
	for i := range 25 {
		res := post(t, url, testKey, inviteMutation, invite(fmt.Sprintf("u%d@example.com", i), "U", "Ser", "NAME", "Analyst"))
		if len(res.Errors) > 0 {
			t.Fatalf("invite %d: %s", i, res.Body)
		}
	}
	calls := s.Calls()
	if len(calls) > 10 || len(calls) < 5 {
		t.Fatalf("%d calls kept, want between 5 and 10", len(calls))
	}
	last := calls[len(calls)-1].Variables["input"].(map[string]any)["email"]
	if last != "u24@example.com" {
		t.Errorf("last call kept is for %v, want the latest", last)
	}
	if got := s.Count("inviteUser"); got != 25 {
		t.Errorf("Count = %d, want 25 (counts do not forget)", got)
	}
	if got := s.CallCounts(); !reflect.DeepEqual(got, map[string]int{"inviteUser": 25}) {
		t.Errorf("CallCounts = %v", got)
	}
	s.ResetCalls()
	if got := s.Count("inviteUser"); got != 0 || len(s.Calls()) != 0 {
		t.Errorf("after ResetCalls: Count %d, %d calls", got, len(s.Calls()))
	}
}
