package pantherfake

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/panther-scim/panther-scim/internal/panther"
)

// The executor writes its answers straight into JSON. The reference below is the executor
// it replaced, kept verbatim as the oracle: it builds the whole answer as a tree of ordered
// objects and []any and encodes that. TestExecutorMatchesReference runs every case through
// both and wants the same bytes.

// refObject is the reference's JSON object, in selection order.
type refObject []refKV

type refKV struct {
	key string
	val any
}

// referenceAnswer executes an operation the way serveGraphQL did before the executor wrote
// JSON itself: the reference tree built under the lock, then encoded as writeResult did.
func referenceAnswer(t *testing.T, s *Server, query, opName string, vars map[string]any) []byte {
	t.Helper()
	schema := s.currentSchema()
	p := s.docs.prepare(schema, query)
	if p.parseErr != nil || len(p.invalid) > 0 {
		t.Fatalf("reference: query does not parse or validate: %v %v", p.parseErr, p.invalid)
	}
	op := selectOperation(p.doc, opName)
	coerced, err := validator.VariableValues(schema, op, vars)
	if err != nil {
		t.Fatalf("reference: variables: %v", err)
	}
	s.mu.Lock()
	e := &executor{schema: schema, doc: p.doc, vars: coerced, roots: s.roots, authorize: s.authorizeLocked}
	data := refRun(e, op)
	errs := e.errs
	s.mu.Unlock()

	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	bw.WriteString(`{"data":`)
	if err := refWriteJSONValue(bw, data); err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		b, _ := json.Marshal(errs)
		bw.WriteString(`,"errors":`)
		bw.Write(b)
	}
	bw.WriteString("}")
	bw.Flush()
	return out.Bytes()
}

func refRun(e *executor, op *ast.OperationDefinition) any {
	root := e.schema.Query
	if op.Operation == ast.Mutation {
		root = e.schema.Mutation
	}
	out := refObject{}
	failed := false
	for _, g := range e.collect(root.Name, op.SelectionSet) {
		f := g.fields[0]
		if f.Name == "__typename" {
			out = append(out, refKV{g.key, root.Name})
			continue
		}
		if e.authorize != nil {
			if err := e.authorize(f.Name); err != nil {
				e.fail(f, []any{g.key}, err)
				failed = true
				continue
			}
		}
		resolve, ok := e.roots[f.Name]
		if !ok {
			e.fail(f, []any{g.key}, errorf(codeBadUserInput, "pantherfake does not implement %s", f.Name))
			failed = true
			continue
		}
		v, err := resolve(f.ArgumentMap(e.vars))
		if err != nil {
			e.fail(f, []any{g.key}, err)
			failed = true
			continue
		}
		out = append(out, refKV{g.key, refComplete(e, v, f.Definition.Type, g.fields)})
	}
	if failed {
		return nil
	}
	return out
}

func refComplete(e *executor, v any, typ *ast.Type, fields []*ast.Field) any {
	if v == nil {
		return nil
	}
	if typ.Elem != nil {
		list, _ := v.([]any)
		out := make([]any, len(list))
		for i, item := range list {
			out[i] = refComplete(e, item, typ.Elem, fields)
		}
		return out
	}
	def := e.schema.Types[typ.NamedType]
	switch def.Kind {
	case ast.Object, ast.Union, ast.Interface:
		obj := v.(object)
		concrete := obj.typeName()
		p := e.plan(concrete, fields)
		out := make(refObject, len(p.groups))
		for i, g := range p.groups {
			f := g.fields[0]
			if p.defs[i] == nil {
				out[i] = refKV{g.key, concrete}
				continue
			}
			var args map[string]any
			if len(f.Arguments) > 0 {
				args = f.ArgumentMap(e.vars)
			}
			out[i] = refKV{g.key, refComplete(e, obj.field(f.Name, args), p.defs[i].Type, g.fields)}
		}
		return out
	default:
		return v
	}
}

func refWriteJSONValue(b *bufio.Writer, v any) error {
	switch v := v.(type) {
	case refObject:
		b.WriteByte('{')
		for i, m := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			refWriteJSONString(b, m.key)
			b.WriteByte(':')
			if err := refWriteJSONValue(b, m.val); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := refWriteJSONValue(b, x); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case string:
		refWriteJSONString(b, v)
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case nil:
		b.WriteString("null")
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(raw)
	}
	return nil
}

func refWriteJSONString(b *bufio.Writer, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n':
				b.WriteString(`\n`)
			case '\t':
				b.WriteString(`\t`)
			case '\r':
				b.WriteString(`\r`)
			default:
				fmt.Fprintf(b, `\u%04x`, c)
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(s[start:i])
			b.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b.WriteString(s[start:i])
			fmt.Fprintf(b, `\u%04x`, r)
			i += size
			start = i
			continue
		}
		i += size
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

// awkwardStrings need escaping, or do not: every branch of the JSON string writer. The last
// is longer, escaped, than the room a piece of the answer keeps (chunkSize-spillAt), so the
// piece it lands in grows.
var awkwardStrings = []string{
	"", "plain", `quo"te`, `back\slash`, "new\nline\ttab\rcr", "\x00\x01\x1f\b\f", "<a&b>",
	"line\u2028sep\u2029", "émoji 🎉", "bad\xffutf8", "trunc\xe2\x80", strings.Repeat("x", 5000),
	strings.Repeat("<é\n", 3000),
}

// diffFixture is a double with users of every role, names that need escaping, disabled
// users, a role changed through the API (so that updatedBy is the API token), a role with
// log type access, and a user whose role is gone (role null in the middle of the list).
func diffFixture(t *testing.T, users int, opts Options) *Server {
	t.Helper()
	clock := time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC)
	opts.APIKey, opts.Seed = testKey, 7
	opts.Now = func() time.Time { return clock }
	s := New(opts)
	if _, err := s.AddRole("Custom <&> \"role\"", []string{"AlertRead", "UserModify"}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	r, err := s.newRoleLocked("ByToken", []string{"UserRead"}, true)
	if err == nil {
		r.logTypeAccess, r.logTypeAccessKind = []string{"AWS.CloudTrail", "Okta.<System>"}, "ALLOW"
	}
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	roles := []string{"Admin", "Analyst", "AnalystReadOnly", "Custom <&> \"role\"", "ByToken"}
	for i := range users {
		given := awkwardStrings[i%len(awkwardStrings)]
		if strings.TrimSpace(given) == "" {
			given = "Given"
		}
		u, err := s.AddUser(fmt.Sprintf("user%03d@example.com", i), given, fmt.Sprintf("Family%d", i), roles[i%len(roles)])
		if err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 {
			if err := s.SetUserEnabled(u.ID, false); err != nil {
				t.Fatal(err)
			}
		}
		if i == users/2 {
			s.mu.Lock()
			s.users[u.ID].roleID = "role-that-is-gone"
			s.mu.Unlock()
		}
	}
	return s
}

// serveAnswer sends the request through the handler and returns status and body.
func serveAnswer(t *testing.T, s *Server, query, opName string, vars map[string]any) (int, []byte) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "operationName": opName, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	req.Header.Set("X-API-Key", testKey)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func TestExecutorMatchesReference(t *testing.T) {
	userID := func(s *Server) string { return s.Users()[3].ID }
	roleID := func(name string) func(s *Server) string {
		return func(s *Server) string {
			for _, r := range s.Roles() {
				if r.Name == name {
					return r.ID
				}
			}
			return ""
		}
	}
	reshaped := func(t *testing.T) *ast.Schema {
		// A Panther whose API changed the shape of fields the executor writes directly.
		sdl := strings.Replace(panther.Schema, "  permissions: [Permission!]!\n  updatedAt: Timestamp!", "  permissions: String\n  updatedAt: Timestamp!", 1)
		sdl = strings.Replace(sdl, "  givenName: String\n  id: ID!\n", "  givenName: [String]\n  id: [ID]\n", 1)
		if sdl == panther.Schema {
			t.Fatal("schema edit did not apply")
		}
		schema, err := LoadSchema("reshaped.graphql", sdl)
		if err != nil {
			t.Fatal(err)
		}
		return schema
	}
	tests := []struct {
		name   string
		users  int
		opts   func(t *testing.T) Options
		query  string
		opName string
		vars   func(s *Server) map[string]any
		// wantUsers, when positive, is how many users the answer's "users" must list.
		wantUsers int
		// minBytes, when positive, is the least the answer must weigh: enough for the case
		// to keep spanning several pieces (chunkSize) should their size change.
		minBytes int
	}{
		{name: "bridge users", users: 60, query: panther.Operations, opName: "users", wantUsers: 60},
		{name: "bridge users, an answer of several pieces", users: 400, query: panther.Operations, opName: "users",
			wantUsers: 400, minBytes: 4 * chunkSize},
		{name: "bridge users, empty table", users: 0, query: panther.Operations, opName: "users"},
		{name: "bridge userById", users: 10, query: panther.Operations, opName: "userById",
			vars: func(s *Server) map[string]any { return map[string]any{"id": userID(s)} }},
		{name: "bridge userByEmail", users: 10, query: panther.Operations, opName: "userByEmail",
			vars: func(*Server) map[string]any { return map[string]any{"email": "USER004@example.com"} }},
		{name: "bridge roles", users: 1, query: panther.Operations, opName: "roles"},
		{name: "bridge roleByName", users: 1, query: panther.Operations, opName: "roleByName",
			vars: func(*Server) map[string]any { return map[string]any{"name": "analyst"} }},
		{name: "bridge inviteUser", users: 3, query: panther.Operations, opName: "inviteUser",
			vars: func(*Server) map[string]any {
				return map[string]any{"input": map[string]any{"email": "new@example.com", "givenName": "N<e>w",
					"familyName": "U\u2028ser", "role": map[string]any{"kind": "NAME", "value": "Custom <&> \"role\""}}}
			}},
		{name: "bridge updateUser", users: 10, query: panther.Operations, opName: "updateUser",
			vars: func(s *Server) map[string]any {
				return map[string]any{"input": map[string]any{"id": userID(s), "givenName": "Changed",
					"role": map[string]any{"kind": "ID", "value": roleID("ByToken")(s)}}}
			}},
		{name: "bridge deleteUser", users: 10, query: panther.Operations, opName: "deleteUser",
			vars: func(s *Server) map[string]any { return map[string]any{"input": map[string]any{"id": userID(s)}} }},
		{name: "bridge createRole", users: 1, query: panther.Operations, opName: "createRole",
			vars: func(*Server) map[string]any {
				return map[string]any{"input": map[string]any{"name": "New", "permissions": []any{"RuleRead", "UserRead"}}}
			}},
		{name: "aliases", users: 25, query: `{ a: users { x: id id e: email } b: users { role { n: name name p: permissions permissions } enabled } }`},
		{name: "fragments and __typename", users: 25, query: `query q { __typename users { __typename ...U ... on User { givenName role { ...R } } } }
			fragment U on User { id createdAt lastLoggedInAt status role { __typename ...R } }
			fragment R on Role { id name permissions logTypeAccess logTypeAccessKind createdAt updatedAt
				updatedBy { __typename ... on APIToken { id name permissions allowedCIDRBlocks createdAt lastUsedAt expiresAt
					createdBy { id email role { name permissions } } } ... on User { id email } } }`},
		{name: "variables, skip and include", users: 25,
			query: `query q($s: Boolean!, $i: Boolean!) { users { id @skip(if: $s) email @include(if: $i) role @include(if: $i) { name permissions @skip(if: $s) } givenName @skip(if: $i) } }`,
			vars:  func(*Server) map[string]any { return map[string]any{"s": true, "i": true} }},
		{name: "variables, skip and include (other values)", users: 25,
			query: `query q($s: Boolean!, $i: Boolean!) { users { id @skip(if: $s) email @include(if: $i) role @include(if: $i) { name permissions @skip(if: $s) } givenName @skip(if: $i) } }`,
			vars:  func(*Server) map[string]any { return map[string]any{"s": false, "i": false} }},
		{name: "root field fails after the listing", users: 25, query: `{ users { id email } userById(id: "nope") { id } }`},
		{name: "root field fails before the listing", users: 25, query: `{ userByEmail(email: "nobody@example.com") { id } users { id } }`},
		{name: "token without UserRead", users: 5, query: panther.Operations, opName: "users",
			opts: func(*testing.T) Options { return Options{TokenPermissions: []string{"UserModify"}} }},
		{name: "one operation changes a role's permissions twice", users: 5,
			query: `mutation m($id: ID!) {
				a: updateRole(input: {id: $id, permissions: [AlertRead, RuleRead]}) { role { id permissions } }
				b: updateRole(input: {id: $id, permissions: [UserRead]}) { role { permissions updatedBy { __typename } } }
				c: updateRole(input: {id: $id, logTypeAccess: ["X"], logTypeAccessKind: DENY}) { role { logTypeAccess logTypeAccessKind permissions } } }`,
			vars: func(s *Server) map[string]any { return map[string]any{"id": roleID("Analyst")(s)} }},
		{name: "introspection", users: 1, query: panther.IntrospectionQuery},
		{name: "__type", users: 1, query: `{ __type(name: "Role") { name kind fields(includeDeprecated: true) { name args { name } type { kind name ofType { kind name ofType { kind name } } } } } }`},
		{name: "reshaped schema", users: 25, query: `{ users { id givenName email role { permissions name } } }`,
			opts: func(t *testing.T) Options { return Options{Schema: reshaped(t)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts Options
			if tt.opts != nil {
				opts = tt.opts(t)
			}
			// Two identical doubles: the operations may change the state.
			served, ref := diffFixture(t, tt.users, opts), diffFixture(t, tt.users, opts)
			var vars map[string]any
			if tt.vars != nil {
				vars = tt.vars(served)
			}
			status, got := serveAnswer(t, served, tt.query, tt.opName, vars)
			want := referenceAnswer(t, ref, tt.query, tt.opName, vars)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, got)
			}
			if !bytes.Equal(got, want) {
				i := 0
				for i < len(got) && i < len(want) && got[i] == want[i] {
					i++
				}
				t.Fatalf("answers differ at byte %d of %d/%d:\n got …%s\nwant …%s", i, len(got), len(want),
					excerpt(got, i), excerpt(want, i))
			}
			if !json.Valid(got) {
				t.Fatalf("answer is not JSON: %s", got)
			}
			if len(got) < tt.minBytes {
				t.Fatalf("answer is %d bytes, want at least %d", len(got), tt.minBytes)
			}
			if tt.wantUsers > 0 {
				var a struct {
					Data struct{ Users []json.RawMessage }
				}
				if err := json.Unmarshal(got, &a); err != nil || len(a.Data.Users) != tt.wantUsers {
					t.Fatalf("answer lists %d users (%v), want %d", len(a.Data.Users), err, tt.wantUsers)
				}
			}
		})
	}
}

func excerpt(b []byte, i int) string {
	lo, hi := max(0, i-60), min(len(b), i+60)
	return string(b[lo:hi])
}

// TestUsersListingFollowsChanges lists the users after every way a user can come or go:
// the listing's order is kept between listings, and must not outlive a change.
func TestUsersListingFollowsChanges(t *testing.T) {
	s, url := start(t, Options{})
	list := func() []string {
		t.Helper()
		r := post(t, url, testKey, `{ users { email } }`, nil)
		if r.Status != http.StatusOK || len(r.Errors) > 0 {
			t.Fatalf("users: %d %s", r.Status, r.Body)
		}
		var emails []string
		for _, u := range decode[struct{ Users []struct{ Email string } }](t, r.Data).Users {
			emails = append(emails, u.Email)
		}
		return emails
	}
	check := func(step string, want ...string) {
		t.Helper()
		if got := list(); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("after %s: users %q, want %q", step, got, want)
		}
	}
	check("start")
	a, err := s.AddUser("a@example.com", "A", "A", "Analyst")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.AddUser("b@example.com", "B", "B", "Analyst")
	if err != nil {
		t.Fatal(err)
	}
	check("AddUser", "a@example.com", "b@example.com")
	if r := post(t, url, testKey, inviteMutation, invite("c@example.com", "C", "C", "NAME", "Admin")); len(r.Errors) > 0 {
		t.Fatalf("inviteUser: %s", r.Body)
	}
	check("inviteUser", "a@example.com", "b@example.com", "c@example.com")
	if r := post(t, url, testKey, `mutation($id: ID!) { deleteUser(input: {id: $id}) { id } }`, map[string]any{"id": b.ID}); len(r.Errors) > 0 {
		t.Fatalf("deleteUser: %s", r.Body)
	}
	check("deleteUser", "a@example.com", "c@example.com")
	if err := s.RemoveUser(a.ID); err != nil {
		t.Fatal(err)
	}
	check("RemoveUser", "c@example.com")
	if got := s.Users(); len(got) != 1 || got[0].Email != "c@example.com" {
		t.Fatalf("Users() = %+v, want c@example.com alone", got)
	}
}
