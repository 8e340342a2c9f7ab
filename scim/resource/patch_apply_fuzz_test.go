package resource

import (
	"bytes"
	"encoding/json"
	"testing"

	scimerrors "github.com/elimity-com/scim/errors"
	filter "github.com/scim2/filter-parser/v2"
)

// decodePatchBody turns a PatchOp request body into operations the way a handler receives them (op and path
// strings, path parsed, value decoded with UseNumber). ok is false for bodies the server rejects before
// ApplyPatch runs (not JSON, an op or path that is not a string, a path that does not parse).
func decodePatchBody(body []byte) (ops []PatchOp, ok bool) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var req struct {
		Operations []map[string]any
	}
	if err := d.Decode(&req); err != nil {
		return nil, false
	}
	for _, raw := range req.Operations {
		var op PatchOp
		for k, v := range raw {
			switch {
			case equalFoldASCII(k, "op"):
				s, isStr := v.(string)
				if !isStr {
					return nil, false
				}
				op.Op = s
			case equalFoldASCII(k, "path"):
				s, isStr := v.(string)
				if !isStr {
					return nil, false
				}
				if s == "" {
					continue
				}
				p, err := filter.ParsePath([]byte(s))
				if err != nil {
					return nil, false
				}
				op.Path = &p
			case equalFoldASCII(k, "value"):
				op.Value = v
			}
		}
		ops = append(ops, op)
	}
	return ops, true
}

func equalFoldASCII(a, b string) bool {
	return len(a) == len(b) && bytes.EqualFold([]byte(a), []byte(b))
}

// FuzzApplyPatch applies arbitrary PatchOp bodies to a user and a group: ApplyPatch may not panic, the input is
// never changed, a failure is a 400 ScimError of a PATCH scimType, and a success keeps the read-only id and
// meta and can be projected and filtered. Its seeds (below and in testdata/fuzz/FuzzApplyPatch) run in the
// default `go test`.
func FuzzApplyPatch(f *testing.F) {
	seeds := []string{
		`[{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
		  {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
		  {"op": "Replace", "path": "active", "value": "False"}]`,
		`[{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]},
		  {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]`,
		`[{"op": "remove", "path": "members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"},
		  {"op": "add", "path": "members", "value": [{"value": "23a35c27", "display": "test.user@okta.local"}]}]`,
		`[{"op": "replace", "value": {"id": "abf4dd94", "displayName": "Test SCIMv2"}}]`,
		`[{"op": "replace", "value": {"active": false}}]`,
		`[{"op": "Replace", "value": {"DisplayName": "B", "name.givenName": "x", "emails[type eq \"work\"].value": "a@b",
		   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "m1"}}]`,
		`[{"op": "add", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "manager": {"value": ""}}}}]`,
		`[{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": ""}}]`,
		`[{"op": "add", "path": "emails", "value": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": "true"}]}]`,
		`[{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]`,
		`[{"op": "remove"}]`, `[{"op": "merge", "path": "title"}]`, `[{"op": "replace", "value": [1, 2]}]`,
		`[{"op": "replace", "path": "id", "value": "x"}]`, `[{"op": "replace", "path": "meta.created", "value": "x"}]`,
		`[{"op": "add", "path": "userName", "value": {"a": [1, {"b": null}]}}]`,
		`[{"op": "add", "path": "name", "value": {"givenName": 1e400}}]`,
		`[{"op": "remove", "path": "userName"}]`, `[{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]`,
		`[{"op": "add", "path": "emails[type eq \"work\" and primary eq true]", "value": {"value": "w@x"}}]`,
		`[{"op": "replace", "path": "schemas", "value": []}]`,
		`[{"op": "add", "path": "displayName", "value": null}, {"op": "add", "path": "members[value ne \"x\"].display", "value": "y"}]`,
	}
	for _, ops := range seeds {
		f.Add(patchBody(ops), false)
		f.Add(patchBody(ops), true)
	}
	user, group := UserSchema, GroupSchema
	allowed := []scimerrors.ScimType{
		scimerrors.ScimTypeInvalidSyntax, scimerrors.ScimTypeInvalidPath, scimerrors.ScimTypeInvalidFilter,
		scimerrors.ScimTypeNoTarget, scimerrors.ScimTypeInvalidValue, scimerrors.ScimTypeMutability,
	}
	everything, err := ParseFilter(`id pr or not (id pr) or meta.lastModified gt "2000-01-01T00:00:00Z"`)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string, isGroup bool) {
		ops, ok := decodePatchBody([]byte(body))
		if !ok {
			return
		}
		rs, res := user, testUser(t)
		if isGroup {
			rs, res = group, testGroup(t)
		}
		before := mustJSON(t, res)
		got, err := rs.ApplyPatch(res, ops)
		if after := mustJSON(t, res); after != before {
			t.Fatalf("input mutated:\nbefore %s\nafter  %s", before, after)
		}
		if err != nil {
			if got != nil {
				t.Fatalf("a result alongside error %v", err)
			}
			requireBadRequest(t, err, allowed...)
			return
		}
		if mustJSON(t, got["id"]) != mustJSON(t, res["id"]) || mustJSON(t, got["meta"]) != mustJSON(t, res["meta"]) {
			t.Fatalf("read-only attributes changed: %s", mustJSON(t, got))
		}
		if _, err := json.Marshal(got); err != nil {
			t.Fatalf("result does not marshal: %v", err)
		}
		rs.Project(got, []string{"emails.value", "members", enterpriseURN}, []string{"name.givenName"})
		if ok, err := rs.Match(everything, got); err != nil || !ok {
			t.Fatalf("Match on the result = %v, %v", ok, err)
		}
	})
}

// FuzzApplyPatchOp fuzzes one operation's parts separately, which reaches paths and value filters that byte
// mutations of a whole JSON body rarely produce. Same properties as FuzzApplyPatch.
func FuzzApplyPatchOp(f *testing.F) {
	for _, s := range []struct{ op, path, value string }{
		{"Replace", `emails[type eq "work"].value`, `"a@x"`},
		{"add", `emails[type eq "work" and primary eq true]`, `{"value": "w@x"}`},
		{"Add", `addresses[type eq "work"].streetAddress`, `"1 Main St"`},
		{"remove", `members[value eq "902c246b-6245-4190-8e05-00816be7344a"]`, ``},
		{"Remove", `members`, `[{"value": "902c246b-6245-4190-8e05-00816be7344a", "$ref": null}]`},
		{"replace", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`, `"m1"`},
		{"replace", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`, `{"manager": {"value": ""}}`},
		{"replace", ``, `{"id": "x", "displayName": "D", "name.givenName": "G"}`},
		{"add", `name`, `{"givenName": null, "familyName": ""}`},
		{"replace", `emails[primary eq true].primary`, `"false"`},
		{"replace", `meta.version`, `"W/\"1\""`},
		{"remove", `emails[not (type eq "work")].display`, ``},
	} {
		f.Add(s.op, s.path, s.value, false)
		f.Add(s.op, s.path, s.value, true)
	}
	user, group := UserSchema, GroupSchema
	allowed := []scimerrors.ScimType{
		scimerrors.ScimTypeInvalidSyntax, scimerrors.ScimTypeInvalidPath, scimerrors.ScimTypeInvalidFilter,
		scimerrors.ScimTypeNoTarget, scimerrors.ScimTypeInvalidValue, scimerrors.ScimTypeMutability,
	}
	f.Fuzz(func(t *testing.T, op, path, value string, isGroup bool) {
		o := PatchOp{Op: op}
		if path != "" {
			p, err := filter.ParsePath([]byte(path))
			if err != nil {
				return
			}
			o.Path = &p
		}
		if value != "" {
			d := json.NewDecoder(bytes.NewReader([]byte(value)))
			d.UseNumber()
			if err := d.Decode(&o.Value); err != nil {
				return
			}
		}
		rs, res := user, testUser(t)
		if isGroup {
			rs, res = group, testGroup(t)
		}
		before := mustJSON(t, res)
		got, err := rs.ApplyPatch(res, []PatchOp{o})
		if mustJSON(t, res) != before {
			t.Fatal("input mutated")
		}
		if err != nil {
			requireBadRequest(t, err, allowed...)
			return
		}
		if mustJSON(t, got["id"]) != mustJSON(t, res["id"]) || mustJSON(t, got["meta"]) != mustJSON(t, res["meta"]) {
			t.Fatalf("read-only attributes changed: %s", mustJSON(t, got))
		}
		rs.Project(got, []string{"emails.value", "members"}, nil)
	})
}
