package provision

import (
	"net/mail"
	"strings"
)

// Identity is what Panther knows of a user, derived from the SCIM record by the
// identity rules of DESIGN.md.
type Identity struct {
	Email      string
	GivenName  string
	FamilyName string
}

// DeriveIdentity applies the identity rules: the Panther email is the primary email,
// else the first "work" email, else the first email, else userName when it is an
// address; names come from name.givenName / name.familyName, falling back to
// name.formatted, displayName and the userName's local part, because Panther requires both.
// It returns a CodeInvalid *Error when no usable email exists.
func DeriveIdentity(userName string, attrs map[string]any) (Identity, error) {
	email := pickEmail(attrs)
	if email == "" && ValidEmail(userName) {
		email = userName
	}
	if email == "" {
		return Identity{}, newError(CodeInvalid, nil,
			"user %q has no usable email address: set emails (primary or type \"work\") or use an email address as userName", userName)
	}
	if !ValidEmail(email) {
		return Identity{}, newError(CodeInvalid, nil, "email %q is not a valid email address", email)
	}
	given, family := names(userName, attrs)
	return Identity{Email: email, GivenName: given, FamilyName: family}, nil
}

// ValidEmail reports whether s is a bare address Panther's Email scalar accepts:
// local@domain with a dotted domain and no display name or spaces.
func ValidEmail(s string) bool {
	if s == "" || strings.ContainsAny(s, " <>\t\r\n") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	return at > 0 && strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

func pickEmail(attrs map[string]any) string {
	list, _ := attrs["emails"].([]any)
	var work, first string
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		v, _ := m["value"].(string)
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if isTrue(m["primary"]) {
			return v
		}
		if t, _ := m["type"].(string); work == "" && strings.EqualFold(t, "work") {
			work = v
		}
		if first == "" {
			first = v
		}
	}
	if work != "" {
		return work
	}
	return first
}

func isTrue(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return strings.EqualFold(b, "true")
	}
	return false
}

func names(userName string, attrs map[string]any) (given, family string) {
	name, _ := attrs["name"].(map[string]any)
	given = str(name, "givenName")
	family = str(name, "familyName")
	if given != "" && family != "" {
		return given, family
	}
	var parts []string
	for _, src := range []string{str(name, "formatted"), str(attrs, "displayName"), localPart(userName)} {
		if parts = strings.FieldsFunc(src, func(r rune) bool { return r == ' ' || r == '.' || r == '_' }); len(parts) > 0 {
			break
		}
	}
	if len(parts) == 0 {
		parts = []string{userName}
	}
	if given == "" {
		given = parts[0]
	}
	if family == "" {
		family = parts[len(parts)-1]
		if len(parts) == 1 {
			family = given
		}
	}
	return given, family
}

func localPart(s string) string {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		return s[:i]
	}
	return s
}

func str(m map[string]any, key string) string {
	if m == nil {
		return ""
	}
	s, _ := m[key].(string)
	return strings.TrimSpace(s)
}
