package panther

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// IntrospectionQuery is the standard introspection query (graphql-js's getIntrospectionQuery
// with its default options): every type with its fields, arguments, input fields, enum
// values and possible types, and the directives. It asks for nothing that GraphQL servers
// older than the October 2021 spec lack (no specifiedByURL, isRepeatable or isOneOf), so that
// any server that answers introspection at all answers it.
const IntrospectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives {
      name
      description
      locations
      args { ...InputValue }
    }
  }
}

fragment FullType on __Type {
  kind
  name
  description
  fields(includeDeprecated: true) {
    name
    description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) {
    name
    description
    isDeprecated
    deprecationReason
  }
  possibleTypes { ...TypeRef }
}

fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
}

fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
              }
            }
          }
        }
      }
    }
  }
}
`

// The answer to IntrospectionQuery, as the spec's introspection types describe it.
type (
	introspectionData struct {
		Schema *introspectedSchema `json:"__schema"`
	}
	introspectedSchema struct {
		QueryType        *namedRef               `json:"queryType"`
		MutationType     *namedRef               `json:"mutationType"`
		SubscriptionType *namedRef               `json:"subscriptionType"`
		Types            []introspectedType      `json:"types"`
		Directives       []introspectedDirective `json:"directives"`
	}
	namedRef struct {
		Name string `json:"name"`
	}
	introspectedType struct {
		Kind          string              `json:"kind"`
		Name          string              `json:"name"`
		Description   string              `json:"description"`
		Fields        []introspectedField `json:"fields"`
		InputFields   []inputValue        `json:"inputFields"`
		Interfaces    []typeRef           `json:"interfaces"`
		EnumValues    []enumValue         `json:"enumValues"`
		PossibleTypes []typeRef           `json:"possibleTypes"`
	}
	introspectedField struct {
		Name              string       `json:"name"`
		Description       string       `json:"description"`
		Args              []inputValue `json:"args"`
		Type              *typeRef     `json:"type"`
		IsDeprecated      bool         `json:"isDeprecated"`
		DeprecationReason *string      `json:"deprecationReason"`
	}
	inputValue struct {
		Name         string   `json:"name"`
		Description  string   `json:"description"`
		Type         *typeRef `json:"type"`
		DefaultValue *string  `json:"defaultValue"`
	}
	enumValue struct {
		Name              string  `json:"name"`
		Description       string  `json:"description"`
		IsDeprecated      bool    `json:"isDeprecated"`
		DeprecationReason *string `json:"deprecationReason"`
	}
	typeRef struct {
		Kind   string   `json:"kind"`
		Name   *string  `json:"name"`
		OfType *typeRef `json:"ofType"`
	}
	introspectedDirective struct {
		Name        string       `json:"name"`
		Description string       `json:"description"`
		Locations   []string     `json:"locations"`
		Args        []inputValue `json:"args"`
	}
)

// errNoSchema: the answer holds no __schema (a server that answers introspection with null).
var errNoSchema = errors.New("the answer holds no __schema")

// SchemaFromIntrospection builds a schema from the "data" of an answer to IntrospectionQuery,
// so that queries can be validated against it with gqlparser's validator as against a schema
// read from SDL. gqlparser has no such reader (it goes from SDL to ast.Schema and, in gqlgen,
// from ast.Schema to introspection, not back). The built-in scalars, directives and
// introspection types are gqlparser's own (its prelude); everything else comes from the
// answer, and the result must pass gqlparser's schema validation.
func SchemaFromIntrospection(data []byte) (*ast.Schema, error) {
	var in introspectionData
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("reading the introspection answer: %w", err)
	}
	if in.Schema == nil {
		return nil, errNoSchema
	}
	doc := validator.PreludeDocument()
	builtin := map[string]bool{}
	for _, d := range doc.Definitions {
		builtin[d.Name] = true
	}
	builtinDirective := map[string]bool{}
	for _, d := range doc.Directives {
		builtinDirective[d.Name] = true
	}

	for _, t := range in.Schema.Types {
		if builtin[t.Name] {
			continue
		}
		def, err := t.definition()
		if err != nil {
			return nil, err
		}
		doc.Definitions = append(doc.Definitions, def)
	}
	for _, d := range in.Schema.Directives {
		if builtinDirective[d.Name] {
			continue
		}
		args, err := argumentDefinitions(d.Args)
		if err != nil {
			return nil, fmt.Errorf("directive @%s: %w", d.Name, err)
		}
		def := &ast.DirectiveDefinition{Name: d.Name, Description: d.Description, Arguments: args}
		for _, l := range d.Locations {
			def.Locations = append(def.Locations, ast.DirectiveLocation(l))
		}
		doc.Directives = append(doc.Directives, def)
	}

	var roots ast.OperationTypeDefinitionList
	for _, r := range []struct {
		op  ast.Operation
		ref *namedRef
	}{{ast.Query, in.Schema.QueryType}, {ast.Mutation, in.Schema.MutationType}, {ast.Subscription, in.Schema.SubscriptionType}} {
		if r.ref != nil {
			roots = append(roots, &ast.OperationTypeDefinition{Operation: r.op, Type: r.ref.Name})
		}
	}
	if len(roots) == 0 || roots[0].Operation != ast.Query {
		return nil, errors.New("the introspection answer names no query type")
	}
	doc.Schema = ast.SchemaDefinitionList{{OperationTypes: roots}}

	schema, err := validator.ValidateSchemaDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("the schema Panther describes is not valid: %w", err)
	}
	return schema, nil
}

func (t introspectedType) definition() (*ast.Definition, error) {
	if t.Name == "" {
		return nil, fmt.Errorf("a type of kind %s has no name", t.Kind)
	}
	def := &ast.Definition{Name: t.Name, Description: t.Description}
	wrap := func(err error) error { return fmt.Errorf("type %s: %w", t.Name, err) }
	switch t.Kind {
	case "SCALAR":
		def.Kind = ast.Scalar
	case "OBJECT", "INTERFACE":
		def.Kind = ast.Object
		if t.Kind == "INTERFACE" {
			def.Kind = ast.Interface
		}
		for _, f := range t.Fields {
			typ, err := f.Type.astType()
			if err != nil {
				return nil, wrap(fmt.Errorf("field %s: %w", f.Name, err))
			}
			args, err := argumentDefinitions(f.Args)
			if err != nil {
				return nil, wrap(fmt.Errorf("field %s: %w", f.Name, err))
			}
			def.Fields = append(def.Fields, &ast.FieldDefinition{
				Name: f.Name, Description: f.Description, Arguments: args, Type: typ,
				Directives: deprecation(f.IsDeprecated, f.DeprecationReason),
			})
		}
		for _, i := range t.Interfaces {
			name, err := i.named()
			if err != nil {
				return nil, wrap(err)
			}
			def.Interfaces = append(def.Interfaces, name)
		}
	case "UNION":
		def.Kind = ast.Union
		for _, p := range t.PossibleTypes {
			name, err := p.named()
			if err != nil {
				return nil, wrap(err)
			}
			def.Types = append(def.Types, name)
		}
	case "ENUM":
		def.Kind = ast.Enum
		for _, v := range t.EnumValues {
			def.EnumValues = append(def.EnumValues, &ast.EnumValueDefinition{
				Name: v.Name, Description: v.Description, Directives: deprecation(v.IsDeprecated, v.DeprecationReason),
			})
		}
	case "INPUT_OBJECT":
		def.Kind = ast.InputObject
		args, err := argumentDefinitions(t.InputFields)
		if err != nil {
			return nil, wrap(err)
		}
		for _, a := range args {
			def.Fields = append(def.Fields, &ast.FieldDefinition{
				Name: a.Name, Description: a.Description, Type: a.Type, DefaultValue: a.DefaultValue,
			})
		}
	default:
		return nil, wrap(fmt.Errorf("unknown kind %q", t.Kind))
	}
	return def, nil
}

func argumentDefinitions(in []inputValue) (ast.ArgumentDefinitionList, error) {
	var out ast.ArgumentDefinitionList
	for _, v := range in {
		typ, err := v.Type.astType()
		if err != nil {
			return nil, fmt.Errorf("argument %s: %w", v.Name, err)
		}
		a := &ast.ArgumentDefinition{Name: v.Name, Description: v.Description, Type: typ}
		if v.DefaultValue != nil {
			if a.DefaultValue, err = parseLiteral(*v.DefaultValue); err != nil {
				return nil, fmt.Errorf("argument %s: default value %q: %w", v.Name, *v.DefaultValue, err)
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// parseLiteral reads a GraphQL value literal (introspection's defaultValue), by parsing it as
// an argument of a one-field query: gqlparser has no entry point for a lone value.
func parseLiteral(lit string) (*ast.Value, error) {
	doc, err := parser.ParseQuery(&ast.Source{Name: "defaultValue", Input: "{f(v: " + lit + ")}"})
	if err != nil {
		return nil, err
	}
	if len(doc.Operations) != 1 || len(doc.Operations[0].SelectionSet) != 1 {
		return nil, errors.New("not a single value")
	}
	f, ok := doc.Operations[0].SelectionSet[0].(*ast.Field)
	if !ok || len(f.Arguments) != 1 || f.Arguments[0].Value.Kind == ast.Variable {
		return nil, errors.New("not a single value")
	}
	return f.Arguments[0].Value, nil
}

func deprecation(deprecated bool, reason *string) ast.DirectiveList {
	if !deprecated {
		return nil
	}
	d := &ast.Directive{Name: "deprecated"}
	if reason != nil {
		d.Arguments = ast.ArgumentList{{Name: "reason", Value: &ast.Value{Kind: ast.StringValue, Raw: *reason}}}
	}
	return ast.DirectiveList{d}
}

// astType turns a type reference (NON_NULL and LIST wrappers around a named type) into an
// ast.Type.
func (r *typeRef) astType() (*ast.Type, error) {
	if r == nil {
		return nil, errors.New("type reference missing (the answer is truncated or deeper than the query asks)")
	}
	switch r.Kind {
	case "NON_NULL":
		inner, err := r.OfType.astType()
		if err != nil {
			return nil, err
		}
		if inner.NonNull {
			return nil, errors.New("non-null of a non-null type")
		}
		inner.NonNull = true
		return inner, nil
	case "LIST":
		inner, err := r.OfType.astType()
		if err != nil {
			return nil, err
		}
		return &ast.Type{Elem: inner}, nil
	}
	name, err := r.named()
	if err != nil {
		return nil, err
	}
	return &ast.Type{NamedType: name}, nil
}

func (r typeRef) named() (string, error) {
	if r.Name == nil || *r.Name == "" || r.Kind == "NON_NULL" || r.Kind == "LIST" {
		return "", fmt.Errorf("a %s type reference without a name", r.Kind)
	}
	return *r.Name, nil
}
