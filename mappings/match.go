package mappings

// Match says which rule decides the role of a user who is a member of groups, for
// explaining a role: the index in m.Rules of the first rule (in rule order) that matches
// one of the groups, and the index in groups of the group it matched; both -1 when no
// rule matches (DefaultRole applies). Resolve gives the same role.
func (m Mapping) Match(groups []GroupRef) (rule, group int) {
	for i, r := range m.Rules {
		for j, g := range groups {
			if r.matches(g) {
				return i, j
			}
		}
	}
	return -1, -1
}

// RuleFor returns the index of the first rule that matches the group, or -1: the rule
// through which membership in it can count.
func (m Mapping) RuleFor(g GroupRef) int {
	for i, r := range m.Rules {
		if r.matches(g) {
			return i
		}
	}
	return -1
}
