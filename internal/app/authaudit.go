package app

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/panther-scim/panther-scim/internal/auth"
	"github.com/panther-scim/panther-scim/internal/provision"
)

// ActionAuthFailed is the audit action of a failed SCIM authentication.
const ActionAuthFailed = "auth.failed"

// Bounds of what AuthFailureLog writes per flush (one transaction a second): a client
// failing at any rate, from any number of addresses, costs the store at most
// maxAuthEvents single entries plus maxAuthKeys counted ones plus one overflow entry.
const (
	authFlushEvery   = time.Second
	maxAuthEvents    = 20 // single-failure entries per flush, all addresses together
	maxAuthPerKey    = 5  // single-failure entries per flush for one address and reason
	maxAuthKeys      = 20 // (address, reason, limited) groups per flush
	reasonOverflow   = "various"
	outcomeRefused   = "refused"
	outcomeThrottled = "limited"
)

// AuthFailureLog records failed SCIM authentications in the audit trail, as
// auth.failed entries (so that Panther can alert on repeated failures). Record only
// buffers: the App writes the buffer once a second in one transaction, so a failed
// request costs no store write and a flood of them cannot take the single writer.
// Within a second each (address, reason) gets up to five entries of its own; more
// failures are counted in one entry (count > 1), and beyond twenty groups in one
// overflow entry without an address. Failures of the last second before a crash
// are lost; they are not provisioning changes.
type AuthFailureLog struct {
	mu     sync.Mutex
	events []authEvent
	groups map[authKey]*authGroup
	over   authEvent // failures beyond maxAuthKeys groups
}

type authKey struct {
	addr    string
	reason  auth.Reason
	limited bool
}

type authGroup struct {
	singles, total int
	last           time.Time
}

type authEvent struct {
	key   authKey
	count int
	at    time.Time
}

// NewAuthFailureLog returns an empty log; give its Record to the authenticator's
// OnFailure and the log to Options.AuthFailures.
func NewAuthFailureLog() *AuthFailureLog {
	return &AuthFailureLog{groups: map[authKey]*authGroup{}}
}

// Record buffers one failure.
func (l *AuthFailureLog) Record(f auth.Failure) {
	now := time.Now().UTC()
	k := authKey{addr: f.Addr, reason: f.Reason, limited: f.Limited}
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.groups[k]
	if g == nil {
		if len(l.groups) >= maxAuthKeys {
			l.over.count++
			l.over.at = now
			return
		}
		g = &authGroup{}
		l.groups[k] = g
	}
	g.total++
	g.last = now
	if g.singles < maxAuthPerKey && len(l.events) < maxAuthEvents {
		g.singles++
		l.events = append(l.events, authEvent{key: k, count: 1, at: now})
	}
}

// take empties the buffer and returns the entries to write.
func (l *AuthFailureLog) take() []provision.AuditEntry {
	l.mu.Lock()
	events, groups, over := l.events, l.groups, l.over
	l.events, l.groups, l.over = nil, map[authKey]*authGroup{}, authEvent{}
	l.mu.Unlock()
	for k, g := range groups {
		if n := g.total - g.singles; n > 0 {
			events = append(events, authEvent{key: k, count: n, at: g.last})
		}
	}
	if over.count > 0 {
		over.key.reason = reasonOverflow
		events = append(events, over)
	}
	out := make([]provision.AuditEntry, 0, len(events))
	for _, e := range events {
		outcome := outcomeRefused
		if e.key.limited {
			outcome = outcomeThrottled
		}
		out = append(out, provision.AuditEntry{
			Time: e.at, Action: ActionAuthFailed, Outcome: outcome,
			After: map[string]string{
				"reason": string(e.key.reason), "sourceIP": e.key.addr,
				"limited": strconv.FormatBool(e.key.limited), "count": strconv.Itoa(e.count),
			},
		})
	}
	return out
}

// flushAuthFailures writes the buffered failures every second until ctx ends, then
// once more (the store closes after the background work).
func (a *App) flushAuthFailures(ctx context.Context, l *AuthFailureLog) {
	t := time.NewTicker(authFlushEvery)
	defer t.Stop()
	write := func() {
		entries := l.take()
		if len(entries) == 0 {
			return
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err := a.Store.Update(wctx, func(tx provision.Tx) error {
			for _, e := range entries {
				if err := tx.AppendAudit(e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			a.log.Warn("could not record authentication failures in the audit trail", "entries", len(entries), "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			write()
			return
		case <-t.C:
			write()
		}
	}
}

// alertDelayedDeprovisions runs the service's check for removals of access pending
// longer than after, about ten times per interval (between every second and every
// 30 seconds), and counts what it reports.
func (a *App) alertDelayedDeprovisions(ctx context.Context, after time.Duration) {
	t := time.NewTicker(min(max(after/10, time.Second), 30*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := a.Service.AlertDelayedDeprovisions(ctx, after)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("could not check for delayed deprovisioning", "err", err)
		}
		a.metrics.audit.deprovisionDelayed.Add(float64(n))
	}
}

// runAuditEvents starts the background work behind the audit events the
// detections need: the authentication failures' writer, the check for delayed
// deprovisioning, and the export to Panther.
func (a *App) runAuditEvents(bg context.Context) {
	if l := a.opts.AuthFailures; l != nil {
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			a.flushAuthFailures(bg, l)
		}()
	}
	if after := a.opts.DeprovisionAlertAfter; after > 0 {
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			a.alertDelayedDeprovisions(bg, after)
		}()
	}
	a.runAuditExport(bg)
}
