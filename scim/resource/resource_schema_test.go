package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

const enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// decodeResource decodes JSON the way the server does (numbers as json.Number).
func decodeResource(t testing.TB, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// mustJSON renders v with sorted keys for comparisons.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encode: %v", err)
	}
	return strings.TrimSpace(buf.String())
}

// canonicalJSON re-encodes a JSON text so that it compares with mustJSON output.
func canonicalJSON(t testing.TB, s string) string {
	t.Helper()
	return mustJSON(t, decodeResource(t, s))
}

// wantScimError checks that err is a 400 ScimError of the given type whose detail contains every fragment.
func wantScimError(t testing.TB, err error, scimType scimerrors.ScimType, fragments ...string) {
	t.Helper()
	var se scimerrors.ScimError
	if !errors.As(err, &se) {
		t.Fatalf("error = %v (%T), want a ScimError %s", err, err, scimType)
	}
	if se.Status != 400 || se.ScimType != scimType {
		t.Fatalf("error = %d %s %q, want 400 %s", se.Status, se.ScimType, se.Detail, scimType)
	}
	for _, f := range fragments {
		if !strings.Contains(se.Detail, f) {
			t.Errorf("detail %q does not mention %q", se.Detail, f)
		}
	}
}

// testUserJSON is RFC 7643's enterprise user example, lightly trimmed.
const testUserJSON = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "id": "2819c223-7f76-453a-919d-413861904646",
  "externalId": "Bjensen-EXT",
  "userName": "bjensen@example.com",
  "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara"},
  "displayName": "Babs \"B\" Jensen",
  "title": "Tour Guide",
  "userType": "Employee",
  "active": true,
  "emails": [
    {"value": "bjensen@example.com", "type": "work", "primary": true},
    {"value": "babs@jensen.org", "type": "home"}
  ],
  "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
  "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides", "$ref": "../Groups/e9e30dba-f08f-4109-8486-d5c6a331660a"}],
  "meta": {
    "resourceType": "User",
    "created": "2010-01-23T04:56:22Z",
    "lastModified": "2011-05-13T04:42:34Z",
    "version": "W/\"3694e05e9dff591\"",
    "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
  },
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
    "employeeNumber": "701984",
    "costCenter": "4130",
    "department": "Tour Operations",
    "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
  }
}`

// testGroupJSON is a group with two members.
const testGroupJSON = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
  "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
  "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
  "displayName": "Tour Guides",
  "members": [
    {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen", "$ref": "../Users/2819c223-7f76-453a-919d-413861904646", "type": "User"},
    {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge", "type": "User"}
  ],
  "meta": {"resourceType": "Group", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3694e05e9dff592\""}
}`

func testUser(t testing.TB) map[string]any  { return decodeResource(t, testUserJSON) }
func testGroup(t testing.TB) map[string]any { return decodeResource(t, testGroupJSON) }

// numericSchema is a made-up resource type with the attribute types the standard schemas lack.
func numericSchema() Schema {
	return Schema{Core: schema.Schema{
		ID: "urn:example:params:scim:schemas:core:2.0:Device",
		Attributes: schema.Attributes{
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{Name: "label", Required: true})),
			schema.SimpleCoreAttribute(schema.SimpleNumberParams(schema.NumberParams{Name: "age", Type: schema.AttributeTypeInteger()})),
			schema.SimpleCoreAttribute(schema.SimpleNumberParams(schema.NumberParams{Name: "score", Type: schema.AttributeTypeDecimal()})),
			schema.SimpleCoreAttribute(schema.SimpleBinaryParams(schema.BinaryParams{Name: "cert"})),
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Name: "serial", Mutability: schema.AttributeMutabilityImmutable(),
			})),
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Name: "secret", Returned: schema.AttributeReturnedNever(), Mutability: schema.AttributeMutabilityWriteOnly(),
			})),
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Name: "audit", Returned: schema.AttributeReturnedRequest(),
			})),
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Name: "owner", Returned: schema.AttributeReturnedAlways(),
			})),
			schema.SimpleCoreAttribute(schema.SimpleNumberParams(schema.NumberParams{
				Name: "ports", Type: schema.AttributeTypeInteger(), MultiValued: true,
			})),
			schema.SimpleCoreAttribute(schema.SimpleDateTimeParams(schema.DateTimeParams{
				Name: "seen", Description: optional.NewString("last seen"),
			})),
		},
	}}
}

func TestResolve(t *testing.T) {
	rs := UserSchema
	tests := []struct {
		path     string
		name     string
		typ      string
		ext      bool
		caseExac bool
		multi    bool
		mut      string
	}{
		{path: "userName", name: "userName", typ: "string", mut: "readWrite"},
		{path: "USERNAME", name: "userName", typ: "string", mut: "readWrite"},
		{path: "urn:ietf:params:scim:schemas:core:2.0:User:userName", name: "userName", typ: "string", mut: "readWrite"},
		{path: "name.givenname", name: "name.givenName", typ: "string", mut: "readWrite"},
		{path: "emails", name: "emails", typ: "complex", multi: true, mut: "readWrite"},
		{path: "emails.Value", name: "emails.value", typ: "string", mut: "readWrite"},
		{path: "active", name: "active", typ: "boolean", mut: "readWrite"},
		{path: "id", name: "id", typ: "string", caseExac: true, mut: "readOnly"},
		{path: "externalId", name: "externalId", typ: "string", caseExac: true, mut: "readWrite"},
		{path: "meta.lastModified", name: "meta.lastModified", typ: "dateTime", mut: "readOnly"},
		{path: "meta.created", name: "meta.created", typ: "dateTime", mut: "readOnly"},
		{path: "meta.version", name: "meta.version", typ: "string", caseExac: true, mut: "readOnly"},
		{path: "meta.location", name: "meta.location", typ: "reference", caseExac: true, mut: "readOnly"},
		{path: "meta.resourceType", name: "meta.resourceType", typ: "string", caseExac: true, mut: "readOnly"},
		{path: "groups", name: "groups", typ: "complex", multi: true, mut: "readOnly"},
		{path: enterpriseURN + ":manager", name: enterpriseURN + ":manager", typ: "complex", ext: true, mut: "readWrite"},
		{path: enterpriseURN + ":manager.value", name: enterpriseURN + ":manager.value", typ: "string", ext: true, mut: "readWrite"},
		{path: strings.ToLower(enterpriseURN) + ":EmployeeNumber", name: enterpriseURN + ":employeeNumber", typ: "string", ext: true, mut: "readWrite"},
		{path: "employeeNumber", name: enterpriseURN + ":employeeNumber", typ: "string", ext: true, mut: "readWrite"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			ref, err := rs.Resolve(tt.path)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			target := ref.Target()
			if ref.Name() != tt.name || target.AttributeType() != tt.typ || ref.Extension != tt.ext ||
				target.CaseExact() != tt.caseExac || target.MultiValued() != tt.multi || target.Mutability() != tt.mut {
				t.Errorf("got name=%s type=%s ext=%v caseExact=%v multi=%v mut=%s", ref.Name(), target.AttributeType(),
					ref.Extension, target.CaseExact(), target.MultiValued(), target.Mutability())
			}
		})
	}

	t.Run("container", func(t *testing.T) {
		for _, p := range []string{enterpriseURN, strings.ToUpper(enterpriseURN)} {
			ref, err := rs.Resolve(p)
			if err != nil || !ref.IsContainer() || !ref.Extension || ref.Name() != enterpriseURN {
				t.Errorf("Resolve(%q) = %+v, %v", p, ref, err)
			}
		}
	})

	for _, bad := range []string{"nope", "name.nope", "userName.x", "urn:example:other:2.0:User:userName", "emails[", ""} {
		t.Run("unknown "+bad, func(t *testing.T) {
			if ref, err := rs.Resolve(bad); err == nil {
				t.Errorf("Resolve(%q) = %+v, want an error", bad, ref)
			}
		})
	}
}
