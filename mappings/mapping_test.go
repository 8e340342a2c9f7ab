package mappings

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var example = Mapping{
	Rules: []Rule{
		{Group: "Panther Admins", Role: "Admin"},
		{Group: "Panther Analysts", Role: "Analyst"},
	},
	DefaultRole: "AnalystReadOnly",
}

func TestResolve(t *testing.T) {
	byExternalID := Mapping{
		Rules:       []Rule{{ExternalID: "00g1abcDEF", Role: "Admin"}, {Group: "Analysts", Role: "Analyst"}},
		DefaultRole: "",
	}
	tests := []struct {
		name     string
		m        Mapping
		groups   []GroupRef
		wantRole string
		wantOK   bool
	}{
		{"no groups gets default", example, nil, "AnalystReadOnly", true},
		{"unmapped group gets default", example, []GroupRef{{DisplayName: "Everyone"}}, "AnalystReadOnly", true},
		{"exact displayName", example, []GroupRef{{DisplayName: "Panther Analysts"}}, "Analyst", true},
		{"displayName any case", example, []GroupRef{{DisplayName: "PANTHER admins"}}, "Admin", true},
		{"first rule wins over group order", example,
			[]GroupRef{{DisplayName: "Panther Analysts"}, {DisplayName: "Panther Admins"}}, "Admin", true},
		{"externalId exact", byExternalID, []GroupRef{{DisplayName: "Ops", ExternalID: "00g1abcDEF"}}, "Admin", true},
		{"externalId is case-sensitive", byExternalID, []GroupRef{{DisplayName: "Ops", ExternalID: "00G1ABCDEF"}}, "", false},
		{"externalId rule before displayName rule", byExternalID,
			[]GroupRef{{DisplayName: "analysts"}, {DisplayName: "x", ExternalID: "00g1abcDEF"}}, "Admin", true},
		{"group never matches an externalId", example, []GroupRef{{DisplayName: "Contractors", ExternalID: "Panther Admins"}},
			"AnalystReadOnly", true},
		{"externalId never matches a displayName", byExternalID, []GroupRef{{DisplayName: "00g1abcDEF"}}, "", false},
		{"empty default means no access", byExternalID, []GroupRef{{DisplayName: "Everyone"}}, "", false},
		{"empty externalId never matches", Mapping{Rules: []Rule{{Group: "x", Role: "R"}}},
			[]GroupRef{{DisplayName: "", ExternalID: ""}}, "", false},
		{"empty mapping", Mapping{}, []GroupRef{{DisplayName: "Panther Admins"}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role, ok := tt.m.Resolve(tt.groups)
			if role != tt.wantRole || ok != tt.wantOK {
				t.Errorf("Resolve(%v) = %q, %v; want %q, %v", tt.groups, role, ok, tt.wantRole, tt.wantOK)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	if !example.Matches(GroupRef{DisplayName: "panther analysts"}) {
		t.Error("Matches(panther analysts) = false")
	}
	if example.Matches(GroupRef{DisplayName: "Everyone", ExternalID: "Panther Admins2"}) {
		t.Error("Matches(Everyone) = true")
	}
}

func TestRoles(t *testing.T) {
	m := Mapping{
		Rules:       []Rule{{Group: "a", Role: "Admin"}, {Group: "b", Role: "Analyst"}, {Group: "c", Role: "Admin"}},
		DefaultRole: "Analyst",
	}
	if got, want := m.Roles(), []string{"Admin", "Analyst"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Roles() = %q, want %q", got, want)
	}
	if got, want := example.Roles(), []string{"Admin", "Analyst", "AnalystReadOnly"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Roles() = %q, want %q", got, want)
	}
	if got := (Mapping{}).Roles(); len(got) != 0 {
		t.Errorf("Roles() of empty mapping = %q", got)
	}
}

func TestValidateOK(t *testing.T) {
	for name, m := range map[string]Mapping{
		"example":       example,
		"empty":         {},
		"default only":  {DefaultRole: "AnalystReadOnly"},
		"no default":    {Rules: []Rule{{Group: "g", Role: "Admin"}}},
		"role reused":   {Rules: []Rule{{Group: "g1", Role: "Admin"}, {Group: "g2", Role: "Admin"}}},
		"case of roles": {Rules: []Rule{{Group: "g1", Role: "admin"}, {Group: "g2", Role: "Admin"}}},
	} {
		if err := m.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v", name, err)
		}
	}
}

func TestValidateReportsEverything(t *testing.T) {
	m := Mapping{
		Rules: []Rule{
			{Group: "Panther Admins", Role: "Admin"},   // 1
			{Group: "", Role: "Analyst"},               // 2
			{Group: "Analysts", Role: ""},              // 3
			{Group: "panther admins", Role: "Admin"},   // 4: duplicate of 1
			{Group: "PANTHER ADMINS", Role: "Analyst"}, // 5: dead, 1 wins
			{Group: " Ops", Role: "Admin "},            // 6
			{Group: "   ", Role: "  "},                 // 7
		},
		DefaultRole: "ReadOnly ",
	}
	err := m.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	want := []string{
		"rule 2: names no group: set group (a displayName) or externalId",
		"rule 3: role is empty",
		`rule 4: duplicate of rule 1 (group "panther admins" -> role "Admin")`,
		`rule 5: group "PANTHER ADMINS" is already mapped to role "Admin" by rule 1`,
		`rule 6: group " Ops" has leading or trailing spaces`,
		`rule 6: role "Admin " has leading or trailing spaces`,
		"rule 7: names no group",
		"rule 7: role is empty",
		`defaultRole "ReadOnly " has leading or trailing spaces`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("Validate() error lacks %q; got:\n%s", w, msg)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != len(want) {
		t.Errorf("Validate() should join %d errors; got:\n%s", len(want), msg)
	}
	if strings.Contains(msg, "rule 1:") {
		t.Errorf("rule 1 is valid but was reported:\n%s", msg)
	}
}

func TestValidateRoles(t *testing.T) {
	panther := map[string]bool{"Admin": true, "Analyst": false} // role -> holds UserModify
	lookup := func(role string) (bool, bool, error) {
		if role == "Broken" {
			return false, false, errors.New("panther unavailable")
		}
		admin, ok := panther[role]
		return ok, admin, nil
	}

	warnings, err := ValidateRoles(Mapping{
		Rules:       []Rule{{Group: "a", Role: "Admin"}, {Group: "b", Role: "Analyst"}},
		DefaultRole: "Analyst",
	}, lookup)
	if err != nil {
		t.Fatalf("ValidateRoles = %v", err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `role "Admin" (rule 1) holds UserModify`) {
		t.Errorf("warnings = %q", warnings)
	}

	// An unknown role and a lookup failure are both reported, with the rules using them.
	warnings, err = ValidateRoles(example, lookup)
	if err == nil || !strings.Contains(err.Error(), `role "AnalystReadOnly" (defaultRole): no such role in Panther`) {
		t.Errorf("unknown default role: err = %v", err)
	}
	if len(warnings) != 1 {
		t.Errorf("warnings = %q", warnings)
	}
	m := Mapping{Rules: []Rule{{Group: "a", Role: "Nope"}, {Group: "b", Role: "Broken"}, {Group: "c", Role: "Nope"}}, DefaultRole: "Nope"}
	_, err = ValidateRoles(m, lookup)
	if err == nil {
		t.Fatal("ValidateRoles = nil")
	}
	for _, w := range []string{
		`role "Nope" (rules 1, 3 and defaultRole): no such role in Panther`,
		`role "Broken" (rule 2): cannot check it in Panther: panther unavailable`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q; got:\n%v", w, err)
		}
	}
}

func TestParse(t *testing.T) {
	m, err := Parse([]byte(`
rules:
  - group: Panther Admins
    role: Admin
  - group: Panther Analysts
    role: Analyst
defaultRole: AnalystReadOnly
`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, example) {
		t.Errorf("Parse = %+v, want %+v", m, example)
	}
	if _, err := Parse([]byte("rules:\n  - group: a\n    roel: Admin\n")); err == nil || !strings.Contains(err.Error(), "roel") {
		t.Errorf("unknown key: err = %v", err)
	}
	if m, err := Parse(nil); err != nil || len(m.Rules) != 0 {
		t.Errorf("Parse(empty) = %+v, %v", m, err)
	}
}

// A rule matches a displayName or an externalId, never both: one with both keys or
// with neither is an error naming the fix.
func TestValidateRuleKeys(t *testing.T) {
	err := Mapping{Rules: []Rule{
		{Group: "Panther Admins", ExternalID: "00g1", Role: "Admin"},
		{Role: "Analyst"},
		{ExternalID: "00g2", Role: "Admin"},
		{ExternalID: "00g2", Role: "Analyst"},
		{ExternalID: "00G2", Role: "Analyst"}, // externalIds are exact: another group
		{Group: "00g2", Role: "Analyst"},      // a displayName, not the externalId above
	}}.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	msg := err.Error()
	for _, w := range []string{
		`rule 1: has both group "Panther Admins" and externalId "00g1"`,
		"rule 2: names no group: set group (a displayName) or externalId",
		`rule 4: externalId "00g2" is already mapped to role "Admin" by rule 3`,
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("Validate() error lacks %q; got:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "rule 5") || strings.Contains(msg, "rule 6") {
		t.Errorf("valid rules reported:\n%s", msg)
	}
	m, err := Parse([]byte("rules:\n  - externalId: 00g1abc\n    role: Admin\n"))
	if err != nil || m.Rules[0] != (Rule{ExternalID: "00g1abc", Role: "Admin"}) || m.Validate() != nil {
		t.Errorf("Parse: %+v, %v", m, err)
	}
}
