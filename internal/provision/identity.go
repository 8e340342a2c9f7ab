package provision

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
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
//
// The email is returned in Unicode normalisation form C (two spellings of one visible
// address are one address), and the text Panther receives must be text a person can
// read: userName, the email and the names are refused (CodeInvalid) when they hold
// invalid UTF-8 (or the U+FFFD a decoder left in its place), control characters, or
// invisible format characters such as a zero-width space, which would make a second
// account look like the first.
func DeriveIdentity(userName string, attrs map[string]any) (Identity, error) {
	return DeriveIdentityFrom(userName, IdentitySourceOf(attrs))
}

// DeriveIdentityFrom is DeriveIdentity given what the rules read of the attributes.
func DeriveIdentityFrom(userName string, src IdentitySource) (Identity, error) {
	if err := checkText("userName", userName); err != nil {
		return Identity{}, err
	}
	email := src.email()
	if email == "" && ValidEmail(userName) {
		email = userName
	}
	if email == "" {
		return Identity{}, newError(CodeInvalid, nil,
			"user %q has no usable email address: set emails (primary or type \"work\") or use an email address as userName", userName)
	}
	if err := checkText("email", email); err != nil {
		return Identity{}, err
	}
	email = norm.NFC.String(email)
	if !ValidEmail(email) {
		return Identity{}, newError(CodeInvalid, nil, "email %q is not a valid email address", email)
	}
	given, family := names(userName, src)
	if err := checkText("name.givenName", given); err != nil {
		return Identity{}, err
	}
	if err := checkText("name.familyName", family); err != nil {
		return Identity{}, err
	}
	return Identity{Email: email, GivenName: given, FamilyName: family}, nil
}

// EmailKey is the one form in which emails are compared: protection, uniqueness,
// adoption and ownership all compare EmailKey(a) == EmailKey(b). It is the address
// in Unicode normalisation form C, lower-cased, which is also the store's index key
// of an email DeriveIdentity returned.
func EmailKey(email string) string {
	return strings.ToLower(norm.NFC.String(strings.TrimSpace(email)))
}

// SameEmail reports whether two emails are one address (EmailKey).
func SameEmail(a, b string) bool {
	return a == b || EmailKey(a) == EmailKey(b)
}

// checkText refuses a value Panther must never receive (see DeriveIdentity), naming
// the attribute and the offending character.
func checkText(attr, s string) error {
	if !utf8.ValidString(s) {
		return newError(CodeInvalid, nil, "%s is not valid UTF-8: send the text as UTF-8", attr)
	}
	if r, ok := invisibleRune(s); ok {
		what := "an invisible or control character"
		if r == utf8.RuneError {
			what = "U+FFFD, the replacement character of invalid UTF-8"
		}
		return newError(CodeInvalid, nil, "%s %q contains %s (%s): remove it", attr, s, what, fmt.Sprintf("U+%04X", r))
	}
	return nil
}

// invisibleRune returns the first rune of s that must not appear in an identity:
// control, format (zero-width space, joiners, bidi controls, BOM), private-use,
// surrogate and non-characters, default-ignorable code points (Hangul fillers,
// variation selectors), separators other than the ASCII space, and U+FFFD.
func invisibleRune(s string) (rune, bool) {
	for _, r := range s {
		if r < utf8.RuneSelf {
			// ASCII, most of every name: only its controls are invisible (the tables
			// below hold no other ASCII character but the space, which is allowed).
			// Looking each character up in nine tables was a tenth of a reconcile's
			// CPU at 100,000 users.
			if r < 0x20 || r == 0x7f {
				return r, true
			}
			continue
		}
		if invisible(r) {
			return r, true
		}
	}
	return 0, false
}

// invisible says whether r must not appear in an identity (see invisibleRune).
func invisible(r rune) bool {
	return r != ' ' && (r == utf8.RuneError ||
		unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zs, unicode.Zl, unicode.Zp) ||
		unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector, unicode.Noncharacter_Code_Point))
}

// ValidEmail reports whether s is a bare address Panther's Email scalar accepts:
// local@domain with a dotted domain and no display name or spaces.
func ValidEmail(s string) bool {
	if s == "" || strings.ContainsAny(s, " <>\t\r\n") {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	// The common form, local@domain of plain ASCII, is one net/mail parses back to
	// itself; its parser took 8 allocations per address, 15 MB of a reconcile at
	// 100,000 users. Any other form is net/mail's to judge.
	if at <= 0 || !asciiDotAtom(s[:at]) || !asciiDotAtom(s[at+1:]) {
		a, err := mail.ParseAddress(s)
		if err != nil || a.Address != s {
			return false
		}
	}
	domain := s[at+1:]
	return at > 0 && strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// asciiDotAtom says whether s is an RFC 5322 dot-atom of ASCII characters as net/mail
// reads one (its consumeAtom with isAtext): printable characters but the specials,
// and dots, not first, last or two in a row.
func asciiDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>[]:;@\,"`, c) >= 0:
			return false
		}
	}
	return true
}

// IdentitySource is what the identity rules read of a user's SCIM attributes, typed:
// name.givenName, name.familyName, name.formatted and displayName as the attributes
// hold them ("" when absent or not a string), and the candidates for the Panther
// email that the emails list offers (AddEmail). IdentitySourceOf takes it from the
// attributes; ReadTx.ScanUserIdentities hands it over without building them, which
// at 100,000 users was a third of what a reconcile allocated.
type IdentitySource struct {
	GivenName   string
	FamilyName  string
	Formatted   string
	DisplayName string
	// PrimaryEmail, WorkEmail and FirstEmail are the first emails[].value (trimmed,
	// not empty) that is primary, of type "work" (in any case), and of any kind.
	// AddEmail sets them from the list's entries in order.
	PrimaryEmail string
	WorkEmail    string
	FirstEmail   string
}

// IdentitySourceOf takes from a user's attributes what the identity rules read.
func IdentitySourceOf(attrs map[string]any) IdentitySource {
	var src IdentitySource
	name, _ := attrs["name"].(map[string]any)
	src.GivenName, _ = name["givenName"].(string)
	src.FamilyName, _ = name["familyName"].(string)
	src.Formatted, _ = name["formatted"].(string)
	src.DisplayName, _ = attrs["displayName"].(string)
	list, _ := attrs["emails"].([]any)
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		v, _ := m["value"].(string)
		t, _ := m["type"].(string)
		src.AddEmail(v, t, isTrue(m["primary"]))
	}
	return src
}

// AddEmail notes the next entry of the emails list that is an object: its value and
// type when they are strings ("" otherwise), and whether primary is true (JSON true,
// or the string "true" in any case, as some IdPs send it).
func (src *IdentitySource) AddEmail(value, typ string, primary bool) {
	v := strings.TrimSpace(value)
	if v == "" {
		return
	}
	if primary && src.PrimaryEmail == "" {
		src.PrimaryEmail = v
	}
	if src.WorkEmail == "" && strings.EqualFold(typ, "work") {
		src.WorkEmail = v
	}
	if src.FirstEmail == "" {
		src.FirstEmail = v
	}
}

// email is the email the attributes give: the primary one, else the first "work"
// one, else the first one.
func (src IdentitySource) email() string {
	switch {
	case src.PrimaryEmail != "":
		return src.PrimaryEmail
	case src.WorkEmail != "":
		return src.WorkEmail
	}
	return src.FirstEmail
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

func names(userName string, src IdentitySource) (given, family string) {
	given = strings.TrimSpace(src.GivenName)
	family = strings.TrimSpace(src.FamilyName)
	if given != "" && family != "" {
		return given, family
	}
	var parts []string
	for _, s := range [...]string{strings.TrimSpace(src.Formatted), strings.TrimSpace(src.DisplayName), localPart(userName)} {
		if parts = strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '.' || r == '_' }); len(parts) > 0 {
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
