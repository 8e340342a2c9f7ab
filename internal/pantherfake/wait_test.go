package pantherfake

import (
	"context"
	"testing"
	"time"
)

func TestWaitHoldsUntilTheDeadline(t *testing.T) {
	for _, d := range []time.Duration{0, 300 * time.Microsecond, fineWait, 5 * time.Millisecond} {
		deadline := time.Now().Add(d)
		if !wait(context.Background(), deadline) {
			t.Fatalf("wait(%v) = false without a cancelled context", d)
		}
		if early := time.Until(deadline); early > 0 {
			t.Errorf("wait(%v) returned %v before its deadline", d, early)
		}
	}
}

func TestWaitStopsWhenTheClientLeaves(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(5 * time.Millisecond); cancel() }()
	start := time.Now()
	if wait(ctx, start.Add(time.Minute)) {
		t.Fatal("wait = true after its context was cancelled")
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("wait took %v after a cancel at 5 ms", took)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if wait(ctx, time.Now().Add(time.Millisecond)) {
		t.Error("wait = true with a context cancelled before it began (inside the fine part)")
	}
}

// BenchmarkWaitLateness reports how late wait returns past a 20 ms deadline, with 8
// waiting at once as in the load measurements; BenchmarkTimerLateness the same for a
// plain Go timer, which wait improves on.
func BenchmarkWaitLateness(b *testing.B) {
	benchLateness(b, func(d time.Duration) { wait(context.Background(), time.Now().Add(d)) })
}

func BenchmarkTimerLateness(b *testing.B) {
	benchLateness(b, time.Sleep)
}

func benchLateness(b *testing.B, sleep func(time.Duration)) {
	const d = 20 * time.Millisecond
	b.SetParallelism(4) // 8 goroutines on two CPUs
	var late time.Duration
	var n int64
	ch := make(chan time.Duration, 1024)
	done := make(chan struct{})
	go func() {
		for l := range ch {
			late += l
			n++
		}
		close(done)
	}()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			sleep(d)
			ch <- time.Since(start) - d
		}
	})
	close(ch)
	<-done
	if n > 0 {
		b.ReportMetric(float64(late.Microseconds())/float64(n), "µs-late/op")
	}
}
