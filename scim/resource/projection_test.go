package resource

import (
	"reflect"
	"testing"
)

func TestParseAttrList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  ", nil},
		{"userName", []string{"userName"}},
		{"userName, name.givenName ,,emails", []string{"userName", "name.givenName", "emails"}},
		{`emails[type eq "a,b"].value,members`, []string{`emails[type eq "a,b"].value`, "members"}},
		{`displayName eq "a\",b",x`, []string{`displayName eq "a\",b"`, "x"}},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager,id", []string{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "id"}},
	}
	for _, tt := range tests {
		if got := ParseAttrList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAttrList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestProject(t *testing.T) {
	const ext = `"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
	const head = `"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	  "id": "2819c223-7f76-453a-919d-413861904646"`
	tests := []struct {
		name     string
		attrs    string
		excluded string
		want     string // "" means the whole test user
	}{
		{name: "no lists returns everything"},
		{name: "unknown names only", attrs: "nope,name.nope", want: `{` + head + `}`},
		{name: "one attribute", attrs: "userName", want: `{` + head + `, "userName": "bjensen@example.com"}`},
		{name: "names in any case", attrs: "USERNAME,Name.GivenName", want: `{` + head + `, "userName": "bjensen@example.com", "name": {"givenName": "Barbara"}}`},
		{name: "URN-qualified core name", attrs: "urn:ietf:params:scim:schemas:core:2.0:User:title", want: `{` + head + `, "title": "Tour Guide"}`},
		{
			name: "sub-attribute of a multi-valued attribute", attrs: "emails.value",
			want: `{` + head + `, "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]}`,
		},
		{
			name: "two sub-attributes", attrs: "emails.value,emails.type",
			want: `{` + head + `, "emails": [{"value": "bjensen@example.com", "type": "work"}, {"value": "babs@jensen.org", "type": "home"}]}`,
		},
		{
			name: "value filter", attrs: `emails[type eq "work"]`,
			want: `{` + head + `, "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]}`,
		},
		{
			name: "value filter with sub-attribute", attrs: `emails[type eq "home"].value`,
			want: `{` + head + `, "emails": [{"value": "babs@jensen.org"}]}`,
		},
		{name: "meta sub-attribute", attrs: "meta.lastModified", want: `{` + head + `, "meta": {"lastModified": "2011-05-13T04:42:34Z"}}`},
		{
			name: "extension attribute", attrs: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
			want: `{` + head + `, ` + ext + `: {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}}}`,
		},
		{
			name: "extension sub-attribute", attrs: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value,employeeNumber",
			want: `{` + head + `, ` + ext + `: {"employeeNumber": "701984", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}}`,
		},
		{
			name: "whole extension", attrs: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
			want: `{` + head + `, ` + ext + `: {"employeeNumber": "701984", "costCenter": "4130", "department": "Tour Operations",
			  "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}}}`,
		},
		{
			name: "attribute the resource lacks", attrs: "nickName,userName",
			want: `{` + head + `, "userName": "bjensen@example.com"}`,
		},
		{
			name: "attributes then excluded", attrs: "name", excluded: "name.formatted",
			want: `{` + head + `, "name": {"familyName": "Jensen", "givenName": "Barbara"}}`,
		},
	}
	rs := UserSchema
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := testUser(t)
			got := rs.Project(res, ParseAttrList(tt.attrs), ParseAttrList(tt.excluded))
			want := tt.want
			if want == "" {
				want = testUserJSON
			}
			if g, w := mustJSON(t, got), canonicalJSON(t, want); g != w {
				t.Errorf("\ngot  %s\nwant %s", g, w)
			}
			if mustJSON(t, res) != canonicalJSON(t, testUserJSON) {
				t.Error("Project changed its input")
			}
		})
	}
}

func TestProjectExcluded(t *testing.T) {
	rs := UserSchema
	tests := []struct {
		name     string
		excluded string
		check    func(t *testing.T, got map[string]any)
	}{
		{"attribute and sub-attribute", "emails,name.givenName", func(t *testing.T, got map[string]any) {
			if _, ok := got["emails"]; ok {
				t.Error("emails kept")
			}
			if mustJSON(t, got["name"]) != `{"familyName":"Jensen","formatted":"Ms. Barbara J Jensen, III"}` {
				t.Errorf("name = %s", mustJSON(t, got["name"]))
			}
		}},
		{"id and schemas cannot be excluded", "id,schemas,SCHEMAS", func(t *testing.T, got map[string]any) {
			if got["id"] == nil || got["schemas"] == nil {
				t.Error("id or schemas excluded")
			}
		}},
		{"sub-attribute of every element", "emails.type", func(t *testing.T, got map[string]any) {
			if mustJSON(t, got["emails"]) != `[{"primary":true,"value":"bjensen@example.com"},{"value":"babs@jensen.org"}]` {
				t.Errorf("emails = %s", mustJSON(t, got["emails"]))
			}
		}},
		{"elements by value filter", `emails[type eq "home"]`, func(t *testing.T, got map[string]any) {
			if mustJSON(t, got["emails"]) != `[{"primary":true,"type":"work","value":"bjensen@example.com"}]` {
				t.Errorf("emails = %s", mustJSON(t, got["emails"]))
			}
		}},
		{"extension attribute", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", func(t *testing.T, got map[string]any) {
			e := got[enterpriseURN].(map[string]any)
			if _, ok := e["manager"]; ok || e["employeeNumber"] != "701984" {
				t.Errorf("extension = %s", mustJSON(t, e))
			}
		}},
		{"extension sub-attribute", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref", func(t *testing.T, got map[string]any) {
			m := got[enterpriseURN].(map[string]any)["manager"]
			if mustJSON(t, m) != `{"displayName":"John Smith","value":"26118915-6090-4610-87e4-49d8ca9f808d"}` {
				t.Errorf("manager = %s", mustJSON(t, m))
			}
		}},
		{"whole extension", enterpriseURN, func(t *testing.T, got map[string]any) {
			if _, ok := got[enterpriseURN]; ok {
				t.Error("extension kept")
			}
		}},
		{"every extension attribute drops the extension object", enterpriseURN + ":employeeNumber,costCenter,department,manager", func(t *testing.T, got map[string]any) {
			if _, ok := got[enterpriseURN]; ok {
				t.Errorf("extension kept: %s", mustJSON(t, got[enterpriseURN]))
			}
		}},
		{"unknown names", "nope,emails.nope,urn:x:y", func(t *testing.T, got map[string]any) {
			if mustJSON(t, got) != canonicalJSON(t, testUserJSON) {
				t.Error("resource changed")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, rs.Project(testUser(t), nil, ParseAttrList(tt.excluded)))
		})
	}

	t.Run("group without members (Entra)", func(t *testing.T) {
		got := GroupSchema.Project(testGroup(t), nil, []string{"members"})
		want := `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
		  "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Tour Guides",
		  "meta": {"resourceType": "Group", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3694e05e9dff592\""}}`
		if g, w := mustJSON(t, got), canonicalJSON(t, want); g != w {
			t.Errorf("\ngot  %s\nwant %s", g, w)
		}
	})
}

func TestProjectReturned(t *testing.T) {
	rs := numericSchema()
	res := decodeResource(t, `{"id": "d1", "label": "L", "owner": "O", "secret": "S", "audit": "A", "age": 3, "extra": "kept by default"}`)
	tests := []struct {
		name     string
		attrs    []string
		excluded []string
		want     string
	}{
		{"default: never and request attributes left out", nil, nil, `{"id": "d1", "label": "L", "owner": "O", "age": 3, "extra": "kept by default"}`},
		{"always attribute returned with attributes", []string{"label"}, nil, `{"id": "d1", "label": "L", "owner": "O"}`},
		{"request attribute when named", []string{"audit"}, nil, `{"id": "d1", "owner": "O", "audit": "A"}`},
		{"never attribute even when named", []string{"secret", "label"}, nil, `{"id": "d1", "label": "L", "owner": "O"}`},
		{"always attribute cannot be excluded", nil, []string{"owner", "age"}, `{"id": "d1", "label": "L", "owner": "O", "extra": "kept by default"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if g, w := mustJSON(t, rs.Project(res, tt.attrs, tt.excluded)), canonicalJSON(t, tt.want); g != w {
				t.Errorf("\ngot  %s\nwant %s", g, w)
			}
		})
	}

	t.Run("password is never returned", func(t *testing.T) {
		user := testUser(t)
		user["password"] = "hunter2"
		for _, attrs := range [][]string{nil, {"password"}} {
			if _, ok := UserSchema.Project(user, attrs, nil)["password"]; ok {
				t.Errorf("password returned with attributes=%v", attrs)
			}
		}
	})

	t.Run("nil resource", func(t *testing.T) {
		if got := rs.Project(nil, []string{"label"}, nil); len(got) != 0 {
			t.Errorf("Project(nil) = %v", got)
		}
	})
}
