package resource

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"
)

// ParseFilter parses a SCIM filter (RFC 7644 §3.4.2.2) with filter-parser, after CheckFilter bounds it. Comparison
// values written without quotes are read as QuoteBareValues reads them. A filter that does not parse, or exceeds a
// bound, is a 400 invalidFilter scimerrors.ScimError whose detail says what is wrong and where.
func ParseFilter(s string) (filter.Expression, error) {
	if strings.TrimSpace(s) == "" {
		return nil, BadRequest(scimerrors.ScimTypeInvalidFilter, "the filter is empty")
	}
	if err := CheckFilter("the filter", s); err != nil {
		return nil, err
	}
	expr, err := parseFilterSafely(QuoteBareValues(normalizeFilterSpace(s)))
	if err == nil && expr != nil {
		return expr, nil
	}
	if d := diagnoseFilter(s); d != "" {
		return nil, BadRequest(scimerrors.ScimTypeInvalidFilter, "invalid filter %q: %s", s, d)
	}
	return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
		"invalid filter %q: it does not follow the RFC 7644 §3.4.2.2 grammar (parser: %v)", s, err)
}

// normalizeFilterSpace trims the filter and turns tabs and line breaks outside strings into spaces:
// filter-parser accepts only spaces between tokens and none around the filter.
func normalizeFilterSpace(s string) string {
	var b strings.Builder
	inString := false
	escaped := false
	for _, r := range strings.TrimSpace(s) {
		switch {
		case escaped:
			escaped = false
		case inString && r == '\\':
			escaped = true
		case r == '"':
			inString = !inString
		case !inString && (r == '\t' || r == '\n' || r == '\r'):
			r = ' '
		}
		b.WriteRune(r)
	}
	return b.String()
}

// parseFilterSafely runs filter-parser, turning a panic inside it into an error: a filter is client input, and
// no input may bring a request down.
func parseFilterSafely(s string) (expr filter.Expression, err error) {
	defer func() {
		if r := recover(); r != nil {
			expr, err = nil, fmt.Errorf("parser failure: %v", r)
		}
	}()
	return filter.ParseFilter([]byte(s))
}

// Matcher reports whether a resource matches a compiled filter.
type Matcher func(res map[string]any) bool

// Match reports whether res matches the filter expr. The filter is checked against the schema first: an unknown
// attribute, an operator the attribute's type does not support (gt on a boolean, co on a number, gt on a complex
// attribute, any comparison on a complex attribute without a "value" sub-attribute) or a comparison value of the wrong type (a dateTime
// that is not a date) is a 400 invalidFilter scimerrors.ScimError, whatever res holds.
//
// The semantics follow RFC 7644 §3.4.2.2: names in any case, with or without their schema URN; strings compared
// case-insensitively unless the attribute is caseExact; numbers numerically; dateTimes as instants; a comparison
// on a multi-valued attribute (or a sub-attribute of one, "emails.value") matches when any value matches, and a
// complex multi-valued attribute compared directly ("emails co \"@x\"") compares its "value" sub-attribute;
// value paths ("emails[type eq \"work\" and value co \"@x\"]") match when one element satisfies the whole inner
// filter; pr is false for null, "", [] and objects without values. "ne" is the negation of "eq", so it also
// matches a resource without the attribute; "eq null" matches a resource without it.
func (rs Schema) Match(expr filter.Expression, res map[string]any) (bool, error) {
	m, err := rs.CompileFilter(expr)
	if err != nil {
		return false, err
	}
	return m(res), nil
}

// CompileFilter checks expr against the schema as Match does and returns a Matcher to test many resources with
// one check.
func (rs Schema) CompileFilter(expr filter.Expression) (Matcher, error) {
	p, err := filterScope{rs: rs}.compile(expr)
	if err != nil {
		return nil, err
	}
	return Matcher(p), nil
}

// filterScope is where the attribute names of an expression are looked up: the resource type, or inside a value
// path the sub-attributes of one multi-valued attribute (elem).
type filterScope struct {
	rs   Schema
	elem *schema.CoreAttribute
}

// predicate tests a JSON object: the resource, or one element of a multi-valued attribute.
type predicate func(obj map[string]any) bool

func (sc filterScope) compile(expr filter.Expression) (predicate, error) {
	switch e := expr.(type) {
	case *filter.AttributeExpression:
		if e == nil {
			break
		}
		return sc.compileAttrExpr(*e)
	case *filter.LogicalExpression:
		if e == nil {
			break
		}
		left, err := sc.compile(e.Left)
		if err != nil {
			return nil, err
		}
		right, err := sc.compile(e.Right)
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(string(e.Operator)) {
		case string(filter.AND):
			return func(obj map[string]any) bool { return left(obj) && right(obj) }, nil
		case string(filter.OR):
			return func(obj map[string]any) bool { return left(obj) || right(obj) }, nil
		}
		return nil, BadRequest(scimerrors.ScimTypeInvalidFilter, "unknown logical operator %q", e.Operator)
	case *filter.NotExpression:
		if e == nil {
			break
		}
		inner, err := sc.compile(e.Expression)
		if err != nil {
			return nil, err
		}
		return func(obj map[string]any) bool { return !inner(obj) }, nil
	case *filter.ValuePath:
		if e == nil {
			break
		}
		return sc.compileValuePath(*e)
	}
	return nil, BadRequest(scimerrors.ScimTypeInvalidFilter, "the filter is empty or malformed")
}

// filterField locates the values an attribute expression compares in a JSON object.
type filterField struct {
	ext  string                // extension URN holding the attribute, "" at the top of the object
	attr schema.CoreAttribute  // the attribute as stored in the object
	sub  *schema.CoreAttribute // its sub-attribute, when the path names one
	name string                // the path as written, for messages
}

// target is the attribute whose values are compared.
func (f filterField) target() schema.CoreAttribute {
	if f.sub != nil {
		return *f.sub
	}
	return f.attr
}

// values returns the non-null values of the field in obj, one per element for multi-valued attributes.
func (f filterField) values(obj map[string]any) []any {
	holder := obj
	if f.ext != "" {
		_, v, ok := lookupKey(obj, f.ext)
		if !ok {
			return nil
		}
		if holder, ok = jsonObject(v); !ok {
			return nil
		}
	}
	_, v, ok := lookupKey(holder, f.attr.Name())
	if !ok || v == nil {
		return nil
	}
	elems, isList := jsonList(v)
	if !isList {
		elems = []any{v}
	}
	var out []any
	for _, e := range elems {
		if f.sub == nil {
			if e != nil {
				out = append(out, e)
			}
			continue
		}
		m, ok := jsonObject(e)
		if !ok {
			continue
		}
		_, sv, ok := lookupKey(m, f.sub.Name())
		if !ok || sv == nil {
			continue
		}
		if l, ok := jsonList(sv); ok {
			out = append(out, l...)
		} else {
			out = append(out, sv)
		}
	}
	return out
}

// resolve finds the field an attribute path names in this scope.
func (sc filterScope) resolve(p filter.AttributePath) (filterField, *AttrRef, error) {
	name := p.String()
	if sc.elem == nil {
		ref, err := sc.rs.ResolveAttrPath(p)
		if err != nil {
			return filterField{}, nil, BadRequest(scimerrors.ScimTypeInvalidFilter, "%v", err)
		}
		if ref.IsContainer() {
			return filterField{}, &ref, nil
		}
		f := filterField{attr: ref.Attr, sub: ref.Sub, name: name}
		if ref.Extension {
			f.ext = ref.SchemaID
		}
		return f, nil, nil
	}
	if p.URI() != "" || p.SubAttributeName() != "" {
		return filterField{}, nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
			"inside the value filter of %q, %q must be a plain sub-attribute name such as \"value\" or \"type\"",
			sc.elem.Name(), name)
	}
	sub, ok := elementAttributes(*sc.elem).ContainsAttribute(p.AttributeName)
	if !ok {
		return filterField{}, nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
			"attribute %q has no sub-attribute %q", sc.elem.Name(), p.AttributeName)
	}
	return filterField{attr: sub, name: name}, nil, nil
}

// elementAttributes are the names a value filter on attr can use: the sub-attributes of a complex attribute, or
// "value" for the elements of a simple multi-valued one.
func elementAttributes(attr schema.CoreAttribute) schema.Attributes {
	return scimfilter.MultiValuedFilterAttributes(attr)
}

// elementObject presents one element of attr as the object a value filter tests.
func elementObject(attr schema.CoreAttribute, e any) (map[string]any, bool) {
	if attr.AttributeType() == typeComplex {
		return jsonObject(e)
	}
	return map[string]any{"value": e}, true
}

func (sc filterScope) compileValuePath(vp filter.ValuePath) (predicate, error) {
	if sc.elem != nil {
		return nil, BadRequest(scimerrors.ScimTypeInvalidFilter, "value filters cannot be nested (%v)", vp)
	}
	f, container, err := sc.resolve(vp.AttributePath)
	if err != nil {
		return nil, err
	}
	if container != nil || f.sub != nil {
		return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
			"a value filter %q must follow a multi-valued or complex attribute, not %q", vp.String(), vp.AttributePath.String())
	}
	attr := f.attr
	if !attr.MultiValued() && attr.AttributeType() != typeComplex {
		return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
			"attribute %q is single-valued and simple, so it cannot take a value filter [...]", attr.Name())
	}
	inner, err := filterScope{rs: sc.rs, elem: &attr}.compile(vp.ValueFilter)
	if err != nil {
		return nil, err
	}
	return func(obj map[string]any) bool {
		for _, e := range f.values(obj) {
			if m, ok := elementObject(attr, e); ok && inner(m) {
				return true
			}
		}
		return false
	}, nil
}

func (sc filterScope) compileAttrExpr(e filter.AttributeExpression) (predicate, error) {
	op := filter.CompareOperator(strings.ToLower(string(e.Operator)))
	f, container, err := sc.resolve(e.AttributePath)
	if err != nil {
		return nil, err
	}
	if container != nil {
		// A schema URN alone: only presence of the extension's data can be asked.
		if op != filter.PR {
			return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
				"%q names a schema, which only supports \"pr\"", container.SchemaID)
		}
		ref := *container
		return func(obj map[string]any) bool {
			if !ref.Extension {
				return true
			}
			_, v, ok := lookupKey(obj, ref.SchemaID)
			return ok && !jsonEmpty(v)
		}, nil
	}

	if op == filter.PR {
		return func(obj map[string]any) bool {
			for _, v := range f.values(obj) {
				if !jsonEmpty(v) {
					return true
				}
			}
			return false
		}, nil
	}

	if f.target().AttributeType() == typeComplex {
		// RFC 7644's own example "emails co \"example.com\"" compares the "value" sub-attribute; ordering a
		// complex attribute is not defined.
		v, ok := f.target().SubAttributes().ContainsAttribute("value")
		switch op {
		case filter.GT, filter.GE, filter.LT, filter.LE:
			ok = false
		}
		if !ok || f.sub != nil {
			return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
				"attribute %q is complex; compare one of its sub-attributes (for example %s.%s) or use \"pr\"",
				f.name, f.name, firstSubAttributeName(f.target()))
		}
		f.sub = &v
	}

	if e.CompareValue == nil {
		switch op {
		case filter.EQ, filter.NE:
			present := func(obj map[string]any) bool {
				for _, v := range f.values(obj) {
					if !jsonEmpty(v) {
						return true
					}
				}
				return false
			}
			if op == filter.EQ {
				return func(obj map[string]any) bool { return !present(obj) }, nil
			}
			return present, nil
		}
		return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
			"operator %q cannot compare %q with null; only eq and ne can", op, f.name)
	}

	test, err := valueTest(f.target(), f.name, op, e.CompareValue)
	if err != nil {
		return nil, err
	}
	if op == filter.NE {
		// "ne" is the negation of "eq": a multi-valued attribute is "ne x" when none of its values equals x.
		return func(obj map[string]any) bool {
			for _, v := range f.values(obj) {
				if test(v) {
					return false
				}
			}
			return true
		}, nil
	}
	return func(obj map[string]any) bool {
		for _, v := range f.values(obj) {
			if test(v) {
				return true
			}
		}
		return false
	}, nil
}

func firstSubAttributeName(attr schema.CoreAttribute) string {
	if subs := attr.SubAttributes(); len(subs) > 0 {
		return subs[0].Name()
	}
	return "value"
}

// valueTest builds the test of one stored value against the comparison value cv. For "ne" it returns the "eq"
// test, which the caller negates.
func valueTest(attr schema.CoreAttribute, name string, op filter.CompareOperator, cv any) (func(any) bool, error) {
	typ := attr.AttributeType()
	switch op {
	case filter.EQ, filter.NE, filter.CO, filter.SW, filter.EW, filter.GT, filter.GE, filter.LT, filter.LE:
	default:
		return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
			"unknown operator %q; use one of eq, ne, co, sw, ew, pr, gt, ge, lt, le", op)
	}
	ordering := op == filter.GT || op == filter.GE || op == filter.LT || op == filter.LE
	substring := op == filter.CO || op == filter.SW || op == filter.EW

	switch typ {
	case typeBoolean:
		if ordering || substring {
			return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
				"operator %q is not supported on boolean attribute %q; use eq or ne", op, name)
		}
		want, ok := parseBoolValue(cv)
		if !ok {
			return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
				"attribute %q is boolean; compare it with true or false, not %s", name, describeValue(cv))
		}
		return func(v any) bool {
			b, ok := parseBoolValue(v)
			return ok && b == want
		}, nil

	case typeInteger, typeDecimal:
		if substring {
			return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
				"operator %q is not supported on numeric attribute %q; use eq, ne, gt, ge, lt or le", op, name)
		}
		if _, isString := cv.(string); isString {
			return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
				"attribute %q is a number; compare it with a number, not %s", name, describeValue(cv))
		}
		want, ok := toNumber(cv)
		if !ok {
			return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
				"attribute %q is a number; compare it with a number, not %s", name, describeValue(cv))
		}
		return func(v any) bool {
			n, ok := toNumber(v)
			return ok && orderMatches(op, n.cmp(want))
		}, nil

	case typeDateTime:
		s, ok := cv.(string)
		if !ok {
			return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
				"attribute %q is a dateTime; compare it with a quoted date such as \"2024-01-31T00:00:00Z\", not %s",
				name, describeValue(cv))
		}
		s = unescapeFilterString(s)
		if substring {
			return stringTest(op, s, false), nil
		}
		want, ok := parseDateTime(s)
		if !ok {
			return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
				"attribute %q is a dateTime and %q is not a date; use RFC 3339, e.g. \"2024-01-31T00:00:00Z\"", name, s)
		}
		return func(v any) bool {
			sv, ok := v.(string)
			if !ok {
				return false
			}
			t, ok := parseDateTime(sv)
			return ok && orderMatches(op, t.Compare(want))
		}, nil

	case typeString, typeReference, typeBinary:
		s, ok := cv.(string)
		if n, isNumber := toNumber(cv); !ok && isNumber && n.isInt {
			// A whole number written bare for a string (employeeNumber eq 701984, as a
			// person or a test suite writes it): its digits are the string meant.
			s, ok = strconv.FormatInt(n.i, 10), true
		}
		if !ok {
			return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
				"attribute %q is a string; compare it with a quoted string, not %s", name, describeValue(cv))
		}
		if ordering && typ == typeBinary {
			return nil, BadRequest(scimerrors.ScimTypeInvalidFilter,
				"operator %q is not supported on binary attribute %q", op, name)
		}
		return stringTest(op, unescapeFilterString(s), attr.CaseExact()), nil
	}
	return nil, BadRequest(scimerrors.ScimTypeInvalidFilter, "attribute %q cannot be compared", name)
}

// stringTest compares stored strings with want, folding case unless caseExact.
func stringTest(op filter.CompareOperator, want string, caseExact bool) func(any) bool {
	norm := func(s string) string { return s }
	if !caseExact {
		norm = strings.ToLower
	}
	w := norm(want)
	return func(v any) bool {
		s, ok := v.(string)
		if !ok {
			return false
		}
		s = norm(s)
		switch op {
		case filter.EQ, filter.NE:
			return s == w
		case filter.CO:
			return strings.Contains(s, w)
		case filter.SW:
			return strings.HasPrefix(s, w)
		case filter.EW:
			return strings.HasSuffix(s, w)
		}
		return orderMatches(op, strings.Compare(s, w))
	}
}

// orderMatches tells whether a comparison result c (stored value against the comparison value) satisfies op.
func orderMatches(op filter.CompareOperator, c int) bool {
	switch op {
	case filter.EQ, filter.NE:
		return c == 0
	case filter.GT:
		return c > 0
	case filter.GE:
		return c >= 0
	case filter.LT:
		return c < 0
	case filter.LE:
		return c <= 0
	}
	return false
}

// unescapeFilterString decodes the JSON escapes of a filter string: filter-parser hands over the raw text
// between the quotes.
func unescapeFilterString(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out string
	if err := json.Unmarshal([]byte(`"`+s+`"`), &out); err != nil {
		return s
	}
	return out
}

// describeValue renders a comparison value for an error message.
func describeValue(v any) string {
	switch t := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", t)
	case bool:
		return fmt.Sprintf("the boolean %t", t)
	case nil:
		return "null"
	}
	if _, ok := toNumber(v); ok {
		return fmt.Sprintf("the number %v", v)
	}
	return fmt.Sprintf("%v", v)
}

// filterOperators are the comparison operators of RFC 7644 §3.4.2.2.
var filterOperators = map[string]bool{
	"eq": true, "ne": true, "co": true, "sw": true, "ew": true, "pr": true,
	"gt": true, "ge": true, "lt": true, "le": true,
}

// filterToken is one lexical unit of a filter, for diagnosis.
type filterToken struct {
	kind byte // '(' ')' '[' ']' 's' (string) 'w' (word)
	text string
	pos  int // 1-based rune position
}

// diagnoseFilter explains why a filter does not parse, for the error detail. It returns "" when it cannot tell.
func diagnoseFilter(s string) string {
	toks, msg := tokenizeFilter(s)
	if msg != "" {
		return msg
	}
	if len(toks) == 0 {
		return "the filter is empty"
	}

	const (
		expectTerm = iota
		expectNotParen
		expectOperator
		expectValue
		expectLogical
	)
	state := expectTerm
	var stack []filterToken
	var attr, operator filterToken
	inBracketTerms := 0
	for _, t := range toks {
		lower := strings.ToLower(t.text)
		switch state {
		case expectTerm:
			switch {
			case t.kind == '(':
				stack = append(stack, t)
			case t.kind == 'w' && lower == "not":
				state = expectNotParen
			case t.kind == 'w' && (lower == "and" || lower == "or"):
				return fmt.Sprintf("%q at position %d needs a comparison before it", t.text, t.pos)
			case t.kind == 'w' && validAttrPathText(t.text):
				attr = t
				state = expectOperator
			case t.kind == 'w':
				return fmt.Sprintf("%q at position %d is not an attribute name", t.text, t.pos)
			default:
				return fmt.Sprintf("expected an attribute name at position %d, found %q", t.pos, t.text)
			}
		case expectNotParen:
			if t.kind != '(' {
				return fmt.Sprintf("\"not\" must be followed by a parenthesised filter, e.g. not (title pr); found %q at position %d", t.text, t.pos)
			}
			stack = append(stack, t)
			state = expectTerm
		case expectOperator:
			switch {
			case t.kind == '[':
				for _, o := range stack {
					if o.kind == '[' {
						return fmt.Sprintf("value filters cannot be nested (position %d)", t.pos)
					}
				}
				stack = append(stack, t)
				inBracketTerms = 0
				state = expectTerm
			case t.kind == 'w' && filterOperators[lower]:
				operator = t
				if lower == "pr" {
					state = expectLogical
				} else {
					state = expectValue
				}
			case t.kind == 'w':
				return fmt.Sprintf("unknown operator %q at position %d; use one of eq, ne, co, sw, ew, pr, gt, ge, lt, le", t.text, t.pos)
			default:
				return fmt.Sprintf("attribute %q must be followed by an operator (eq, ne, co, sw, ew, pr, gt, ge, lt, le), found %q at position %d", attr.text, t.text, t.pos)
			}
		case expectValue:
			switch {
			case t.kind == 's':
				state = expectLogical
			case t.kind == 'w' && strings.IndexFunc(t.text, isControl) >= 0:
				return fmt.Sprintf("the value %q at position %d holds a control character: put it in double quotes, escaped", t.text, t.pos)
			case t.kind == 'w':
				// A bare value: true, false, null, a number, or else a string (QuoteBareValues).
				state = expectLogical
			default:
				return fmt.Sprintf("operator %q at position %d needs a value, found %q", operator.text, operator.pos, t.text)
			}
		case expectLogical:
			switch {
			case t.kind == 'w' && (lower == "and" || lower == "or"):
				if len(stack) > 0 && stack[len(stack)-1].kind == '[' {
					inBracketTerms++
					if inBracketTerms > 1 {
						return fmt.Sprintf("a value filter [...] may combine at most two comparisons; %q at position %d is a third (split it into several value filters joined by and/or)", t.text, t.pos)
					}
				}
				state = expectTerm
			case t.kind == ')' || t.kind == ']':
				want := byte('(')
				if t.kind == ']' {
					want = '['
				}
				if len(stack) == 0 || stack[len(stack)-1].kind != want {
					return fmt.Sprintf("%q at position %d has no matching %q", t.text, t.pos, string(want))
				}
				stack = stack[:len(stack)-1]
			case t.kind == 'w' && strings.HasPrefix(t.text, "."):
				return fmt.Sprintf("%q at position %d: in a filter a value filter cannot be followed by a sub-attribute; put the comparison inside the brackets", t.text, t.pos)
			default:
				return fmt.Sprintf("expected \"and\", \"or\", a closing bracket or the end of the filter at position %d, found %q", t.pos, t.text)
			}
		}
	}
	switch state {
	case expectTerm, expectNotParen:
		return "the filter ends where a comparison was expected"
	case expectOperator:
		return fmt.Sprintf("attribute %q at position %d must be followed by an operator (eq, ne, co, sw, ew, pr, gt, ge, lt, le)", attr.text, attr.pos)
	case expectValue:
		return fmt.Sprintf("operator %q at position %d needs a value", operator.text, operator.pos)
	}
	if len(stack) > 0 {
		o := stack[len(stack)-1]
		closing := ")"
		if o.kind == '[' {
			closing = "]"
		}
		return fmt.Sprintf("%q at position %d is never closed with %q", o.text, o.pos, closing)
	}
	return ""
}

// tokenizeFilter splits a filter into tokens, or explains a lexical error.
func tokenizeFilter(s string) ([]filterToken, string) {
	var toks []filterToken
	runes := []rune(s)
	for i := 0; i < len(runes); {
		r := runes[i]
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			i++
		case r == '(' || r == ')' || r == '[' || r == ']':
			toks = append(toks, filterToken{kind: byte(r), text: string(r), pos: i + 1})
			i++
		case r == '"':
			start := i
			i++
			closed := false
			for i < len(runes) {
				if runes[i] == '\\' {
					i += 2
					continue
				}
				if runes[i] == '"' {
					closed = true
					i++
					break
				}
				i++
			}
			if !closed {
				return nil, fmt.Sprintf("the string starting at position %d is not closed with a double quote", start+1)
			}
			toks = append(toks, filterToken{kind: 's', text: string(runes[start:min(i, len(runes))]), pos: start + 1})
		case r == '\'':
			return nil, fmt.Sprintf("strings must be in double quotes, not single quotes (position %d)", i+1)
		default:
			start := i
			for i < len(runes) && !strings.ContainsRune(" \t\n\r()[]\"", runes[i]) {
				i++
			}
			toks = append(toks, filterToken{kind: 'w', text: string(runes[start:i]), pos: start + 1})
		}
	}
	return toks, ""
}

// validAttrPathText tells whether w looks like an attribute path: an optional URN prefix, a name, and an optional
// sub-attribute name.
func validAttrPathText(w string) bool {
	if strings.HasPrefix(strings.ToLower(w), "urn:") {
		i := strings.LastIndex(w, ":")
		w = w[i+1:]
	}
	parts := strings.Split(w, ".")
	if len(parts) > 2 {
		return false
	}
	for _, p := range parts {
		if !validAttrNameText(p) {
			return false
		}
	}
	return true
}

func validAttrNameText(p string) bool {
	if p == "" {
		return false
	}
	for i, r := range p {
		alpha := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if i == 0 && !alpha && r != '$' {
			return false
		}
		if !alpha && !(r >= '0' && r <= '9') && r != '_' && r != '-' && r != '$' {
			return false
		}
	}
	return true
}

// jsonNumberText is the JSON number grammar (RFC 8259 §6), which filter values follow.
var jsonNumberText = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

func validNumberText(w string) bool {
	return jsonNumberText.MatchString(w)
}
