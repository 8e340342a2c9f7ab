package resource

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	elimity "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"
)

// rawPatchOps decodes a JSON array of operations as a client sends them, without elimity's validation: op as
// written, path parsed by filter-parser, value decoded with UseNumber.
func rawPatchOps(t testing.TB, ops string) []PatchOp {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(ops))
	d.UseNumber()
	var raw []struct {
		Op    string
		Path  string
		Value any
	}
	if err := d.Decode(&raw); err != nil {
		t.Fatalf("decode operations %s: %v", ops, err)
	}
	out := make([]PatchOp, len(raw))
	for i, r := range raw {
		out[i] = PatchOp{Op: r.Op, Value: r.Value}
		if r.Path != "" {
			p, err := filter.ParsePath([]byte(r.Path))
			if err != nil {
				t.Fatalf("parse path %q: %v", r.Path, err)
			}
			out[i].Path = &p
		}
	}
	return out
}

// capturePatch is an elimity resource handler that records the operations of a PATCH.
type capturePatch struct{ ops []elimity.PatchOperation }

func (c *capturePatch) Create(*http.Request, elimity.ResourceAttributes) (elimity.Resource, error) {
	return elimity.Resource{}, scimerrors.ScimErrorInternal
}
func (c *capturePatch) Get(*http.Request, string) (elimity.Resource, error) {
	return elimity.Resource{}, scimerrors.ScimErrorInternal
}
func (c *capturePatch) GetAll(*http.Request, elimity.ListRequestParams) (elimity.Page, error) {
	return elimity.Page{}, scimerrors.ScimErrorInternal
}
func (c *capturePatch) Replace(*http.Request, string, elimity.ResourceAttributes) (elimity.Resource, error) {
	return elimity.Resource{}, scimerrors.ScimErrorInternal
}
func (c *capturePatch) Delete(*http.Request, string) error { return scimerrors.ScimErrorInternal }
func (c *capturePatch) Patch(_ *http.Request, id string, ops []elimity.PatchOperation) (elimity.Resource, error) {
	c.ops = ops
	return elimity.Resource{ID: id, Attributes: elimity.ResourceAttributes{"x": "y"}}, nil
}

// elimityPatchOps sends a PATCH body through elimity's server, as production does, and returns the operations
// its handler receives. The server's own validation must accept the body.
func elimityPatchOps(t testing.TB, rs Schema, body string) []PatchOp {
	t.Helper()
	// As the production server does at start-up: Entra ID sends booleans as strings.
	schema.SetAllowStringValues(true)
	c := &capturePatch{}
	var exts []elimity.SchemaExtension
	for _, e := range rs.Extensions {
		exts = append(exts, elimity.SchemaExtension{Schema: e})
	}
	srv, err := elimity.NewServer(&elimity.ServerArgs{
		ServiceProviderConfig: &elimity.ServiceProviderConfig{},
		ResourceTypes: []elimity.ResourceType{{
			Name: "Thing", Endpoint: "/Things", Schema: rs.Core, SchemaExtensions: exts, Handler: c,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodPatch, "/Things/x", strings.NewReader(body)))
	if w.Code != http.StatusOK {
		t.Fatalf("elimity rejected the PATCH: %d %s", w.Code, w.Body.String())
	}
	ops := make([]PatchOp, len(c.ops))
	for i, o := range c.ops {
		ops[i] = PatchOp{Op: o.Op, Path: o.Path, Value: o.Value}
	}
	return ops
}

// patchBody wraps operations in a PatchOp request body.
func patchBody(ops string) string {
	return `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ` + ops + `}`
}

type patchCase struct {
	name string
	rs   Schema
	res  string
	ops  string
	want string              // the whole resulting resource, when the patch succeeds
	err  scimerrors.ScimType // the error type, when it fails
	frag []string            // fragments of the error detail
	// viaElimity also runs the case with the operations elimity's server produces (valid requests only).
	viaElimity bool
}

func runPatchCases(t *testing.T, cases []patchCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := tc.rs
			if rs.Core.ID == "" {
				rs = UserSchema
			}
			sources := map[string]func() []PatchOp{"raw": func() []PatchOp { return rawPatchOps(t, tc.ops) }}
			if tc.viaElimity {
				sources["elimity"] = func() []PatchOp { return elimityPatchOps(t, rs, patchBody(tc.ops)) }
			}
			for src, ops := range sources {
				res := decodeResource(t, tc.res)
				before := mustJSON(t, res)
				got, err := rs.ApplyPatch(res, ops())
				if after := mustJSON(t, res); after != before {
					t.Fatalf("%s: input mutated:\nbefore %s\nafter  %s", src, before, after)
				}
				if tc.err != "" {
					if got != nil {
						t.Errorf("%s: result %s alongside an error", src, mustJSON(t, got))
					}
					wantScimError(t, err, tc.err, tc.frag...)
					continue
				}
				if err != nil {
					t.Fatalf("%s: ApplyPatch: %v", src, err)
				}
				if g, w := mustJSON(t, got), canonicalJSON(t, tc.want); g != w {
					t.Errorf("%s:\ngot  %s\nwant %s", src, g, w)
				}
			}
		})
	}
}

func TestApplyPatchAdd(t *testing.T) {
	runPatchCases(t, []patchCase{
		{
			name: "simple attribute", viaElimity: true,
			res: `{"userName": "a"}`, ops: `[{"op": "add", "path": "nickName", "value": "Bee"}]`,
			want: `{"userName": "a", "nickName": "Bee"}`,
		},
		{
			name: "single-valued attribute is replaced", viaElimity: true,
			res: `{"userName": "a", "title": "x"}`, ops: `[{"op": "add", "path": "title", "value": "y"}]`,
			want: `{"userName": "a", "title": "y"}`,
		},
		{
			name: "op in capitals, path in any case", viaElimity: true,
			res: `{"userName": "a"}`, ops: `[{"op": "Add", "path": "NICKNAME", "value": "Bee"}]`,
			want: `{"userName": "a", "nickName": "Bee"}`,
		},
		{
			name: "complex attribute merges sub-attributes", viaElimity: true,
			res: `{"name": {"givenName": "Barbara"}}`, ops: `[{"op": "add", "path": "name", "value": {"familyName": "Jensen"}}]`,
			want: `{"name": {"givenName": "Barbara", "familyName": "Jensen"}}`,
		},
		{
			name: "sub-attribute creates its parent", viaElimity: true,
			res: `{}`, ops: `[{"op": "add", "path": "name.givenName", "value": "Barbara"}]`,
			want: `{"name": {"givenName": "Barbara"}}`,
		},
		{
			name: "multi-valued attribute appends", viaElimity: true,
			res:  `{"emails": [{"value": "a@x", "type": "work"}]}`,
			ops:  `[{"op": "add", "path": "emails", "value": [{"value": "b@x", "type": "home"}]}]`,
			want: `{"emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}]}`,
		},
		{
			name: "multi-valued attribute given one object", viaElimity: true,
			res:  `{"emails": [{"value": "a@x"}]}`,
			ops:  `[{"op": "add", "path": "emails", "value": {"value": "b@x"}}]`,
			want: `{"emails": [{"value": "a@x"}, {"value": "b@x"}]}`,
		},
		{
			name: "multi-valued attribute skips exact duplicates", viaElimity: true,
			res:  `{"emails": [{"value": "a@x", "type": "work"}]}`,
			ops:  `[{"op": "add", "path": "emails", "value": [{"type": "work", "value": "a@x"}, {"value": "c@x"}]}]`,
			want: `{"emails": [{"value": "a@x", "type": "work"}, {"value": "c@x"}]}`,
		},
		{
			name: "members skips a member already present", rs: GroupSchema, viaElimity: true,
			res:  `{"displayName": "g", "members": [{"value": "u1", "display": "Babs"}]}`,
			ops:  `[{"op": "add", "path": "members", "value": [{"value": "u1", "display": "Barbara"}, {"value": "u2"}]}]`,
			want: `{"displayName": "g", "members": [{"value": "u1", "display": "Babs"}, {"value": "u2"}]}`,
		},
		{
			name: "members to a group without members", rs: GroupSchema, viaElimity: true,
			res:  `{"displayName": "g"}`,
			ops:  `[{"op": "add", "path": "members", "value": [{"value": "u1", "$ref": null}]}]`,
			want: `{"displayName": "g", "members": [{"value": "u1"}]}`,
		},
		{
			name: "empty list adds nothing", rs: GroupSchema, viaElimity: true,
			res: `{"displayName": "g"}`, ops: `[{"op": "add", "path": "members", "value": []}]`,
			want: `{"displayName": "g"}`,
		},
		{
			name: "a new primary value demotes the old one", viaElimity: true,
			res:  `{"emails": [{"value": "a@x", "primary": true}, {"value": "b@x"}]}`,
			ops:  `[{"op": "add", "path": "emails", "value": [{"value": "c@x", "primary": true}]}]`,
			want: `{"emails": [{"value": "a@x", "primary": false}, {"value": "b@x"}, {"value": "c@x", "primary": true}]}`,
		},
		{
			name: "two primary values", viaElimity: true,
			res: `{}`, ops: `[{"op": "add", "path": "emails", "value": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": "True"}]}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{"only one value of \"emails\" may be primary"},
		},
		{
			name: "value filter with sub-attribute creates the element (Entra)", viaElimity: true,
			res:  `{"userName": "a"}`,
			ops:  `[{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "a@x"}]`,
			want: `{"userName": "a", "emails": [{"type": "work", "value": "a@x"}]}`,
		},
		{
			name: "value filter with two equalities creates the element", viaElimity: true,
			res:  `{"emails": [{"value": "h@x", "type": "home"}]}`,
			ops:  `[{"op": "add", "path": "emails[type eq \"work\" and primary eq true].value", "value": "w@x"}]`,
			want: `{"emails": [{"value": "h@x", "type": "home"}, {"type": "work", "primary": true, "value": "w@x"}]}`,
		},
		{
			name: "addresses by value filter (Entra)", viaElimity: true,
			res: `{}`,
			ops: `[{"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
			       {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"}]`,
			want: `{"addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Springfield"}]}`,
		},
		{
			name: "value filter with sub-attribute sets the matching element", viaElimity: true,
			res:  `{"emails": [{"value": "old@x", "type": "work"}, {"value": "h@x", "type": "home"}]}`,
			ops:  `[{"op": "add", "path": "emails[type eq \"work\"].value", "value": "new@x"}]`,
			want: `{"emails": [{"value": "new@x", "type": "work"}, {"value": "h@x", "type": "home"}]}`,
		},
		{
			name: "value filter without sub-attribute merges into the matching element", viaElimity: true,
			res:  `{"emails": [{"value": "w@x", "type": "work"}, {"value": "h@x", "type": "home", "primary": true}]}`,
			ops:  `[{"op": "add", "path": "emails[type eq \"work\"]", "value": {"primary": true}}]`,
			want: `{"emails": [{"value": "w@x", "type": "work", "primary": true}, {"value": "h@x", "type": "home", "primary": false}]}`,
		},
		{
			name: "value filter without sub-attribute and no match creates the element",
			res:  `{}`,
			ops:  `[{"op": "add", "path": "phoneNumbers[type eq \"mobile\"]", "value": {"value": "+1 555"}}]`,
			want: `{"phoneNumbers": [{"type": "mobile", "value": "+1 555"}]}`,
		},
		{
			name: "value filter that describes no element",
			res:  `{}`, ops: `[{"op": "add", "path": "emails[type co \"w\"].value", "value": "a@x"}]`,
			err: scimerrors.ScimTypeNoTarget, frag: []string{"emails", "does not describe a value"},
		},
		{
			name: "null clears", res: `{"title": "x", "userName": "a"}`, ops: `[{"op": "add", "path": "title", "value": null}]`,
			want: `{"userName": "a"}`,
		},
		{
			name: "extension attribute creates the extension and lists its schema", viaElimity: true,
			res: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a"}`,
			ops: `[{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "42"}]`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			        "userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "42"}}`,
		},
		{
			name: "manager as a bare id (Entra)", viaElimity: false,
			res:  `{"userName": "a"}`,
			ops:  `[{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m1"}]`,
			want: `{"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}}}`,
		},
		{
			name: "boolean given as a string", viaElimity: true,
			res: `{"active": true}`, ops: `[{"op": "add", "path": "active", "value": "False"}]`,
			want: `{"active": false}`,
		},
		{
			name: "unknown and read-only sub-attributes are dropped",
			res:  `{}`,
			ops: `[{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
			        "value": {"value": "m1", "displayName": "Boss", "colour": "blue"}}]`,
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}}}`,
		},
		{
			name: "keys of a complex value in any case are canonicalised", viaElimity: true,
			res: `{}`, ops: `[{"op": "add", "path": "name", "value": {"GIVENNAME": "B", "familyname": "J"}}]`,
			want: `{"name": {"givenName": "B", "familyName": "J"}}`,
		},
		{
			name: "the same sub-attribute twice", res: `{}`,
			ops: `[{"op": "add", "path": "name", "value": {"givenName": "B", "GivenName": "C"}}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{"givenName", "twice"},
		},
	})
}

func TestApplyPatchReplace(t *testing.T) {
	runPatchCases(t, []patchCase{
		{
			name: "simple attribute", viaElimity: true,
			res: `{"userName": "a"}`, ops: `[{"op": "replace", "path": "userName", "value": "b"}]`,
			want: `{"userName": "b"}`,
		},
		{
			name: "missing attribute is added", viaElimity: true,
			res: `{"userName": "a"}`, ops: `[{"op": "replace", "path": "title", "value": "t"}]`,
			want: `{"userName": "a", "title": "t"}`,
		},
		{
			name: "empty string clears", viaElimity: true,
			res: `{"userName": "a", "title": "t"}`, ops: `[{"op": "Replace", "path": "title", "value": ""}]`,
			want: `{"userName": "a"}`,
		},
		{
			name: "null clears", viaElimity: false,
			res: `{"userName": "a", "title": "t"}`, ops: `[{"op": "replace", "path": "title", "value": null}]`,
			want: `{"userName": "a"}`,
		},
		{
			name: "required attribute cannot be cleared",
			res:  `{"userName": "a"}`, ops: `[{"op": "replace", "path": "userName", "value": ""}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{`"userName" is required`},
		},
		{
			name: "multi-valued attribute is replaced whole", viaElimity: true,
			res:  `{"emails": [{"value": "a@x"}, {"value": "b@x"}]}`,
			ops:  `[{"op": "replace", "path": "emails", "value": [{"value": "c@x", "type": "work"}]}]`,
			want: `{"emails": [{"value": "c@x", "type": "work"}]}`,
		},
		{
			name: "members replaced whole (Okta)", rs: GroupSchema, viaElimity: true,
			res:  `{"displayName": "g", "members": [{"value": "u0"}]}`,
			ops:  `[{"op": "replace", "path": "members", "value": [{"value": "u1", "display": "one"}, {"value": "u2", "display": "two"}]}]`,
			want: `{"displayName": "g", "members": [{"value": "u1", "display": "one"}, {"value": "u2", "display": "two"}]}`,
		},
		{
			name: "multi-valued attribute replaced with an empty list", rs: GroupSchema, viaElimity: true,
			res: `{"displayName": "g", "members": [{"value": "u0"}]}`, ops: `[{"op": "replace", "path": "members", "value": []}]`,
			want: `{"displayName": "g"}`,
		},
		{
			name: "complex attribute keeps sub-attributes not given (RFC 7644 §3.5.2.3)", viaElimity: true,
			res:  `{"name": {"givenName": "B", "familyName": "J"}}`,
			ops:  `[{"op": "replace", "path": "name", "value": {"familyName": "Jensen"}}]`,
			want: `{"name": {"givenName": "B", "familyName": "Jensen"}}`,
		},
		{
			name: "sub-attribute", viaElimity: true,
			res:  `{"name": {"givenName": "B", "familyName": "J"}}`,
			ops:  `[{"op": "replace", "path": "name.familyName", "value": "Jensen"}]`,
			want: `{"name": {"givenName": "B", "familyName": "Jensen"}}`,
		},
		{
			name: "clearing the last sub-attribute removes the attribute", viaElimity: true,
			res: `{"userName": "a", "name": {"familyName": "J"}}`, ops: `[{"op": "replace", "path": "name.familyName", "value": ""}]`,
			want: `{"userName": "a"}`,
		},
		{
			name: "value filter with sub-attribute (Entra)", viaElimity: true,
			res:  `{"emails": [{"value": "old@x", "type": "work", "primary": true}, {"value": "h@x", "type": "home"}]}`,
			ops:  `[{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@x"}]`,
			want: `{"emails": [{"value": "new@x", "type": "work", "primary": true}, {"value": "h@x", "type": "home"}]}`,
		},
		{
			name: "value filter replaces the whole matching element", viaElimity: true,
			res:  `{"emails": [{"value": "old@x", "type": "work", "display": "Old"}, {"value": "h@x", "type": "home"}]}`,
			ops:  `[{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "new@x", "type": "work"}}]`,
			want: `{"emails": [{"value": "new@x", "type": "work"}, {"value": "h@x", "type": "home"}]}`,
		},
		{
			name: "value filter matching several elements", viaElimity: true,
			res:  `{"phoneNumbers": [{"value": "1", "type": "work"}, {"value": "2", "type": "work"}, {"value": "3", "type": "home"}]}`,
			ops:  `[{"op": "replace", "path": "phoneNumbers[type eq \"work\"].type", "value": "other"}]`,
			want: `{"phoneNumbers": [{"value": "1", "type": "other"}, {"value": "2", "type": "other"}, {"value": "3", "type": "home"}]}`,
		},
		{
			name: "value filter that matches nothing",
			res:  `{"emails": [{"value": "h@x", "type": "home"}]}`,
			ops:  `[{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "w@x"}]`,
			err:  scimerrors.ScimTypeNoTarget, frag: []string{`no value of "emails" matches`},
		},
		{
			name: "value filter on an absent attribute",
			res:  `{}`, ops: `[{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "w@x"}}]`,
			err: scimerrors.ScimTypeNoTarget,
		},
		{
			name: "primary set through a value filter demotes the other", viaElimity: true,
			res:  `{"emails": [{"value": "w@x", "type": "work", "primary": true}, {"value": "h@x", "type": "home"}]}`,
			ops:  `[{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]`,
			want: `{"emails": [{"value": "w@x", "type": "work", "primary": false}, {"value": "h@x", "type": "home", "primary": true}]}`,
		},
		{
			name: "manager as a bare id drops the old manager's details (Entra)", viaElimity: false,
			res: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D",
			        "manager": {"value": "m1", "$ref": "../Users/m1", "displayName": "Old Boss"}}}`,
			ops:  `[{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m2"}]`,
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "manager": {"value": "m2"}}}`,
		},
		{
			name: "manager as an object", viaElimity: true,
			res:  `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1", "displayName": "Boss"}}}`,
			ops:  `[{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "m2"}}]`,
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m2"}}}`,
		},
		{
			name: "manager with the same value keeps its details", viaElimity: true,
			res:  `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1", "displayName": "Boss"}}}`,
			ops:  `[{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "m1"}}]`,
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1", "displayName": "Boss"}}}`,
		},
		{
			name: "manager with an empty value is cleared (Entra)", viaElimity: true,
			res:  `{"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1", "displayName": "Boss"}}}`,
			ops:  `[{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": ""}}]`,
			want: `{"userName": "a"}`,
		},
		{
			name: "manager set to null", viaElimity: false,
			res:  `{"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}, "department": "D"}}`,
			ops:  `[{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": null}]`,
			want: `{"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"}}`,
		},
		{
			name: "manager.value", viaElimity: true,
			res:  `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1", "displayName": "Boss"}}}`,
			ops:  `[{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "value": "m2"}]`,
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m2"}}}`,
		},
		{
			name: "active as a string (Entra)", viaElimity: true,
			res: `{"active": true}`, ops: `[{"op": "Replace", "path": "active", "value": "False"}]`,
			want: `{"active": false}`,
		},
		{
			name: "active not a boolean",
			res:  `{"active": true}`, ops: `[{"op": "replace", "path": "active", "value": "yes"}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{`"active" must be true or false`},
		},
		{
			name: "string attribute given a number",
			res:  `{"userName": "a"}`, ops: `[{"op": "replace", "path": "userName", "value": 42}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{`"userName" must be a string, not the number 42`},
		},
		{
			name: "string attribute given a boolean",
			res:  `{}`, ops: `[{"op": "replace", "path": "title", "value": true}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{`"title" must be a string`},
		},
		{
			name: "complex attribute given a string",
			res:  `{}`, ops: `[{"op": "replace", "path": "name", "value": "Barbara Jensen"}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{`"name" is complex`, "familyName"},
		},
		{
			name: "sub-attribute given an object",
			res:  `{}`, ops: `[{"op": "replace", "path": "name.givenName", "value": {"x": 1}}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{`"name.givenName" must be a string, not an object`},
		},
		{
			name: "element sub-attribute of the wrong type",
			res:  `{}`, ops: `[{"op": "replace", "path": "emails", "value": [{"value": "a@x", "primary": "maybe"}]}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{`"emails.primary" must be true or false`},
		},
		{
			name: "id is read-only", res: `{"id": "1"}`, ops: `[{"op": "replace", "path": "id", "value": "2"}]`,
			err: scimerrors.ScimTypeMutability, frag: []string{`"id" is read-only`},
		},
		{
			name: "meta is read-only", res: `{}`, ops: `[{"op": "replace", "path": "meta.lastModified", "value": "2024-01-01T00:00:00Z"}]`,
			err: scimerrors.ScimTypeMutability, frag: []string{`"meta.lastModified" is read-only`},
		},
		{
			name: "groups are read-only on users", res: `{}`, ops: `[{"op": "add", "path": "groups", "value": [{"value": "g1"}]}]`,
			err: scimerrors.ScimTypeMutability, frag: []string{`"groups" is read-only`},
		},
		{
			name: "manager.displayName is read-only", res: `{}`,
			ops: `[{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName", "value": "B"}]`,
			err: scimerrors.ScimTypeMutability, frag: []string{`"displayName"`, "read-only"},
		},
		{
			name: "schemas are immutable", res: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}`,
			ops: `[{"op": "replace", "path": "schemas", "value": ["urn:x"]}]`,
			err: scimerrors.ScimTypeMutability, frag: []string{`"schemas" is immutable`},
		},
		{
			name: "immutable member sub-attribute changed", rs: GroupSchema,
			res: `{"displayName": "g", "members": [{"value": "u1", "display": "A"}]}`,
			ops: `[{"op": "replace", "path": "members[value eq \"u1\"].display", "value": "B"}]`,
			err: scimerrors.ScimTypeMutability, frag: []string{`"members.display" is immutable`},
		},
		{
			name: "immutable member sub-attribute set to its value", rs: GroupSchema, viaElimity: true,
			res:  `{"displayName": "g", "members": [{"value": "u1", "display": "A"}]}`,
			ops:  `[{"op": "replace", "path": "members[value eq \"u1\"].display", "value": "A"}]`,
			want: `{"displayName": "g", "members": [{"value": "u1", "display": "A"}]}`,
		},
	})
}

func TestApplyPatchImmutable(t *testing.T) {
	rs := numericSchema()
	runPatchCases(t, []patchCase{
		{
			name: "immutable attribute added when absent", rs: rs,
			res: `{"label": "l"}`, ops: `[{"op": "add", "path": "serial", "value": "S1"}]`,
			want: `{"label": "l", "serial": "S1"}`,
		},
		{
			name: "immutable attribute replaced with its value", rs: rs,
			res: `{"serial": "S1"}`, ops: `[{"op": "replace", "path": "serial", "value": "S1"}]`,
			want: `{"serial": "S1"}`,
		},
		{
			name: "immutable attribute changed", rs: rs,
			res: `{"serial": "S1"}`, ops: `[{"op": "replace", "path": "serial", "value": "S2"}]`,
			err: scimerrors.ScimTypeMutability, frag: []string{`"serial" is immutable`},
		},
		{
			name: "immutable attribute removed", rs: rs,
			res: `{"serial": "S1"}`, ops: `[{"op": "remove", "path": "serial"}]`,
			err: scimerrors.ScimTypeMutability,
		},
		{
			name: "integer", rs: rs,
			res: `{}`, ops: `[{"op": "add", "path": "age", "value": 42}, {"op": "add", "path": "score", "value": 1.5}]`,
			want: `{"age": 42, "score": 1.5}`,
		},
		{
			name: "integer given a fraction", rs: rs,
			res: `{}`, ops: `[{"op": "add", "path": "age", "value": 4.2}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{`"age" must be a whole number`},
		},
		{
			name: "integer given as a string", rs: rs,
			res: `{}`, ops: `[{"op": "add", "path": "age", "value": "42"}]`,
			want: `{"age": 42}`,
		},
		{
			name: "multi-valued integers", rs: rs,
			res: `{"ports": [22]}`, ops: `[{"op": "add", "path": "ports", "value": [22, 443]}, {"op": "remove", "path": "ports[value eq 22]"}]`,
			want: `{"ports": [443]}`,
		},
		{
			name: "binary not base64", rs: rs,
			res: `{}`, ops: `[{"op": "add", "path": "cert", "value": "not base64!"}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{`"cert" must be a base64 string`},
		},
		{
			name: "dateTime not a date", rs: rs,
			res: `{}`, ops: `[{"op": "add", "path": "seen", "value": "yesterday"}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{`"seen" must be a dateTime`},
		},
		{
			name: "dateTime", rs: rs,
			res: `{}`, ops: `[{"op": "add", "path": "seen", "value": "2024-02-29T12:00:00Z"}]`,
			want: `{"seen": "2024-02-29T12:00:00Z"}`,
		},
	})
}

func TestApplyPatchRemove(t *testing.T) {
	runPatchCases(t, []patchCase{
		{
			name: "no path", res: `{"userName": "a"}`, ops: `[{"op": "remove"}]`,
			err: scimerrors.ScimTypeNoTarget, frag: []string{"remove needs a path"},
		},
		{
			name: "simple attribute", viaElimity: true,
			res: `{"userName": "a", "title": "t"}`, ops: `[{"op": "remove", "path": "title"}]`,
			want: `{"userName": "a"}`,
		},
		{
			name: "absent attribute does nothing", viaElimity: true,
			res: `{"userName": "a"}`, ops: `[{"op": "Remove", "path": "nickName"}]`,
			want: `{"userName": "a"}`,
		},
		{
			name: "required attribute",
			res:  `{"userName": "a"}`, ops: `[{"op": "remove", "path": "userName"}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{`"userName" is required`},
		},
		{
			name: "sub-attribute", viaElimity: true,
			res: `{"name": {"givenName": "B", "familyName": "J"}}`, ops: `[{"op": "remove", "path": "name.givenName"}]`,
			want: `{"name": {"familyName": "J"}}`,
		},
		{
			name: "last sub-attribute removes the attribute", viaElimity: true,
			res: `{"userName": "a", "name": {"givenName": "B"}}`, ops: `[{"op": "remove", "path": "name.givenName"}]`,
			want: `{"userName": "a"}`,
		},
		{
			name: "sub-attribute of every element", viaElimity: true,
			res:  `{"emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}]}`,
			ops:  `[{"op": "remove", "path": "emails.type"}]`,
			want: `{"emails": [{"value": "a@x"}, {"value": "b@x"}]}`,
		},
		{
			name: "member by value filter (Okta)", rs: GroupSchema, viaElimity: true,
			res:  `{"displayName": "g", "members": [{"value": "u1"}, {"value": "u2"}]}`,
			ops:  `[{"op": "remove", "path": "members[value eq \"u1\"]"}]`,
			want: `{"displayName": "g", "members": [{"value": "u2"}]}`,
		},
		{
			name: "last member by value filter", rs: GroupSchema, viaElimity: true,
			res: `{"displayName": "g", "members": [{"value": "u1"}]}`, ops: `[{"op": "remove", "path": "members[value eq \"u1\"]"}]`,
			want: `{"displayName": "g"}`,
		},
		{
			name: "value filter that matches nothing does nothing", rs: GroupSchema, viaElimity: true,
			res:  `{"displayName": "g", "members": [{"value": "u1"}]}`,
			ops:  `[{"op": "remove", "path": "members[value eq \"u9\"]"}]`,
			want: `{"displayName": "g", "members": [{"value": "u1"}]}`,
		},
		{
			name: "members listed in the value (Entra)", rs: GroupSchema, viaElimity: true,
			res:  `{"displayName": "g", "members": [{"value": "u1", "display": "One"}, {"value": "u2"}, {"value": "u3"}]}`,
			ops:  `[{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u1"}, {"value": "u3"}]}]`,
			want: `{"displayName": "g", "members": [{"value": "u2"}]}`,
		},
		{
			name: "member listed in the value that is not a member", rs: GroupSchema, viaElimity: true,
			res:  `{"displayName": "g", "members": [{"value": "u1"}]}`,
			ops:  `[{"op": "Remove", "path": "members", "value": [{"value": "u9"}]}]`,
			want: `{"displayName": "g", "members": [{"value": "u1"}]}`,
		},
		{
			name: "member listed as a single object", rs: GroupSchema,
			res:  `{"displayName": "g", "members": [{"value": "u1"}, {"value": "u2"}]}`,
			ops:  `[{"op": "Remove", "path": "members", "value": {"value": "u2"}}]`,
			want: `{"displayName": "g", "members": [{"value": "u1"}]}`,
		},
		{
			name: "an empty value list removes nothing", rs: GroupSchema,
			res:  `{"displayName": "g", "members": [{"value": "u1"}]}`,
			ops:  `[{"op": "Remove", "path": "members", "value": []}]`,
			want: `{"displayName": "g", "members": [{"value": "u1"}]}`,
		},
		{
			name: "all members", rs: GroupSchema, viaElimity: true,
			res: `{"displayName": "g", "members": [{"value": "u1"}]}`, ops: `[{"op": "remove", "path": "members"}]`,
			want: `{"displayName": "g"}`,
		},
		{
			name: "email listed by its sub-attributes",
			res:  `{"emails": [{"value": "a@x", "type": "work"}, {"type": "home", "display": "H"}]}`,
			ops:  `[{"op": "remove", "path": "emails", "value": [{"type": "home"}]}]`,
			want: `{"emails": [{"value": "a@x", "type": "work"}]}`,
		},
		{
			name: "sub-attribute of matching elements", viaElimity: true,
			res:  `{"emails": [{"value": "a@x", "type": "work", "display": "A"}, {"value": "b@x", "type": "home", "display": "B"}]}`,
			ops:  `[{"op": "remove", "path": "emails[type eq \"work\"].display"}]`,
			want: `{"emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home", "display": "B"}]}`,
		},
		{
			name: "manager (Entra)", viaElimity: true,
			res:  `{"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}}}`,
			ops:  `[{"op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]`,
			want: `{"userName": "a"}`,
		},
		{
			name: "the whole extension",
			res:  `{"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"}}`,
			ops:  `[{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]`,
			want: `{"userName": "a"}`,
		},
		{
			name: "read-only attribute", res: `{"groups": [{"value": "g"}]}`, ops: `[{"op": "remove", "path": "groups"}]`,
			err: scimerrors.ScimTypeMutability,
		},
	})
}

func TestApplyPatchWithoutPath(t *testing.T) {
	runPatchCases(t, []patchCase{
		{
			name: "group rename carrying the id (Okta)", rs: GroupSchema, viaElimity: true,
			res:  `{"id": "g1", "displayName": "Old", "members": [{"value": "u1"}]}`,
			ops:  `[{"op": "replace", "value": {"id": "g1", "displayName": "New"}}]`,
			want: `{"id": "g1", "displayName": "New", "members": [{"value": "u1"}]}`,
		},
		{
			name: "id that differs is ignored too", rs: GroupSchema,
			res:  `{"id": "g1", "displayName": "Old"}`,
			ops:  `[{"op": "replace", "value": {"id": "zzz", "displayName": "New"}}]`,
			want: `{"id": "g1", "displayName": "New"}`,
		},
		{
			name: "deactivate (Okta)", viaElimity: true,
			res: `{"userName": "a", "active": true}`, ops: `[{"op": "replace", "value": {"active": false}}]`,
			want: `{"userName": "a", "active": false}`,
		},
		{
			name: "keys in any case, dotted, with value filters and URNs (Entra)", viaElimity: true,
			res: `{"userName": "a", "emails": [{"value": "old@x", "type": "work"}]}`,
			ops: `[{"op": "Replace", "value": {
			        "DisplayName": "Babs",
			        "name.givenName": "Barbara",
			        "NAME.familyName": "Jensen",
			        "emails[type eq \"work\"].value": "new@x",
			        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
			        "active": "True"}}]`,
			want: `{"userName": "a", "displayName": "Babs", "active": true, "name": {"givenName": "Barbara", "familyName": "Jensen"},
			        "emails": [{"value": "new@x", "type": "work"}],
			        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984"}}`,
		},
		{
			name: "manager URN key with a bare id (Entra)",
			res:  `{"userName": "a"}`,
			ops:  `[{"op": "Add", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "m1"}}]`,
			want: `{"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}}}`,
		},
		{
			name: "extension URN key holding the extension's attributes", viaElimity: true,
			res:  `{"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"costCenter": "1"}}`,
			ops:  `[{"op": "add", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "manager": {"value": "m1"}}}}]`,
			want: `{"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"costCenter": "1", "department": "D", "manager": {"value": "m1"}}}`,
		},
		{
			name: "path naming the extension", viaElimity: false,
			res:  `{"userName": "a"}`,
			ops:  `[{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": {"division": "X"}}]`,
			want: `{"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"division": "X"}}`,
		},
		{
			name: "meta and schemas are ignored",
			res:  `{"userName": "a"}`,
			ops:  `[{"op": "replace", "value": {"meta": {"resourceType": "User"}, "schemas": ["urn:x"], "title": "T"}}]`,
			want: `{"userName": "a", "title": "T"}`,
		},
		{
			name: "complex value merges", viaElimity: true,
			res:  `{"name": {"givenName": "B", "familyName": "J"}}`,
			ops:  `[{"op": "replace", "value": {"name": {"givenName": "Barbara"}}}]`,
			want: `{"name": {"givenName": "Barbara", "familyName": "J"}}`,
		},
		{
			name: "multi-valued value replaces", viaElimity: true,
			res:  `{"emails": [{"value": "a@x"}]}`,
			ops:  `[{"op": "replace", "value": {"emails": [{"value": "b@x", "primary": true}]}}]`,
			want: `{"emails": [{"value": "b@x", "primary": true}]}`,
		},
		{
			name: "unknown attribute", res: `{}`, ops: `[{"op": "replace", "value": {"nope": "x"}}]`,
			err: scimerrors.ScimTypeInvalidPath, frag: []string{`unknown attribute "nope"`},
		},
		{
			name: "unknown extension attribute", res: `{}`,
			ops: `[{"op": "add", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"shoeSize": "9"}}}]`,
			err: scimerrors.ScimTypeInvalidPath, frag: []string{"shoeSize"},
		},
		{
			name: "key that is not a path", res: `{}`, ops: `[{"op": "replace", "value": {"a b": "x"}}]`,
			err: scimerrors.ScimTypeInvalidPath, frag: []string{`"a b"`},
		},
		{
			name: "read-only attribute", res: `{}`, ops: `[{"op": "add", "value": {"groups": [{"value": "g1"}]}}]`,
			err: scimerrors.ScimTypeMutability, frag: []string{`"groups" is read-only`},
		},
		{
			name: "the same attribute twice in different case", res: `{}`,
			ops: `[{"op": "replace", "value": {"displayName": "a", "DisplayName": "b"}}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{"twice"},
		},
		{
			name: "value that is not an object", res: `{}`, ops: `[{"op": "replace", "value": "x"}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{"must be an object"},
		},
		{
			name: "extension value that is not an object", res: `{}`,
			ops: `[{"op": "add", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": "x"}}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{"must be an object"},
		},
	})
}

func TestApplyPatchErrors(t *testing.T) {
	runPatchCases(t, []patchCase{
		{
			name: "unknown op", res: `{}`, ops: `[{"op": "merge", "path": "title", "value": "x"}]`,
			err: scimerrors.ScimTypeInvalidSyntax, frag: []string{`unknown op "merge"`},
		},
		{
			name: "unknown attribute", res: `{}`, ops: `[{"op": "add", "path": "shoeSize", "value": "9"}]`,
			err: scimerrors.ScimTypeInvalidPath, frag: []string{`unknown attribute "shoeSize"`},
		},
		{
			name: "unknown sub-attribute", res: `{}`, ops: `[{"op": "add", "path": "name.nick", "value": "9"}]`,
			err: scimerrors.ScimTypeInvalidPath, frag: []string{`no sub-attribute "nick"`},
		},
		{
			name: "unknown sub-attribute after a value filter", res: `{}`,
			ops: `[{"op": "add", "path": "emails[type eq \"work\"].nope", "value": "9"}]`,
			err: scimerrors.ScimTypeInvalidPath, frag: []string{`"nope"`},
		},
		{
			name: "value filter on a single-valued attribute", res: `{}`,
			ops: `[{"op": "add", "path": "name[givenName eq \"B\"].familyName", "value": "J"}]`,
			err: scimerrors.ScimTypeInvalidPath, frag: []string{`"name" is single-valued`},
		},
		{
			name: "value filter naming an unknown sub-attribute", res: `{}`,
			ops: `[{"op": "remove", "path": "emails[kind eq \"work\"]"}]`,
			err: scimerrors.ScimTypeInvalidFilter, frag: []string{`no sub-attribute "kind"`},
		},
		{
			name: "value filter with an operator the type does not support", res: `{}`,
			ops: `[{"op": "remove", "path": "emails[primary gt true]"}]`,
			err: scimerrors.ScimTypeInvalidFilter, frag: []string{"boolean"},
		},
		{
			name: "unknown extension URN", res: `{}`,
			ops: `[{"op": "add", "path": "urn:example:ext:2.0:User:x", "value": "9"}]`,
			err: scimerrors.ScimTypeInvalidPath, frag: []string{"unknown schema URN"},
		},
		{
			name: "several values for a filtered path", res: `{"emails": [{"value": "a@x", "type": "work"}]}`,
			ops: `[{"op": "replace", "path": "emails[type eq \"work\"]", "value": [{"value": "b@x"}, {"value": "c@x"}]}]`,
			err: scimerrors.ScimTypeInvalidValue, frag: []string{"give one value"},
		},
		{
			name: "all or nothing: a later failure leaves the input untouched",
			res:  `{"userName": "a", "title": "t"}`,
			ops:  `[{"op": "replace", "path": "title", "value": "new"}, {"op": "remove", "path": "userName"}]`,
			err:  scimerrors.ScimTypeInvalidValue, frag: []string{"operation 2 (remove userName)"},
		},
	})
}

// The PATCH requests recorded from Okta and Entra ID in elimity's module
// (internal/idp_test/testdata/{okta,azuread}), applied to the resources they were sent for.
func TestApplyPatchRecordedIdPRequests(t *testing.T) {
	runPatchCases(t, []patchCase{
		{
			name: "azuread/update_user.json", viaElimity: true,
			res: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			       "id": "6764549bef60420686bc", "externalId": "6c75de36-30fa-4d2d-a196-6bdcdb6b6539",
			       "userName": "Test_User_feed3ace-693c-4e5a-82e2-694be1b39934",
			       "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
			       "active": true,
			       "emails": [{"value": "Test_User_22370c1a@testuser.com", "type": "work", "primary": true}]}`,
			ops: `[
			  {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
			  {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
			  {"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"},
			  {"op": "Replace", "path": "active", "value": false}]`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			        "id": "6764549bef60420686bc", "externalId": "6c75de36-30fa-4d2d-a196-6bdcdb6b6539",
			        "userName": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com",
			        "name": {"formatted": "givenName familyName", "familyName": "updatedFamilyName", "givenName": "givenName"},
			        "active": false,
			        "emails": [{"value": "updatedEmail@microsoft.com", "type": "work", "primary": true}]}`,
		},
		{
			name: "azuread/update_group.json", rs: GroupSchema, viaElimity: true,
			res: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "fa2ce26709934589afc5",
			       "externalId": "60f1bb27-2e1e-402d-bcc4-ec999564a194", "displayName": "displayName"}`,
			ops: `[
			  {"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"},
			  {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]},
			  {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "fa2ce26709934589afc5",
			        "externalId": "60f1bb27-2e1e-402d-bcc4-ec999564a194",
			        "displayName": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}`,
		},
		{
			name: "okta/update_group_membership.json", rs: GroupSchema, viaElimity: true,
			res: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
			       "displayName": "Test SCIMv2",
			       "members": [{"value": "89bb1940-b905-4575-9e7f-6f887cfb368e", "display": "other@okta.local"}]}`,
			ops: `[
			  {"op": "remove", "path": "members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"},
			  {"op": "add", "path": "members", "value": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}]},
			  {"op": "replace", "path": "members", "value": [
			    {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"},
			    {"value": "89bb1940-b905-4575-9e7f-6f887cfb368e", "display": "test.user@okta.local"}]}]`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
			        "displayName": "Test SCIMv2",
			        "members": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"},
			                    {"value": "89bb1940-b905-4575-9e7f-6f887cfb368e", "display": "test.user@okta.local"}]}`,
		},
		{
			name: "okta/update_group_name.json", rs: GroupSchema, viaElimity: true,
			res: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
			       "displayName": "Test SCIMv20"}`,
			ops: `[{"op": "replace", "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "displayName": "Test SCIMv2"}}]`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
			        "displayName": "Test SCIMv2"}`,
		},
		{
			name: "okta/update_user_patch.json", viaElimity: true,
			res: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "23a35c27-23d3-4c03-b4c5-6443c09e7173",
			       "userName": "test.user@okta.local", "active": true}`,
			ops: `[{"op": "replace", "value": {"active": false}}]`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "23a35c27-23d3-4c03-b4c5-6443c09e7173",
			        "userName": "test.user@okta.local", "active": false}`,
		},
	})
}

func TestApplyPatchDoesNotShareState(t *testing.T) {
	rs := UserSchema
	res := testUser(t)
	got, err := rs.ApplyPatch(res, rawPatchOps(t, `[{"op": "add", "path": "nickName", "value": "B"}]`))
	if err != nil {
		t.Fatal(err)
	}
	// Changing the result must not reach the input (a deep copy, not a shallow one).
	got["emails"].([]any)[0].(map[string]any)["value"] = "changed"
	got["name"].(map[string]any)["givenName"] = "changed"
	if mustJSON(t, res) != canonicalJSON(t, testUserJSON) {
		t.Errorf("the input changed with the result")
	}

	t.Run("Go slices and maps built by hand", func(t *testing.T) {
		res := map[string]any{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"emails":  []map[string]any{{"value": "a@x", "type": "work"}},
		}
		got, err := rs.ApplyPatch(res, rawPatchOps(t, `[{"op": "add", "path": "emails", "value": {"value": "b@x"}},
		  {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "D"}]`))
		if err != nil {
			t.Fatal(err)
		}
		want := `{"emails": [{"type": "work", "value": "a@x"}, {"value": "b@x"}],
		  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"}}`
		if mustJSON(t, got) != canonicalJSON(t, want) {
			t.Errorf("got %s", mustJSON(t, got))
		}
		if len(res["emails"].([]map[string]any)) != 1 {
			t.Error("input changed")
		}
	})

	t.Run("no operations", func(t *testing.T) {
		got, err := rs.ApplyPatch(res, nil)
		if err != nil || mustJSON(t, got) != mustJSON(t, res) {
			t.Errorf("ApplyPatch(nil ops) = %v, %v", got, err)
		}
	})
}
