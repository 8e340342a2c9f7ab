package scim

import (
	"net/http"
	"strings"

	"github.com/scim2/filter-parser/v2"
)

// lookupAttrs are the attributes, by resource path, whose equality filters skip the
// library's filter handling: the ones an index answers, which identity providers poll
// with (Okta's userName eq before every create, Entra's externalId eq and
// displayName eq).
var lookupAttrs = map[string][]string{
	"/Users":  {"userName", "externalId", "id"},
	"/Groups": {"displayName", "externalId", "id"},
}

// takeLookup parses the filter of a GET list request when it is a single
// `attribute eq "string"` on a lookup attribute, and removes it from the request the
// library sees; the handlers find it in the request state. elimity's filter handling
// runs a PEG parser and rebuilds the schema's attribute list, compiling regular
// expressions, on every request: half of a lookup's time (BENCHMARKS.md). Any other
// filter is left to the library, so its validation and errors are unchanged.
func takeLookup(r *http.Request, path string, st *reqState) {
	if r.Method != http.MethodGet {
		return
	}
	attrs, ok := lookupAttrs[path]
	if !ok {
		return
	}
	q := r.URL.Query()
	expr, ok := parseLookup(q.Get("filter"), attrs)
	if !ok || len(q["filter"]) != 1 {
		return
	}
	q.Del("filter")
	u := *r.URL
	u.RawQuery = q.Encode()
	r.URL = &u
	st.lookup = expr
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
