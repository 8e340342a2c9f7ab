package panther

import (
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

func (c *Client) observeCall(op string, err error, d time.Duration) {
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
