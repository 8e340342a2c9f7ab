package pantherfake

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"
)

// object is a value of a GraphQL object type that the executor can project a selection onto.
type object interface {
	// typeName is the GraphQL object type (for fragments on the Actor union and __typename).
	typeName() string
	// field resolves one field. Lists are []any, absent values nil; objects are objects.
	field(name string, args map[string]any) any
}

// mapObject is an object whose fields are known up front (mutation outputs).
type mapObject struct {
	typ    string
	fields map[string]any
}

func (m mapObject) typeName() string                        { return m.typ }
func (m mapObject) field(name string, _ map[string]any) any { return m.fields[name] }

// gqlError is one entry of a response's "errors".
type gqlError struct {
	Message    string         `json:"message"`
	Locations  []location     `json:"locations,omitempty"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

type location struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// fieldError is what a resolver returns to fail its field: a message and an extensions code.
type fieldError struct {
	code string
	msg  string
}

func (e *fieldError) Error() string { return e.msg }

func errorf(code, format string, args ...any) *fieldError {
	return &fieldError{code: code, msg: fmt.Sprintf(format, args...)}
}

// Extension codes the fake sends, as Apollo-style servers do.
const (
	codeNotFound         = "NOT_FOUND"
	codeAlreadyExists    = "ALREADY_EXISTS"
	codeBadUserInput     = "BAD_USER_INPUT"
	codeUnauthenticated  = "UNAUTHENTICATED"
	codeForbidden        = "FORBIDDEN"
	codeValidationFailed = "GRAPHQL_VALIDATION_FAILED"
	codeParseFailed      = "GRAPHQL_PARSE_FAILED"
	codeInternal         = "INTERNAL_SERVER_ERROR"
)

// rootResolver resolves one root field of Query or Mutation.
type rootResolver func(args map[string]any) (any, error)

// executor runs one validated operation against the resolvers, projecting every result onto
// the operation's selection set (aliases, fragments and inline fragments, @skip/@include,
// __typename) in the order the query asks for.
type executor struct {
	schema *ast.Schema
	doc    *ast.QueryDocument
	vars   map[string]any
	roots  map[string]rootResolver
	// authorize, when set, may refuse a root field before it resolves (the token's permissions).
	authorize func(field string) error
	errs      []gqlError
	// out receives the answer's "data" as it is executed.
	out *jsonOut
	// plans memoises collect for the objects of a list: they share their fields and, per
	// concrete type, their field groups.
	plans map[planKey]*plan
}

type planKey struct {
	typeName string
	first    *ast.Field
	n        int
}

// plan is what write needs to project the selection onto an object of one type.
type plan struct {
	groups []*fieldGroup
	defs   []*ast.FieldDefinition // per group; nil for __typename
	keys   [][]byte               // per group: the member's key as JSON, and the colon
	shapes []leafShape            // per group: whether a leafAppender may write the field
}

// leafShape is the shape of a field's type as a leafAppender sees it.
type leafShape uint8

const (
	notLeaf  leafShape = iota // an object, a list of lists, or __typename
	leafOne                   // a scalar or an enum
	leafList                  // a list of scalars or enums
)

// run executes op and writes its "data" value to e.out. Every root field of Panther's schema
// is non-null, so a failing root field makes the whole data null, as the spec's null
// propagation requires: run then reports false and what it wrote is to be thrown away (the
// remaining root fields still run, as they did when the answer was built as a tree).
func (e *executor) run(op *ast.OperationDefinition) bool {
	root := e.schema.Query
	if op.Operation == ast.Mutation {
		root = e.schema.Mutation
	}
	w := e.out
	w.b = append(w.b, '{')
	written, failed := 0, false
	member := func(key string) {
		if written > 0 {
			w.b = append(w.b, ',')
		}
		written++
		w.b = appendJSONString(w.b, key)
		w.b = append(w.b, ':')
	}
	for _, g := range e.collect(root.Name, op.SelectionSet) {
		f := g.fields[0]
		if f.Name == "__typename" {
			member(g.key)
			w.b = appendJSONString(w.b, root.Name)
			continue
		}
		if e.authorize != nil {
			if err := e.authorize(f.Name); err != nil {
				e.fail(f, []any{g.key}, err)
				failed = true
				continue
			}
		}
		resolve, ok := e.roots[f.Name]
		if !ok {
			e.fail(f, []any{g.key}, errorf(codeBadUserInput, "pantherfake does not implement %s", f.Name))
			failed = true
			continue
		}
		v, err := resolve(f.ArgumentMap(e.vars))
		if err != nil {
			e.fail(f, []any{g.key}, err)
			failed = true
			continue
		}
		// A mutation root field may have changed what an earlier one's answer memoised.
		clear(w.perms)
		member(g.key)
		e.write(v, f.Definition.Type, g.fields)
		w.spill()
	}
	w.b = append(w.b, '}')
	return !failed
}

func (e *executor) fail(f *ast.Field, path []any, err error) {
	ge := gqlError{Message: err.Error(), Path: path}
	if f.Position != nil {
		ge.Locations = []location{{Line: f.Position.Line, Column: f.Position.Column}}
	}
	code := codeInternal
	if fe, ok := err.(*fieldError); ok {
		code = fe.code
	}
	ge.Extensions = map[string]any{"code": code}
	e.errs = append(e.errs, ge)
}

// write shapes a resolved value by its GraphQL type and the fields that selected it, and
// writes its JSON to e.out as it goes: no per-object member list or per-value box is built,
// which for a listing of 100k users was most of the double's CPU and allocation.
func (e *executor) write(v any, typ *ast.Type, fields []*ast.Field) {
	w := e.out
	if v == nil {
		w.b = append(w.b, "null"...)
		return
	}
	if typ.Elem != nil {
		list, _ := v.([]any) // anything else is written as an empty list, as it always was
		w.b = append(w.b, '[')
		for i, item := range list {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			e.write(item, typ.Elem, fields)
			w.spill()
		}
		w.b = append(w.b, ']')
		return
	}
	def := e.schema.Types[typ.NamedType]
	switch def.Kind {
	case ast.Object, ast.Union, ast.Interface:
		obj := v.(object)
		concrete := obj.typeName()
		p := e.plan(concrete, fields)
		leaves, _ := obj.(leafAppender)
		w.b = append(w.b, '{')
		for i, g := range p.groups {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = append(w.b, p.keys[i]...)
			f := g.fields[0]
			if p.defs[i] == nil {
				w.b = appendJSONString(w.b, concrete)
				continue
			}
			if leaves != nil && p.shapes[i] != notLeaf && leaves.appendLeaf(w, f.Name, p.shapes[i] == leafList) {
				continue
			}
			var args map[string]any
			if len(f.Arguments) > 0 {
				args = f.ArgumentMap(e.vars)
			}
			e.write(obj.field(f.Name, args), p.defs[i].Type, g.fields)
		}
		w.b = append(w.b, '}')
	default: // scalars and enums are resolved to their JSON value already
		w.value(v)
	}
}

func (e *executor) plan(concrete string, fields []*ast.Field) *plan {
	key := planKey{concrete, fields[0], len(fields)}
	if p := e.plans[key]; p != nil {
		return p
	}
	var sub ast.SelectionSet
	for _, f := range fields {
		sub = append(sub, f.SelectionSet...)
	}
	p := &plan{groups: e.collect(concrete, sub)}
	fieldDefs := e.schema.Types[concrete].Fields
	p.defs = make([]*ast.FieldDefinition, len(p.groups))
	p.keys = make([][]byte, len(p.groups))
	p.shapes = make([]leafShape, len(p.groups))
	for i, g := range p.groups {
		p.keys[i] = append(appendJSONString(nil, g.key), ':')
		if g.fields[0].Name != "__typename" {
			p.defs[i] = fieldDefs.ForName(g.fields[0].Name)
			p.shapes[i] = e.shape(p.defs[i].Type)
		}
	}
	if e.plans == nil {
		e.plans = map[planKey]*plan{}
	}
	e.plans[key] = p
	return p
}

// shape tells whether a field of type t is a scalar (or enum), a list of them, or neither.
func (e *executor) shape(t *ast.Type) leafShape {
	one := leafOne
	if t.Elem != nil {
		if t.Elem.Elem != nil {
			return notLeaf
		}
		t, one = t.Elem, leafList
	}
	if def := e.schema.Types[t.NamedType]; def != nil && (def.Kind == ast.Scalar || def.Kind == ast.Enum) {
		return one
	}
	return notLeaf
}

// fieldGroup is the fields that share one response key (the spec's CollectFields result).
type fieldGroup struct {
	key    string
	fields []*ast.Field
}

// collect gathers the fields a selection set asks of an object of type typeName, following
// fragment spreads and inline fragments whose type condition applies.
func (e *executor) collect(typeName string, set ast.SelectionSet) []*fieldGroup {
	var groups []*fieldGroup
	index := map[string]*fieldGroup{}
	visited := map[string]bool{}
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if !e.included(s.Directives) {
					continue
				}
				key := s.Alias
				if key == "" {
					key = s.Name
				}
				if g := index[key]; g != nil {
					g.fields = append(g.fields, s)
					continue
				}
				g := &fieldGroup{key: key, fields: []*ast.Field{s}}
				index[key] = g
				groups = append(groups, g)
			case *ast.InlineFragment:
				if e.included(s.Directives) && e.applies(typeName, s.TypeCondition) {
					walk(s.SelectionSet)
				}
			case *ast.FragmentSpread:
				if visited[s.Name] || !e.included(s.Directives) {
					continue
				}
				visited[s.Name] = true
				def := s.Definition
				if def == nil {
					def = e.doc.Fragments.ForName(s.Name)
				}
				if def != nil && e.applies(typeName, def.TypeCondition) {
					walk(def.SelectionSet)
				}
			}
		}
	}
	walk(set)
	return groups
}

// applies reports whether a fragment with type condition cond applies to an object of type
// typeName: the same type, or a union or interface that includes it.
func (e *executor) applies(typeName, cond string) bool {
	if cond == "" || cond == typeName {
		return true
	}
	def := e.schema.Types[cond]
	if def == nil {
		return false
	}
	for _, t := range e.schema.GetPossibleTypes(def) {
		if t.Name == typeName {
			return true
		}
	}
	return false
}

// included evaluates @skip and @include.
func (e *executor) included(dirs ast.DirectiveList) bool {
	if d := dirs.ForName("skip"); d != nil {
		if b, _ := d.ArgumentMap(e.vars)["if"].(bool); b {
			return false
		}
	}
	if d := dirs.ForName("include"); d != nil {
		if b, _ := d.ArgumentMap(e.vars)["if"].(bool); !b {
			return false
		}
	}
	return true
}

// leafAppender is implemented by the objects a users listing is made of: it appends the
// JSON of a scalar field (list false) or of a list of scalars (list true) to w without
// boxing the value, exactly the bytes that writing field's value would give, and reports
// false when it leaves the field to field (a field it does not know, or a schema that gives
// the field another shape).
type leafAppender interface {
	appendLeaf(w *jsonOut, name string, list bool) bool
}

// chunkSize is the size of the pieces an answer is written in. A piece is full at
// spillAt: the room left takes the value being written (a user of a listing is well under
// a kilobyte) without append growing the piece by copying it.
const (
	chunkSize = 64 << 10
	spillAt   = chunkSize - 8<<10
)

// chunks recycles the pieces of answers: a listing of 100k users is tens of megabytes,
// which would otherwise be allocated anew by every listing.
var chunks = sync.Pool{New: func() any { return new([chunkSize]byte) }}

// jsonOut is an answer's JSON as the executor writes it, under the state lock, in pieces of
// chunkSize taken from a pool (not one buffer grown by copying): written out after the lock
// is released, then given back (release).
type jsonOut struct {
	b    []byte   // the piece being written
	full [][]byte // the pieces before it
	err  error    // the first value that could not be encoded
	// perms memoises the JSON of role permission lists within one root field's answer,
	// where every user of a role repeats them.
	perms map[*role][]byte
}

func newJSONOut() *jsonOut {
	return &jsonOut{b: chunks.Get().(*[chunkSize]byte)[:0]}
}

// spill starts a new piece once the current one is full. It is called between values; a
// value longer than the room left grows its piece by copying (and that piece is not pooled).
func (w *jsonOut) spill() {
	if len(w.b) >= spillAt {
		w.full = append(w.full, w.b)
		w.b = chunks.Get().(*[chunkSize]byte)[:0]
	}
}

// writeTo writes the JSON to dst.
func (w *jsonOut) writeTo(dst io.Writer) error {
	for _, b := range w.full {
		if _, err := dst.Write(b); err != nil {
			return err
		}
	}
	_, err := dst.Write(w.b)
	return err
}

// release gives the pieces back to the pool; w is not to be used after.
func (w *jsonOut) release() {
	for _, b := range append(w.full, w.b) {
		if cap(b) == chunkSize {
			chunks.Put((*[chunkSize]byte)(b[:chunkSize]))
		}
	}
	w.full, w.b, w.perms = nil, nil, nil
}

// value writes a resolved leaf value: a string, a bool, null, a list of them, or anything
// else encoding/json can encode.
func (w *jsonOut) value(v any) {
	switch v := v.(type) {
	case []any:
		w.b = append(w.b, '[')
		for i, x := range v {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.value(x)
		}
		w.b = append(w.b, ']')
	case string:
		w.b = appendJSONString(w.b, v)
	case bool:
		w.b = strconv.AppendBool(w.b, v)
	case nil:
		w.b = append(w.b, "null"...)
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			if w.err == nil {
				w.err = err
			}
			return
		}
		w.b = append(w.b, raw...)
	}
}

// appendStrings appends a list of strings.
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendTime appends t as timeString does, quoted. RFC 3339 text is digits and
// "-:.+TZ": nothing in it needs escaping.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONString appends s as a JSON string, escaping what RFC 8259 requires and, like
// encoding/json, <, > and & and the JavaScript line separators; invalid UTF-8 becomes
// U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			case '\t':
				b = append(b, `\t`...)
			case '\r':
				b = append(b, `\r`...)
			default:
				b = appendUnicodeEscape(b, rune(c))
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = appendUnicodeEscape(b, r)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendUnicodeEscape appends \u and r as four lower-case hex digits (r < 0x10000).
func appendUnicodeEscape(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}
