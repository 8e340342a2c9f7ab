package resource

import (
	"sort"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
)

// Sort orders of RFC 7644 §3.4.2.3.
const (
	SortAscending  = "ascending"
	SortDescending = "descending"
)

// ParseSortOrder reads the sortOrder parameter: "ascending" (the default when empty) or "descending", in any
// case. Anything else is a 400 invalidValue scimerrors.ScimError.
func ParseSortOrder(s string) (descending bool, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", SortAscending:
		return false, nil
	case SortDescending:
		return true, nil
	}
	return false, BadRequest(scimerrors.ScimTypeInvalidValue, "sortOrder %q is not \"ascending\" or \"descending\"", s)
}

// Less returns the ascending order of resources by the attribute sortBy (RFC 7644 §3.4.2.3): strings
// case-insensitively unless the attribute is caseExact, numbers numerically, dateTimes in time, false before true.
// A multi-valued attribute sorts by its primary value, else its first; a complex one by its "value"
// sub-attribute (sort by another with "name.familyName"). Resources without a value sort last. An unknown or
// unsortable sortBy is a 400 invalidValue scimerrors.ScimError. For descending order, swap the arguments:
// resources without a value then come first, as the RFC asks.
func (rs Schema) Less(sortBy string) (func(a, b map[string]any) bool, error) {
	key, err := rs.sortKey(sortBy)
	if err != nil {
		return nil, err
	}
	return func(a, b map[string]any) bool {
		return compareSortKeys(key(a), key(b)) < 0
	}, nil
}

// SortResources sorts resources in place, stably, by sortBy and sortOrder (see Less and ParseSortOrder). An
// empty sortBy leaves the order unchanged.
func (rs Schema) SortResources(resources []map[string]any, sortBy, sortOrder string) error {
	descending, err := ParseSortOrder(sortOrder)
	if err != nil {
		return err
	}
	if strings.TrimSpace(sortBy) == "" {
		return nil
	}
	key, err := rs.sortKey(sortBy)
	if err != nil {
		return err
	}
	// Extract each key once: comparisons are O(n log n).
	keys := make([]sortKeyValue, len(resources))
	for i, r := range resources {
		keys[i] = key(r)
	}
	idx := make([]int, len(resources))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool {
		if descending {
			return compareSortKeys(keys[idx[j]], keys[idx[i]]) < 0
		}
		return compareSortKeys(keys[idx[i]], keys[idx[j]]) < 0
	})
	sorted := make([]map[string]any, len(resources))
	for i, k := range idx {
		sorted[i] = resources[k]
	}
	copy(resources, sorted)
	return nil
}

// sortKeyValue is a resource's sort key: missing, or a value of one kind.
type sortKeyValue struct {
	present bool
	kind    string // typeString, typeBoolean, typeDateTime, or "number"
	s       string
	n       number
	b       bool
	unix    int64
	nanos   int
}

// compareSortKeys orders two keys, missing last.
func compareSortKeys(a, b sortKeyValue) int {
	switch {
	case !a.present && !b.present:
		return 0
	case !a.present:
		return 1
	case !b.present:
		return -1
	}
	switch a.kind {
	case "number":
		return a.n.cmp(b.n)
	case typeBoolean:
		switch {
		case a.b == b.b:
			return 0
		case !a.b:
			return -1
		}
		return 1
	case typeDateTime:
		switch {
		case a.unix != b.unix:
			if a.unix < b.unix {
				return -1
			}
			return 1
		case a.nanos != b.nanos:
			if a.nanos < b.nanos {
				return -1
			}
			return 1
		}
		return 0
	}
	return strings.Compare(a.s, b.s)
}

// sortKey resolves sortBy and returns the extraction of its key from a resource.
func (rs Schema) sortKey(sortBy string) (func(map[string]any) sortKeyValue, error) {
	ref, err := rs.Resolve(sortBy)
	if err != nil {
		return nil, BadRequest(scimerrors.ScimTypeInvalidValue, "sortBy: %v", err)
	}
	if ref.IsContainer() {
		return nil, BadRequest(scimerrors.ScimTypeInvalidValue, "sortBy %q names a schema, not an attribute", sortBy)
	}
	sub := ref.Sub
	if sub == nil && ref.Attr.AttributeType() == typeComplex {
		v, ok := ref.Attr.SubAttributes().ContainsAttribute("value")
		if !ok {
			return nil, BadRequest(scimerrors.ScimTypeInvalidValue,
				"sortBy %q is complex; sort by one of its sub-attributes, e.g. %s.%s",
				sortBy, ref.Name(), firstSubAttributeName(ref.Attr))
		}
		sub = &v
	}
	target := ref.Attr
	if sub != nil {
		target = *sub
	}
	typ := target.AttributeType()
	caseExact := target.CaseExact()
	return func(res map[string]any) sortKeyValue {
		v, ok := ref.value(res)
		if !ok || v == nil {
			return sortKeyValue{}
		}
		if ref.Attr.MultiValued() {
			v = primaryOrFirst(v)
		}
		if sub != nil {
			m, ok := jsonObject(v)
			if !ok {
				return sortKeyValue{}
			}
			v, _ = getSubValue(m, sub.Name())
		}
		return makeSortKey(typ, caseExact, v)
	}, nil
}

// primaryOrFirst picks the element of a multi-valued attribute to sort by.
func primaryOrFirst(v any) any {
	list := listOf(v)
	for _, e := range list {
		if m, ok := jsonObject(e); ok {
			if pv, ok := getSubValue(m, "primary"); ok {
				if b, ok := parseBoolValue(pv); ok && b {
					return e
				}
			}
		}
	}
	for _, e := range list {
		if !jsonEmpty(e) {
			return e
		}
	}
	return nil
}

// makeSortKey turns a value of an attribute of type typ into a sort key; values of the wrong type are missing.
func makeSortKey(typ string, caseExact bool, v any) sortKeyValue {
	if jsonEmpty(v) {
		return sortKeyValue{}
	}
	switch typ {
	case typeInteger, typeDecimal:
		if n, ok := toNumber(v); ok {
			return sortKeyValue{present: true, kind: "number", n: n}
		}
	case typeBoolean:
		if b, ok := parseBoolValue(v); ok {
			return sortKeyValue{present: true, kind: typeBoolean, b: b}
		}
	case typeDateTime:
		if s, ok := v.(string); ok {
			if t, ok := parseDateTime(s); ok {
				return sortKeyValue{present: true, kind: typeDateTime, unix: t.Unix(), nanos: t.Nanosecond()}
			}
		}
	default:
		if s, ok := v.(string); ok {
			if !caseExact {
				s = strings.ToLower(s)
			}
			return sortKeyValue{present: true, kind: typeString, s: s}
		}
	}
	return sortKeyValue{}
}
