package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
	"github.com/panther-scim/panther-scim/scim/resource"
)

// testServer is a SCIM handler under test. newTestServer serves it from the
// provisioning service over a store in a temporary directory, with no mapping (so no
// user is invited and Panther is never called); newFakeServer from a fakeDirectory.
type testServer struct {
	t testing.TB
	h http.Handler
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h, err := NewHandler(provision.New(st, nil, provision.Options{}), StoreRecords(st), Options{BaseURL: "https://scim.example.com/scim/v2"})
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{t: t, h: h}
}

// do serves one request; body is marshalled unless it is a string.
func (s *testServer) do(method, target string, body any) (int, map[string]any) {
	s.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			s.t.Fatal(err)
		}
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, httptest.NewRequest(method, target, bytes.NewReader(raw)))
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func (s *testServer) create(path string, body map[string]any) string {
	s.t.Helper()
	code, out := s.do("POST", path, body)
	if code != http.StatusCreated {
		s.t.Fatalf("POST %s: %d %v", path, code, out)
	}
	return out["id"].(string)
}

func userBody(userName string) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName}
}

func groupBody(name string) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name}
}

func patchBodyOf(ops ...any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

func searchBody(fields map[string]any) map[string]any {
	fields["schemas"] = []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}
	return fields
}

// wantError checks an RFC 7644 error answer.
func wantError(t testing.TB, code int, body map[string]any, status int, scimType string, fragments ...string) {
	t.Helper()
	if st, _ := body["scimType"].(string); code != status || body["status"] != strconv.Itoa(status) || st != scimType {
		t.Fatalf("answer %d %v, want %d %s", code, body, status, scimType)
	}
	detail, _ := body["detail"].(string)
	for _, f := range fragments {
		if !strings.Contains(detail, f) {
			t.Errorf("detail %q does not mention %q", detail, f)
		}
	}
}

// nested returns a filter nested depth levels deep in the given way.
func nested(kind string, depth int) string {
	switch kind {
	case "parens":
		return strings.Repeat("(", depth) + `userName eq "x"` + strings.Repeat(")", depth)
	case "not":
		return strings.Repeat("not (", depth) + `userName eq "x"` + strings.Repeat(")", depth)
	case "brackets":
		return "emails" + strings.Repeat("[", depth) + `type eq "work"` + strings.Repeat("]", depth)
	}
	panic(kind)
}

// TestNestedFiltersAnswer400 sends filters and paths nested 100,000 levels deep
// everywhere the server parses one: the GET filter and the .search filter (elimity
// parses both), PATCH paths (elimity) and pathless PATCH keys, attributes and sortBy.
// Without the bound, filter-parser overflows the goroutine stack (a fatal error that
// ends the process) or runs for minutes; with it each is a 400 naming the limit, and
// the server answers the next request.
func TestNestedFiltersAnswer400(t *testing.T) {
	s := newTestServer(t)
	uid := s.create("/Users", userBody("ada@example.com"))
	gid := s.create("/Groups", groupBody("Eng"))
	const depth = 100_000
	parens := nested("parens", depth)
	nots := nested("not", depth)
	deepPath := "emails[" + strings.Repeat("(", depth) + `type eq "work"` + strings.Repeat(")", depth) + "]"
	deepShort := nested("not", resource.MaxFilterDepth+1) // within the length limit: judged on its depth
	depthMsg := strconv.Itoa(resource.MaxFilterDepth)
	for _, tc := range []struct {
		name, method, target string
		body                 any
		scimType             string
		frags                []string
	}{
		{"GET filter", "GET", "/Users?filter=" + url.QueryEscape(parens), nil, "invalidFilter", []string{"the filter", "limit"}},
		{"GET filter, groups", "GET", "/Groups?filter=" + url.QueryEscape(nots), nil, "invalidFilter", []string{"the filter", "limit"}},
		{"GET filter, depth", "GET", "/Users?filter=" + url.QueryEscape(deepShort), nil, "invalidFilter", []string{"nests", depthMsg}},
		{"GET second filter", "GET", "/Users?filter=" + url.QueryEscape(`userName eq "a"`) + "&filter=" + url.QueryEscape(deepShort), nil, "invalidFilter", []string{depthMsg}},
		{".search filter", "POST", "/Users/.search", searchBody(map[string]any{"filter": nots}), "invalidFilter", []string{"search request", "limit"}},
		{".search filter, length", "POST", "/Users/.search", searchBody(map[string]any{"filter": `title eq "` + strings.Repeat("t", resource.MaxFilterLength) + `"`}), "invalidFilter", []string{"the filter", "limit"}},
		{".search filter, any case", "POST", "/Groups/.search", searchBody(map[string]any{"FILTER": deepShort}), "invalidFilter", []string{depthMsg}},
		{".search attributes", "POST", "/Users/.search", searchBody(map[string]any{"attributes": []string{"userName", strings.Repeat("a", resource.MaxFilterLength)}}), "invalidValue", []string{"attributes", "limit"}},
		{".search excludedAttributes", "POST", "/Users/.search", searchBody(map[string]any{"excludedAttributes": []string{"emails[" + deepShort + "]"}}), "invalidFilter", []string{"excludedAttributes", depthMsg}},
		{".search sortBy", "POST", "/Users/.search", searchBody(map[string]any{"sortBy": strings.Repeat("a", resource.MaxFilterLength+1)}), "invalidValue", []string{"sortBy", "limit"}},
		{"PATCH path", "PATCH", "/Users/" + uid, patchBodyOf(map[string]any{"op": "remove", "path": deepPath}), "invalidFilter", []string{"PATCH path", "limit"}},
		{"PATCH path, depth", "PATCH", "/Groups/" + gid, patchBodyOf(map[string]any{"op": "remove", "path": "members[" + deepShort + "]"}), "invalidFilter", []string{"PATCH path", depthMsg}},
		{"PATCH pathless key", "PATCH", "/Users/" + uid, patchBodyOf(map[string]any{"op": "add", "value": map[string]any{deepPath: "x"}}), "invalidFilter", []string{"key of the PATCH value", "limit"}},
		{"PATCH null path", "PATCH", "/Users/" + uid, patchBodyOf(map[string]any{"op": "add", "path": nil, "value": map[string]any{deepShort: "x"}}), "invalidFilter", []string{"key of the PATCH value", depthMsg}},
		{"PATCH extension key", "PATCH", "/Users/" + uid, patchBodyOf(map[string]any{"op": "add", "value": map[string]any{
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{deepShort: "x"}}}), "invalidFilter", []string{depthMsg}},
		{"attributes", "GET", "/Users?attributes=" + url.QueryEscape("userName,"+deepPath), nil, "invalidValue", []string{"attributes", "limit"}},
		{"excludedAttributes depth", "GET", "/Users/" + uid + "?excludedAttributes=" + url.QueryEscape("emails["+deepShort+"]"), nil, "invalidFilter", []string{"excludedAttributes", depthMsg}},
		{"sortBy", "GET", "/Users?sortBy=" + strings.Repeat("a", 2*resource.MaxFilterLength), nil, "invalidValue", []string{"sortBy", "limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := s.do(tc.method, tc.target, tc.body)
			wantError(t, code, body, http.StatusBadRequest, tc.scimType, tc.frags...)
		})
	}
	code, body := s.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "ada@example.com"`), nil)
	if code != http.StatusOK || body["totalResults"] != float64(1) {
		t.Fatalf("after the nested filters: %d %v", code, body)
	}
}

// TestPatchOperationsBoundedFirst checks that the number of operations is bounded
// before the library validates each one (about 70 µs each): with one operation too
// many, the last of which has an unknown path, the answer is the limit, not the path.
func TestPatchOperationsBoundedFirst(t *testing.T) {
	s := newTestServer(t)
	uid := s.create("/Users", userBody("ada@example.com"))
	ops := make([]any, resource.MaxPatchOperations+1)
	for i := range ops {
		ops[i] = map[string]any{"op": "replace", "path": "title", "value": fmt.Sprint(i)}
	}
	ops[len(ops)-1] = map[string]any{"op": "replace", "path": "noSuchAttribute", "value": "x"}
	code, body := s.do("PATCH", "/Users/"+uid, patchBodyOf(ops...))
	wantError(t, code, body, http.StatusBadRequest, "invalidValue", strconv.Itoa(resource.MaxPatchOperations+1)+" operations", "limit is "+strconv.Itoa(resource.MaxPatchOperations))
	code, body = s.do("PATCH", "/Users/"+uid, patchBodyOf(ops[:resource.MaxPatchOperations-1]...))
	if code != http.StatusOK || body["title"] != fmt.Sprint(resource.MaxPatchOperations-2) {
		t.Fatalf("%d operations: %d %v", resource.MaxPatchOperations-1, code, body)
	}
}

// TestListScanStopsWhenContextEnds checks that a filtered scan stops soon after the
// request's context ends, instead of reading the whole store for a client that left.
func TestListScanStopsWhenContextEnds(t *testing.T) {
	d := newFakeDirectory()
	const n = 2000
	for i := range n {
		if _, err := d.CreateUser(context.Background(), provision.UserFields{UserName: fmt.Sprintf("u%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := users.source
	read := 0
	doc := src.doc
	src.doc = func(u provision.User) map[string]any {
		if read++; read == 10 {
			cancel()
		}
		return doc(u)
	}
	expr, err := resource.ParseFilter(`userName co "@example.com"`)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/Users", nil).WithContext(ctx)
	recs, _, err := src.query(r, d, expr, 1, 100, "", "")
	if err != context.Canceled {
		t.Fatalf("query after cancel: %d records, err %v", len(recs), err)
	}
	if read > 10+scanCheckEvery {
		t.Fatalf("%d of %d records read after the context ended at the 10th", read, n)
	}
}

// BenchmarkNestedFilter400 measures the answer to a filter nested 100,000 levels deep
// (issue 15: a stack overflow after minutes; the target is under 10 ms), through the
// handler: a GET filter, a .search body and a PATCH path.
func BenchmarkNestedFilter400(b *testing.B) {
	s := newTestServer(b)
	uid := s.create("/Users", userBody("ada@example.com"))
	const depth = 100_000
	for _, tc := range []struct {
		name, method, target string
		body                 any
	}{
		{"GET", "GET", "/Users?filter=" + url.QueryEscape(nested("parens", depth)), nil},
		{"search", "POST", "/Users/.search", searchBody(map[string]any{"filter": nested("not", depth)})},
		{"PATCH", "PATCH", "/Users/" + uid, patchBodyOf(map[string]any{"op": "remove", "path": "emails[" + nested("not", depth) + "]"})},
	} {
		raw, _ := json.Marshal(tc.body)
		if tc.body == nil {
			raw = nil
		}
		b.Run(tc.name, func(b *testing.B) {
			// CPU time as well as wall time: on a shared machine it is the steadier figure.
			cpu0 := cpuTime()
			for b.Loop() {
				rec := httptest.NewRecorder()
				s.h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, bytes.NewReader(raw)))
				if rec.Code != http.StatusBadRequest {
					b.Fatalf("status %d", rec.Code)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
