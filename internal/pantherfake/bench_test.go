package pantherfake

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
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
