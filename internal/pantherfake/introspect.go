package pantherfake

import (
	"slices"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// Introspection: the __schema and __type root fields of the GraphQL spec (§4), answered from
// the schema the fake serves, as Panther's GraphQL server answers them from its own. The
// executor projects these objects like any other, so every introspection query a client can
// write (graphql-js's getIntrospectionQuery, genqlient's, a hand-written one) is answered.

// introspectionRoots resolves __schema and __type.
func (s *Server) introspectionRoots() map[string]rootResolver {
	return map[string]rootResolver{
		"__schema": func(map[string]any) (any, error) { return schemaObj{s.schema}, nil },
		"__type": func(args map[string]any) (any, error) {
			name, _ := args["name"].(string)
			def := s.schema.Types[name]
			if def == nil {
				return nil, nil
			}
			return typeObj{s: s.schema, def: def}, nil
		},
	}
}

// isIntrospection reports whether the operation asks for __schema or __type at its root,
// the fields a server that refuses introspection rejects.
func isIntrospection(op *ast.OperationDefinition) bool {
	if op == nil {
		return false
	}
	for _, sel := range op.SelectionSet {
		if f, ok := sel.(*ast.Field); ok && (f.Name == "__schema" || f.Name == "__type") {
			return true
		}
	}
	return false
}

type schemaObj struct{ s *ast.Schema }

func (schemaObj) typeName() string { return "__Schema" }

func (o schemaObj) field(name string, _ map[string]any) any {
	switch name {
	case "description":
		return nilIfEmpty(o.s.Description)
	case "types":
		names := make([]string, 0, len(o.s.Types))
		for n := range o.s.Types {
			names = append(names, n)
		}
		slices.Sort(names)
		out := make([]any, len(names))
		for i, n := range names {
			out[i] = typeObj{s: o.s, def: o.s.Types[n]}
		}
		return out
	case "queryType":
		return namedTypeObj(o.s, o.s.Query)
	case "mutationType":
		return namedTypeObj(o.s, o.s.Mutation)
	case "subscriptionType":
		return namedTypeObj(o.s, o.s.Subscription)
	case "directives":
		names := make([]string, 0, len(o.s.Directives))
		for n := range o.s.Directives {
			names = append(names, n)
		}
		slices.Sort(names)
		out := make([]any, len(names))
		for i, n := range names {
			out[i] = directiveObj{o.s, o.s.Directives[n]}
		}
		return out
	}
	return nil
}

func namedTypeObj(s *ast.Schema, def *ast.Definition) any {
	if def == nil {
		return nil
	}
	return typeObj{s: s, def: def}
}

// typeObj is a __Type: a named type (def), or a list or non-null wrapper (ref).
type typeObj struct {
	s   *ast.Schema
	def *ast.Definition
	ref *ast.Type
}

// typeRef describes a field's or argument's type, wrappers first.
func typeRef(s *ast.Schema, t *ast.Type) any {
	if t == nil {
		return nil
	}
	if t.NonNull || t.Elem != nil {
		return typeObj{s: s, ref: t}
	}
	return namedTypeObj(s, s.Types[t.NamedType])
}

func (typeObj) typeName() string { return "__Type" }

func (o typeObj) field(name string, args map[string]any) any {
	if o.ref != nil {
		return o.wrapperField(name)
	}
	d := o.def
	includeDeprecated, _ := args["includeDeprecated"].(bool)
	switch name {
	case "kind":
		return string(d.Kind)
	case "name":
		return d.Name
	case "description":
		return nilIfEmpty(d.Description)
	case "specifiedByURL":
		if dir := d.Directives.ForName("specifiedBy"); dir != nil {
			if u := dir.Arguments.ForName("url"); u != nil && u.Value != nil {
				return u.Value.Raw
			}
		}
		return nil
	case "fields":
		if d.Kind != ast.Object && d.Kind != ast.Interface {
			return nil
		}
		out := []any{}
		for _, f := range d.Fields {
			if strings.HasPrefix(f.Name, "__") || (!includeDeprecated && deprecated(f.Directives)) {
				continue
			}
			out = append(out, fieldObj{o.s, f})
		}
		return out
	case "interfaces":
		if d.Kind != ast.Object && d.Kind != ast.Interface {
			return nil
		}
		out := []any{}
		for _, n := range d.Interfaces {
			out = append(out, namedTypeObj(o.s, o.s.Types[n]))
		}
		return out
	case "possibleTypes":
		if d.Kind != ast.Interface && d.Kind != ast.Union {
			return nil
		}
		out := []any{}
		for _, t := range o.s.GetPossibleTypes(d) {
			out = append(out, typeObj{s: o.s, def: t})
		}
		return out
	case "enumValues":
		if d.Kind != ast.Enum {
			return nil
		}
		out := []any{}
		for _, v := range d.EnumValues {
			if includeDeprecated || !deprecated(v.Directives) {
				out = append(out, enumValueObj{v})
			}
		}
		return out
	case "inputFields":
		if d.Kind != ast.InputObject {
			return nil
		}
		out := []any{}
		for _, f := range d.Fields {
			if includeDeprecated || !deprecated(f.Directives) {
				out = append(out, inputValueObj{o.s, f.Name, f.Description, f.Type, f.DefaultValue, f.Directives})
			}
		}
		return out
	case "isOneOf":
		if d.Kind != ast.InputObject {
			return nil
		}
		return d.Directives.ForName("oneOf") != nil
	}
	return nil
}

func (o typeObj) wrapperField(name string) any {
	switch name {
	case "kind":
		if o.ref.NonNull {
			return "NON_NULL"
		}
		return "LIST"
	case "ofType":
		if o.ref.NonNull {
			inner := *o.ref
			inner.NonNull = false
			return typeRef(o.s, &inner)
		}
		return typeRef(o.s, o.ref.Elem)
	}
	return nil // name, description, fields ... are null on wrappers
}

type fieldObj struct {
	s *ast.Schema
	f *ast.FieldDefinition
}

func (fieldObj) typeName() string { return "__Field" }

func (o fieldObj) field(name string, args map[string]any) any {
	switch name {
	case "name":
		return o.f.Name
	case "description":
		return nilIfEmpty(o.f.Description)
	case "args":
		includeDeprecated, _ := args["includeDeprecated"].(bool)
		return argList(o.s, o.f.Arguments, includeDeprecated)
	case "type":
		return typeRef(o.s, o.f.Type)
	case "isDeprecated":
		return deprecated(o.f.Directives)
	case "deprecationReason":
		return deprecationReason(o.f.Directives)
	}
	return nil
}

func argList(s *ast.Schema, list ast.ArgumentDefinitionList, includeDeprecated bool) []any {
	out := []any{}
	for _, a := range list {
		if includeDeprecated || !deprecated(a.Directives) {
			out = append(out, inputValueObj{s, a.Name, a.Description, a.Type, a.DefaultValue, a.Directives})
		}
	}
	return out
}

// inputValueObj is an __InputValue: an argument or an input object field.
type inputValueObj struct {
	s          *ast.Schema
	name, desc string
	typ        *ast.Type
	def        *ast.Value
	directives ast.DirectiveList
}

func (inputValueObj) typeName() string { return "__InputValue" }

func (o inputValueObj) field(name string, _ map[string]any) any {
	switch name {
	case "name":
		return o.name
	case "description":
		return nilIfEmpty(o.desc)
	case "type":
		return typeRef(o.s, o.typ)
	case "defaultValue":
		if o.def == nil {
			return nil
		}
		return o.def.String() // the value as a GraphQL literal, as the spec asks
	case "isDeprecated":
		return deprecated(o.directives)
	case "deprecationReason":
		return deprecationReason(o.directives)
	}
	return nil
}

type enumValueObj struct{ v *ast.EnumValueDefinition }

func (enumValueObj) typeName() string { return "__EnumValue" }

func (o enumValueObj) field(name string, _ map[string]any) any {
	switch name {
	case "name":
		return o.v.Name
	case "description":
		return nilIfEmpty(o.v.Description)
	case "isDeprecated":
		return deprecated(o.v.Directives)
	case "deprecationReason":
		return deprecationReason(o.v.Directives)
	}
	return nil
}

type directiveObj struct {
	s *ast.Schema
	d *ast.DirectiveDefinition
}

func (directiveObj) typeName() string { return "__Directive" }

func (o directiveObj) field(name string, args map[string]any) any {
	switch name {
	case "name":
		return o.d.Name
	case "description":
		return nilIfEmpty(o.d.Description)
	case "isRepeatable":
		return o.d.IsRepeatable
	case "locations":
		out := make([]any, len(o.d.Locations))
		for i, l := range o.d.Locations {
			out[i] = string(l)
		}
		return out
	case "args":
		includeDeprecated, _ := args["includeDeprecated"].(bool)
		return argList(o.s, o.d.Arguments, includeDeprecated)
	}
	return nil
}

func deprecated(dirs ast.DirectiveList) bool { return dirs.ForName("deprecated") != nil }

func deprecationReason(dirs ast.DirectiveList) any {
	d := dirs.ForName("deprecated")
	if d == nil {
		return nil
	}
	if r := d.Arguments.ForName("reason"); r != nil && r.Value != nil {
		return r.Value.Raw
	}
	return "No longer supported"
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
