package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestHostileRequestsAnswer400 sends, over HTTP, the requests issue 15 found costly
// or fatal: deeply nested filters (100,000 levels overflow the filter parser's stack,
// which ends the process), 10,000-operation PATCHes, and values longer than a store
// key. Each is a 400 whose detail names the limit; nothing is written, Panther is not
// called, and the server goes on answering.
func TestHostileRequestsAnswer400(t *testing.T) {
	e := newEnv(t)
	uid := e.createUser("ada@example.com", "Ada", "Lovelace")
	gid := e.createGroup("Engineering")
	calls := len(e.Fake.Calls())
	long := strings.Repeat("x", 40<<10)

	// A GET URL fits in the server's 64 KiB of headers with 20,000 levels (21 s of CPU
	// before the bound); a body takes 100,000 (a stack overflow).
	const urlDepth, depth = 20_000, 100_000
	filter := strings.Repeat("(", urlDepth) + url.QueryEscape(`userName eq "ada@example.com"`) + strings.Repeat(")", urlDepth)
	e.do("GET", "/Users?filter="+filter, nil).scimErr(t, http.StatusBadRequest, "invalidFilter")
	search := map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
		"filter":  strings.Repeat("not (", depth) + `userName eq "x"` + strings.Repeat(")", depth),
	}
	r := e.do("POST", "/Users/.search", search)
	r.scimErr(t, http.StatusBadRequest, "invalidFilter")
	if !strings.Contains(r.str("detail"), "limit") {
		t.Errorf("detail %q does not name the limit", r.str("detail"))
	}
	r = e.do("PATCH", "/Groups/"+gid, patchOp(map[string]any{"op": "remove", "path": "members[" + strings.Repeat("(", depth) + `value eq "x"` + strings.Repeat(")", depth) + "]"}))
	r.scimErr(t, http.StatusBadRequest, "invalidFilter")

	var adds []map[string]any
	for i := range 10_000 {
		adds = append(adds, map[string]any{"op": "add", "path": "emails", "value": []any{map[string]any{"value": fmt.Sprintf("a%d@example.com", i)}}})
	}
	r = e.do("PATCH", "/Users/"+uid, patchOp(adds...))
	r.scimErr(t, http.StatusBadRequest, "invalidValue")
	if !strings.Contains(r.str("detail"), "10000 operations") {
		t.Errorf("detail %q does not name the operations", r.str("detail"))
	}
	r = e.do("PATCH", "/Users/"+uid, patchOp(adds[:200]...))
	r.scimErr(t, http.StatusBadRequest, "invalidValue")
	if !strings.Contains(r.str("detail"), "emails") {
		t.Errorf("detail %q does not name the attribute", r.str("detail"))
	}

	tooLong := []struct {
		name, path string
		body       map[string]any
	}{
		{"userName", "/Users", newUser(long+"@example.com", "A", "B")},
		{"externalId", "/Users", func() map[string]any { u := newUser("bob@example.com", "B", "C"); u["externalId"] = long; return u }()},
		{"given name", "/Users", newUser("carol@example.com", strings.Repeat("C", 2000), "D")},
		{"displayName", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": long}},
	}
	for _, tc := range tooLong {
		r := e.do("POST", tc.path, tc.body)
		r.scimErr(t, http.StatusBadRequest, "invalidValue")
		if !strings.Contains(r.str("detail"), "limit") {
			t.Errorf("%s: detail %q does not name the limit", tc.name, r.str("detail"))
		}
	}
	e.do("PATCH", "/Users/"+uid, patchOp(map[string]any{"op": "replace", "path": "userName", "value": long})).
		scimErr(t, http.StatusBadRequest, "invalidValue")

	if n := len(e.Fake.Calls()); n != calls {
		t.Errorf("%d Panther calls for refused requests", n-calls)
	}
	r = e.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "ada@example.com"`), nil).must(t, http.StatusOK)
	if r.Body["totalResults"] != float64(1) {
		t.Fatalf("after the hostile requests: %s", r.Raw)
	}
	if got := e.do("GET", "/Users/"+uid, nil).must(t, http.StatusOK); got.Body["emails"].([]any)[0].(map[string]any)["value"] != "ada@example.com" || len(got.Body["emails"].([]any)) != 1 {
		t.Fatalf("user changed by refused PATCHes: %s", got.Raw)
	}
}
