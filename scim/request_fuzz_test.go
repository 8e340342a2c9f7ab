package scim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/panther-scim/panther-scim/scim/resource"
)

// filterSeeds are filters an IdP sends, and ones nested or chained enough to reach
// the limits or go far past them.
func filterSeeds() []string {
	return []string{
		`userName eq "bjensen@example.com"`,
		`displayName eq "Panther Admins"`,
		`emails[type eq "work" and value co "@example.com"]`,
		`members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		`not (userName sw "a") and (title pr or active eq true)`,
		nested("parens", resource.MaxFilterDepth),
		nested("parens", resource.MaxFilterDepth+1),
		nested("not", 1000),
		nested("brackets", 3),
		strings.Repeat("(", 100_000),
		strings.Repeat("not (", 100_000),
		strings.Repeat(`title pr and `, resource.MaxFilterTerms) + `title pr`,
		`displayName eq "` + strings.Repeat("x", resource.MaxFilterLength) + `"`,
		``, `(`, `not`, `emails[`, `userName eq`, `"`,
	}
}

// FuzzFilterRequest sends any filter through the server's entry points, the bound
// before parsing included: GET /Users?filter= (parsed by elimity, or by the lookup
// shortcut) and POST /Groups/.search. The answer is a list or a 400 invalidFilter,
// never a 5xx or a crash. Run: go test ./scim -run '^$' -fuzz FuzzFilterRequest
func FuzzFilterRequest(f *testing.F) {
	for _, s := range filterSeeds() {
		f.Add(s)
	}
	s := newTestServer(f)
	s.create("/Users", userBody("bjensen@example.com"))
	s.create("/Groups", groupBody("Panther Admins"))
	f.Fuzz(func(t *testing.T, filter string) {
		s.t = t
		for _, req := range []struct {
			method, target string
			body           any
		}{
			{"GET", "/Users?filter=" + url.QueryEscape(filter), nil},
			{"POST", "/Groups/.search", searchBody(map[string]any{"filter": filter})},
		} {
			code, body := s.do(req.method, req.target, req.body)
			switch {
			case code == http.StatusOK:
			case code == http.StatusBadRequest && body["scimType"] == "invalidFilter" && body["detail"] != "":
			default:
				t.Fatalf("%s %s: %d %v", req.method, req.target, code, body)
			}
		}
	})
}

// FuzzPatchPath sends a PATCH whose path (or, without one, the key of its value) is
// any string: the answer is 200 or a 400 with a scimType, never a 5xx or a crash,
// and the user stays readable. Run: go test ./scim -run '^$' -fuzz FuzzPatchPath
func FuzzPatchPath(f *testing.F) {
	for _, p := range append(filterSeeds(),
		`emails[type eq "work"].value`, `name.givenName`, `members`, `title`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`,
		`emails[`+nested("parens", resource.MaxFilterDepth)+`]`,
		`emails[`+nested("not", 50_000)+`]`,
	) {
		f.Add("add", p)
		f.Add("remove", p)
	}
	f.Add("replace", "")
	s := newTestServer(f)
	uid := s.create("/Users", userBody("bjensen@example.com"))
	f.Fuzz(func(t *testing.T, op, path string) {
		s.t = t
		ops := []any{
			map[string]any{"op": op, "path": path, "value": "x@example.com"},
			map[string]any{"op": op, "value": map[string]any{path: "x"}},
		}
		for _, o := range ops {
			code, body := s.do("PATCH", "/Users/"+uid, patchBodyOf(o))
			switch {
			case code == http.StatusOK:
			case code == http.StatusBadRequest && body["scimType"] != nil && body["detail"] != "":
			default:
				t.Fatalf("PATCH %v: %d %v", o, code, body)
			}
		}
		if code, body := s.do("GET", "/Users/"+uid, nil); code != http.StatusOK {
			t.Fatalf("GET after PATCH: %d %v", code, body)
		}
	})
}
