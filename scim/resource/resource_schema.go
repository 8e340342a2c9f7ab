package resource

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"
)

// Schema is the schema of one SCIM resource type: its core schema and the extension schemas it carries.
// It is the reference the pure resource functions of this package (filter evaluation, PATCH application,
// projection and sorting) use to find attributes by name, in any case, with or without a URN prefix, and to
// learn their type, caseExact, multiValued, mutability and returned characteristics.
//
// Resources are JSON objects (map[string]any) as served: core and common attributes under their canonical names
// at the top level, extension attributes nested under the extension URN.
type Schema struct {
	// Core is the resource's core schema, e.g. schema.CoreUserSchema(). The common attributes (schemas, id,
	// externalId, meta) are added by Schema itself and need not be listed here.
	Core schema.Schema
	// Extensions are the schema extensions of the resource type, e.g. schema.ExtensionEnterpriseUser().
	Extensions []schema.Schema
}

// commonAttributes are RFC 7643 §3.1's attributes of every resource. They do not change, so they are built once.
var commonAttributes = schema.Attributes(schema.CommonAttributes())

// AttrRef is an attribute path resolved against a Schema.
//
// For "name.givenName" Attr is the "name" attribute and Sub its "givenName" sub-attribute; for
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager" Extension is true, SchemaID is the
// extension URN and Attr is "manager". A path that names a schema URN itself refers to the whole extension (or the
// whole core schema): IsContainer reports it, and Attr is then the zero value.
type AttrRef struct {
	// SchemaID is the URN of the schema that declares the attribute (the core schema's for common attributes).
	SchemaID string
	// Extension is true when the attribute lives in an extension, that is under resource[SchemaID].
	Extension bool
	// Attr is the top-level attribute.
	Attr schema.CoreAttribute
	// Sub is the sub-attribute named by the path, or nil.
	Sub *schema.CoreAttribute
}

// IsContainer reports whether the path named a schema URN itself rather than an attribute.
func (r AttrRef) IsContainer() bool {
	return r.Attr.Name() == ""
}

// Target returns the attribute the path points at: the sub-attribute when there is one, else the attribute.
func (r AttrRef) Target() schema.CoreAttribute {
	if r.Sub != nil {
		return *r.Sub
	}
	return r.Attr
}

// Name returns the canonical name of the path: "userName", "name.givenName",
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", or the URN for a container.
func (r AttrRef) Name() string {
	if r.IsContainer() {
		return r.SchemaID
	}
	name := r.Attr.Name()
	if r.Sub != nil {
		name += "." + r.Sub.Name()
	}
	if r.Extension {
		name = r.SchemaID + ":" + name
	}
	return name
}

// Resolve resolves an attribute path in standard attribute notation (RFC 7644 §3.10), such as "userName",
// "NAME.givenname", "urn:ietf:params:scim:schemas:core:2.0:User:emails.value" or an extension URN. Names are
// matched case-insensitively. It returns an error that names the part that is unknown.
func (rs Schema) Resolve(path string) (AttrRef, error) {
	path = strings.TrimSpace(path)
	if ref, ok := rs.containerRef(path); ok {
		return ref, nil
	}
	ap, err := filter.ParseAttrPath([]byte(path))
	if err != nil {
		return AttrRef{}, fmt.Errorf("%q is not an attribute path", path)
	}
	return rs.ResolveAttrPath(ap)
}

// ResolveAttrPath resolves an attribute path parsed by filter-parser (see Resolve).
func (rs Schema) ResolveAttrPath(p filter.AttributePath) (AttrRef, error) {
	uri := p.URI()
	sub := p.SubAttributeName()
	if uri != "" && sub == "" {
		// filter-parser splits "urn:...:2.0:User" into the URI "urn:...:2.0" and the name "User".
		if ref, ok := rs.containerRef(uri + ":" + p.AttributeName); ok {
			return ref, nil
		}
	}

	var ref AttrRef
	found := false
	switch {
	case uri == "":
		ref, found = rs.lookupUnqualified(p.AttributeName)
	case strings.EqualFold(uri, rs.Core.ID):
		ref, found = rs.lookupCore(p.AttributeName)
	default:
		ext, ok := rs.extension(uri)
		if !ok {
			return AttrRef{}, fmt.Errorf("unknown schema URN %q in %q", uri, p.String())
		}
		var attr schema.CoreAttribute
		if attr, found = ext.Attributes.ContainsAttribute(p.AttributeName); found {
			ref = AttrRef{SchemaID: ext.ID, Extension: true, Attr: attr}
		}
	}
	if !found {
		return AttrRef{}, fmt.Errorf("unknown attribute %q", p.String())
	}
	if sub != "" {
		s, err := subAttribute(ref.Attr, sub)
		if err != nil {
			return AttrRef{}, err
		}
		ref.Sub = &s
	}
	return ref, nil
}

// subAttribute returns the sub-attribute of attr named name (any case).
func subAttribute(attr schema.CoreAttribute, name string) (schema.CoreAttribute, error) {
	if !attr.HasSubAttributes() {
		return schema.CoreAttribute{}, fmt.Errorf("attribute %q has no sub-attributes (asked for %q)", attr.Name(), name)
	}
	s, ok := attr.SubAttributes().ContainsAttribute(name)
	if !ok {
		return schema.CoreAttribute{}, fmt.Errorf("attribute %q has no sub-attribute %q", attr.Name(), name)
	}
	return s, nil
}

// containerRef recognises a path that is exactly a schema URN.
func (rs Schema) containerRef(path string) (AttrRef, bool) {
	if strings.EqualFold(path, rs.Core.ID) {
		return AttrRef{SchemaID: rs.Core.ID}, true
	}
	if ext, ok := rs.extension(path); ok {
		return AttrRef{SchemaID: ext.ID, Extension: true}, true
	}
	return AttrRef{}, false
}

// extension returns the extension schema whose URN is id (any case).
func (rs Schema) extension(id string) (schema.Schema, bool) {
	for _, e := range rs.Extensions {
		if strings.EqualFold(e.ID, id) {
			return e, true
		}
	}
	return schema.Schema{}, false
}

// lookupCore finds a core or common attribute.
func (rs Schema) lookupCore(name string) (AttrRef, bool) {
	if a, ok := rs.Core.Attributes.ContainsAttribute(name); ok {
		return AttrRef{SchemaID: rs.Core.ID, Attr: a}, true
	}
	if a, ok := commonAttributes.ContainsAttribute(name); ok {
		return AttrRef{SchemaID: rs.Core.ID, Attr: a}, true
	}
	return AttrRef{}, false
}

// lookupUnqualified finds an attribute named without a URN: core and common attributes first; then, because
// some clients leave the URN out, an extension attribute when exactly one extension declares that name.
func (rs Schema) lookupUnqualified(name string) (AttrRef, bool) {
	if ref, ok := rs.lookupCore(name); ok {
		return ref, true
	}
	var hit AttrRef
	hits := 0
	for _, e := range rs.Extensions {
		if a, ok := e.Attributes.ContainsAttribute(name); ok {
			hit = AttrRef{SchemaID: e.ID, Extension: true, Attr: a}
			hits++
		}
	}
	return hit, hits == 1
}

// topLevelRefs lists every attribute of the resource type, core and common first, then the extensions'.
func (rs Schema) topLevelRefs() []AttrRef {
	var refs []AttrRef
	for _, a := range commonAttributes {
		if _, dup := rs.Core.Attributes.ContainsAttribute(a.Name()); !dup {
			refs = append(refs, AttrRef{SchemaID: rs.Core.ID, Attr: a})
		}
	}
	for _, a := range rs.Core.Attributes {
		refs = append(refs, AttrRef{SchemaID: rs.Core.ID, Attr: a})
	}
	for _, e := range rs.Extensions {
		for _, a := range e.Attributes {
			refs = append(refs, AttrRef{SchemaID: e.ID, Extension: true, Attr: a})
		}
	}
	return refs
}

// holder returns the JSON object that holds the attribute of ref: the resource itself, or the extension object
// under the extension URN. It returns nil when an extension object is absent or not an object.
func (r AttrRef) holder(res map[string]any) map[string]any {
	if !r.Extension {
		return res
	}
	_, v, ok := lookupKey(res, r.SchemaID)
	if !ok {
		return nil
	}
	m, _ := jsonObject(v)
	return m
}

// value returns the raw value of the top-level attribute of ref in res.
func (r AttrRef) value(res map[string]any) (any, bool) {
	h := r.holder(res)
	if h == nil {
		return nil, false
	}
	_, v, ok := lookupKey(h, r.Attr.Name())
	return v, ok
}

// lookupKey finds name in m: the exact key first, then a key equal to it in any case, the one sorting first when
// several differ only in case (so that the result does not depend on map order).
func lookupKey(m map[string]any, name string) (string, any, bool) {
	if v, ok := m[name]; ok {
		return name, v, true
	}
	best := ""
	found := false
	for k := range m {
		if strings.EqualFold(k, name) && (!found || k < best) {
			best, found = k, true
		}
	}
	if !found {
		return "", nil, false
	}
	return best, m[best], true
}

// jsonObject returns v as a JSON object.
func jsonObject(v any) (map[string]any, bool) {
	switch t := v.(type) {
	case map[string]any:
		return t, true
	case map[string]string:
		m := make(map[string]any, len(t))
		for k, s := range t {
			m[k] = s
		}
		return m, true
	}
	return nil, false
}

// jsonList returns v as a JSON array. Go slices that a handler may build by hand are accepted too.
func jsonList(v any) ([]any, bool) {
	switch t := v.(type) {
	case []any:
		return t, true
	case []map[string]any:
		l := make([]any, len(t))
		for i, m := range t {
			l[i] = m
		}
		return l, true
	case []string:
		l := make([]any, len(t))
		for i, s := range t {
			l[i] = s
		}
		return l, true
	}
	return nil, false
}

// cloneJSON deep-copies a JSON value, turning the Go slice and map types jsonList and jsonObject accept into
// []any and map[string]any.
func cloneJSON(v any) any {
	if m, ok := jsonObject(v); ok {
		out := make(map[string]any, len(m))
		for k, e := range m {
			out[k] = cloneJSON(e)
		}
		return out
	}
	if l, ok := jsonList(v); ok {
		out := make([]any, len(l))
		for i, e := range l {
			out[i] = cloneJSON(e)
		}
		return out
	}
	return v
}

// cloneResource deep-copies a resource.
func cloneResource(res map[string]any) map[string]any {
	if res == nil {
		return map[string]any{}
	}
	out, _ := cloneJSON(res).(map[string]any)
	return out
}

// jsonEmpty reports whether v is unassigned in the sense of RFC 7643 §2.5: null, an empty string, an empty array,
// or an object none of whose members has a value.
func jsonEmpty(v any) bool {
	if v == nil {
		return true
	}
	if s, ok := v.(string); ok {
		return s == ""
	}
	if l, ok := jsonList(v); ok {
		for _, e := range l {
			if !jsonEmpty(e) {
				return false
			}
		}
		return true
	}
	if m, ok := jsonObject(v); ok {
		for _, e := range m {
			if !jsonEmpty(e) {
				return false
			}
		}
		return true
	}
	return false
}

// sortedKeys returns the keys of m in order, so that work over a map is deterministic.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Attribute data types as schema.CoreAttribute.AttributeType reports them.
const (
	typeString    = "string"
	typeBoolean   = "boolean"
	typeDecimal   = "decimal"
	typeInteger   = "integer"
	typeDateTime  = "dateTime"
	typeReference = "reference"
	typeBinary    = "binary"
	typeComplex   = "complex"
)

// Mutability and returned values as schema.CoreAttribute reports them.
const (
	mutabilityReadOnly  = "readOnly"
	mutabilityImmutable = "immutable"
	returnedAlways      = "always"
	returnedNever       = "never"
	returnedRequest     = "request"
)

// dateTimeLayouts are the xsd:dateTime forms (RFC 7643 §2.3.5) accepted, RFC 3339 first. A value without a zone
// is taken as UTC.
var dateTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
}

// parseDateTime parses a SCIM dateTime value.
func parseDateTime(s string) (time.Time, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	for _, layout := range dateTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// number is a JSON number held exactly when it is an integer that fits in 64 bits, else as a float64.
type number struct {
	isInt bool
	i     int64
	f     float64
}

// toNumber converts the number forms a decoded resource or a parsed filter may hold: json.Number, float64, the
// Go integer types, and (for clients that quote numbers) numeric strings.
func toNumber(v any) (number, bool) {
	switch n := v.(type) {
	case json.Number:
		return parseNumber(string(n))
	case string:
		return parseNumber(strings.TrimSpace(n))
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return number{}, false
		}
		return number{f: n}, true
	case float32:
		return toNumber(float64(n))
	case int:
		return number{isInt: true, i: int64(n)}, true
	case int8:
		return number{isInt: true, i: int64(n)}, true
	case int16:
		return number{isInt: true, i: int64(n)}, true
	case int32:
		return number{isInt: true, i: int64(n)}, true
	case int64:
		return number{isInt: true, i: n}, true
	case uint8:
		return number{isInt: true, i: int64(n)}, true
	case uint16:
		return number{isInt: true, i: int64(n)}, true
	case uint32:
		return number{isInt: true, i: int64(n)}, true
	case uint:
		if uint64(n) > math.MaxInt64 {
			return number{f: float64(n)}, true
		}
		return number{isInt: true, i: int64(n)}, true
	case uint64:
		if n > math.MaxInt64 {
			return number{f: float64(n)}, true
		}
		return number{isInt: true, i: int64(n)}, true
	}
	return number{}, false
}

func parseNumber(s string) (number, bool) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return number{isInt: true, i: i}, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return number{}, false
	}
	return number{f: f}, true
}

// float returns n as a float64.
func (n number) float() float64 {
	if n.isInt {
		return float64(n.i)
	}
	return n.f
}

// integral reports whether n has no fractional part.
func (n number) integral() bool {
	return n.isInt || n.f == math.Trunc(n.f)
}

// cmp compares two numbers: -1, 0 or +1.
func (n number) cmp(o number) int {
	if n.isInt && o.isInt {
		switch {
		case n.i < o.i:
			return -1
		case n.i > o.i:
			return 1
		}
		return 0
	}
	a, b := n.float(), o.float()
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseBoolValue accepts a JSON boolean or, for clients such as Entra ID, the strings "true" and "false" in any
// case.
func parseBoolValue(v any) (bool, bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string:
		switch strings.ToLower(strings.TrimSpace(b)) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}
