package pantherfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"strings"
	"testing"
)

// sourceURL is the fake's HTTP source URL given its GraphQL URL.
func sourceURL(graphQL string) string {
	return strings.TrimSuffix(graphQL, Path) + HTTPSourcePath + "test-source"
}

func postSource(t *testing.T, url string, body []byte, headers map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func sign(h func() hash.Hash, key string, body []byte) string {
	m := hmac.New(h, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestHTTPSourceAuthentication(t *testing.T) {
	body := []byte(`{"eventId":"1"}` + "\n" + `{"eventId":"2"}` + "\n")
	tests := []struct {
		name    string
		auth    HTTPSourceAuth
		headers map[string]string
		want    int
	}{
		{"none accepts anything", HTTPSourceAuth{}, nil, 200},
		{"shared secret", HTTPSourceAuth{Method: SourceAuthSharedSecret, Header: "X-Token", Secret: "s3cret"},
			map[string]string{"X-Token": "s3cret"}, 200},
		{"shared secret, header name in another case", HTTPSourceAuth{Method: SourceAuthSharedSecret, Header: "x-token", Secret: "s3cret"},
			map[string]string{"X-TOKEN": "s3cret"}, 200},
		{"shared secret wrong", HTTPSourceAuth{Method: SourceAuthSharedSecret, Header: "X-Token", Secret: "s3cret"},
			map[string]string{"X-Token": "s3cret2"}, 401},
		{"shared secret in another header", HTTPSourceAuth{Method: SourceAuthSharedSecret, Header: "X-Token", Secret: "s3cret"},
			map[string]string{"X-Other": "s3cret"}, 401},
		{"bearer", HTTPSourceAuth{Method: SourceAuthBearer, Secret: "tok"},
			map[string]string{"Authorization": "Bearer tok"}, 200},
		{"bearer wrong", HTTPSourceAuth{Method: SourceAuthBearer, Secret: "tok"},
			map[string]string{"Authorization": "Bearer tok2"}, 401},
		{"bearer missing", HTTPSourceAuth{Method: SourceAuthBearer, Secret: "tok"}, nil, 401},
		{"hmac sha256", HTTPSourceAuth{Method: SourceAuthHMAC, Header: "X-Sig", Algorithm: "sha256", Secret: "k"},
			map[string]string{"X-Sig": sign(sha256.New, "k", body)}, 200},
		{"hmac sha1", HTTPSourceAuth{Method: SourceAuthHMAC, Header: "X-Sig", Algorithm: "sha1", Secret: "k"},
			map[string]string{"X-Sig": sign(sha1.New, "k", body)}, 200},
		{"hmac sha384", HTTPSourceAuth{Method: SourceAuthHMAC, Header: "X-Sig", Algorithm: "sha384", Secret: "k"},
			map[string]string{"X-Sig": sign(sha512.New384, "k", body)}, 200},
		{"hmac sha512", HTTPSourceAuth{Method: SourceAuthHMAC, Header: "X-Sig", Algorithm: "sha512", Secret: "k"},
			map[string]string{"X-Sig": sign(sha512.New, "k", body)}, 200},
		{"hmac with another key", HTTPSourceAuth{Method: SourceAuthHMAC, Header: "X-Sig", Algorithm: "sha256", Secret: "k"},
			map[string]string{"X-Sig": sign(sha256.New, "other", body)}, 401},
		{"hmac of another body", HTTPSourceAuth{Method: SourceAuthHMAC, Header: "X-Sig", Algorithm: "sha256", Secret: "k"},
			map[string]string{"X-Sig": sign(sha256.New, "k", body[1:])}, 401},
		{"hmac with another algorithm", HTTPSourceAuth{Method: SourceAuthHMAC, Header: "X-Sig", Algorithm: "sha256", Secret: "k"},
			map[string]string{"X-Sig": sign(sha512.New, "k", body)}, 401},
		{"hmac not hex", HTTPSourceAuth{Method: SourceAuthHMAC, Header: "X-Sig", Algorithm: "sha256", Secret: "k"},
			map[string]string{"X-Sig": "zz"}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.auth.Validate(); err != nil {
				t.Fatal(err)
			}
			s, url := start(t, Options{HTTPSource: tc.auth})
			if got := postSource(t, sourceURL(url), body, tc.headers); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
			events := s.SourceEvents()
			if tc.want == 200 && (len(events) != 2 || events[1]["eventId"] != "2") {
				t.Errorf("kept %v, want both events", events)
			}
			if tc.want != 200 && len(events) != 0 {
				t.Errorf("kept %v from a refused request", events)
			}
			if n := s.Count(HTTPSourceOp); n != 1 {
				t.Errorf("call log has %d source calls, want 1", n)
			}
		})
	}
}

func TestHTTPSourcePayloads(t *testing.T) {
	s, url := start(t, Options{})
	src := sourceURL(url)
	for _, tc := range []struct {
		name string
		body string
		want int
		kept int
	}{
		{"JSON lines", `{"a":1}` + "\n\n" + `{"a":2}`, 200, 2},
		{"one object", `{"a":1}`, 200, 1},
		{"array", `[{"a":1},{"a":2},{"a":3}]`, 200, 3},
		{"not JSON", `{"a":1}` + "\nnope\n", 400, 0},
		{"empty", ``, 400, 0},
		{"over 1 MB", `{"a":"` + strings.Repeat("x", maxSourceBody) + `"}`, 413, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.SourceEvents())
			if got := postSource(t, src, []byte(tc.body), nil); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
			if kept := len(s.SourceEvents()) - before; kept != tc.kept {
				t.Errorf("kept %d events, want %d", kept, tc.kept)
			}
		})
	}
}

func TestHTTPSourceFaults(t *testing.T) {
	s, url := start(t, Options{RetryAfter: -1})
	src := sourceURL(url)
	one := []byte(`{"n":1}`)

	s.HTTPSourceDown(true)
	if got := postSource(t, src, one, nil); got != http.StatusServiceUnavailable {
		t.Errorf("down: %d", got)
	}
	// The GraphQL API is unaffected.
	if r := post(t, url, testKey, `{ roles { name } }`, nil); r.Status != 200 {
		t.Errorf("GraphQL while the source is down: %d", r.Status)
	}
	s.HTTPSourceDown(false)

	s.FailNext(HTTPSourceOp, 1, http.StatusTooManyRequests)
	if got := postSource(t, src, one, nil); got != http.StatusTooManyRequests {
		t.Errorf("FailNext: %d", got)
	}
	if r := post(t, url, testKey, `{ roles { name } }`, nil); r.Status != 200 {
		t.Errorf("GraphQL took the source's FailNext: %d", r.Status)
	}

	// A dropped answer: the events were taken, the client sees a broken connection.
	s.DropNext(HTTPSourceOp, 1)
	req, _ := http.NewRequest(http.MethodPost, src, bytes.NewReader(one))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("dropped answer arrived: %d", resp.StatusCode)
	}
	if got := postSource(t, src, []byte(`{"n":2}`), nil); got != 200 {
		t.Fatalf("after the drop: %d", got)
	}
	events := s.SourceEvents()
	if len(events) != 2 || events[0]["n"] != float64(1) || events[1]["n"] != float64(2) {
		t.Errorf("events = %v, want the dropped request's and the next", events)
	}
	reqs := s.SourceRequests()
	var statuses []int
	for _, r := range reqs {
		statuses = append(statuses, r.Status)
	}
	if want := []int{503, 429, 0, 200}; !equalInts(statuses, want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
}

func TestHTTPSourceListsEvents(t *testing.T) {
	_, url := start(t, Options{})
	src := sourceURL(url)
	if got := postSource(t, src, []byte(`{"n":1}`+"\n"+`{"n":2}`), nil); got != 200 {
		t.Fatal(got)
	}
	resp, err := http.Get(src)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(raw) != `{"n":1}`+"\n"+`{"n":2}`+"\n" {
		t.Errorf("GET = %d %q", resp.StatusCode, raw)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHTTPSourceAuthValidate(t *testing.T) {
	for _, tc := range []struct {
		auth HTTPSourceAuth
		ok   bool
	}{
		{HTTPSourceAuth{}, true},
		{HTTPSourceAuth{Method: SourceAuthSharedSecret, Header: "X", Secret: "s"}, true},
		{HTTPSourceAuth{Method: SourceAuthSharedSecret, Secret: "s"}, false},
		{HTTPSourceAuth{Method: SourceAuthSharedSecret, Header: "X"}, false},
		{HTTPSourceAuth{Method: SourceAuthHMAC, Header: "X", Algorithm: "md5", Secret: "s"}, false},
		{HTTPSourceAuth{Method: SourceAuthBearer}, false},
		{HTTPSourceAuth{Method: "basic", Secret: "s"}, false},
	} {
		if err := tc.auth.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v, want ok %v", tc.auth, err, tc.ok)
		}
	}
}
