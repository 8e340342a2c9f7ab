package pantherfake

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
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
