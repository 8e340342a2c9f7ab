package scim

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// TestUsersAndGroupsOnFake drives /Users and /Groups, served by the one resource
// handler, over a fakeDirectory: create, read with the references each shows (a
// user's groups, a group's members), lookups and a scan, PATCH, If-Match, DELETE.
func TestUsersAndGroupsOnFake(t *testing.T) {
	s, _ := newFakeServer(t)
	ada := userBody("Ada@example.com")
	ada["name"] = map[string]any{"givenName": "Ada", "familyName": "Lovelace"}
	uid := s.create("/Users", ada)
	bob := s.create("/Users", userBody("bob@example.com"))
	eng := groupBody("Engineering")
	eng["members"] = []any{map[string]any{"value": uid}}
	gid := s.create("/Groups", eng)
	base := "https://scim.example.com/scim/v2"

	code, u := s.do("GET", "/Users/"+uid, nil)
	groups, _ := u["groups"].([]any)
	if code != http.StatusOK || len(groups) != 1 {
		t.Fatalf("GET user: %d %v", code, u)
	}
	if g := groups[0].(map[string]any); g["value"] != gid || g["display"] != "Engineering" || g["$ref"] != base+"/Groups/"+gid {
		t.Errorf("user's group %v", g)
	}
	if loc := u["meta"].(map[string]any)["location"]; loc != base+"/Users/"+uid {
		t.Errorf("meta.location %v", loc)
	}
	code, g := s.do("GET", "/Groups/"+gid, nil)
	members, _ := g["members"].([]any)
	if code != http.StatusOK || len(members) != 1 || members[0].(map[string]any)["display"] != "Ada@example.com" {
		t.Fatalf("GET group: %d %v", code, g)
	}
	if code, g = s.do("GET", "/Groups/"+gid+"?excludedAttributes=members", nil); code != http.StatusOK || g["members"] != nil {
		t.Errorf("excludedAttributes=members: %d %v", code, g)
	}

	for _, tc := range []struct {
		target string
		want   int
	}{
		{"/Users?filter=" + url.QueryEscape(`userName eq "ADA@example.com"`), 1},   // the lookup shortcut
		{"/Users?filter=" + url.QueryEscape(`(userName eq "ada@example.com")`), 1}, // the library's filter, an index
		{"/Users?filter=" + url.QueryEscape(`name.familyName co "love"`), 1},       // a scan
		{"/Users?filter=" + url.QueryEscape(`userName sw "b"`) + "&sortBy=userName", 1},
		{"/Users", 2},
		{"/Groups?filter=" + url.QueryEscape(`displayName eq "engineering"`), 1},
		{"/Groups?filter=" + url.QueryEscape(`members[value eq "`+uid+`"]`), 1},
		{"/Groups?filter=" + url.QueryEscape(`members[value eq "`+bob+`"]`), 0},
	} {
		code, list := s.do("GET", tc.target, nil)
		if code != http.StatusOK || list["totalResults"] != float64(tc.want) {
			t.Errorf("GET %s: %d %v, want %d results", tc.target, code, list, tc.want)
		}
	}
	if code, list := s.do("POST", "/Groups/.search", searchBody(map[string]any{"filter": `displayName sw "Eng"`})); code != http.StatusOK || list["totalResults"] != float64(1) {
		t.Errorf(".search: %d %v", code, list)
	}

	// A group PATCH answers 204 (Entra asks for it) unless the request asks for
	// attributes, which want the resource.
	code, g = s.do("PATCH", "/Groups/"+gid, patchBodyOf(
		map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": bob}}},
		map[string]any{"op": "remove", "path": `members[value eq "` + uid + `"]`},
	))
	if code != http.StatusNoContent || g != nil {
		t.Fatalf("PATCH group: %d %v, want 204 without a body", code, g)
	}
	_, g = s.do("GET", "/Groups/"+gid, nil)
	members, _ = g["members"].([]any)
	if len(members) != 1 || members[0].(map[string]any)["value"] != bob {
		t.Fatalf("group after PATCH: %v", g)
	}
	code, g = s.do("PATCH", "/Groups/"+gid+"?excludedAttributes=members", patchBodyOf(
		map[string]any{"op": "replace", "path": "externalId", "value": "ext-1"}))
	if code != http.StatusOK || g["externalId"] != "ext-1" || g["members"] != nil {
		t.Fatalf("PATCH group with excludedAttributes: %d %v, want 200 with the group", code, g)
	}
	code, u = s.do("PATCH", "/Users/"+uid, patchBodyOf(map[string]any{"op": "replace", "path": "title", "value": "Countess"}))
	if code != http.StatusOK || u["title"] != "Countess" || u["groups"] != nil {
		t.Fatalf("PATCH user: %d %v", code, u)
	}

	rec := httptest.NewRecorder()
	req := httptest.NewRequest("PUT", "/Groups/"+gid, strings.NewReader(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eng"}`))
	req.Header.Set("If-Match", `W/"1"`)
	s.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusPreconditionFailed {
		t.Errorf("PUT with a stale If-Match: %d %s", rec.Code, rec.Body)
	}
	code, body := s.do("POST", "/Users", userBody("ada@EXAMPLE.com"))
	wantError(t, code, body, http.StatusConflict, "uniqueness", "userName")

	if code, _ := s.do("DELETE", "/Users/"+bob, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE user: %d", code)
	}
	code, body = s.do("GET", "/Users/"+bob, nil)
	if code != http.StatusNotFound || body["status"] != "404" {
		t.Errorf("GET deleted user: %d %v", code, body)
	}
	if code, g = s.do("GET", "/Groups/"+gid, nil); code != http.StatusOK || g["members"] != nil {
		t.Errorf("group after its member's deletion: %d %v", code, g)
	}
}

// TestErrorsOnFake checks how the handlers answer the Service's errors: each
// provisioning code as its status and scimType, Retry-After where the client should
// come back, and any other error as an opaque 500 that never shows its text.
func TestErrorsOnFake(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		scimType   string
		retryAfter string
		detail     string
	}{
		{"unavailable", &provision.Error{Code: provision.CodeUnavailable, Detail: "Panther is unavailable; retry later", RetryAfter: 6500 * time.Millisecond}, 503, "", "7", "Panther is unavailable"},
		{"invalid", &provision.Error{Code: provision.CodeInvalid, Detail: "no usable email"}, 400, "invalidValue", "", "no usable email"},
		{"too many", &provision.Error{Code: provision.CodeTooMany, Detail: "too much at once"}, 400, "tooMany", "", "too much at once"},
		{"store cannot write", provision.ErrStoreWrite, 503, "", "30", "nothing was changed"},
		{"anything else", errors.New("panther said: secret@example.com is invalid"), 500, "", "", "Internal server error."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, d := newFakeServer(t)
			uid := s.create("/Users", userBody("ada@example.com"))
			d.fail = tc.err
			for _, req := range []struct{ method, target string }{{"POST", "/Users"}, {"PATCH", "/Users/" + uid}} {
				var body any = userBody("bob@example.com")
				if req.method == "PATCH" {
					body = patchBodyOf(map[string]any{"op": "replace", "path": "title", "value": "x"})
				}
				raw := httptest.NewRecorder()
				r := httptest.NewRequest(req.method, req.target, strings.NewReader(mustMarshal(t, body)))
				s.h.ServeHTTP(raw, r)
				code, out := raw.Code, decodeBody(t, raw.Body.Bytes())
				wantError(t, code, out, tc.status, tc.scimType, tc.detail)
				if got := raw.Header().Get("Retry-After"); got != tc.retryAfter {
					t.Errorf("%s: Retry-After %q, want %q", req.method, got, tc.retryAfter)
				}
				if strings.Contains(raw.Body.String(), "secret") {
					t.Errorf("%s: the error's text reached the client: %s", req.method, raw.Body)
				}
			}
		})
	}
}

func mustMarshal(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func decodeBody(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return out
}
