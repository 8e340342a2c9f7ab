package resource

import (
	"strings"
	"unicode/utf8"
)

// QuoteBareValues returns the filter (or PATCH path) s with every comparison value written without quotes put in
// double quotes, as RFC 7644 §3.4.2.2 wants strings to be: Microsoft's SCIM validator and reference collection send
// `name.familyName eq Employee`, `userName sw O` and `meta.created gt 2015-10-10T14:38:21.8617979-07:00`, alone or
// inside and/or/not and parentheses or value filters. A bare value that is true, false or null (in any case, as
// the parser reads them) or a JSON number stays as it is; any other is a string (which a dateTime attribute then
// reads as a date).
//
// It reads s once as tokens (quoted strings with their escapes, parentheses, brackets, words) and only rewrites a
// word where the grammar expects a comparison value. When s does not have the shape of a filter as far as it
// reads (an unclosed string, a word where an operator belongs, a value that holds a control character), it
// returns s unchanged, so that the parser's error, on the text the client sent, stands. Run it after CheckFilter:
// the result is at most twice as long plus two bytes per value.
func QuoteBareValues(s string) string {
	const (
		expectTerm = iota
		expectOperator
		expectValue
		expectLogical
	)
	var b strings.Builder
	state := expectTerm
	changed := false
	last := 0 // s[last:] is not yet copied to b
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '"':
			end := closingQuote(s, i)
			if end < 0 || state != expectValue {
				return s
			}
			i, state = end+1, expectLogical
			continue
		case c == '(' || c == '[':
			if state != expectTerm && !(c == '[' && state == expectOperator) {
				return s
			}
			i, state = i+1, expectTerm
			continue
		case c == ')' || c == ']':
			if state != expectLogical {
				return s
			}
			i++
			continue
		}
		start := i
		for i < len(s) && !strings.ContainsRune(" \t\n\r()[]\"", rune(s[i])) {
			i++
		}
		word := s[start:i]
		lower := strings.ToLower(word)
		switch state {
		case expectTerm:
			if lower != "not" {
				state = expectOperator
			}
		case expectOperator:
			switch {
			case lower == "pr":
				state = expectLogical
			case filterOperators[lower]:
				state = expectValue
			default:
				return s
			}
		case expectValue:
			state = expectLogical
			if lower == "true" || lower == "false" || lower == "null" || validNumberText(word) {
				continue
			}
			if !utf8.ValidString(word) || strings.IndexFunc(word, isControl) >= 0 || word[0] == '\'' {
				// A control character cannot be written in a string without an escape, and a
				// single quote starts what the client meant as a string in the wrong quotes.
				return s
			}
			b.WriteString(s[last:start])
			b.WriteByte('"')
			b.WriteString(strings.ReplaceAll(word, `\`, `\\`))
			b.WriteByte('"')
			last, changed = i, true
		case expectLogical:
			switch {
			case lower == "and" || lower == "or":
				state = expectTerm
			case strings.HasPrefix(word, "."):
				// A PATCH path's sub-attribute after a value filter: emails[type eq work].value.
			default:
				return s
			}
		}
	}
	if !changed {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// closingQuote returns the index of the quote that closes the string opening at s[open], or -1.
func closingQuote(s string, open int) int {
	for i := open + 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
