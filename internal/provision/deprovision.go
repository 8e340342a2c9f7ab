package provision

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// ActionDeprovisionDelayed is the audit action of AlertDelayedDeprovisions.
const ActionDeprovisionDelayed = "deprovision.delayed"

// Reasons a user must lose Panther access, in deprovision.delayed entries.
const (
	DeprovisionDeactivated = "deactivated" // active=false
	DeprovisionDeleted     = "deleted"     // DELETE /Users: the record is gone
	DeprovisionUnmapped    = "unmapped"    // in no mapped group, and no default role
)

// delayedState remembers when each user's deprovisioning was last reported.
type delayedState struct {
	seeded bool
	last   map[string]time.Time // user id -> time of the last deprovision.delayed entry
}

// AlertDelayedDeprovisions writes a deprovision.delayed audit entry for every user
// whose removal of Panther access has been pending for after or longer: a leaver
// who still holds access. A user is reported again only after another interval of
// after, while the removal stays pending. It returns the number of entries written.
//
// What counts is the user's pending intent (its Since), for a record that is gone
// (deleted), inactive (deactivated; in role mode, the move to the no-access role), or
// active but mapped to no access while still linked to a Panther user (unmapped).
func (s *Service) AlertDelayedDeprovisions(ctx context.Context, after time.Duration) (int, error) {
	if after <= 0 {
		return 0, nil
	}
	s.delayedMu.Lock()
	defer s.delayedMu.Unlock()
	now := s.now().UTC()
	if err := s.seedDelayed(ctx, now.Add(-after)); err != nil {
		return 0, err
	}
	for id, t := range s.delayed.last {
		if now.Sub(t) >= after {
			delete(s.delayed.last, id) // may be reported again; forgetting bounds the map
		}
	}
	type report struct {
		in     Intent
		u      User
		reason string
	}
	var due []report
	err := s.store.View(ctx, func(tx ReadTx) error {
		refs := newGroupRefCache(tx)
		var scanErr error
		err := tx.ScanIntents(func(in Intent) bool {
			if now.Sub(in.Since) < after || now.Sub(s.delayed.last[in.UserID]) < after {
				return true
			}
			u, err := tx.User(in.UserID)
			switch {
			case errors.Is(err, ErrNotFound):
				if in.Remove != nil {
					due = append(due, report{in: in, u: User{ID: in.UserID, Email: in.Remove.Email}, reason: DeprovisionDeleted})
				}
			case err != nil:
				scanErr = err
				return false
			case !u.Active:
				due = append(due, report{in: in, u: u, reason: DeprovisionDeactivated})
			case u.Panther.ID != "":
				want, err := s.desiredFor(tx, refs, u)
				if err != nil {
					scanErr = err
					return false
				}
				if !want.Access {
					due = append(due, report{in: in, u: u, reason: DeprovisionUnmapped})
				}
			}
			return true
		})
		return errors.Join(err, scanErr)
	})
	if err != nil || len(due) == 0 {
		return 0, err
	}
	ctx = WithActor(ctx, ActorReconciler)
	err = s.store.Update(ctx, func(tx Tx) error {
		for _, r := range due {
			after := map[string]string{
				"userName": r.u.UserName, "email": r.u.Email, "reason": r.reason,
				"pendingSince": r.in.Since.UTC().Format(time.RFC3339Nano), "attempts": strconv.Itoa(r.in.Attempts),
				"lastError": r.in.LastError,
			}
			e := s.auditEntry(ctx, ActionDeprovisionDelayed, "User", r.u.ID, nil, after, "pending")
			e.Time = now
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, r := range due {
		s.delayed.last[r.u.ID] = now
		s.log.WarnContext(ctx, "deprovisioning delayed: the user still holds Panther access", "scim_id", r.u.ID,
			"reason", r.reason, "pending_since", r.in.Since, "attempts", r.in.Attempts)
	}
	return len(due), nil
}

// seedDelayed learns, once, which users were reported since `since` (by an earlier
// run of the process), so that a restart does not report them again too early.
func (s *Service) seedDelayed(ctx context.Context, since time.Time) error {
	if s.delayed.seeded {
		return nil
	}
	last := map[string]time.Time{}
	err := s.store.View(ctx, func(tx ReadTx) error {
		return tx.ScanAudit(since, func(e AuditEntry) bool {
			if e.Action == ActionDeprovisionDelayed && e.Time.After(last[e.ID]) {
				last[e.ID] = e.Time
			}
			return true
		})
	})
	if err != nil {
		return err
	}
	s.delayed = delayedState{seeded: true, last: last}
	return nil
}
