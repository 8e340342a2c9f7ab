package provision

import "testing"

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
