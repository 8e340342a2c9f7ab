package scim

import (
	"net/http"
	"strings"

	"github.com/scim2/filter-parser/v2"

	"github.com/panther-scim/panther-scim/scim/resource"
)

// lookupAttrs are the attributes, by resource path, whose equality filters skip the
// library's filter handling: the ones an index answers, which identity providers poll
// with (Okta's userName eq before every create, Entra's externalId eq and
// displayName eq).
var lookupAttrs = map[string][]string{
	"/Users":  {"userName", "externalId", "id"},
	"/Groups": {"displayName", "externalId", "id"},
}

// takeFilter parses and checks the filter of a GET list request of /Users or
// /Groups, and removes it from the request the library sees; the handlers find it in
// the request state. A single `attribute eq "string"` on a lookup attribute, what
// identity providers poll with, is read without the PEG parser (parseLookup): elimity's
// filter handling runs it and rebuilds the schema's attribute list, compiling regular
// expressions, on every request, half of a lookup's time (BENCHMARKS.md). Any other
// filter goes through resource.ParseFilter, which reads bare values as
// QuoteBareValues does, and is checked against the schema, so that a bad filter is a
// 400 invalidFilter whose detail says what is wrong (the library's says only that
// something is), and common attributes such as meta.created are known. Several
// filter parameters, or an empty one, are left to the library.
func takeFilter(r *http.Request, path string, st *reqState) error {
	if r.Method != http.MethodGet {
		return nil
	}
	attrs, ok := lookupAttrs[path]
	if !ok {
		return nil
	}
	q := r.URL.Query()
	if len(q["filter"]) != 1 || strings.TrimSpace(q.Get("filter")) == "" {
		return nil
	}
	expr, err := checkedFilter(path, q.Get("filter"), attrs)
	if err != nil {
		return err
	}
	q.Del("filter")
	u := *r.URL
	u.RawQuery = q.Encode()
	r.URL = &u
	st.lookup = expr
	return nil
}

// checkedFilter parses a filter of the resources at path and checks it against their
// schema (see takeFilter).
func checkedFilter(path, f string, attrs []string) (filter.Expression, error) {
	if expr, ok := parseLookup(f, attrs); ok {
		return expr, nil
	}
	expr, err := resource.ParseFilter(f)
	if err != nil {
		return nil, err
	}
	rs, _ := resourceSchemaOf(path)
	if _, err := rs.CompileFilter(expr); err != nil {
		return nil, err
	}
	return expr, nil
}

// parseLookup parses `attribute eq "value"` (single spaces, operator in any case) for
// one of attrs (in any case), giving the expression filter.ParseFilter would. A value
// with an escape, or anything else, is not a lookup.
func parseLookup(f string, attrs []string) (filter.Expression, bool) {
	f = strings.TrimSpace(f)
	name, rest, ok := strings.Cut(f, " ")
	if !ok {
		return nil, false
	}
	known := false
	for _, a := range attrs {
		known = known || strings.EqualFold(a, name)
	}
	if !known {
		return nil, false
	}
	op, value, ok := strings.Cut(rest, " ")
	if !ok || !strings.EqualFold(op, "eq") {
		return nil, false
	}
	if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
		return nil, false
	}
	value = value[1 : len(value)-1]
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '"' || c == '\\' || c < 0x20 {
			return nil, false
		}
	}
	return &filter.AttributeExpression{
		AttributePath: filter.AttributePath{AttributeName: name},
		Operator:      filter.EQ,
		CompareValue:  value,
	}, true
}
