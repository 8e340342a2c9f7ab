package panther_test

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
)

// fakeWithUsers starts a double holding n users spread over the default roles and
// one custom role, and a client for it.
func fakeWithUsers(t testing.TB, n int) (*pantherfake.Server, *panther.Client) {
	t.Helper()
	fake := pantherfake.New(pantherfake.Options{APIKey: "stream-key-0123456789", Seed: 3})
	if _, err := fake.AddRole("Auditors", []string{"AlertRead", "UserRead"}); err != nil {
		t.Fatal(err)
	}
	roles := []string{"Admin", "Analyst", "AnalystReadOnly", "Auditors"}
	for i := range n {
		if _, err := fake.AddUser(fmt.Sprintf("user%06d@example.com", i), "Given", fmt.Sprintf("Family%d", i), roles[i%len(roles)]); err != nil {
			t.Fatal(err)
		}
	}
	url, stop, err := fake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	c, err := panther.New(panther.Config{URL: url, Token: "stream-key-0123456789", RatePerSecond: -1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return fake, c
}

// The streamed listing is the generated code's, user for user.
func TestUsersStreamMatchesGeneratedCode(t *testing.T) {
	fake, c := fakeWithUsers(t, 500)
	ctx := context.Background()
	want, err := panther.GeneratedUsers(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 500 || !reflect.DeepEqual(got, want) {
		t.Fatalf("streamed %d users, generated %d; equal: %v", len(got), len(want), reflect.DeepEqual(got, want))
	}
	admins := 0
	for _, u := range got {
		if u.Admin {
			admins++
		}
	}
	if admins != 125 {
		t.Errorf("%d administrators, want 125", admins)
	}
	// A role changed between two listings is seen in the second.
	if err := fake.SetUserRole(got[1].ID, "Admin"); err != nil {
		t.Fatal(err)
	}
	again, err := c.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !again[1].Admin || again[1].RoleName != "Admin" || again[5].RoleName != "Analyst" {
		t.Errorf("after the change: %+v / %+v", again[1], again[5])
	}
}

// heapPeak runs f while sampling the live heap every 200 µs and returns the largest
// growth over the heap before it, in MB.
func heapPeak(f func()) float64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	f()
	close(done)
	if v := read(); v > peak.Load() {
		peak.Store(v)
	}
	return float64(peak.Load()-min(base, peak.Load())) / (1 << 20)
}

// BenchmarkUsersListing lists 100,000 users from the double on loopback, through the
// generated code (what Users did before) and as it now decodes them: time, bytes
// allocated, and the peak growth of the live heap (peak-MB).
func BenchmarkUsersListing(b *testing.B) {
	_, c := fakeWithUsers(b, 100_000)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		list func(context.Context, *panther.Client) ([]provision.PantherUser, error)
	}{
		{"generated", panther.GeneratedUsers},
		{"stream", func(ctx context.Context, c *panther.Client) ([]provision.PantherUser, error) { return c.Users(ctx) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var peak float64
			for b.Loop() {
				peak = max(peak, heapPeak(func() {
					us, err := bc.list(ctx, c)
					if err != nil || len(us) != 100_000 {
						b.Fatalf("%d users, %v", len(us), err)
					}
				}))
			}
			b.ReportMetric(peak, "peak-MB")
		})
	}
}

// Before its first listing the client makes room for as many users as ExpectUsers
// said (and an eighth more); after it, for as many as the last listing held, whatever
// it is told.
func TestUsersListingIsSizedFromTheHint(t *testing.T) {
	_, c := fakeWithUsers(t, 50)
	ctx := context.Background()
	c.ExpectUsers(400)
	us, err := c.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 50 || cap(us) != 450 {
		t.Fatalf("first listing: %d users in room for %d, want 50 in 450", len(us), cap(us))
	}
	c.ExpectUsers(400)
	if us, err = c.Users(ctx); err != nil {
		t.Fatal(err)
	}
	if len(us) != 50 || cap(us) != 50 {
		t.Fatalf("second listing: %d users in room for %d, want 50 in 50", len(us), cap(us))
	}
}
