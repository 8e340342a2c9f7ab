package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
)

const checkKey = "check-unit-panther-key-0123456789"

// schemaEdit returns Panther's schema with from replaced by to; the test fails when
// schema.graphql no longer has from.
func schemaEdit(t *testing.T, from, to string) string {
	t.Helper()
	if !strings.Contains(panther.Schema, from) {
		t.Fatalf("schema.graphql has no %q: update the test", from)
	}
	return strings.Replace(panther.Schema, from, to, 1)
}

// Changes to Panther's API that check must name, shared with the test on the binary.
var schemaChanges = []struct {
	name, from, to, want string
}{
	{"renamed input field", "  familyName: String!\n  givenName: String!\n  role: UserRoleInput!\n}\n\ntype InviteUserOutput",
		"  familyName: String!\n  firstName: String!\n  role: UserRoleInput!\n}\n\ntype InviteUserOutput",
		`inviteUser: unknown field "givenName" on input InviteUserInput`},
	{"removed argument", "userByEmail(email: String!): User!", "userByEmail: User!",
		`userByEmail: Unknown argument "email" on field "Query.userByEmail"`},
	{"changed type", "  enabled: Boolean!\n", "  enabled: String!\n",
		`users, userById, userByEmail, inviteUser, updateUser: field User.enabled is String! in Panther; panther-scim reads Boolean!`},
}

func TestCheckPanther(t *testing.T) {
	type want struct {
		tokenOK, ok bool
		lines       []string
	}
	cases := []struct {
		name   string
		schema string // "" for Panther's
		opts   pantherfake.Options
		key    string
		want   want
	}{
		{name: "compatible", want: want{true, true, []string{"schema: ok (10 operations valid against Panther's schema)", "token: ok (read 0 users and 3 roles;"}}},
		{name: "introspection refused", opts: pantherfake.Options{RefuseIntrospection: true}, want: want{true, true, []string{
			"schema: not verified: Panther refused the introspection query (GraphQL introspection is not allowed", "token: ok"}}},
		{name: "refused, and users no longer valid", schema: "status", opts: pantherfake.Options{RefuseIntrospection: true}, want: want{false, false, []string{
			"schema: not verified", "schema: INCOMPATIBLE", `  users: Panther refused the query: Cannot query field "status" on type "User"`}}},
		{name: "no Read User Info", opts: pantherfake.Options{TokenPermissions: []string{"UserModify"}}, want: want{false, false, []string{
			"schema: ok", "token: MISSING PERMISSION: the API token may not run users; give it Panther's Read User Info permission",
			"token: MISSING PERMISSION: the API token may not run roles; give it Panther's Read User Info permission"}}},
		{name: "key rejected", key: "revoked-key-0123456789", want: want{false, false, []string{
			"schema: not checked:", "token: REJECTED: Panther refused the API key (HTTP 401)"}}},
	}
	for _, c := range schemaChanges {
		cases = append(cases, struct {
			name   string
			schema string
			opts   pantherfake.Options
			key    string
			want   want
		}{name: c.name, schema: schemaEdit(t, c.from, c.to), want: want{true, false, []string{"schema: INCOMPATIBLE", "  " + c.want, "token: ok"}}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts
			opts.APIKey, opts.Seed = checkKey, 1
			switch c.schema {
			case "":
			case "status":
				opts.Schema = mustSchema(t, schemaEdit(t, "  status: String!\n}", "}"))
			default:
				opts.Schema = mustSchema(t, c.schema)
			}
			fake := pantherfake.New(opts)
			url, stop, err := fake.Start()
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			key := checkKey
			if c.key != "" {
				key = c.key
			}
			client, err := panther.New(panther.Config{URL: url, Token: key, MaxRetries: -1})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			tokenOK, ok := checkPanther(context.Background(), client, &out)
			if tokenOK != c.want.tokenOK || ok != c.want.ok {
				t.Errorf("checkPanther = %v, %v, want %v, %v", tokenOK, ok, c.want.tokenOK, c.want.ok)
			}
			for _, l := range c.want.lines {
				if !strings.Contains(out.String(), "\n"+l) && !strings.HasPrefix(out.String(), l) {
					t.Errorf("output lacks a line starting %q:\n%s", l, out.String())
				}
			}
			if strings.Contains(out.String(), key) {
				t.Errorf("output holds the API key:\n%s", out.String())
			}
			if n := mutationCalls(fake); n != 0 {
				t.Errorf("check sent %d mutations to Panther: it must only read", n)
			}
		})
	}
}

// mutationCalls is how many mutations the double has been sent, answered or refused.
func mutationCalls(fake *pantherfake.Server) int {
	n := 0
	for _, op := range []string{"inviteUser", "updateUser", "deleteUser", "createRole", "updateRole", "deleteRole"} {
		n += fake.Count(op)
	}
	return n
}

func mustSchema(t *testing.T, sdl string) *ast.Schema {
	t.Helper()
	s, err := pantherfake.LoadSchema("test.graphql", sdl)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
