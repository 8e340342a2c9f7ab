// Package mappings turns SCIM group membership into a Panther role.
//
// A Mapping is an ordered list of rules, each naming a SCIM group and the Panther
// role its members get. A rule says what it matches: `group:` names a displayName
// (compared case-insensitively) and nothing else; `externalId:` names an externalId
// (compared exactly) and nothing else. A rule has exactly one of the two, so a group
// whose externalId happens to equal another group's displayName never takes its role. A user's role is the role of the first rule, in rule order,
// that matches one of the user's groups; when none matches, DefaultRole applies. An
// empty result means the user has no Panther access.
//
// The package is a leaf: role names are plain strings (a Panther role name or id),
// and checking them against Panther is left to the caller through ValidateRoles.
package mappings

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// Rule maps one SCIM group to one Panther role. Exactly one of Group and ExternalID is set.
type Rule struct {
	// Group is a SCIM group displayName, matched case-insensitively. It never
	// matches an externalId.
	Group string `yaml:"group"`
	// ExternalID is a SCIM group externalId (the IdP's id of the group, e.g. Entra's
	// objectId), matched exactly.
	ExternalID string `yaml:"externalId"`
	// Role is a Panther role name or id.
	Role string `yaml:"role"`
}

// Mapping is the ordered group-to-role mapping.
type Mapping struct {
	// Rules are tried in order; the first that matches one of the user's groups wins.
	Rules []Rule `yaml:"rules"`
	// DefaultRole applies when no rule matches; empty means no Panther access.
	DefaultRole string `yaml:"defaultRole"`
}

// GroupRef identifies a SCIM group a user belongs to, by the two attributes a rule
// can match.
type GroupRef struct {
	DisplayName string
	ExternalID  string
}

// Resolve returns the role for a user who is a member of groups: the role of the
// first rule (in rule order, whatever the order of groups) whose Group equals some
// group's displayName case-insensitively, or whose ExternalID equals some group's
// externalId exactly; otherwise DefaultRole. ok is false when the result is "", meaning no Panther access.
func (m Mapping) Resolve(groups []GroupRef) (role string, ok bool) {
	for _, r := range m.Rules {
		for _, g := range groups {
			if r.matches(g) {
				return r.Role, r.Role != ""
			}
		}
	}
	return m.DefaultRole, m.DefaultRole != ""
}

func (r Rule) matches(g GroupRef) bool {
	switch {
	case r.Group != "" && r.ExternalID == "":
		return strings.EqualFold(r.Group, g.DisplayName)
	case r.ExternalID != "" && r.Group == "":
		return r.ExternalID == g.ExternalID
	}
	return false // invalid (Validate refuses it): matches nothing
}

// Key describes what the rule matches, as a config file writes it.
func (r Rule) Key() string {
	if r.ExternalID != "" && r.Group == "" {
		return fmt.Sprintf("externalId %q", r.ExternalID)
	}
	return fmt.Sprintf("group %q", r.Group)
}

// Matches reports whether the group is named by some rule, that is whether
// membership in it can influence a user's role. Callers use it to skip role
// recomputation for changes to groups that no rule mentions.
func (m Mapping) Matches(g GroupRef) bool {
	for _, r := range m.Rules {
		if r.matches(g) {
			return true
		}
	}
	return false
}

// Roles returns the distinct roles the mapping can assign, in rule order, followed
// by DefaultRole when it is set and not already listed.
func (m Mapping) Roles() []string {
	seen := make(map[string]bool, len(m.Rules)+1)
	var roles []string
	add := func(r string) {
		if r != "" && !seen[r] {
			seen[r] = true
			roles = append(roles, r)
		}
	}
	for _, r := range m.Rules {
		add(r.Role)
	}
	add(m.DefaultRole)
	return roles
}

// Validate checks the mapping without contacting Panther and reports every problem
// at once (joined with errors.Join), each naming its rule by 1-based number: a rule
// with both group and externalId or with neither, an empty role, surrounding spaces
// (a name with them matches nothing in Panther or in an IdP as typed), a rule
// repeating an earlier one, and a group already mapped by an earlier rule to another
// role (the earlier rule always wins, so the later one is dead).
func (m Mapping) Validate() error {
	var errs []error
	first := make(map[string]int, len(m.Rules)) // key of the group matched -> index of the first rule naming it
	for i, r := range m.Rules {
		n := i + 1
		hasGroup, hasExt := strings.TrimSpace(r.Group) != "", strings.TrimSpace(r.ExternalID) != ""
		switch {
		case hasGroup && hasExt:
			errs = append(errs, fmt.Errorf("rule %d: has both group %q and externalId %q: a rule matches a displayName (group) or an externalId, not both; split it into two rules", n, r.Group, r.ExternalID))
		case !hasGroup && !hasExt:
			errs = append(errs, fmt.Errorf("rule %d: names no group: set group (a displayName) or externalId", n))
		case hasGroup && strings.TrimSpace(r.Group) != r.Group:
			errs = append(errs, fmt.Errorf("rule %d: group %q has leading or trailing spaces", n, r.Group))
		case hasExt && strings.TrimSpace(r.ExternalID) != r.ExternalID:
			errs = append(errs, fmt.Errorf("rule %d: externalId %q has leading or trailing spaces", n, r.ExternalID))
		}
		switch {
		case strings.TrimSpace(r.Role) == "":
			errs = append(errs, fmt.Errorf("rule %d: role is empty", n))
		case strings.TrimSpace(r.Role) != r.Role:
			errs = append(errs, fmt.Errorf("rule %d: role %q has leading or trailing spaces", n, r.Role))
		}
		if hasGroup == hasExt {
			continue
		}
		key := "g:" + strings.ToLower(r.Group)
		if hasExt {
			key = "x:" + r.ExternalID
		}
		j, dup := first[key]
		if !dup {
			first[key] = i
			continue
		}
		prev := m.Rules[j]
		if prev.Role == r.Role {
			errs = append(errs, fmt.Errorf("rule %d: duplicate of rule %d (%s -> role %q)", n, j+1, r.Key(), r.Role))
		} else {
			errs = append(errs, fmt.Errorf("rule %d: %s is already mapped to role %q by rule %d, so this rule (role %q) never applies",
				n, r.Key(), prev.Role, j+1, r.Role))
		}
	}
	if m.DefaultRole != "" && strings.TrimSpace(m.DefaultRole) != m.DefaultRole {
		errs = append(errs, fmt.Errorf("defaultRole %q has leading or trailing spaces", m.DefaultRole))
	}
	return errors.Join(errs...)
}

// RoleLookup reports whether a Panther role (by name or id) exists and whether it
// is an admin role (it holds the UserModify permission). err is for failures to ask
// Panther, not for a missing role.
type RoleLookup func(role string) (exists bool, admin bool, err error)

// ValidateRoles checks every role the mapping assigns against Panther through
// lookup. A role that does not exist, or that lookup could not check, is an error
// (all of them joined, each naming the rules that use the role); a role holding
// UserModify yields a warning, since its members can administer every Panther user.
func ValidateRoles(m Mapping, lookup RoleLookup) (warnings []string, err error) {
	var errs []error
	for _, role := range m.Roles() {
		where := m.usedBy(role)
		exists, admin, lerr := lookup(role)
		switch {
		case lerr != nil:
			errs = append(errs, fmt.Errorf("role %q (%s): cannot check it in Panther: %w", role, where, lerr))
		case !exists:
			errs = append(errs, fmt.Errorf("role %q (%s): no such role in Panther", role, where))
		case admin:
			warnings = append(warnings, fmt.Sprintf("role %q (%s) holds UserModify: its members can administer every Panther user", role, where))
		}
	}
	return warnings, errors.Join(errs...)
}

// usedBy describes where a role appears, e.g. "rules 1, 3 and defaultRole".
func (m Mapping) usedBy(role string) string {
	var parts []string
	var rules []string
	for i, r := range m.Rules {
		if r.Role == role {
			rules = append(rules, fmt.Sprint(i+1))
		}
	}
	switch len(rules) {
	case 0:
	case 1:
		parts = append(parts, "rule "+rules[0])
	default:
		parts = append(parts, "rules "+strings.Join(rules, ", "))
	}
	if m.DefaultRole == role {
		parts = append(parts, "defaultRole")
	}
	return strings.Join(parts, " and ")
}

// Parse decodes a mapping from YAML ({rules: [{group | externalId, role}...], defaultRole}),
// strictly: unknown keys are errors. It does not validate; call Validate.
func Parse(data []byte) (Mapping, error) {
	var m Mapping
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
		return Mapping{}, fmt.Errorf("parse mapping: %w", err)
	}
	return m, nil
}
