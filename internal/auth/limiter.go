package auth

import (
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// failureLimiter keeps a token bucket of authentication failures per address.
// A nil *failureLimiter allows everything.
type failureLimiter struct {
	mu       sync.Mutex
	rate     rate.Limit // failures per second
	burst    int
	max      int
	refill   time.Duration // time for an empty bucket to fill up again
	buckets  map[string]*bucket
	nextScan time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newFailureLimiter(fl FailureLimit) *failureLimiter {
	perSecond := fl.PerMinute / 60
	maxAddrs := fl.MaxAddresses
	if maxAddrs <= 0 {
		maxAddrs = 10000
	}
	return &failureLimiter{
		rate:    rate.Limit(perSecond),
		burst:   fl.Burst,
		max:     maxAddrs,
		refill:  time.Duration(float64(fl.Burst) / perSecond * float64(time.Second)),
		buckets: make(map[string]*bucket),
	}
}

// failure records one failure from addr at now. It reports whether the failure is
// within the limit and, when it is not, how long until the next one would be.
func (l *failureLimiter) failure(addr string, now time.Time) (allowed bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[addr]
	if b == nil {
		l.makeRoom(now)
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[addr] = b
	}
	b.last = now
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - b.lim.TokensAt(now)
	return false, time.Duration(missing / float64(l.rate) * float64(time.Second))
}

// makeRoom drops buckets that have refilled (they are the same as no bucket), at
// most once a minute unless the table is full; if it is still full, it forgets
// everything rather than grow.
func (l *failureLimiter) makeRoom(now time.Time) {
	if len(l.buckets) < l.max && now.Before(l.nextScan) {
		return
	}
	l.nextScan = now.Add(time.Minute)
	for k, b := range l.buckets {
		if now.Sub(b.last) >= l.refill {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.max {
		clear(l.buckets)
	}
}

// clientAddr is the default address key: the IP of RemoteAddr ("ip:port" from
// net/http, or a bare IP after a RealIP middleware), IPv6 grouped by /64 since
// one client usually holds a whole /64.
func clientAddr(r *http.Request) string {
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ip = ap.Addr()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		ip = a
	} else {
		return r.RemoteAddr
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
