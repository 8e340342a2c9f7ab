package resource

import (
	"fmt"
	"testing"

	scimerrors "github.com/elimity-com/scim/errors"
)

func TestQuoteBareValues(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// Microsoft's reference collection and SCIM validator.
		{"string", `name.familyName eq Employee`, `name.familyName eq "Employee"`},
		{"one letter", `userName sw O`, `userName sw "O"`},
		{"dateTime", `meta.created gt 2015-10-10T14:38:21.8617979-07:00`, `meta.created gt "2015-10-10T14:38:21.8617979-07:00"`},
		{"and", `userName eq a and name.familyName eq b`, `userName eq "a" and name.familyName eq "b"`},
		{"or, operators in any case", `userName EQ a OR title Co b`, `userName EQ "a" OR title Co "b"`},
		{"parentheses", `(userName eq a or userName eq b) and not (title eq c)`, `(userName eq "a" or userName eq "b") and not (title eq "c")`},
		{"not without a space", `not(title eq c)`, `not(title eq "c")`},
		{"value filter", `emails[type eq work and value co example.com]`, `emails[type eq "work" and value co "example.com"]`},
		{"PATCH path", `emails[type eq work].value`, `emails[type eq "work"].value`},
		{"member path", `members[value eq 2819c223-7f76-453a-919d-413861904646]`, `members[value eq "2819c223-7f76-453a-919d-413861904646"]`},
		{"mixed with quoted", `userName eq "a b" or displayName eq c`, `userName eq "a b" or displayName eq "c"`},
		{"backslash escaped", `userName eq DOMAIN\user`, `userName eq "DOMAIN\\user"`},
		{"apostrophe inside", `name.familyName eq O'Brien`, `name.familyName eq "O'Brien"`},
		{"non-ASCII", `name.familyName eq Müller`, `name.familyName eq "Müller"`},
		{"a word that is an operator", `title eq and`, `title eq "and"`},
		{"tabs and line breaks", "userName\teq\na", "userName\teq\n\"a\""},
		{"URN attribute", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq 701984x`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984x"`},

		// Values the grammar has, unchanged.
		{"true false null any case", `active eq True and title eq null or x eq FALSE`, `active eq True and title eq null or x eq FALSE`},
		{"numbers", `age eq 42 or score gt -1.5e3`, `age eq 42 or score gt -1.5e3`},
		{"quoted with escapes", `displayName eq "Babs \"B\" Jensen"`, `displayName eq "Babs \"B\" Jensen"`},
		{"pr", `title pr and userName eq x`, `title pr and userName eq "x"`},
		{"plain path", `name.givenName`, `name.givenName`},

		// Not the shape of a filter: left for the parser to refuse, as sent.
		{"two words", `displayName eq Group One`, `displayName eq Group One`},
		{"unknown operator", `userName xx a`, `userName xx a`},
		{"unclosed string", `userName eq "a and title eq b`, `userName eq "a and title eq b`},
		{"single quotes", `userName eq 'a'`, `userName eq 'a'`},
		{"control character", "userName eq a\x01b", "userName eq a\x01b"},
		{"missing value", `userName eq`, `userName eq`},
		{"value then bracket", `userName eq a[`, `userName eq a[`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := QuoteBareValues(tt.in); got != tt.want {
				t.Errorf("QuoteBareValues(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// A filter with bare values means what the same filter with quoted values means: the same expression, the same
// matches. Malformed filters stay 400 invalidFilter.
func TestBareValueFilters(t *testing.T) {
	rs := UserSchema
	user := testUser(t)
	tests := []struct {
		bare, quoted string
		want         bool
	}{
		{`name.familyName eq Jensen`, `name.familyName eq "Jensen"`, true},
		{`name.familyName eq Employee`, `name.familyName eq "Employee"`, false},
		{`userType eq Employee`, `userType eq "Employee"`, true},
		{`userName sw B`, `userName sw "B"`, true},
		{`userName sw O`, `userName sw "O"`, false},
		{`meta.created gt 2009-10-10T14:38:21.8617979-07:00`, `meta.created gt "2009-10-10T14:38:21.8617979-07:00"`, true},
		{`meta.created gt 2015-10-10T14:38:21.8617979-07:00`, `meta.created gt "2015-10-10T14:38:21.8617979-07:00"`, false},
		{`meta.lastModified eq 2011-05-13T06:42:34+02:00`, `meta.lastModified eq "2011-05-13T06:42:34+02:00"`, true},
		{`(userName sw x or name.familyName eq jensen) and not (title eq Driver)`, `(userName sw "x" or name.familyName eq "jensen") and not (title eq "Driver")`, true},
		{`emails[type eq work and value ew example.com]`, `emails[type eq "work" and value ew "example.com"]`, true},
		{`active eq true`, `active eq true`, true},
	}
	for _, tt := range tests {
		t.Run(tt.bare, func(t *testing.T) {
			bare, err := ParseFilter(tt.bare)
			if err != nil {
				t.Fatalf("ParseFilter(%q) = %v", tt.bare, err)
			}
			quoted, err := ParseFilter(tt.quoted)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(bare) != fmt.Sprint(quoted) {
				t.Errorf("parsed as %s, the quoted form as %s", bare, quoted)
			}
			if got, err := rs.Match(bare, user); err != nil || got != tt.want {
				t.Errorf("Match = %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	// A bare whole number compared with a string attribute is its digits.
	for f, want := range map[string]bool{
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq 701984`:   true,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`: true,
		`employeeNumber sw 70`:      true,
		`employeeNumber eq 70198`:   false,
		`phoneNumbers.value co 555`: true,
	} {
		expr, err := ParseFilter(f)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := rs.Match(expr, user); err != nil || got != want {
			t.Errorf("Match(%s) = %v, %v; want %v", f, got, err, want)
		}
	}
	expr, err := ParseFilter(`title eq 1.5`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rs.Match(expr, user)
	wantScimError(t, err, scimerrors.ScimTypeInvalidFilter, `attribute "title" is a string; compare it with a quoted string, not the number 1.5`)

	malformed := []struct{ filter, fragment string }{
		{`displayName eq Group One`, `expected "and", "or"`},
		{`userName eq 'a'`, "double quotes"},
		{"userName eq a\x01b", "control character"},
		{`userName eq`, "needs a value"},
	}
	for _, tt := range malformed {
		t.Run(tt.filter, func(t *testing.T) {
			expr, err := ParseFilter(tt.filter)
			if err == nil {
				t.Fatalf("ParseFilter(%q) = %v, want an error", tt.filter, expr)
			}
			wantScimError(t, err, scimerrors.ScimTypeInvalidFilter, tt.fragment)
		})
	}

	// A bare value of the wrong type for its attribute is the same 400 as the quoted one.
	for _, f := range []string{`age eq +1`, `age eq 01`, `age eq forty`} {
		expr, err := ParseFilter(f)
		if err != nil {
			t.Fatalf("ParseFilter(%q) = %v", f, err)
		}
		_, err = numericSchema().Match(expr, map[string]any{"age": 1})
		wantScimError(t, err, scimerrors.ScimTypeInvalidFilter, `attribute "age" is a number`)
	}
}
