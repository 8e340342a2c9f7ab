package provision

import (
	"errors"
	"math/rand/v2"
	"net/mail"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

func TestDeriveIdentity(t *testing.T) {
	email := func(v, typ string, primary bool) map[string]any {
		return map[string]any{"value": v, "type": typ, "primary": primary}
	}
	cases := []struct {
		name     string
		userName string
		attrs    map[string]any
		want     Identity
		wantErr  bool
	}{
		{"primary wins", "u", map[string]any{"emails": []any{email("home@x.io", "home", false), email("p@x.io", "other", true)},
			"name": map[string]any{"givenName": "Ada", "familyName": "Lovelace"}}, Identity{"p@x.io", "Ada", "Lovelace"}, false},
		{"work before first", "u", map[string]any{"emails": []any{email("home@x.io", "home", false), email("w@x.io", "Work", false)},
			"name": map[string]any{"givenName": "A", "familyName": "B"}}, Identity{"w@x.io", "A", "B"}, false},
		{"first", "u", map[string]any{"emails": []any{email("f@x.io", "", false)}, "name": map[string]any{"givenName": "A", "familyName": "B"}},
			Identity{"f@x.io", "A", "B"}, false},
		{"primary as string", "u", map[string]any{"emails": []any{email("a@x.io", "work", false), map[string]any{"value": "s@x.io", "primary": "True"}}},
			Identity{"s@x.io", "u", "u"}, false},
		{"userName as email, names from local part", "grace.hopper@navy.mil", nil, Identity{"grace.hopper@navy.mil", "grace", "hopper"}, false},
		{"names from displayName", "x@y.io", map[string]any{"displayName": "Alan Mathison Turing"}, Identity{"x@y.io", "Alan", "Turing"}, false},
		{"names from formatted", "x@y.io", map[string]any{"name": map[string]any{"formatted": "Barbara Liskov", "givenName": "Barbara"}},
			Identity{"x@y.io", "Barbara", "Liskov"}, false},
		{"single word name", "plato@academy.gr", nil, Identity{"plato@academy.gr", "plato", "plato"}, false},
		{"no email at all", "plainname", nil, Identity{}, true},
		{"invalid primary email", "u@x.io", map[string]any{"emails": []any{email("not an email", "work", true)}}, Identity{}, true},
		{"display-name address", "u", map[string]any{"emails": []any{email("Ada <a@x.io>", "work", true)}}, Identity{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DeriveIdentity(c.userName, c.attrs)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, c.wantErr)
			}
			if err != nil {
				if ErrorCode(err) != CodeInvalid {
					t.Errorf("code %v, want CodeInvalid", ErrorCode(err))
				}
				return
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestValidEmail(t *testing.T) {
	for s, want := range map[string]bool{
		"a@b.co": true, "first.last+tag@sub.example.org": true,
		"": false, "a@b": false, "@b.co": false, "a b@c.co": false, "a@.co": false, "a@co.": false, "<a@b.co>": false,
	} {
		if got := ValidEmail(s); got != want {
			t.Errorf("ValidEmail(%q) = %v, want %v", s, got, want)
		}
	}
}

// Emails and names Panther would show as something else are refused; one address
// written two ways is one address.
func TestIdentityRefusesInvisibleText(t *testing.T) {
	named := func(given string) map[string]any {
		return map[string]any{"name": map[string]any{"givenName": given, "familyName": "F"}}
	}
	for name, c := range map[string]struct {
		userName string
		attrs    map[string]any
	}{
		"zero-width space in email":  {"root@corp.example\u200b", nil},
		"BOM in email":               {"\ufeffroot@corp.example", nil},
		"Hangul filler in email":     {"ro\u3164ot@corp.example", nil},
		"variation selector":         {"root\ufe0f@corp.example", nil},
		"line separator":             {"root\u2028@corp.example", nil},
		"no-break space":             {"root\u00a0@corp.example", nil},
		"invalid UTF-8 userName":     {"ro\xffot", map[string]any{"emails": []any{map[string]any{"value": "r@corp.example"}}}},
		"U+FFFD userName":            {"ro\ufffdot@corp.example", nil},
		"control character in name":  {"a@corp.example", named("A\x1b[31m")},
		"right-to-left mark in name": {"a@corp.example", named("A\u200f")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DeriveIdentity(c.userName, c.attrs)
			if ErrorCode(err) != CodeInvalid {
				t.Fatalf("err %v, want CodeInvalid", err)
			}
		})
	}
	// Composed and decomposed é are one address, sent to Panther composed.
	id, err := DeriveIdentity("jose\u0301@corp.example", nil)
	if err != nil || id.Email != "jos\u00e9@corp.example" {
		t.Fatalf("%+v, %v", id, err)
	}
	if !SameEmail("JOS\u00c9@Corp.Example", "jose\u0301@corp.example") || SameEmail("jose@corp.example", "jos\u00e9@corp.example") {
		t.Error("SameEmail does not compare the canonical form")
	}
	if _, err := DeriveIdentity("Zoë Ünal", map[string]any{"emails": []any{map[string]any{"value": "zoe@corp.example"}}}); err != nil {
		t.Errorf("letters outside ASCII are not invisible: %v", err)
	}
}

// invisibleRune's ASCII shortcut says of every ASCII character what the Unicode
// tables say.
func TestInvisibleRuneASCII(t *testing.T) {
	for r := rune(0); r < 0x80; r++ {
		s := "a" + string(r) + "b"
		got, bad := invisibleRune(s)
		if want := invisible(r); bad != want || (bad && got != r) {
			t.Errorf("invisibleRune(%q) = %U, %v; the tables say %v", s, got, bad, want)
		}
	}
}

// identityCases are attributes that test the corners of the identity rules: which
// email wins, which attributes are read only when they have the right JSON type,
// and the name fallbacks. Values are those encoding/json decodes (float64 numbers).
var identityCases = []struct {
	name     string
	userName string
	attrs    map[string]any
}{
	{"nothing", "ada@example.com", nil},
	{"primary not first", "u", map[string]any{"emails": []any{
		map[string]any{"value": "home@x.io", "type": "home"}, map[string]any{"value": "w@x.io", "type": "work"},
		map[string]any{"value": "p@x.io", "type": "other", "primary": true}}}},
	{"two primaries: the first", "u", map[string]any{"emails": []any{
		map[string]any{"value": "a@x.io", "primary": false}, map[string]any{"value": "p1@x.io", "primary": true},
		map[string]any{"value": "p2@x.io", "primary": true}}}},
	{"primary as strings", "u", map[string]any{"emails": []any{
		map[string]any{"value": "yes@x.io", "primary": "yes"}, map[string]any{"value": "one@x.io", "primary": 1.0},
		map[string]any{"value": "t@x.io", "primary": "TRUE"}}}},
	{"primary with an empty value", "u", map[string]any{"emails": []any{
		map[string]any{"value": "  ", "primary": true}, map[string]any{"value": "w@x.io", "type": "Work"}}}},
	{"work in any case, the first work", "u", map[string]any{"emails": []any{
		map[string]any{"value": "o@x.io", "type": "other"}, map[string]any{"value": "w1@x.io", "type": "WORK"},
		map[string]any{"value": "w2@x.io", "type": "work"}}}},
	{"work with a space is not work", "u", map[string]any{"emails": []any{
		map[string]any{"value": "f@x.io"}, map[string]any{"value": "w@x.io", "type": "work "}}}},
	{"type not a string", "u", map[string]any{"emails": []any{
		map[string]any{"value": "f@x.io"}, map[string]any{"value": "w@x.io", "type": []any{"work"}}}}},
	{"values trimmed, empty and odd ones skipped", "u", map[string]any{"emails": []any{
		"w@x.io", nil, 3.0, []any{map[string]any{"value": "nested@x.io"}},
		map[string]any{"value": 7.0, "primary": true}, map[string]any{"value": map[string]any{"value": "deep@x.io"}},
		map[string]any{"primary": true}, map[string]any{"value": "\t first@x.io \n", "type": "home"}}}},
	{"keys are case-sensitive", "u@x.io", map[string]any{"emails": []any{map[string]any{"Value": "v@x.io", "Primary": true}},
		"Name": map[string]any{"givenName": "No"}, "DisplayName": "Not Read"}},
	{"emails not a list", "u@x.io", map[string]any{"emails": map[string]any{"value": "obj@x.io", "primary": true}}},
	{"no usable email", "plain", map[string]any{"emails": []any{map[string]any{"value": ""}}}},
	{"invalid chosen email", "u@x.io", map[string]any{"emails": []any{map[string]any{"value": "Ada <a@x.io>", "primary": true},
		map[string]any{"value": "good@x.io"}}}},
	{"both names", "u@x.io", map[string]any{"name": map[string]any{"givenName": " Ada ", "familyName": "Lovelace", "formatted": "X Y"}}},
	{"given only: family from formatted", "u@x.io", map[string]any{"name": map[string]any{"givenName": "Barbara", "formatted": "Barbara  Jane Liskov"}}},
	{"family only: given from displayName", "u@x.io", map[string]any{"name": map[string]any{"familyName": "Hopper", "formatted": "  "},
		"displayName": "Grace_Brewster.Hopper"}},
	{"names not strings", "first.last@x.io", map[string]any{"name": map[string]any{"givenName": 1.0, "familyName": nil, "formatted": true},
		"displayName": 7.5}},
	{"blank formatted: the next source", "u@x.io", map[string]any{"name": map[string]any{"givenName": "Ada", "formatted": "\n\t"},
		"displayName": "Ada Lovelace"}},
	{"name not an object", "x_y@x.io", map[string]any{"name": "Ada Lovelace", "displayName": "Single"}},
	{"separators only: userName", "...@x.io", map[string]any{"displayName": "_ . _"}},
	{"escaped and non-ASCII text", "u", map[string]any{"emails": []any{map[string]any{"value": "jose\u0301@corp.example", "primary": "True"}},
		"name": map[string]any{"givenName": "\"Zoë\" <&>", "familyName": "Ünal\\"}}},
	{"invisible character in a fallback name", "u@x.io", map[string]any{"displayName": "Ada\u200b Lovelace"}},
	{"control character in the chosen email", "u@x.io", map[string]any{"emails": []any{map[string]any{"value": "a\x1b@x.io", "type": "work"}}}},
}

// DeriveIdentity, now reading the attributes through IdentitySource, finds what the
// rules found when they read the attributes' maps themselves (deriveFromMaps, the
// code before IdentitySource), on every corner case.
func TestDeriveIdentityMatchesMapRules(t *testing.T) {
	for _, c := range identityCases {
		t.Run(c.name, func(t *testing.T) {
			want, wantErr := deriveFromMaps(c.userName, c.attrs)
			got, err := DeriveIdentity(c.userName, c.attrs)
			if got != want || (err == nil) != (wantErr == nil) {
				t.Errorf("got %+v (%v), the map rules give %+v (%v)", got, err, want, wantErr)
			}
		})
	}
}

// deriveFromMaps is DeriveIdentity as it was before IdentitySource: the rules reading
// the attributes' maps directly. It is the reference the typed path is held to.
func deriveFromMaps(userName string, attrs map[string]any) (Identity, error) {
	str := func(m map[string]any, key string) string {
		s, _ := m[key].(string)
		return strings.TrimSpace(s)
	}
	if err := checkText("userName", userName); err != nil {
		return Identity{}, err
	}
	var email, work, first string
	list, _ := attrs["emails"].([]any)
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		v := str(m, "value")
		if v == "" {
			continue
		}
		if isTrue(m["primary"]) {
			email = v
			break
		}
		if t, _ := m["type"].(string); work == "" && strings.EqualFold(t, "work") {
			work = v
		}
		if first == "" {
			first = v
		}
	}
	if email == "" {
		email = work
	}
	if email == "" {
		email = first
	}
	if email == "" && ValidEmail(userName) {
		email = userName
	}
	if email == "" {
		return Identity{}, errors.New("no usable email")
	}
	if err := checkText("email", email); err != nil {
		return Identity{}, err
	}
	email = norm.NFC.String(email)
	if !ValidEmail(email) {
		return Identity{}, errors.New("invalid email")
	}
	name, _ := attrs["name"].(map[string]any)
	given, family := str(name, "givenName"), str(name, "familyName")
	if given == "" || family == "" {
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
	}
	if err := checkText("name.givenName", given); err != nil {
		return Identity{}, err
	}
	if err := checkText("name.familyName", family); err != nil {
		return Identity{}, err
	}
	return Identity{Email: email, GivenName: given, FamilyName: family}, nil
}

// ValidEmail's shortcut for plain ASCII addresses answers what net/mail's parser
// answered for every address (validEmailByParser, the code before the shortcut), on
// random strings made of the characters that matter to the RFC 5322 grammar.
func TestValidEmailShortcutAgreesWithParser(t *testing.T) {
	const alphabet = "ab9.@-_+!#~\"\\,;:()[]<> \t\x7fé\u200b"
	runes := []rune(alphabet)
	rng := rand.New(rand.NewPCG(19, 7))
	shortcut := 0
	for range 200_000 {
		var b strings.Builder
		for range 1 + rng.IntN(10) {
			b.WriteRune(runes[rng.IntN(len(runes))])
		}
		// Most addresses have a dotted domain: give a third of them one.
		if rng.IntN(3) == 0 {
			b.WriteString("@x.io")
		}
		s := b.String()
		if got, want := ValidEmail(s), validEmailByParser(s); got != want {
			t.Fatalf("ValidEmail(%q) = %v, net/mail's parser says %v", s, got, want)
		}
		if at := strings.LastIndexByte(s, '@'); at > 0 && asciiDotAtom(s[:at]) && asciiDotAtom(s[at+1:]) {
			shortcut++
		}
	}
	if shortcut < 1000 {
		t.Fatalf("only %d strings took the shortcut: the test says little", shortcut)
	}
}

// validEmailByParser is ValidEmail as it was before its ASCII shortcut.
func validEmailByParser(s string) bool {
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
