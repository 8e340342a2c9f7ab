// Package yield lets a long computation (a reconcile's listing decode and store scan)
// give its core, now and then, to the requests waiting for one.
//
// runtime.Gosched alone is not enough for that. It lets the goroutines queued on the
// yielding goroutine's own P run, but a request's goroutine is usually readied on the
// other P, whose thread must first be given a core by the kernel, and the kernel lets a
// busy thread finish its time slice (a few milliseconds under EEVDF) before it runs a
// woken one. So Now also ends the thread's slice (sched_yield on Linux). Neither sleeps:
// when nothing waits, a yield costs a few microseconds (BenchmarkNow), a few milliseconds
// in all for a reconcile of 100,000 users; when something does, it runs first.
package yield

import "runtime"

// Now lets the goroutines and then the threads waiting for a core run before the caller
// goes on.
func Now() {
	runtime.Gosched()
	_ = osYield() // cannot fail on Linux; a no-op elsewhere
}

// Counter yields every Every calls of Tick: a loop calls Tick once per item, with Every
// chosen so that the items between two yields take a fraction of a millisecond.
type Counter struct {
	Every int
	n     int
}

// Tick counts one item and reports whether it yielded.
func (c *Counter) Tick() bool {
	if c.n++; c.n < c.Every {
		return false
	}
	c.n = 0
	Now()
	return true
}
