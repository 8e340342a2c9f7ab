package panther

import (
	"errors"
	"sync"
	"time"
)

// Observer receives one event per finished Client call and one per retry, for metrics or logs.
// Its methods are called from many goroutines at once and must not block.
type Observer interface {
	// Call reports a finished call of op (e.g. "inviteUser") with its outcome (OutcomeOK,
	// OutcomeNotFound, ...) and its whole duration, retries and waits included.
	Call(op, outcome string, d time.Duration)
	// Retry reports that op is about to be tried again, and why: "status_429", "status_503",
	// "status_5xx" (other 5xx), "timeout" (no answer within Config.Timeout), "network" (refused,
	// reset, DNS...), "bad_response" (an unreadable 200), "graphql_error" (an internal or
	// rate-limit error in the GraphQL answer), "queue" (no free slot or rate token in time) or
	// "lookup_failed" (the lookup that decides whether a create may be re-sent failed).
	Retry(op, reason string)
}

// RetriesKey is the key under which Stats counts an operation's retries.
const RetriesKey = "retries"

// stats counts calls per operation and outcome, and retries per operation.
type stats struct {
	mu     sync.Mutex
	counts map[string]map[string]int64
}

func (s *stats) add(op, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = make(map[string]map[string]int64)
	}
	m := s.counts[op]
	if m == nil {
		m = make(map[string]int64)
		s.counts[op] = m
	}
	m[key]++
}

func (s *stats) snapshot() map[string]map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]int64, len(s.counts))
	for op, m := range s.counts {
		c := make(map[string]int64, len(m))
		for k, v := range m {
			c[k] = v
		}
		out[op] = c
	}
	return out
}

// Stats returns a snapshot of the counters: operation -> outcome -> finished calls, and
// operation -> RetriesKey -> retries. Counters only grow; a Prometheus exporter reads them as
// counters. The lookups that InviteUser and CreateRole make to decide whether a failed
// attempt took effect are counted under their own operation (userByEmail, roleByName).
func (c *Client) Stats() map[string]map[string]int64 {
	return c.stats.snapshot()
}

// UnclassifiedObserver is an Observer that is also told of every Panther error the client
// could not classify (a GraphQL error whose code and message match no known class, an
// unexpected HTTP answer), by the operation Panther answered.
type UnclassifiedObserver interface {
	Unclassified(op string)
}

// maxUnclassifiedLogged bounds the distinct (operation, code, message) triples remembered: a
// Panther that puts ids or times in its messages must not grow the set without end.
const maxUnclassifiedLogged = 1000

// unclassifiedLog remembers which unclassified errors have been logged.
type unclassifiedLog struct {
	mu   sync.Mutex
	seen map[[3]string]bool
	full bool
}

// first reports whether the triple is new (and remembers it), while there is room.
func (u *unclassifiedLog) first(op, code, msg string) (first, full bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := [3]string{op, code, msg}
	if u.seen[k] {
		return false, false
	}
	if len(u.seen) >= maxUnclassifiedLogged {
		full = !u.full
		u.full = true
		return false, full
	}
	if u.seen == nil {
		u.seen = map[[3]string]bool{}
	}
	u.seen[k] = true
	return true, false
}

// noteUnclassified counts and (once per operation, code and message) logs an error of the
// call op that fits no class. An error of a lookup made inside another call is noted under
// the lookup's own operation, once.
func (c *Client) noteUnclassified(op string, err error) {
	var e *Error
	if !errors.As(err, &e) || e.Kind != nil || e.Op != op {
		return
	}
	if o, ok := c.cfg.Observer.(UnclassifiedObserver); ok {
		o.Unclassified(op)
	}
	if c.cfg.Logger == nil {
		return
	}
	first, full := c.unknown.first(op, e.Code, e.Message)
	switch {
	case first:
		// Message is Panther's text with the API token removed (redact), never the request.
		c.cfg.Logger.Warn("Panther answered an error panther-scim does not recognise (logged once per operation, code and message)",
			"operation", op, "code", e.Code, "message", e.Message, "status", e.StatusCode)
	case full:
		c.cfg.Logger.Warn("too many different unrecognised Panther errors; no more are logged (they are still counted)",
			"distinct", maxUnclassifiedLogged)
	}
}

func (c *Client) observeCall(op string, err error, d time.Duration) {
	c.noteUnclassified(op, err)
	o := outcome(err)
	c.stats.add(op, o)
	if c.cfg.Observer != nil {
		c.cfg.Observer.Call(op, o, d)
	}
}

func (c *Client) observeRetry(op, reason string) {
	c.stats.add(op, RetriesKey)
	if c.cfg.Observer != nil {
		c.cfg.Observer.Retry(op, reason)
	}
}
