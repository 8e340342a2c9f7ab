package resource

import (
	"encoding/json"
	"testing"

	scimerrors "github.com/elimity-com/scim/errors"
	scimfilter "github.com/elimity-com/scim/filter"
	filter "github.com/scim2/filter-parser/v2"
)

func TestMatchUser(t *testing.T) {
	rs := UserSchema
	user := testUser(t)
	tests := []struct {
		name   string
		filter string
		want   bool
	}{
		// eq / ne, case-insensitive names and values unless caseExact.
		{"eq", `userName eq "bjensen@example.com"`, true},
		{"eq other value", `userName eq "someone@example.com"`, false},
		{"eq attribute and operator in any case", `USERNAME EQ "BJensen@Example.COM"`, true},
		{"ne", `userName ne "someone@example.com"`, true},
		{"ne same value", `userName ne "BJENSEN@example.com"`, false},
		{"ne absent attribute", `nickName ne "Babs"`, true},
		{"eq absent attribute", `nickName eq "Babs"`, false},
		{"escaped quotes in value", `displayName eq "babs \"b\" jensen"`, true},

		// substring operators.
		{"co", `userName co "JENSEN"`, true},
		{"co miss", `userName co "smith"`, false},
		{"sw", `userName sw "bj"`, true},
		{"sw miss", `userName sw "jensen"`, false},
		{"ew", `userName ew "EXAMPLE.com"`, true},
		{"ew miss", `userName ew ".org"`, false},

		// ordering on strings (lexicographic, folded).
		{"gt string", `userName gt "A"`, true},
		{"gt string miss", `userName gt "c"`, false},
		{"ge string equal", `userName ge "BJENSEN@EXAMPLE.COM"`, true},
		{"lt string", `userName lt "C"`, true},
		{"le string equal", `userName le "bjensen@example.com"`, true},
		{"lt string miss", `userName lt "b"`, false},

		// pr.
		{"pr simple", `title pr`, true},
		{"pr absent", `nickName pr`, false},
		{"pr multi-valued", `emails pr`, true},
		{"pr complex", `name pr`, true},
		{"pr sub-attribute", `name.middleName pr`, false},
		{"pr extension", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr`, true},
		{"pr extension attribute", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division pr`, false},

		// null comparisons.
		{"eq null on absent", `nickName eq null`, true},
		{"eq null on present", `title eq null`, false},
		{"ne null on present", `title ne null`, true},

		// sub-attributes.
		{"sub-attribute", `name.familyName eq "jensen"`, true},
		{"sub-attribute any case", `NAME.FAMILYNAME co "ENS"`, true},
		{"sub-attribute miss", `name.givenName eq "Jensen"`, false},

		// caseExact attributes.
		{"externalId exact", `externalId eq "Bjensen-EXT"`, true},
		{"externalId is caseExact", `externalId eq "bjensen-ext"`, false},
		{"id is caseExact", `id eq "2819C223-7F76-453A-919D-413861904646"`, false},
		{"id", `id eq "2819c223-7f76-453a-919d-413861904646"`, true},
		{"meta.resourceType is caseExact", `meta.resourceType eq "user"`, false},
		{"meta.resourceType", `meta.resourceType eq "User"`, true},
		{"groups.$ref is caseExact", `groups.$ref ew "E9E30DBA-F08F-4109-8486-D5C6A331660A"`, false},

		// booleans.
		{"boolean eq", `active eq true`, true},
		{"boolean eq false", `active eq false`, false},
		{"boolean ne", `active ne false`, true},
		{"boolean given as a string", `active eq "True"`, true},
		{"primary sub-attribute", `emails[primary eq true]`, true},
		{"primary sub-attribute miss", `phoneNumbers[primary eq true]`, false},

		// multi-valued: any element.
		{"multi-valued sub-attribute any element", `emails.value eq "babs@jensen.org"`, true},
		{"multi-valued sub-attribute no element", `emails.type eq "other"`, false},
		{"multi-valued ne is not eq", `emails.value ne "babs@jensen.org"`, false},
		{"complex multi-valued compares value", `emails co "jensen.org"`, true},
		{"complex multi-valued compares value miss", `emails co "example.net"`, false},
		{"simple multi-valued", `schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`, true},
		{"simple multi-valued value path", `schemas[value sw "urn:ietf:params:scim:schemas:extension"]`, true},

		// value paths.
		{"value path", `emails[type eq "work" and value co "@example.com"]`, true},
		{"value path needs one element for both", `emails[type eq "home" and value co "@example.com"]`, false},
		{"value path or", `emails[type eq "other" or value ew "jensen.org"]`, true},
		{"value path not", `emails[not (type eq "work")]`, true},
		{"value path any case", `EMAILS[TYPE eq "WORK"]`, true},
		{"value path miss", `phoneNumbers[type eq "mobile"]`, false},
		{"value path on reference list", `groups[display co "tour"]`, true},
		{"value path combined", `emails[type eq "work"] and phoneNumbers[type eq "work"]`, true},
		{"value path primary", `emails[primary eq true and value eq "bjensen@example.com"]`, true},

		// dateTime compared as instants.
		{"dateTime gt", `meta.lastModified gt "2011-05-13T04:42:33Z"`, true},
		{"dateTime gt equal", `meta.lastModified gt "2011-05-13T04:42:34Z"`, false},
		{"dateTime ge equal", `meta.lastModified ge "2011-05-13T04:42:34Z"`, true},
		{"dateTime eq other form", `meta.lastModified eq "2011-05-13T04:42:34.000Z"`, true},
		{"dateTime eq other zone", `meta.lastModified eq "2011-05-13T06:42:34+02:00"`, true},
		{"dateTime lt other zone", `meta.lastModified lt "2011-05-13T06:42:34+02:00"`, false},
		{"dateTime le", `meta.created le "2010-01-23T04:56:22Z"`, true},
		{"dateTime lt", `meta.created lt "2009-12-31T23:59:59Z"`, false},
		{"dateTime ne", `meta.created ne "2010-01-23T04:56:22Z"`, false},
		{"dateTime sw", `meta.created sw "2010-01"`, true},
		{"dateTime without zone", `meta.created eq "2010-01-23T04:56:22"`, true},

		// URN-qualified names and the enterprise extension.
		{"core URN", `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bj"`, true},
		{"core URN sub-attribute", `urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq "Jensen"`, true},
		{"extension attribute", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`, true},
		{"extension attribute URN any case", `URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:EMPLOYEENUMBER eq "701984"`, true},
		{"extension string ordering", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber gt "7"`, true},
		{"extension sub-attribute", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"`, true},
		{"extension complex compares value", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "26118915-6090-4610-87e4-49d8ca9f808d"`, true},
		{"extension attribute without URN", `manager.displayName eq "john smith"`, true},
		{"extension attribute miss", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales"`, false},

		// logic and parentheses.
		{"and", `userName sw "b" and active eq true`, true},
		{"and miss", `userName sw "b" and active eq false`, false},
		{"or", `userName sw "x" or title pr`, true},
		{"or miss", `userName sw "x" or nickName pr`, false},
		{"not", `not (userName sw "x")`, true},
		{"not miss", `not (userName sw "b")`, false},
		{"parentheses", `(userName sw "x" or userName sw "b") and not (active eq false)`, true},
		{"precedence: and binds tighter", `userName sw "x" and title pr or active eq true`, true},
		{"precedence with parentheses", `userName sw "x" and (title pr or active eq true)`, false},
		{"RFC example", `userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`, true},
		{"RFC example with not", `userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`, false},
		{"RFC value paths", `emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expr, err := ParseFilter(tt.filter)
			if err != nil {
				t.Fatalf("ParseFilter(%s): %v", tt.filter, err)
			}
			got, err := rs.Match(expr, user)
			if err != nil {
				t.Fatalf("Match(%s): %v", tt.filter, err)
			}
			if got != tt.want {
				t.Errorf("Match(%s) = %v, want %v", tt.filter, got, tt.want)
			}
		})
	}
}

func TestMatchGroup(t *testing.T) {
	rs := GroupSchema
	group := testGroup(t)
	tests := []struct {
		name   string
		filter string
		want   bool
	}{
		{"displayName", `displayName eq "tour guides"`, true},
		{"externalId", `externalId eq "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"`, true},
		{"member by value path", `members[value eq "902c246b-6245-4190-8e05-00816be7344a"]`, true},
		{"member by sub-attribute", `members.value eq "2819c223-7f76-453a-919d-413861904646"`, true},
		{"member missing", `members[value eq "00000000-0000-0000-0000-000000000000"]`, false},
		{"members compared directly", `members eq "902c246b-6245-4190-8e05-00816be7344a"`, true},
		{"member display", `members[display sw "mandy"]`, true},
		{"members pr", `members pr`, true},
		{"meta.lastModified", `meta.lastModified gt "2011-01-01T00:00:00Z" and displayName co "guide"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expr, err := ParseFilter(tt.filter)
			if err != nil {
				t.Fatalf("ParseFilter: %v", err)
			}
			got, err := rs.Match(expr, group)
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if got != tt.want {
				t.Errorf("Match(%s) = %v, want %v", tt.filter, got, tt.want)
			}
		})
	}

	t.Run("empty members", func(t *testing.T) {
		g := decodeResource(t, `{"displayName": "x", "members": []}`)
		for f, want := range map[string]bool{`members pr`: false, `members[value eq "a"]`: false, `not (members pr)`: true} {
			expr, _ := ParseFilter(f)
			if got, err := rs.Match(expr, g); err != nil || got != want {
				t.Errorf("Match(%s) = %v, %v; want %v", f, got, err, want)
			}
		}
	})
}

func TestMatchPresence(t *testing.T) {
	rs := UserSchema
	tests := []struct {
		name string
		res  string
		want bool
	}{
		{"string", `{"title": "x"}`, true},
		{"empty string", `{"title": ""}`, false},
		{"null", `{"title": null}`, false},
		{"absent", `{}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expr, _ := ParseFilter(`title pr`)
			if got, _ := rs.Match(expr, decodeResource(t, tt.res)); got != tt.want {
				t.Errorf("title pr on %s = %v", tt.res, got)
			}
		})
	}
	more := []struct {
		name   string
		filter string
		res    string
		want   bool
	}{
		{"empty list", `emails pr`, `{"emails": []}`, false},
		{"list of empty objects", `emails pr`, `{"emails": [{}]}`, false},
		{"complex without values", `name pr`, `{"name": {"givenName": ""}}`, false},
		{"complex with a value", `name pr`, `{"name": {"givenName": "B"}}`, true},
		{"boolean false is a value", `active pr`, `{"active": false}`, true},
		{"empty extension", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr`, `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {}}`, false},
		{"key in another case", `username eq "b"`, `{"UserName": "B"}`, true},
		{"active as a string", `active eq false`, `{"active": "False"}`, true},
		{"single value where a list is expected", `emails.value eq "a@b"`, `{"emails": {"value": "a@b"}}`, true},
	}
	for _, tt := range more {
		t.Run(tt.name, func(t *testing.T) {
			expr, err := ParseFilter(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := rs.Match(expr, decodeResource(t, tt.res)); err != nil || got != tt.want {
				t.Errorf("Match(%s) on %s = %v, %v; want %v", tt.filter, tt.res, got, err, tt.want)
			}
		})
	}
}

func TestMatchNumbers(t *testing.T) {
	rs := numericSchema()
	resources := map[string]map[string]any{
		"json.Number": decodeResource(t, `{"age": 42, "score": 1.5, "ports": [22, 443], "seen": "2024-02-29T12:00:00Z"}`),
		"float64":     {"age": float64(42), "score": 1.5, "ports": []any{float64(22), float64(443)}, "seen": "2024-02-29T12:00:00Z"},
		"int":         {"age": 42, "score": 1.5, "ports": []any{22, int64(443)}, "seen": "2024-02-29T12:00:00Z"},
	}
	tests := []struct {
		filter string
		want   bool
	}{
		{`age eq 42`, true},
		{`age eq 42.0`, true},
		{`age ne 42`, false},
		{`age gt 41`, true},
		{`age gt 42`, false},
		{`age ge 42`, true},
		{`age lt 42.5`, true},
		{`age le 41`, false},
		{`score gt 1`, true},
		{`score eq 1.5`, true},
		{`score lt 1.25`, false},
		{`score ge 15e-1`, true},
		{`ports eq 443`, true},
		{`ports gt 1000`, false},
		{`ports[value lt 100]`, true},
		{`seen gt "2024-02-28T00:00:00Z"`, true},
		{`age pr and score pr`, true},
	}
	for name, res := range resources {
		for _, tt := range tests {
			t.Run(name+" "+tt.filter, func(t *testing.T) {
				expr, err := ParseFilter(tt.filter)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := rs.Match(expr, res); err != nil || got != tt.want {
					t.Errorf("Match = %v, %v; want %v", got, err, tt.want)
				}
			})
		}
	}
	t.Run("ParseFilterNumber values", func(t *testing.T) {
		expr, err := filter.ParseFilterNumber([]byte(`age eq 42`))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := rs.Match(expr, resources["json.Number"]); err != nil || !got {
			t.Errorf("Match = %v, %v", got, err)
		}
	})
	t.Run("stored number of another form", func(t *testing.T) {
		expr, _ := ParseFilter(`age eq 42`)
		if got, _ := rs.Match(expr, map[string]any{"age": json.Number("4.2e1")}); !got {
			t.Error("4.2e1 should equal 42")
		}
	})
}

func TestMatchErrors(t *testing.T) {
	user := UserSchema
	tests := []struct {
		name     string
		rs       Schema
		filter   string
		fragment string
	}{
		{"unknown attribute", user, `nope eq "x"`, `unknown attribute "nope"`},
		{"unknown sub-attribute", user, `name.nope eq "x"`, `no sub-attribute "nope"`},
		{"sub-attribute of simple attribute", user, `userName.x eq "x"`, "has no sub-attributes"},
		{"unknown URN", user, `urn:example:foo:2.0:Bar:userName eq "x"`, "unknown schema URN"},
		{"unknown attribute in value path", user, `emails[foo eq "x"]`, `no sub-attribute "foo"`},
		{"value path on simple attribute", user, `userName[value eq "x"]`, "single-valued"},
		{"gt on boolean", user, `active gt true`, "boolean"},
		{"le on boolean", user, `active le false`, "boolean"},
		{"co on boolean", user, `active co "t"`, "boolean"},
		{"boolean compared with a number", user, `active eq 1`, "true or false"},
		{"gt on complex", user, `name gt "a"`, `"name" is complex`},
		{"lt on complex multi-valued", user, `emails lt "a"`, `"emails" is complex; compare one of its sub-attributes (for example emails.value)`},
		{"eq on complex without value", user, `name eq "Barbara"`, "name.formatted"},
		{"string compared with a decimal number", user, `userName eq 4.2`, "quoted string"},
		{"string compared with a boolean", user, `title eq true`, "quoted string"},
		{"dateTime not a date", user, `meta.lastModified gt "yesterday"`, `"yesterday" is not a date`},
		{"dateTime compared with a number", user, `meta.created gt 2010`, "dateTime"},
		{"gt null", user, `title gt null`, "null"},
		{"co on number", numericSchema(), `age co "4"`, "numeric"},
		{"number compared with a string", numericSchema(), `age eq "42"`, "number"},
		{"gt on binary", numericSchema(), `cert gt "AA=="`, "binary"},
		{"schema URN compared", user, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User eq "x"`, "only supports"},
		{"unknown attribute behind an or", user, `userName eq "x" or nope pr`, `"nope"`},
		{"unknown attribute behind a not", user, `not (nope pr)`, `"nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expr, err := ParseFilter(tt.filter)
			if err != nil {
				t.Fatalf("ParseFilter: %v", err)
			}
			// The error does not depend on what the resource holds.
			for _, res := range []map[string]any{testUser(t), {}} {
				_, err = tt.rs.Match(expr, res)
				wantScimError(t, err, scimerrors.ScimTypeInvalidFilter, tt.fragment)
			}
		})
	}

	t.Run("nil and malformed expressions", func(t *testing.T) {
		for _, expr := range []filter.Expression{nil, (*filter.AttributeExpression)(nil), &filter.LogicalExpression{}, &filter.NotExpression{}, &filter.ValuePath{}} {
			_, err := user.Match(expr, testUser(t))
			wantScimError(t, err, scimerrors.ScimTypeInvalidFilter)
		}
	})
}

func TestParseFilterErrors(t *testing.T) {
	tests := []struct {
		name     string
		filter   string
		fragment string
	}{
		{"empty", ``, "empty"},
		{"blank", `   `, "empty"},
		{"missing value", `userName eq`, `operator "eq" at position 10 needs a value`},
		{"unknown operator", `userName xx "a"`, `unknown operator "xx"`},
		{"single quotes", `userName eq 'a'`, "double quotes"},
		{"unterminated string", `userName eq "abc`, "not closed"},
		{"missing operator", `userName`, "must be followed by an operator"},
		{"unbalanced parenthesis", `(userName eq "a"`, "never closed"},
		{"extra parenthesis", `userName eq "a")`, "no matching"},
		{"unbalanced bracket", `emails[type eq "work"`, "never closed"},
		{"dangling and", `userName eq "a" and`, "ends where a comparison was expected"},
		{"leading and", `and userName eq "a"`, "needs a comparison before it"},
		{"two comparisons without and", `userName eq "a" title pr`, `expected "and", "or"`},
		{"not without parentheses", `not userName eq "a"`, "parenthesised"},
		{"sub-attribute after value filter", `emails[type eq "work"].value eq "x"`, "cannot be followed by a sub-attribute"},
		{"three comparisons in a value filter", `emails[type eq "a" and value eq "b" and display eq "c"]`, "at most two comparisons"},
		{"nested value filter", `emails[type[value eq "x"] eq "a"]`, "nested"},
		{"bad attribute name", `1abc eq "x"`, "not an attribute name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expr, err := ParseFilter(tt.filter)
			if err == nil {
				t.Fatalf("ParseFilter(%q) = %v, want an error", tt.filter, expr)
			}
			wantScimError(t, err, scimerrors.ScimTypeInvalidFilter, tt.fragment)
		})
	}
}

// TestMatchElimityParsedFilters checks the expressions elimity's server hands over (parsed by its validator).
func TestMatchElimityParsedFilters(t *testing.T) {
	rs := UserSchema
	for _, f := range []string{
		`userName eq "bjensen@example.com"`,
		`externalId eq "Bjensen-EXT"`,
		`emails[type eq "work"]`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`,
	} {
		v, err := scimfilter.NewValidator(f, rs.Core, rs.Extensions...)
		if err != nil {
			t.Fatalf("NewValidator(%s): %v", f, err)
		}
		if got, err := rs.Match(v.GetFilter(), testUser(t)); err != nil || !got {
			t.Errorf("Match(%s) = %v, %v", f, got, err)
		}
	}
}

func TestCompileFilterReuse(t *testing.T) {
	rs := UserSchema
	expr, err := ParseFilter(`userName sw "a" or emails[type eq "home"]`)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rs.CompileFilter(expr)
	if err != nil {
		t.Fatal(err)
	}
	a := decodeResource(t, `{"userName": "alice"}`)
	b := decodeResource(t, `{"userName": "bob", "emails": [{"value": "b@x", "type": "home"}]}`)
	c := decodeResource(t, `{"userName": "carol"}`)
	if !m(a) || !m(b) || m(c) {
		t.Errorf("matcher results a=%v b=%v c=%v", m(a), m(b), m(c))
	}
}

func TestParseFilterWhitespace(t *testing.T) {
	user := testUser(t)
	for _, f := range []string{
		"  userName eq \"bjensen@example.com\"  ",
		"userName\teq \"bjensen@example.com\"",
		"title pr\nand\r\nuserName eq \"bjensen@example.com\"",
		"emails[type eq \"work\"] ",
		"userName  eq  \"bjensen@example.com\"",
		"userName eq \"bjensen@example.com\" and TITLE PR and active eq TRUE",
	} {
		expr, err := ParseFilter(f)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", f, err)
			continue
		}
		if ok, err := UserSchema.Match(expr, user); err != nil || !ok {
			t.Errorf("Match(%q) = %v, %v", f, ok, err)
		}
	}
	// Escapes inside strings are decoded, not normalised: "\t" is a tab, not a space.
	expr, err := ParseFilter(`title eq "Tour\tGuide"`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := UserSchema.Match(expr, user); ok {
		t.Error("a tab inside a string matched a space")
	}
}
