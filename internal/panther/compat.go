package panther

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// ErrIntrospectionRefused: Panther answered the introspection query with an error, or without
// a schema, rather than describing its schema (a server with introspection turned off).
var ErrIntrospectionRefused = errors.New("Panther refused the introspection query")

// Problem is one way in which Panther's schema does not fit the operations the client sends.
type Problem struct {
	// Operations are the operations of operations.graphql it breaks, in the file's order
	// (several when it lies in a fragment they share).
	Operations []string
	// Message says what is wrong, e.g. `unknown field "givenName" on input InviteUserInput`.
	Message string
}

// String is "inviteUser: unknown field ...", the operations comma-separated.
func (p Problem) String() string { return strings.Join(p.Operations, ", ") + ": " + p.Message }

// Compatibility is what CheckSchema found.
type Compatibility struct {
	// Operations is the number of operations checked (all of operations.graphql).
	Operations int
	// Problems is empty when every operation is valid against Panther's schema.
	Problems []Problem
}

// Schema asks Panther for its schema with IntrospectionQuery. Errors: ErrIntrospectionRefused
// (wrapping Panther's answer) when Panther answers with an error or no schema; the call's
// error when Panther is unreachable, rate-limits, or rejects the API key at the HTTP level.
func (c *Client) Schema(ctx context.Context) (*ast.Schema, error) {
	data, err := call(ctx, c, "introspection", idempotent[json.RawMessage](), func(ctx context.Context, gql graphql.Client) (json.RawMessage, error) {
		var data json.RawMessage
		err := gql.MakeRequest(ctx, &graphql.Request{OpName: "IntrospectionQuery", Query: IntrospectionQuery},
			&graphql.Response{Data: &data})
		return data, err
	})
	if err != nil {
		var e *Error
		httpRefusal := errors.As(err, &e) && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
		if ctx.Err() != nil || errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable) || httpRefusal {
			return nil, err
		}
		// Anything else Panther answered (a validation error, a GraphQL-level "forbidden")
		// is its way of saying no to introspection.
		return nil, fmt.Errorf("%w: %w", ErrIntrospectionRefused, err)
	}
	schema, err := SchemaFromIntrospection(data)
	if errors.Is(err, errNoSchema) {
		return nil, fmt.Errorf("%w: %w", ErrIntrospectionRefused, err)
	}
	return schema, err
}

// CheckSchema asks Panther for its schema and validates every operation the client sends
// against it (CheckOperations). Errors are Schema's.
func (c *Client) CheckSchema(ctx context.Context) (Compatibility, error) {
	schema, err := c.Schema(ctx)
	if err != nil {
		return Compatibility{}, err
	}
	return CheckOperations(schema), nil
}

// OperationNames lists the operations the client sends, as the Observer names them: those of
// operations.graphql, and "introspection" (Schema's query).
func OperationNames() []string {
	doc, err := parser.ParseQuery(&ast.Source{Name: "operations.graphql", Input: Operations})
	if err != nil {
		panic("panther: operations.graphql does not parse: " + err.Error()) // compiled in and tested
	}
	names := make([]string, 0, len(doc.Operations)+1)
	for _, op := range doc.Operations {
		names = append(names, op.Name)
	}
	return append(names, "introspection")
}

// localSchema is schema.graphql, what the generated client was built from: the types of
// what the client sends and what it expects back.
var localSchema = sync.OnceValues(func() (*ast.Schema, error) {
	return gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: Schema})
})

// openEnums are the enums genqlient.yaml binds to a Go string: the client passes their values
// through from its caller rather than from a list, so a value Panther dropped is not a value
// the client sends. (Permission keeps growing, and shrinking would not break the client.)
var openEnums = map[string]bool{"Permission": true}

// CheckOperations validates each operation of operations.graphql against schema, Panther's
// live schema:
//   - the GraphQL validation rules, with gqlparser's validator: every selected field exists,
//     every argument exists with the variable's type, required arguments are given, the
//     variables' types exist;
//   - the input objects the client sends as variables, which the validator cannot see (they
//     are values, not part of the document): every field the client sends exists with a type
//     that accepts it, no field Panther requires is missing, the enum values it sends exist;
//   - the fields it reads: each still has a type that decodes into what the client expects
//     (a String turned Boolean would fail every answer).
//
// Problems of a fragment shared by several operations are reported once, naming them all.
func CheckOperations(schema *ast.Schema) Compatibility {
	local, err := localSchema()
	if err != nil {
		panic("panther: schema.graphql does not load: " + err.Error()) // compiled in and tested
	}
	doc, perr := parser.ParseQuery(&ast.Source{Name: "operations.graphql", Input: Operations})
	if perr != nil {
		panic("panther: operations.graphql does not parse: " + perr.Error())
	}
	c := &checker{local: local, remote: schema, doc: doc, index: map[string]int{}}
	for _, op := range doc.Operations {
		c.op = op.Name
		single := &ast.QueryDocument{Operations: ast.OperationList{op}, Fragments: usedFragments(doc, op)}
		for _, e := range validator.Validate(schema, single) {
			c.add(strings.TrimSuffix(e.Message, "."))
		}
		visited := map[string]bool{}
		for _, v := range op.VariableDefinitions {
			if r := schema.Types[v.Type.Name()]; r != nil {
				c.inputType(local.Types[v.Type.Name()], r, visited)
			}
		}
		root := local.Query
		if op.Operation == ast.Mutation {
			root = local.Mutation
		}
		c.selections(root.Name, op.SelectionSet, map[string]bool{})
	}
	return Compatibility{Operations: len(doc.Operations), Problems: c.problems}
}

type checker struct {
	local, remote *ast.Schema
	doc           *ast.QueryDocument
	op            string
	problems      []Problem
	index         map[string]int // message -> its problem
}

func (c *checker) add(msg string) {
	if i, ok := c.index[msg]; ok {
		if !slices.Contains(c.problems[i].Operations, c.op) {
			c.problems[i].Operations = append(c.problems[i].Operations, c.op)
		}
		return
	}
	c.index[msg] = len(c.problems)
	c.problems = append(c.problems, Problem{Operations: []string{c.op}, Message: msg})
}

// usedFragments lists the fragments op spreads, directly or through other fragments: a
// document with unused fragments fails validation.
func usedFragments(doc *ast.QueryDocument, op *ast.OperationDefinition) ast.FragmentDefinitionList {
	var out ast.FragmentDefinitionList
	seen := map[string]bool{}
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				walk(s.SelectionSet)
			case *ast.InlineFragment:
				walk(s.SelectionSet)
			case *ast.FragmentSpread:
				if f := doc.Fragments.ForName(s.Name); f != nil && !seen[s.Name] {
					seen[s.Name] = true
					out = append(out, f)
					walk(f.SelectionSet)
				}
			}
		}
	}
	walk(op.SelectionSet)
	return out
}

// inputType compares what the client sends as a value of local type l with what Panther
// accepts for its type r.
func (c *checker) inputType(l, r *ast.Definition, visited map[string]bool) {
	if l == nil || visited[l.Name] {
		return
	}
	visited[l.Name] = true
	if l.Kind != r.Kind {
		c.add(fmt.Sprintf("%s is %s in Panther; panther-scim sends %s", r.Name, kindName(r.Kind), kindName(l.Kind)))
		return
	}
	switch l.Kind {
	case ast.InputObject:
		for _, lf := range l.Fields {
			rf := r.Fields.ForName(lf.Name)
			if rf == nil {
				c.add(fmt.Sprintf("unknown field %q on input %s", lf.Name, r.Name))
				continue
			}
			if !c.accepts(lf.Type, rf.Type) {
				what := "sends " + lf.Type.String()
				if rf.Type.NonNull && !lf.Type.NonNull {
					what = "may leave it out"
				}
				c.add(fmt.Sprintf("field %q on input %s is %s in Panther; panther-scim %s", lf.Name, r.Name, rf.Type, what))
				continue
			}
			if ld, rd := c.local.Types[lf.Type.Name()], c.remote.Types[rf.Type.Name()]; ld != nil && rd != nil &&
				(ld.Kind == ast.InputObject || ld.Kind == ast.Enum) {
				c.inputType(ld, rd, visited)
			}
		}
		for _, rf := range r.Fields {
			if l.Fields.ForName(rf.Name) == nil && rf.Type.NonNull && rf.DefaultValue == nil {
				c.add(fmt.Sprintf("input %s requires field %q (%s), which panther-scim does not send", r.Name, rf.Name, rf.Type))
			}
		}
	case ast.Enum:
		if openEnums[l.Name] {
			return
		}
		for _, v := range l.EnumValues {
			if r.EnumValues.ForName(v.Name) == nil {
				c.add(fmt.Sprintf("enum %s has no value %q", r.Name, v.Name))
			}
		}
	}
}

// accepts reports whether Panther, expecting type r, accepts the values the client sends
// for its type l: the same list nesting, never null where Panther requires a value, and a
// named type that takes the JSON the client writes.
func (c *checker) accepts(l, r *ast.Type) bool {
	if r.NonNull && !l.NonNull {
		return false
	}
	if (l.Elem == nil) != (r.Elem == nil) {
		return false
	}
	if l.Elem != nil {
		return c.accepts(l.Elem, r.Elem)
	}
	if l.NamedType == r.NamedType {
		return true
	}
	ld, rd := c.local.Types[l.NamedType], c.remote.Types[r.NamedType]
	if ld == nil || rd == nil || ld.Kind != rd.Kind {
		return false
	}
	switch ld.Kind {
	case ast.Scalar:
		// A string goes to any string-like scalar (String, ID, Email, DateTime ...).
		return wireKind(ld) == "string" && wireKind(rd) == "string"
	case ast.InputObject, ast.Enum:
		return true // a renamed type: inputType compares the contents
	}
	return false
}

// selections compares the type of every field the operation reads with Panther's.
func (c *checker) selections(parent string, set ast.SelectionSet, seen map[string]bool) {
	ldef, rdef := c.local.Types[parent], c.remote.Types[parent]
	if ldef == nil || rdef == nil {
		return
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			lf, rf := ldef.Fields.ForName(s.Name), rdef.Fields.ForName(s.Name)
			if lf == nil || rf == nil {
				continue // __typename, or a field the validator already reported
			}
			if !c.decodes(lf.Type, rf.Type) {
				c.add(fmt.Sprintf("field %s.%s is %s in Panther; panther-scim reads %s", parent, s.Name, rf.Type, lf.Type))
				continue
			}
			if len(s.SelectionSet) > 0 {
				c.selections(lf.Type.Name(), s.SelectionSet, seen)
			}
		case *ast.InlineFragment:
			cond := s.TypeCondition
			if cond == "" {
				cond = parent
			}
			c.selections(cond, s.SelectionSet, seen)
		case *ast.FragmentSpread:
			key := parent + "/" + s.Name
			if f := c.doc.Fragments.ForName(s.Name); f != nil && !seen[key] {
				seen[key] = true
				c.selections(f.TypeCondition, f.SelectionSet, seen)
			}
		}
	}
}

// decodes reports whether an answer of Panther's type r decodes into what the client expects
// for its type l: the same list nesting and the same JSON kind. Nullability is not compared:
// the client reads a null as the zero value and checks ids itself.
func (c *checker) decodes(l, r *ast.Type) bool {
	if (l.Elem == nil) != (r.Elem == nil) {
		return false
	}
	if l.Elem != nil {
		return c.decodes(l.Elem, r.Elem)
	}
	ld, rd := c.local.Types[l.NamedType], c.remote.Types[r.NamedType]
	return ld != nil && rd != nil && wireKind(ld) == wireKind(rd)
}

// wireKind is the JSON a value of the type is written as.
func wireKind(d *ast.Definition) string {
	switch {
	case d.Kind == ast.Object || d.Kind == ast.Interface || d.Kind == ast.Union:
		return "object"
	case d.Kind == ast.InputObject:
		return "input"
	case d.Name == "Int" || d.Name == "Float":
		return "number"
	case d.Name == "Boolean":
		return "boolean"
	}
	return "string" // String, ID, custom scalars, enums
}

func kindName(k ast.DefinitionKind) string {
	switch k {
	case ast.InputObject:
		return "an input object"
	case ast.Enum:
		return "an enum"
	case ast.Scalar:
		return "a scalar"
	case ast.Union:
		return "a union"
	case ast.Interface:
		return "an interface"
	}
	return "an object"
}
