package provision

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
)

// availability follows whether Panther answers, from the outcomes of the service's own
// calls (and of the readiness check, through PantherAnswered). When Panther answers
// again after a call found it unavailable, it wakes the worker, which retries the
// failed intents at once: a queued deactivation must not wait out a backoff of
// minutes that the outage, not the change, built up.
//
// It also logs the outage once, when it starts and when it ends, in place of a line
// for every call and retry that meets it.
type availability struct {
	down atomic.Bool
	wake chan struct{} // capacity 1: one pending wake-up is enough
	log  *slog.Logger
}

func newAvailability(log *slog.Logger) *availability {
	return &availability{wake: make(chan struct{}, 1), log: log}
}

// observe records the outcome of a Panther call.
func (a *availability) observe(err error) {
	switch {
	case errors.Is(err, ErrUnavailable):
		if a.down.CompareAndSwap(false, true) {
			a.log.Warn("Panther is unavailable: changes are kept and retried; logged again when it answers", "err", err)
		}
	case answered(err) && a.down.CompareAndSwap(true, false):
		a.log.Info("Panther answers again")
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// answered says whether err (nil included) proves that Panther processed the call.
func answered(err error) bool {
	return err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid)
}

// PantherAnswered tells the service that Panther answered a call made outside it (the
// readiness check's). If the service's own calls had found Panther unavailable, the
// failed intents are retried at once.
func (s *Service) PantherAnswered() { s.avail.observe(nil) }

// watchedPanther reports the outcome of every call to the service's availability.
type watchedPanther struct {
	p  Panther
	av *availability
}

var _ Panther = watchedPanther{}

func (w watchedPanther) Users(ctx context.Context) ([]PantherUser, error) {
	us, err := w.p.Users(ctx)
	w.av.observe(err)
	return us, err
}

// ExpectUsers passes the hint on (see listingSizer).
func (w watchedPanther) ExpectUsers(n int) {
	if l, ok := w.p.(listingSizer); ok {
		l.ExpectUsers(n)
	}
}

func (w watchedPanther) UserByID(ctx context.Context, id string) (PantherUser, error) {
	u, err := w.p.UserByID(ctx, id)
	w.av.observe(err)
	return u, err
}

func (w watchedPanther) UserByEmail(ctx context.Context, email string) (PantherUser, error) {
	u, err := w.p.UserByEmail(ctx, email)
	w.av.observe(err)
	return u, err
}

func (w watchedPanther) InviteUser(ctx context.Context, in InviteInput) (PantherUser, error) {
	u, err := w.p.InviteUser(ctx, in)
	w.av.observe(err)
	return u, err
}

func (w watchedPanther) UpdateUser(ctx context.Context, in UpdateInput) (PantherUser, error) {
	u, err := w.p.UpdateUser(ctx, in)
	w.av.observe(err)
	return u, err
}

func (w watchedPanther) DeleteUser(ctx context.Context, id string) error {
	err := w.p.DeleteUser(ctx, id)
	w.av.observe(err)
	return err
}

func (w watchedPanther) Roles(ctx context.Context) ([]PantherRole, error) {
	rs, err := w.p.Roles(ctx)
	w.av.observe(err)
	return rs, err
}

func (w watchedPanther) RoleByID(ctx context.Context, id string) (PantherRole, error) {
	r, err := w.p.RoleByID(ctx, id)
	w.av.observe(err)
	return r, err
}

func (w watchedPanther) RoleByName(ctx context.Context, name string) (PantherRole, error) {
	r, err := w.p.RoleByName(ctx, name)
	w.av.observe(err)
	return r, err
}
