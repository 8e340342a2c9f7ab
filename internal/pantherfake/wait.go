package pantherfake

import (
	"context"
	"time"
)

// fineWait is how much of a delay wait sleeps with fineSleep instead of a Go timer.
const fineWait = 2 * time.Millisecond

// wait holds a call until deadline, or until ctx ends (false). The injected latency is
// what load measurements divide by, so it must be what it says: a Go timer wakes a
// process that sits in epoll_wait at millisecond granularity, and under the
// measurements' load a 20 ms timer fired 0.78 ms late on average, 4% the double
// would have added to every call. So a Go timer (which ctx can interrupt) covers the
// delay but its last fineWait, and fineSleep the rest.
func wait(ctx context.Context, deadline time.Time) bool {
	if coarse := time.Until(deadline) - fineWait; coarse > 0 {
		t := time.NewTimer(coarse)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
	for {
		rest := time.Until(deadline)
		if rest <= 0 {
			return ctx.Err() == nil
		}
		fineSleep(rest)
	}
}
