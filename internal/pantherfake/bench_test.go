package pantherfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/panther"
)

// BenchmarkUsersQuery100k measures the users query over loopback with 100k users, the size of
// organisation panther-scim is built for.
func BenchmarkUsersQuery100k(b *testing.B) {
	s := New(Options{APIKey: testKey, Seed: 1})
	for i := range 100_000 {
		if _, err := s.AddUser(fmt.Sprintf("user%06d@example.com", i), "Given", "Family", "Analyst"); err != nil {
			b.Fatal(err)
		}
	}
	url, stop, err := s.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	body := []byte(`{"query":"{ users { id email givenName familyName status enabled createdAt role { id name } } }"}`)
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("X-API-Key", testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		b.SetBytes(n)
	}
}

// BenchmarkUpdateUserCall is one updateUser call over loopback HTTP, as the bridge
// makes it during a reorganisation, with no injected latency: the double's own cost.
func BenchmarkUpdateUserCall(b *testing.B) {
	srv := New(Options{APIKey: "k"})
	url, stop, err := srv.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	u, err := srv.AddUser("bench@example.com", "B", "C", "Analyst")
	if err != nil {
		b.Fatal(err)
	}
	const q = `mutation updateUser($input: UpdateUserInput!) { updateUser(input: $input) { user { id email givenName familyName role { id name } } } }`
	roles := []string{"Admin", "Analyst"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := fmt.Sprintf(`{"query":%q,"variables":{"input":{"id":%q,"role":{"kind":"NAME","value":%q}}}}`, q, u.ID, roles[i%2])
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("X-API-Key", "k")
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatal(res.Status)
		}
	}
}

// discardWriter is an http.ResponseWriter that throws the body away, so that a benchmark
// measures the double's own work and not an HTTP client's.
type discardWriter struct {
	h      http.Header
	status int
	n      int64
}

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}
func (d *discardWriter) WriteHeader(status int) { d.status = status }
func (d *discardWriter) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	return len(p), nil
}

// BenchmarkUsersListing is the bridge's own users query (operations.graphql) over 100,000
// users, handled in process: the double's CPU and allocation for one listing, without the
// loopback and the client that BenchmarkUsersQuery100k also counts.
func BenchmarkUsersListing(b *testing.B) {
	s := New(Options{APIKey: testKey, Seed: 1, Now: func() time.Time { return time.Unix(1_700_000_000, 0) }})
	for i := range 100_000 {
		if _, err := s.AddUser(fmt.Sprintf("user%06d@example.com", i), "Given", "Family", "Analyst"); err != nil {
			b.Fatal(err)
		}
	}
	body, err := json.Marshal(map[string]any{"query": panther.Operations, "operationName": "users"})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
		req.Header.Set("X-API-Key", testKey)
		w := &discardWriter{}
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
		b.SetBytes(w.n)
	}
}
