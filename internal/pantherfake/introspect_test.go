package pantherfake

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/panther"
)

// typeRefJSON is a __Type as a type reference: kind, name and what it wraps.
type typeRefJSON struct {
	Kind   string       `json:"kind"`
	Name   *string      `json:"name"`
	OfType *typeRefJSON `json:"ofType"`
}

// String renders the reference as SDL does ("Email!", "[Permission!]!").
func (r *typeRefJSON) String() string {
	switch {
	case r == nil:
		return "?"
	case r.Kind == "NON_NULL":
		return r.OfType.String() + "!"
	case r.Kind == "LIST":
		return "[" + r.OfType.String() + "]"
	case r.Name == nil:
		return "?"
	}
	return *r.Name
}

const typeRefFields = `kind name ofType { kind name ofType { kind name ofType { kind name } } }`

func TestIntrospectionType(t *testing.T) {
	_, url := start(t, Options{})
	r := post(t, url, testKey, `query($n: String!) { __type(name: $n) {
	  kind name
	  inputFields { name defaultValue type { `+typeRefFields+` } }
	  fields { name }
	} }`, map[string]any{"n": "InviteUserInput"})
	if r.Status != 200 || len(r.Errors) > 0 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	got := decode[struct {
		Type struct {
			Kind        string `json:"kind"`
			Name        string `json:"name"`
			InputFields []struct {
				Name         string       `json:"name"`
				DefaultValue *string      `json:"defaultValue"`
				Type         *typeRefJSON `json:"type"`
			} `json:"inputFields"`
			Fields []any `json:"fields"`
		} `json:"__type"`
	}](t, r.Data)
	if got.Type.Kind != "INPUT_OBJECT" || got.Type.Name != "InviteUserInput" || got.Type.Fields != nil {
		t.Errorf("__type = %+v", got.Type)
	}
	var fields []string
	for _, f := range got.Type.InputFields {
		fields = append(fields, f.Name+": "+f.Type.String())
		if f.DefaultValue != nil {
			t.Errorf("%s has default %q", f.Name, *f.DefaultValue)
		}
	}
	want := []string{"email: Email!", "familyName: String!", "givenName: String!", "role: UserRoleInput!"}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("input fields %q, want %q", fields, want)
	}

	// An unknown type is null, not an error.
	r = post(t, url, testKey, `{ __type(name: "Nope") { name } }`, nil)
	if r.Status != 200 || len(r.Errors) > 0 || string(r.Data) != `{"__type":null}` {
		t.Errorf("unknown type: %d %s", r.Status, r.Body)
	}
}

func TestIntrospectionSchema(t *testing.T) {
	_, url := start(t, Options{})
	r := post(t, url, testKey, `{ __schema {
	  queryType { name } mutationType { name } subscriptionType { name }
	  types { kind name enumValues(includeDeprecated: true) { name isDeprecated } possibleTypes { name } }
	  directives { name locations args { name type { `+typeRefFields+` } } }
	} }`, nil)
	if r.Status != 200 || len(r.Errors) > 0 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	type named struct {
		Name string `json:"name"`
	}
	got := decode[struct {
		Schema struct {
			QueryType        *named `json:"queryType"`
			MutationType     *named `json:"mutationType"`
			SubscriptionType *named `json:"subscriptionType"`
			Types            []struct {
				Kind          string  `json:"kind"`
				Name          string  `json:"name"`
				EnumValues    []named `json:"enumValues"`
				PossibleTypes []named `json:"possibleTypes"`
			} `json:"types"`
			Directives []struct {
				Name      string   `json:"name"`
				Locations []string `json:"locations"`
				Args      []struct {
					Name string       `json:"name"`
					Type *typeRefJSON `json:"type"`
				} `json:"args"`
			} `json:"directives"`
		} `json:"__schema"`
	}](t, r.Data).Schema
	if got.QueryType == nil || got.QueryType.Name != "Query" || got.MutationType == nil || got.MutationType.Name != "Mutation" || got.SubscriptionType != nil {
		t.Errorf("root types %+v %+v %+v", got.QueryType, got.MutationType, got.SubscriptionType)
	}
	kinds := map[string]string{}
	for _, ty := range got.Types {
		kinds[ty.Name] = ty.Kind
		switch ty.Name {
		case "UserRoleInputKind":
			if len(ty.EnumValues) != 2 || ty.EnumValues[0].Name != "ID" || ty.EnumValues[1].Name != "NAME" {
				t.Errorf("UserRoleInputKind values %+v", ty.EnumValues)
			}
		case "Actor":
			var names []string
			for _, p := range ty.PossibleTypes {
				names = append(names, p.Name)
			}
			slices.Sort(names)
			if !reflect.DeepEqual(names, []string{"APIToken", "User"}) {
				t.Errorf("Actor possible types %q", names)
			}
		}
	}
	for name, kind := range map[string]string{"Query": "OBJECT", "User": "OBJECT", "Actor": "UNION", "Permission": "ENUM",
		"InviteUserInput": "INPUT_OBJECT", "DateTime": "SCALAR", "String": "SCALAR", "__Type": "OBJECT"} {
		if kinds[name] != kind {
			t.Errorf("type %s: kind %q, want %s", name, kinds[name], kind)
		}
	}
	var skip bool
	for _, d := range got.Directives {
		if d.Name == "skip" {
			skip = len(d.Args) == 1 && d.Args[0].Name == "if" && d.Args[0].Type.String() == "Boolean!" && slices.Contains(d.Locations, "FIELD")
		}
	}
	if !skip {
		t.Errorf("@skip missing or wrong in %+v", got.Directives)
	}
}

func TestRefuseIntrospection(t *testing.T) {
	s, url := start(t, Options{RefuseIntrospection: true})
	r := post(t, url, testKey, `{ __schema { queryType { name } } }`, nil)
	if r.Status != 400 || r.hasData || r.code() != codeValidationFailed || !strings.Contains(r.Errors[0].Message, "introspection is not allowed") {
		t.Errorf("refused introspection: %d %s", r.Status, r.Body)
	}
	// Other queries are served, __typename included.
	if r := post(t, url, testKey, `{ roles { __typename name } }`, nil); r.Status != 200 || len(r.Errors) > 0 {
		t.Errorf("roles: %d %s", r.Status, r.Body)
	}
	s.RefuseIntrospection(false)
	if r := post(t, url, testKey, `{ __schema { queryType { name } } }`, nil); r.Status != 200 || string(r.Data) != `{"__schema":{"queryType":{"name":"Query"}}}` {
		t.Errorf("allowed again: %d %s", r.Status, r.Body)
	}
}

// changedSchema is Panther's schema with InviteUserInput.givenName renamed.
func changedSchema(t *testing.T) string {
	t.Helper()
	const from = "input InviteUserInput {\n  email: Email!\n  familyName: String!\n  givenName: String!"
	if !strings.Contains(panther.Schema, from) {
		t.Fatal("schema.graphql changed: update the test's edit")
	}
	return strings.Replace(panther.Schema, from, "input InviteUserInput {\n  email: Email!\n  familyName: String!\n  firstName: String!", 1)
}

func inputFieldNames(t *testing.T, url, typ string) []string {
	t.Helper()
	r := post(t, url, testKey, `query($n: String!) { __type(name: $n) { inputFields { name } } }`, map[string]any{"n": typ})
	got := decode[struct {
		Type struct {
			InputFields []struct {
				Name string `json:"name"`
			} `json:"inputFields"`
		} `json:"__type"`
	}](t, r.Data)
	var names []string
	for _, f := range got.Type.InputFields {
		names = append(names, f.Name)
	}
	return names
}

func TestServeAnotherSchema(t *testing.T) {
	schema, err := LoadSchema("changed.graphql", changedSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	_, url := start(t, Options{Schema: schema})
	if got := inputFieldNames(t, url, "InviteUserInput"); !reflect.DeepEqual(got, []string{"email", "familyName", "firstName", "role"}) {
		t.Errorf("InviteUserInput fields %q", got)
	}
	// The rest of Panther still answers.
	if r := post(t, url, testKey, `{ roleByName(name: "Admin") { name } }`, nil); r.Status != 200 || len(r.Errors) > 0 {
		t.Errorf("roleByName: %d %s", r.Status, r.Body)
	}
	// A query valid against Panther's schema but not this one is refused as Panther would.
	r := post(t, url, testKey, inviteMutation, invite("a@example.com", "A", "B", "NAME", "Admin"))
	if r.Status != 200 || r.hasData && string(r.Data) != "null" || len(r.Errors) == 0 || r.code() != codeBadUserInput {
		t.Errorf("invite against the changed schema: %d %s", r.Status, r.Body)
	}

	if _, err := LoadSchema("bad.graphql", "type Query { x: Nope }"); err == nil || !strings.Contains(err.Error(), "bad.graphql") {
		t.Errorf("bad schema: %v", err)
	}
}

func TestSetSchema(t *testing.T) {
	schema, err := LoadSchema("changed.graphql", changedSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	s, url := start(t, Options{})
	// A document cached under the first schema is validated again under the next.
	q := `mutation { inviteUser(input: {email: "a@example.com", familyName: "B", firstName: "A", role: {kind: NAME, value: "Admin"}}) { user { email } } }`
	if r := post(t, url, testKey, q, nil); r.code() != codeValidationFailed {
		t.Errorf("firstName under Panther's schema: %s", r.Body)
	}
	s.SetSchema(schema)
	if r := post(t, url, testKey, q, nil); r.code() == codeValidationFailed {
		t.Errorf("firstName under the changed schema: %s", r.Body)
	}
	if got := inputFieldNames(t, url, "InviteUserInput"); !reflect.DeepEqual(got, []string{"email", "familyName", "firstName", "role"}) {
		t.Errorf("after SetSchema: %q", got)
	}
	s.SetSchema(nil)
	if got := inputFieldNames(t, url, "InviteUserInput"); !reflect.DeepEqual(got, []string{"email", "familyName", "givenName", "role"}) {
		t.Errorf("after SetSchema(nil): %q", got)
	}
}

func TestRunWithSchemaFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "changed.graphql")
	if err := os.WriteFile(file, []byte(changedSchema(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{ch: make(chan string, 16)}
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, []string{"--addr", "127.0.0.1:0", "--api-key", testKey, "--schema", file, "--no-introspection"}, out)
	}()
	var line string
	select {
	case line = <-out.ch:
	case err := <-errc:
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run printed nothing")
	}
	url := strings.Fields(line[strings.Index(line, "http://"):])[0]
	if r := post(t, url, testKey, `{ __schema { queryType { name } } }`, nil); r.Status != 400 {
		t.Errorf("--no-introspection: %d %s", r.Status, r.Body)
	}
	r := post(t, url, testKey, `{ __type(name: "InviteUserInput") { name } }`, nil)
	if r.Status != 400 {
		t.Errorf("--no-introspection, __type: %d %s", r.Status, r.Body)
	}
	// The served schema is the file's: firstName is a known input field.
	r = post(t, url, testKey, `mutation { inviteUser(input: {email: "a@example.com", familyName: "B", firstName: "A", role: {kind: NAME, value: "Admin"}}) { user { email } } }`, nil)
	if r.code() == codeValidationFailed {
		t.Errorf("firstName refused: %s", r.Body)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run: %v", err)
	}

	if err := Run(context.Background(), []string{"--api-key", "k", "--schema", filepath.Join(dir, "missing.graphql")}, &strings.Builder{}); err == nil {
		t.Error("Run with a missing schema file succeeded")
	}
	bad := filepath.Join(dir, "bad.graphql")
	if err := os.WriteFile(bad, []byte("type Query { x: Nope }"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), []string{"--api-key", "k", "--schema", bad}, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("Run with an invalid schema: %v", err)
	}
}

func TestTokenPermissions(t *testing.T) {
	s, url := start(t, Options{TokenPermissions: []string{"UserRead"}})
	if r := post(t, url, testKey, `{ users { id } roles { name } }`, nil); r.Status != 200 || len(r.Errors) > 0 {
		t.Errorf("reads with UserRead: %d %s", r.Status, r.Body)
	}
	r := post(t, url, testKey, inviteMutation, invite("a@example.com", "A", "B", "NAME", "Admin"))
	if r.Status != 200 || r.code() != codeForbidden || !strings.Contains(r.Errors[0].Message, "UserModify") || string(r.Data) != "null" {
		t.Errorf("invite without UserModify: %d %s", r.Status, r.Body)
	}
	if len(s.Users()) != 0 {
		t.Error("a refused invite created a user")
	}
	s.SetTokenPermissions([]string{})
	if r := post(t, url, testKey, `{ roles { name } }`, nil); r.code() != codeForbidden || !strings.Contains(r.Errors[0].Message, "UserRead") {
		t.Errorf("roles without UserRead: %d %s", r.Status, r.Body)
	}
	// Introspection needs no permission.
	if r := post(t, url, testKey, `{ __schema { queryType { name } } }`, nil); r.Status != 200 || len(r.Errors) > 0 {
		t.Errorf("introspection without permissions: %d %s", r.Status, r.Body)
	}
	s.SetTokenPermissions(nil)
	if r := post(t, url, testKey, inviteMutation, invite("a@example.com", "A", "B", "NAME", "Admin")); len(r.Errors) > 0 {
		t.Errorf("invite with every permission: %s", r.Body)
	}
}
