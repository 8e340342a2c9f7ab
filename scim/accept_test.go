package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

func TestCanonicalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/Users":                 "/Users",
		"/users":                 "/Users",
		"/USERS/":                "/Users",
		"/Users/":                "/Users",
		"/users//":               "/Users",
		"/users/abc":             "/Users/abc",
		"/users/abc/":            "/Users/abc",
		"/groups/.search":        "/Groups/.search",
		"/Groups/Abc-ID":         "/Groups/Abc-ID", // ids keep their case
		"/schemas/urn:x:User":    "/Schemas/urn:x:User",
		"/resourcetypes":         "/ResourceTypes",
		"/serviceproviderconfig": "/ServiceProviderConfig",
		"/":                      "/",
		"":                       "",
		"/Usersx":                "/Usersx",
		"/.search":               "/.search",
	} {
		if got := canonicalPath(in); got != want {
			t.Errorf("canonicalPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// Each form through the handler: the answer and what the directory holds.
func TestAcceptedForms(t *testing.T) {
	s, d := newFakeServer(t)
	uid := s.create("/users/", userBody("ada@example.com"))
	tests := []struct {
		name, method, target string
		body                 any
		status               int
		check                func(t *testing.T, body map[string]any)
	}{
		{"GET /Users/?filter= is the list", "GET", "/Users/?filter=userName%20eq%20%22ada@example.com%22", nil, 200, func(t *testing.T, b map[string]any) {
			if b["totalResults"] != float64(1) {
				t.Errorf("list: %v", b)
			}
		}},
		{"GET /USERS/{id}/", "GET", "/USERS/" + uid + "/", nil, 200, func(t *testing.T, b map[string]any) {
			if b["id"] != uid {
				t.Errorf("get: %v", b)
			}
		}},
		{"bare filter value", "GET", "/users?filter=userName%20sw%20ADA", nil, 200, func(t *testing.T, b map[string]any) {
			if b["totalResults"] != float64(1) {
				t.Errorf("list: %v", b)
			}
		}},
		{"bare filter value in .search", "POST", "/Users/.search", searchBody(map[string]any{"filter": "userName ew example.com and userName sw a"}), 200, func(t *testing.T, b map[string]any) {
			if b["totalResults"] != float64(1) {
				t.Errorf(".search: %v", b)
			}
		}},
		{"malformed filter stays 400", "GET", "/Users?filter=userName%20eq%20a%20b", nil, 400, nil},
		{"unknown attribute on PUT", "PUT", "/Users/" + uid, map[string]any{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "ada@example.com", "title": "Countess", "shoeSize": 4,
		}, 200, func(t *testing.T, b map[string]any) {
			if b["title"] != "Countess" || b["shoeSize"] != nil {
				t.Errorf("put: %v", b)
			}
			if u, _ := d.GetUser(context.Background(), uid); u.Attributes["shoeSize"] != nil || u.Attributes["title"] != "Countess" {
				t.Errorf("stored: %v", u.Attributes)
			}
		}},
		{"core URN container on POST", "POST", "/Users", map[string]any{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"urn:ietf:params:scim:schemas:core:2.0:User": map[string]any{"userName": "bob@example.com", "displayName": "Bob"},
		}, 201, func(t *testing.T, b map[string]any) {
			if b["userName"] != "bob@example.com" || b["displayName"] != "Bob" {
				t.Errorf("post: %v", b)
			}
		}},
		{"conflicting core URN container", "POST", "/Users", map[string]any{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "carl@example.com",
			"urn:ietf:params:scim:schemas:core:2.0:User": map[string]any{"userName": "carol@example.com"},
		}, 400, func(t *testing.T, b map[string]any) {
			if b["scimType"] != "invalidSyntax" || !strings.Contains(fmt.Sprint(b["detail"]), `"userName" is given twice`) {
				t.Errorf("answer: %v", b)
			}
		}},
		{"unknown PATCH path ignored", "PATCH", "/users/" + uid, patchBodyOf(
			map[string]any{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:CustomAttribute", "value": "x"},
			map[string]any{"op": "replace", "path": "nickName", "value": "Ada"},
		), 200, func(t *testing.T, b map[string]any) {
			if b["nickName"] != "Ada" {
				t.Errorf("patch: %v", b)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := s.do(tt.method, tt.target, tt.body)
			if code != tt.status {
				t.Fatalf("%s %s: %d %v, want %d", tt.method, tt.target, code, body, tt.status)
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
}

// A group PATCH answers 204 with the group's ETag, unless the request asks for
// attributes or excludedAttributes (200 with the group); a user PATCH answers 200 with
// the user, which Okta reads.
func TestPatchAnswer(t *testing.T) {
	s, _ := newFakeServer(t)
	uid := s.create("/Users", userBody("ada@example.com"))
	gid := s.create("/Groups", groupBody("Eng"))
	addAda := patchBodyOf(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": uid}}})
	rename := func(n string) map[string]any {
		return patchBodyOf(map[string]any{"op": "replace", "path": "displayName", "value": n})
	}
	tests := []struct {
		name, target string
		body         map[string]any
		status       int
		withBody     bool
	}{
		{"group", "/Groups/" + gid, addAda, http.StatusNoContent, false},
		{"group, only unknown attributes", "/Groups/" + gid, patchBodyOf(map[string]any{"op": "replace", "path": "owner", "value": "x"}), http.StatusNoContent, false},
		{"group with attributes", "/Groups/" + gid + "?attributes=displayName", rename("Eng2"), http.StatusOK, true},
		{"group with excludedAttributes (Entra)", "/Groups/" + gid + "?excludedAttributes=members", rename("Eng3"), http.StatusOK, true},
		{"user", "/Users/" + uid, patchBodyOf(map[string]any{"op": "replace", "path": "title", "value": "T"}), http.StatusOK, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, _ := json.Marshal(tt.body)
			rec := httptest.NewRecorder()
			s.h.ServeHTTP(rec, httptest.NewRequest("PATCH", tt.target, bytes.NewReader(raw)))
			if rec.Code != tt.status || (rec.Body.Len() > 0) != tt.withBody {
				t.Fatalf("%d %q, want %d with body %v", rec.Code, rec.Body, tt.status, tt.withBody)
			}
			get := httptest.NewRecorder()
			s.h.ServeHTTP(get, httptest.NewRequest("GET", strings.SplitN(tt.target, "?", 2)[0], nil))
			if etag := rec.Header().Get("ETag"); etag == "" || etag != get.Header().Get("ETag") {
				t.Errorf("ETag %q, the resource's is %q", etag, get.Header().Get("ETag"))
			}
		})
	}
}

// hangUpDirectory is a fakeDirectory whose writes wait, inside the call, for the
// test to cancel the client's request, then record the context they were given.
type hangUpDirectory struct {
	*fakeDirectory
	inside chan struct{} // closed when a write has started
	resume chan struct{} // closed by the test once the client has gone
	mu     sync.Mutex
	ctxErr []error // the write's context error after the client went
}

func (d *hangUpDirectory) wait(ctx context.Context) {
	close(d.inside)
	<-d.resume
	d.mu.Lock()
	d.ctxErr = append(d.ctxErr, ctx.Err())
	d.mu.Unlock()
}

func (d *hangUpDirectory) CreateUser(ctx context.Context, f provision.UserFields) (provision.User, error) {
	d.wait(ctx)
	return d.fakeDirectory.CreateUser(ctx, f)
}

func (d *hangUpDirectory) DeleteUser(ctx context.Context, id string, expect int64) error {
	d.wait(ctx)
	return d.fakeDirectory.DeleteUser(ctx, id, expect)
}

// A client that hangs up while its change is being made: the change is made with a
// context its hang-up does not cancel, the request is logged at info with status 499,
// and nothing is logged as an error.
func TestClientHangUp(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		body         any
		applied      func(d *fakeDirectory) bool
	}{
		{"POST", "POST", userBody("ada@example.com"), func(d *fakeDirectory) bool { return len(d.users) == 2 }},
		{"DELETE", "DELETE", nil, func(d *fakeDirectory) bool { return len(d.users) == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			d := &hangUpDirectory{fakeDirectory: newFakeDirectory(), inside: make(chan struct{}), resume: make(chan struct{})}
			existing, err := d.fakeDirectory.CreateUser(context.Background(), provision.UserFields{UserName: "old@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			h, err := NewHandler(d, d, Options{BaseURL: "https://scim.example.com/scim/v2", Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			target := "/Users"
			if tc.method == "DELETE" {
				target += "/" + existing.ID
			}
			var raw []byte
			if tc.body != nil {
				raw, _ = json.Marshal(tc.body)
			}
			ctx, hangUp := context.WithCancel(context.Background())
			rec := httptest.NewRecorder()
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(rec, httptest.NewRequest(tc.method, target, bytes.NewReader(raw)).WithContext(ctx))
			}()
			<-d.inside
			hangUp()
			// The server notices the hang-up while the change is still being made.
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(logs.String(), "goes on") {
				if time.Now().After(deadline) {
					t.Fatalf("the hang-up was not noticed:\n%s", logs.String())
				}
				time.Sleep(time.Millisecond)
			}
			close(d.resume)
			<-done

			if len(d.ctxErr) != 1 || d.ctxErr[0] != nil {
				t.Errorf("the write's context after the hang-up: %v, want not cancelled", d.ctxErr)
			}
			if !tc.applied(d.fakeDirectory) {
				t.Error("the change was not applied")
			}
			if rec.Code != StatusClientClosedRequest {
				t.Errorf("status %d, want %d", rec.Code, StatusClientClosedRequest)
			}
			var gone, debug bool
			for line := range strings.Lines(logs.String()) {
				var e map[string]any
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatal(err)
				}
				switch {
				case e["level"] == "ERROR" || e["level"] == "WARN":
					t.Errorf("logged at %s: %s", e["level"], line)
				case e["level"] == "INFO" && e["status"] == float64(StatusClientClosedRequest):
					gone = true
				case e["level"] == "DEBUG" && strings.Contains(fmt.Sprint(e["msg"]), "goes on"):
					debug = true
				}
			}
			if !gone || !debug {
				t.Errorf("logs (info 499 %v, debug %v):\n%s", gone, debug, logs.String())
			}
		})
	}
}

// lockedBuffer is a log buffer written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A list whose client hangs up is cancelled (the scan stops) and logged at info as 499.
func TestListHangUp(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	d := newFakeDirectory()
	h, err := NewHandler(d, d, Options{BaseURL: "https://scim.example.com/scim/v2", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/Users?filter=userName%20co%20%22x%22", nil).WithContext(ctx))
	if rec.Code != StatusClientClosedRequest || strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), `"status":499`) {
		t.Errorf("%d; logs:\n%s", rec.Code, logs.String())
	}
}

// The reporter logs each name once (in any case), counts every occurrence, and bounds
// the labels and the names it remembers.
func TestUnknownReporter(t *testing.T) {
	var logs bytes.Buffer
	counts := map[string]int{}
	u := newUnknownReporter(slog.New(slog.NewJSONHandler(&logs, nil)), func(label string) { counts[label]++ })
	ctx := context.Background()
	u.report(ctx, "User", "POST", []string{"adreses", "favouriteColour"})
	u.report(ctx, "User", "PATCH", []string{"ADRESES", "line\nbreak", strings.Repeat("x", maxUnknownLabelLen+1)})
	if counts["adreses"] != 2 || counts["favouriteColour"] != 1 || counts[UnknownOther] != 2 {
		t.Errorf("counts %v", counts)
	}
	if n := strings.Count(logs.String(), `"attribute":"adreses"`) + strings.Count(logs.String(), `"attribute":"ADRESES"`); n != 1 {
		t.Errorf("adreses logged %d times", n)
	}
	for i := range maxUnknownLogged + 10 {
		u.report(ctx, "User", "POST", []string{fmt.Sprintf("attr%d", i)})
	}
	labels := 0
	for l := range counts {
		if l != UnknownOther {
			labels++
		}
	}
	if labels != maxUnknownLabels {
		t.Errorf("%d labels, want %d", labels, maxUnknownLabels)
	}
	if n := strings.Count(logs.String(), "ignored an attribute"); n != maxUnknownLogged {
		t.Errorf("%d names logged, want %d", n, maxUnknownLogged)
	}
	if n := strings.Count(logs.String(), "further ones are counted but not logged"); n != 1 {
		t.Errorf("overflow line %d times", n)
	}
}
