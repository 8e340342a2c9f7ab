package mappings

import "testing"

func TestMatch(t *testing.T) {
	m := Mapping{
		Rules: []Rule{
			{Group: "Admins", Role: "Admin"},
			{ExternalID: "ext-analysts", Role: "Analyst"},
			{Group: "Analysts", Role: "AnalystReadOnly"},
		},
		DefaultRole: "ReadOnly",
	}
	admins := GroupRef{DisplayName: "ADMINS"}
	byExt := GroupRef{DisplayName: "Whatever", ExternalID: "ext-analysts"}
	analysts := GroupRef{DisplayName: "Analysts"}
	other := GroupRef{DisplayName: "Other", ExternalID: "Admins"} // an externalId never matches a group: rule
	for _, c := range []struct {
		name        string
		groups      []GroupRef
		rule, group int
	}{
		{"none", nil, -1, -1},
		{"unmapped", []GroupRef{other}, -1, -1},
		{"first rule wins whatever the group order", []GroupRef{analysts, byExt, admins}, 0, 2},
		{"externalId rule", []GroupRef{analysts, byExt}, 1, 1},
		{"displayName rule", []GroupRef{other, analysts}, 2, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			rule, group := m.Match(c.groups)
			if rule != c.rule || group != c.group {
				t.Errorf("Match = %d, %d, want %d, %d", rule, group, c.rule, c.group)
			}
			// Resolve agrees.
			role, _ := m.Resolve(c.groups)
			want := m.DefaultRole
			if rule >= 0 {
				want = m.Rules[rule].Role
			}
			if role != want {
				t.Errorf("Resolve = %q, Match says %q", role, want)
			}
		})
	}
	for g, want := range map[GroupRef]int{admins: 0, byExt: 1, analysts: 2, other: -1} {
		if got := m.RuleFor(g); got != want {
			t.Errorf("RuleFor(%+v) = %d, want %d", g, got, want)
		}
	}
}
