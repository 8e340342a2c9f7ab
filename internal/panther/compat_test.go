package panther_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"

	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
)

func sdl(s *ast.Schema) string {
	var b strings.Builder
	formatter.NewFormatter(&b).FormatSchema(s)
	return b.String()
}

// introspect serves schemaSDL with pantherfake and reads it back with Client.Schema.
func introspect(t *testing.T, schemaSDL string) (*ast.Schema, error) {
	t.Helper()
	opts := pantherfake.Options{APIKey: token, Seed: 1}
	if schemaSDL != "" {
		s, err := pantherfake.LoadSchema("test.graphql", schemaSDL)
		if err != nil {
			t.Fatal(err)
		}
		opts.Schema = s
	}
	url, stop, err := pantherfake.New(opts).Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	c, err := panther.New(panther.Config{URL: url, Token: token, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c.Schema(context.Background())
}

// richSchema uses what Panther's schema does not, so that the converter meets every kind
// of type, wrapper, default value, deprecation and directive. (Directives applied to fields,
// other than @deprecated, are not part of introspection; a bare @deprecated comes back with
// the spec's default reason.)
const richSchema = `
"A custom directive"
directive @cost(weight: Int = 1, tags: [String!] = ["a", "b"]) on FIELD_DEFINITION | OBJECT

schema { query: Root mutation: Change }

"The root"
type Root {
  node(id: ID!, kind: Kind = BIG, opts: Opts = {limit: 10, flags: [true]}): Node
  nodes(first: Int = 20): [[Node!]]!
  old: String @deprecated(reason: "use node")
  older: String @deprecated(reason: "No longer supported")
  search(q: String = "x\ny"): [Result!]
}

type Change { touch(id: ID!): Boolean! }

interface Node { id: ID! }
interface Named implements Node { id: ID! name: String }

type Thing implements Node & Named { id: ID! name: String size: Float big: Kind }
type Other implements Node { id: ID! when: When! }

union Result = Thing | Other

enum Kind { BIG SMALL @deprecated(reason: "gone") }

input Opts { limit: Int! = 5 flags: [Boolean!] nested: Inner }
input Inner { deep: [[Int]] }

"When something happened"
scalar When
`

// TestIntrospectionRoundTrip: a schema served by pantherfake, read with the standard
// introspection query and converted, is the schema (printed the same as SDL).
func TestIntrospectionRoundTrip(t *testing.T) {
	for name, src := range map[string]string{"panther": panther.Schema, "rich": richSchema} {
		t.Run(name, func(t *testing.T) {
			want, err := pantherfake.LoadSchema(name, src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := introspect(t, src)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := sdl(got), sdl(want); g != w {
				t.Errorf("round trip differs.\ngot:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

func TestSchemaFromIntrospectionErrors(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"not JSON", `[`, "reading the introspection answer"},
		{"no schema", `{"__schema":null}`, "no __schema"},
		{"no query type", `{"__schema":{"types":[]}}`, "no query type"},
		{"unknown kind", `{"__schema":{"queryType":{"name":"Q"},"types":[{"kind":"BLOB","name":"Q"}]}}`, `type Q: unknown kind "BLOB"`},
		{"truncated type", `{"__schema":{"queryType":{"name":"Q"},"types":[{"kind":"OBJECT","name":"Q","fields":[{"name":"f","args":[],"type":{"kind":"NON_NULL","name":null,"ofType":null}}]}]}}`, "field f: type reference missing"},
		{"dangling type", `{"__schema":{"queryType":{"name":"Q"},"types":[{"kind":"OBJECT","name":"Q","fields":[{"name":"f","args":[],"type":{"kind":"OBJECT","name":"Gone"}}]}]}}`, "not valid"},
		{"bad default", `{"__schema":{"queryType":{"name":"Q"},"types":[{"kind":"OBJECT","name":"Q","fields":[{"name":"f","args":[{"name":"a","type":{"kind":"SCALAR","name":"Int"},"defaultValue":"$v"}],"type":{"kind":"SCALAR","name":"Int"}}]}]}}`, "default value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := panther.SchemaFromIntrospection([]byte(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestCheckOperationsAgainstOwnSchema(t *testing.T) {
	s, err := introspect(t, "")
	if err != nil {
		t.Fatal(err)
	}
	got := panther.CheckOperations(s)
	if got.Operations != 10 || len(got.Problems) != 0 {
		t.Errorf("CheckOperations = %+v, want 10 operations and no problem", got)
	}
}

// edit returns Panther's schema with each from replaced by to, failing when from is absent
// (schema.graphql changed and the case no longer tests anything).
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := panther.Schema
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("schema.graphql has no %q", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

const userOps = "users, userById, userByEmail, inviteUser, updateUser"

func TestCheckOperationsFindsChanges(t *testing.T) {
	const invite = "input InviteUserInput {\n  email: Email!\n  familyName: String!\n  givenName: String!"
	for _, c := range []struct {
		name  string
		edits []string
		want  []string
	}{
		{"renamed input field", []string{invite, strings.Replace(invite, "givenName", "firstName", 1)}, []string{
			`inviteUser: unknown field "givenName" on input InviteUserInput`,
			`inviteUser: input InviteUserInput requires field "firstName" (String!), which panther-scim does not send`,
		}},
		{"removed argument", []string{"userByEmail(email: String!): User!", "userByEmail: User!"}, []string{
			`userByEmail: Unknown argument "email" on field "Query.userByEmail"`,
		}},
		{"changed argument type", []string{"userById(id: ID!): User!", "userById(id: Int!): User!"}, []string{
			`userById: Variable "$id" of type "ID!" used in position expecting type "Int!"`,
		}},
		{"changed output type", []string{"  enabled: Boolean!\n", "  enabled: String!\n"}, []string{
			userOps + `: field User.enabled is String! in Panther; panther-scim reads Boolean!`,
		}},
		{"list turned single", []string{"  permissions: [Permission!]!\n  updatedAt", "  permissions: Permission!\n  updatedAt"}, []string{
			// Users are read with their role's permissions (who administers Panther).
			userOps + `, roles, roleById, roleByName, createRole: field Role.permissions is Permission! in Panther; panther-scim reads [Permission!]!`,
		}},
		{"removed output field", []string{"  status: String!\n}", "}"}, []string{
			userOps + `: Cannot query field "status" on type "User"`,
		}},
		{"changed input field type", []string{invite, strings.Replace(invite, "givenName: String!", "givenName: Int!", 1)}, []string{
			`inviteUser: field "givenName" on input InviteUserInput is Int! in Panther; panther-scim sends String!`,
		}},
		{"optional input field made required", []string{"input UpdateUserInput {\n  email: Email\n", "input UpdateUserInput {\n  email: Email!\n"}, []string{
			`updateUser: field "email" on input UpdateUserInput is Email! in Panther; panther-scim may leave it out`,
		}},
		{"new required input field", []string{"input DeleteUserInput {\n  id: ID!\n", "input DeleteUserInput {\n  id: ID!\n  reason: String!\n"}, []string{
			`deleteUser: input DeleteUserInput requires field "reason" (String!), which panther-scim does not send`,
		}},
		{"enum value removed", []string{"  ID\n  NAME\n", "  ID\n"}, []string{
			`inviteUser, updateUser: enum UserRoleInputKind has no value "NAME"`,
		}},
		{"renamed input type", []string{"inviteUser(input: InviteUserInput!)", "inviteUser(input: NewUserInput!)", "input InviteUserInput {", "input NewUserInput {"}, []string{
			`inviteUser: Unknown type "InviteUserInput"`,
			`inviteUser: Variable "$input" of type "InviteUserInput!" used in position expecting type "NewUserInput!"`,
		}},
		{"nested input changed", []string{"input UserRoleInput {\n  kind: UserRoleInputKind!\n  value: String!", "input UserRoleInput {\n  kind: UserRoleInputKind!\n  name: String!"}, []string{
			`inviteUser, updateUser: unknown field "value" on input UserRoleInput`,
			`inviteUser, updateUser: input UserRoleInput requires field "name" (String!), which panther-scim does not send`,
		}},
		// Changes that break nothing the client does.
		{"new optional input field", []string{"input DeleteUserInput {\n  id: ID!\n", "input DeleteUserInput {\n  id: ID!\n  reason: String\n"}, nil},
		{"new required field with a default", []string{"input DeleteUserInput {\n  id: ID!\n", "input DeleteUserInput {\n  id: ID!\n  hard: Boolean! = false\n"}, nil},
		{"permission dropped", []string{"  AlertModify\n", ""}, nil},
		{"string scalar renamed", []string{"  email: Email!\n  enabled", "  email: String!\n  enabled"}, nil},
		{"output made nullable", []string{"  enabled: Boolean!\n", "  enabled: Boolean\n"}, nil},
		{"new output field", []string{"  status: String!\n}", "  status: String!\n  mfa: Boolean\n}"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := introspect(t, edit(t, c.edits...))
			if err != nil {
				t.Fatal(err)
			}
			res := panther.CheckOperations(s)
			var got []string
			for _, p := range res.Problems {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
			if res.Operations != 10 {
				t.Errorf("%d operations checked", res.Operations)
			}
		})
	}
}

func TestSchemaErrors(t *testing.T) {
	fake := pantherfake.New(pantherfake.Options{APIKey: token, Seed: 1, RefuseIntrospection: true})
	url, stop, err := fake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	client := func(key string) *panther.Client {
		c, err := panther.New(panther.Config{URL: url, Token: key, MaxRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := context.Background()
	_, err = client(token).Schema(ctx)
	if !errors.Is(err, panther.ErrIntrospectionRefused) || !strings.Contains(err.Error(), "introspection is not allowed") {
		t.Errorf("refused: %v", err)
	}
	if _, err := client(token).CheckSchema(ctx); !errors.Is(err, panther.ErrIntrospectionRefused) {
		t.Errorf("CheckSchema, refused: %v", err)
	}
	// A rejected key is not a refusal of introspection.
	_, err = client("wrong-key-0123456789").Schema(ctx)
	if errors.Is(err, panther.ErrIntrospectionRefused) || !errors.Is(err, panther.ErrUnauthorized) {
		t.Errorf("wrong key: %v", err)
	}
	fake.Down(true)
	_, err = client(token).Schema(ctx)
	if errors.Is(err, panther.ErrIntrospectionRefused) || !errors.Is(err, panther.ErrUnavailable) {
		t.Errorf("down: %v", err)
	}
}
