package pantherfake

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
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
	// plans memoises collect for the objects of a list: they share their fields and, per
	// concrete type, their field groups.
	plans map[planKey]*plan
}

type planKey struct {
	typeName string
	first    *ast.Field
	n        int
}

// plan is what complete needs to project the selection onto an object of one type.
type plan struct {
	groups []*fieldGroup
	defs   []*ast.FieldDefinition // per group; nil for __typename
}

// run executes op and returns the "data" value. Every root field of Panther's schema is
// non-null, so a failing root field makes the whole data null, as the spec's null propagation
// requires.
func (e *executor) run(op *ast.OperationDefinition) any {
	root := e.schema.Query
	if op.Operation == ast.Mutation {
		root = e.schema.Mutation
	}
	out := orderedObject{}
	failed := false
	for _, g := range e.collect(root.Name, op.SelectionSet) {
		f := g.fields[0]
		if f.Name == "__typename" {
			out = append(out, kv{g.key, root.Name})
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
		out = append(out, kv{g.key, e.complete(v, f.Definition.Type, g.fields)})
	}
	if failed {
		return nil
	}
	return out
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

// complete shapes a resolved value by its GraphQL type and the fields that selected it.
func (e *executor) complete(v any, typ *ast.Type, fields []*ast.Field) any {
	if v == nil {
		return nil
	}
	if typ.Elem != nil {
		list, _ := v.([]any)
		out := make([]any, len(list))
		for i, item := range list {
			out[i] = e.complete(item, typ.Elem, fields)
		}
		return out
	}
	def := e.schema.Types[typ.NamedType]
	switch def.Kind {
	case ast.Object, ast.Union, ast.Interface:
		obj := v.(object)
		concrete := obj.typeName()
		p := e.plan(concrete, fields)
		out := make(orderedObject, len(p.groups))
		for i, g := range p.groups {
			f := g.fields[0]
			if p.defs[i] == nil {
				out[i] = kv{g.key, concrete}
				continue
			}
			var args map[string]any
			if len(f.Arguments) > 0 {
				args = f.ArgumentMap(e.vars)
			}
			out[i] = kv{g.key, e.complete(obj.field(f.Name, args), p.defs[i].Type, g.fields)}
		}
		return out
	default: // scalars and enums are resolved to their JSON value already
		return v
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
	for i, g := range p.groups {
		if g.fields[0].Name != "__typename" {
			p.defs[i] = fieldDefs.ForName(g.fields[0].Name)
		}
	}
	if e.plans == nil {
		e.plans = map[planKey]*plan{}
	}
	e.plans[key] = p
	return p
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

// orderedObject is a JSON object that keeps the order of the query's selection, as GraphQL
// responses do.
type orderedObject []kv

type kv struct {
	key string
	val any
}

// MarshalJSON writes the members in order.
func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := writeJSONValue(w, o); err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeJSONValue writes an executor result in one pass (encoding/json would re-validate the
// output of every nested MarshalJSON, which for a 100k-user list costs seconds). Errors of the
// underlying writer surface from its Flush.
func writeJSONValue(b *bufio.Writer, v any) error {
	switch v := v.(type) {
	case orderedObject:
		b.WriteByte('{')
		for i, m := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, m.key)
			b.WriteByte(':')
			if err := writeJSONValue(b, m.val); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSONValue(b, x); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case string:
		writeJSONString(b, v)
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case nil:
		b.WriteString("null")
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(raw)
	}
	return nil
}

// writeJSONString writes s as a JSON string, escaping what RFC 8259 requires and, like
// encoding/json, <, > and & and the JavaScript line separators.
func writeJSONString(b *bufio.Writer, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n':
				b.WriteString(`\n`)
			case '\t':
				b.WriteString(`\t`)
			case '\r':
				b.WriteString(`\r`)
			default:
				fmt.Fprintf(b, `\u%04x`, c)
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(s[start:i])
			b.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b.WriteString(s[start:i])
			fmt.Fprintf(b, `\u%04x`, r)
			i += size
			start = i
			continue
		}
		i += size
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}
