package resource

import (
	"errors"
	"testing"

	scimerrors "github.com/elimity-com/scim/errors"
)

// FuzzParseAndMatch feeds any string to ParseFilter (its bound included) and Match: neither may panic; a filter
// that fails is a 400 invalidFilter ScimError, whatever the resource holds. Its seeds (below and in testdata/fuzz/FuzzParseAndMatch)
// run in the default `go test`.
func FuzzParseAndMatch(f *testing.F) {
	for _, s := range []string{
		`userName eq "bjensen@example.com"`,
		`USERNAME Eq "BJensen"`,
		`name.familyName co "O'Malley"`,
		`userName sw "J"`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`,
		`title pr`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`meta.lastModified ge "2011-05-13T04:42:34Z" and meta.created lt "not a date"`,
		`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
		`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
		`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
		`members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr`,
		`active eq "False"`, `active gt true`, `name eq "x"`, `nope pr`, `emails[nope eq 1]`,
		`displayName eq "a\"b\\c\u00e9"`, `x eq null`, `x eq 1e400`, `x eq -0.5e-3`,
		``, `(`, `)`, `[`, `"`, `not`, `not (`, `a eq`, `a[b eq "c"`, `a eq "b" and`, `emails[type[value eq "x"] eq "a"]`,
	} {
		f.Add(s)
	}
	for _, s := range filterSeeds() { // nested, chained and long ones among them
		f.Add(s)
	}
	user := UserSchema
	group := GroupSchema
	f.Fuzz(func(t *testing.T, s string) {
		expr, err := ParseFilter(s)
		if err != nil {
			requireBadRequest(t, err, scimerrors.ScimTypeInvalidFilter)
			return
		}
		for _, tc := range []struct {
			rs  Schema
			res map[string]any
		}{
			{user, testUser(t)},
			{user, map[string]any{}},
			{group, testGroup(t)},
		} {
			_, err := tc.rs.Match(expr, tc.res)
			if err != nil {
				requireBadRequest(t, err, scimerrors.ScimTypeInvalidFilter)
			}
			// The verdict on the filter itself does not depend on the resource.
			_, errEmpty := tc.rs.Match(expr, nil)
			if (err == nil) != (errEmpty == nil) {
				t.Fatalf("Match(%q): error %v on a resource but %v on none", s, err, errEmpty)
			}
		}
	})
}

// requireBadRequest fails unless err is a 400 ScimError of one of the given types, with a detail.
func requireBadRequest(t *testing.T, err error, types ...scimerrors.ScimType) {
	t.Helper()
	var se scimerrors.ScimError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a ScimError", err, err)
	}
	if se.Status != 400 || se.Detail == "" {
		t.Fatalf("error %+v: want status 400 with a detail", se)
	}
	for _, typ := range types {
		if se.ScimType == typ {
			return
		}
	}
	t.Fatalf("error %+v: scimType not one of %v", se, types)
}
