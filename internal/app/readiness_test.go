package app

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// A caller that found the cache stale but joined the flight after another run had
// stored a fresh result gets that result: the checks do not run twice in one period.
// (100 concurrent probes in one period sometimes made two Panther calls.) The clock
// plays the race: the caller's first look sees the old result as stale, the flight's
// look sees the fresh one.
func TestReadinessFlightRechecksTheCache(t *testing.T) {
	runs := 0
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := []time.Time{t0}
	r := &readiness{
		ttl: time.Minute,
		checks: []ReadinessCheck{{Name: "panther", Run: func(context.Context) (string, bool) {
			runs++
			return "ok", true
		}}},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		now: func() time.Time {
			now := clock[0]
			if len(clock) > 1 {
				clock = clock[1:]
			}
			return now
		},
	}
	first, err := r.result(context.Background()) // stamps t0
	if err != nil || runs != 1 || !first.ready {
		t.Fatalf("first probe: runs %d, err %v", runs, err)
	}
	// The second probe's own look: an hour later (stale); the flight's look: t0 again.
	clock = []time.Time{t0.Add(time.Hour), t0}
	second, err := r.result(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if runs != 1 || second != first {
		t.Errorf("the checks ran %d times; the second probe got a new result: %v", runs, second != first)
	}
}
