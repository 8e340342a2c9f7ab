package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/panther-scim/panther-scim/internal/yield"
)

// Pending reports the number of pending intents and when the oldest was written.
func (s *Service) Pending(ctx context.Context) (n int, oldest time.Time, err error) {
	err = s.store.View(ctx, func(tx ReadTx) error {
		return tx.ScanIntents(func(in Intent) bool {
			n++
			if oldest.IsZero() || in.Since.Before(oldest) {
				oldest = in.Since
			}
			return true
		})
	})
	return n, oldest, err
}

// MarkUncertain records on every pending intent that never failed that an attempt may
// have reached Panther (Attempts 1), and returns how many it marked. Call it at start,
// before serving requests: an intent pending then was left by a previous process, which
// may have been killed in the middle of a Panther call (an invite made but not linked).
// Whichever sync then takes the intent up, the start-up replay or the one of a request
// that changed the user meanwhile, looks the email up before inviting or giving up.
func (s *Service) MarkUncertain(ctx context.Context) (int, error) {
	n := 0
	err := s.store.Update(ctx, func(tx Tx) error {
		var fresh []Intent
		if err := tx.ScanIntents(func(in Intent) bool {
			if in.Attempts == 0 {
				fresh = append(fresh, in)
			}
			return true
		}); err != nil {
			return err
		}
		for _, in := range fresh {
			in.Attempts = 1
			if err := tx.PutIntent(in); err != nil {
				return err
			}
		}
		n = len(fresh)
		return nil
	})
	return n, err
}

// Replay syncs every pending intent whose retry time has come. With all (at start-up)
// it takes, whatever their retry time, the intents that a previous run left (which
// MarkUncertain marked) or that an attempt failed on: those with Attempts > 0, each of
// which may have reached Panther, so their syncs look emails up before any invite.
// Intents this run's requests have just written (Attempts 0) are left to the requests,
// whose syncs are under way.
func (s *Service) Replay(ctx context.Context, all bool) (done, failed int) {
	now := s.now()
	var due []Intent
	_ = s.store.View(ctx, func(tx ReadTx) error {
		return tx.ScanIntents(func(in Intent) bool {
			if (all && in.Attempts > 0) || !in.NextAttempt.After(now) {
				due = append(due, in)
			}
			return true
		})
	})
	sem := make(chan struct{}, s.opts.SyncConcurrency)
	type result struct {
		in  Intent
		err error
	}
	results := make(chan result, len(due))
	for _, in := range due {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			results <- result{in, s.SyncUser(ctx, in.UserID, false)} // uncertain when Attempts > 0
		}()
	}
	for range due {
		r := <-results
		if r.err == nil {
			done++
			continue
		}
		failed++
		// A failure is logged when it starts or changes, not at every retry: an outage
		// is one line (availability's), a change Panther keeps refusing one per reason.
		level := slog.LevelWarn
		if Retryable(r.err) || safeCause(r.err) == r.in.LastError {
			level = slog.LevelDebug
		}
		s.log.Log(ctx, level, "pending change not applied yet", "user", r.in.UserID, "attempts", r.in.Attempts+1, "err", r.err)
	}
	return done, failed
}

// Run replays pending intents at start and then every tick until ctx ends; it also
// reconciles with Panther every reconcileEvery (0 disables).
func (s *Service) Run(ctx context.Context, tick, reconcileEvery time.Duration, onPlan func(Plan)) {
	if tick <= 0 {
		tick = time.Second
	}
	// The rules (mapping, default role, deactivation) may have changed since the last
	// run: queue the users they now treat differently, retrying while Panther cannot
	// resolve the roles.
	requeued, requeueAttempts, nextRequeue, requeueErr := false, 0, time.Time{}, ""
	requeue := func() {
		if requeued || s.now().Before(nextRequeue) {
			return
		}
		n, err := s.RequeueChanged(ctx)
		if err != nil {
			requeueAttempts++
			nextRequeue = s.now().Add(backoff(requeueAttempts))
			level := slog.LevelWarn
			if requeueAttempts > 1 && err.Error() == requeueErr {
				level = slog.LevelDebug // logged when it first failed this way
			}
			requeueErr = err.Error()
			s.log.Log(ctx, level, "could not compare users with the current mapping yet", "err", err)
			return
		}
		requeued = true
		if n > 0 {
			s.log.Info("users queued for the current mapping", "users", n)
		}
	}
	requeue()
	if d, f := s.Replay(ctx, true); d+f > 0 {
		s.log.Info("replayed pending intents", "done", d, "failed", f)
	}
	// With the reconciler on, one pass at start repairs drift that happened in Panther
	// while we were down (mapping changes are requeue's job above).
	if reconcileEvery > 0 {
		if p, err := s.Reconcile(ctx, false); err != nil {
			s.log.Warn("start-up reconcile failed; the next one runs on schedule", "err", err)
		} else if onPlan != nil {
			onPlan(p)
		}
	}
	s.pruneInvites(ctx)
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	t := time.NewTicker(tick)
	defer t.Stop()
	var rc <-chan time.Time
	if reconcileEvery > 0 {
		r := time.NewTicker(reconcileEvery)
		defer r.Stop()
		rc = r.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			requeue()
			s.Replay(ctx, false)
		case <-prune.C:
			s.pruneInvites(ctx)
		case <-s.avail.wake:
			// Panther answers again after an outage: every change it failed goes now,
			// whatever backoff the outage built up.
			if d, f := s.Replay(ctx, true); d+f > 0 {
				s.log.Info("retried the changes queued while Panther was unavailable", "done", d, "failed", f)
			}
		case <-rc:
			p, err := s.Reconcile(ctx, false)
			if err != nil {
				s.log.Warn("reconcile failed", "err", err)
				continue
			}
			if onPlan != nil {
				onPlan(p)
			}
		}
	}
}

// pruneInvites runs PruneInvites for Run, logging what it did.
func (s *Service) pruneInvites(ctx context.Context) {
	n, err := s.PruneInvites(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("invite records not pruned", "err", err)
	case n > 0:
		s.log.Info("pruned invite records past their retention", "records", n, "retention", s.opts.InviteRetention.String())
	}
}

// RequeueChanged writes an intent for every user whose Panther access under the current
// rules (mapping, default role, deactivation) differs from what was last applied to
// Panther: a role other than the linked one, access without a link, or a link without
// access. It is how a changed mapping reaches Panther after a restart. It reads only the
// store, but resolves the rules' roles with Panther (cached), so it fails while Panther
// is unreachable. It returns the number of users queued.
func (s *Service) RequeueChanged(ctx context.Context) (int, error) {
	roles, err := s.ResolveRoles(ctx)
	if err != nil {
		return 0, err
	}
	stale := func(tx ReadTx, groups *groupRefCache, u User) (bool, error) {
		if _, err := tx.Intent(u.ID); err == nil {
			return false, nil // already queued
		} else if !errors.Is(err, ErrNotFound) {
			return false, err
		}
		want, err := s.desiredFor(tx, groups, u)
		if err != nil {
			return false, err
		}
		if want.Access {
			return u.Panther.ID == "" || u.Panther.RoleID != roles[want.Role].ID, nil
		}
		return u.Panther.ID != "", nil
	}
	var ids []string
	scanned := 0
	err = s.store.View(ctx, func(tx ReadTx) error {
		groups := newGroupRefCache(tx)
		var scanErr error
		// Nothing of the attributes: the identity scan is the cheaper one.
		err := tx.ScanUserIdentities(func(u User, _ IdentitySource) bool {
			scanned++
			var ok bool
			ok, scanErr = stale(tx, groups, u)
			if ok {
				ids = append(ids, u.ID)
			}
			return scanErr == nil
		})
		return errors.Join(err, scanErr)
	})
	if err == nil {
		s.storedUsers.Store(int64(scanned))
	}
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	// Check again in the write transaction: a request may have changed a user meanwhile.
	n := 0
	err = s.store.Update(ctx, func(tx Tx) error {
		groups := newGroupRefCache(tx)
		for _, id := range ids {
			u, err := tx.User(id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			ok, err := stale(tx, groups, u)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			// Due at once: no request is syncing this user.
			if err := tx.PutIntent(Intent{UserID: id, Since: s.now().UTC(), Gen: 1}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Drift is one difference between what the store says Panther should hold and what it holds.
type Drift struct {
	UserID   string `json:"userId"`
	UserName string `json:"userName"`
	Email    string `json:"email"`
	// Action is invite, update or delete.
	Action string `json:"action"`
	// Fields lists what differs, as "field: panther -> wanted".
	Fields []string `json:"fields"`
	// Diffs are the same differences, one field at a time.
	Diffs []FieldDiff `json:"diffs"`
}

// FieldDiff is one difference the reconciler found: what Panther holds (Found) and
// what the store says it should (Expected). Field "account" is the Panther user
// itself (Found and Expected "present" or "absent").
type FieldDiff struct {
	Field    string `json:"field"`
	Found    string `json:"found"`
	Expected string `json:"expected"`
}

// differs records a difference in both forms.
func (d *Drift) differs(field, found, expected, text string) {
	if text == "" {
		text = fmt.Sprintf("%s: %s -> %s", field, found, expected)
	}
	d.Fields = append(d.Fields, text)
	d.Diffs = append(d.Diffs, FieldDiff{Field: field, Found: found, Expected: expected})
}

// updates records the fields upd changes (updateFor), each as Panther has it (pu) and
// as the record wants it (ident, role).
func (d *Drift) updates(upd UpdateInput, pu *PantherUser, ident Identity, role PantherRole) {
	if upd.Email != nil {
		d.differs("email", pu.Email, ident.Email, "")
	}
	if upd.GivenName != nil {
		d.differs("givenName", pu.GivenName, ident.GivenName, "")
	}
	if upd.FamilyName != nil {
		d.differs("familyName", pu.FamilyName, ident.FamilyName, "")
	}
	if upd.Role != nil {
		d.differs("role", pu.RoleName, role.Name, "")
	}
}

// Plan is the reconciler's finding.
type Plan struct {
	Drift []Drift `json:"drift"`
	// Skipped are managed users whose Panther user is no longer panther-scim's to
	// change (its email was changed in Panther, or is protected): reported, never repaired.
	Skipped        []Drift `json:"skipped,omitempty"`
	PendingRemoves int     `json:"pendingRemoves"`
	Unmanaged      int     `json:"unmanaged"`
	Repaired       int     `json:"repaired"`
	Failed         int     `json:"failed"`
}

// String prints the plan for people.
func (p Plan) String() string {
	var b strings.Builder
	if len(p.Drift) == 0 {
		b.WriteString("no drift: Panther matches the store\n")
	}
	for _, d := range p.Drift {
		fmt.Fprintf(&b, "%-7s %s (%s, user %s)", d.Action, d.Email, d.UserName, d.UserID)
		if len(d.Fields) > 0 {
			fmt.Fprintf(&b, ": %s", strings.Join(d.Fields, "; "))
		}
		b.WriteByte('\n')
	}
	for _, d := range p.Skipped {
		fmt.Fprintf(&b, "skip    %s (%s, user %s): %s\n", d.Email, d.UserName, d.UserID, strings.Join(d.Fields, "; "))
	}
	fmt.Fprintf(&b, "%d drifted, %d pending removals, %d Panther users not managed here (left alone)", len(p.Drift), p.PendingRemoves, p.Unmanaged)
	if len(p.Skipped) > 0 {
		fmt.Fprintf(&b, ", %d skipped (no longer panther-scim's)", len(p.Skipped))
	}
	if p.Repaired+p.Failed > 0 {
		fmt.Fprintf(&b, "; repaired %d, failed %d", p.Repaired, p.Failed)
	}
	b.WriteByte('\n')
	return b.String()
}

// listingSizer is a Panther client that can make room for its next users listing
// before it arrives (panther.Client does).
type listingSizer interface{ ExpectUsers(n int) }

// listUsers lists every Panther user, telling the client first how many users the
// store held at its last full scan. Without that, the first listing after a start
// grew its slice as it decoded: at 100,000 users, copies of up to 15 MB of
// pointers, beside SCIM requests that then waited for the collector's pauses.
func (s *Service) listUsers(ctx context.Context) ([]PantherUser, error) {
	if l, ok := s.panther.(listingSizer); ok {
		if n := s.storedUsers.Load(); n > 0 {
			l.ExpectUsers(int(n))
		}
	}
	return s.panther.Users(ctx)
}

// How many items each of a reconcile's loops over every user handles between two
// yields of its core (yield.Counter), so that a SCIM request waits at most a fraction
// of a millisecond for one: scanning a stored user takes several microseconds, a
// listed user's two map inserts about one.
const (
	scanYieldEvery = 64
	mapYieldEvery  = 2048
)

// Reconcile compares each managed user's desired Panther state (existence, email,
// names, role) with Panther's and, unless dryRun, repairs the differences. Panther
// users that no record links are counted and left alone, and protected emails are
// never touched.
func (s *Service) Reconcile(ctx context.Context, dryRun bool) (Plan, error) {
	pusers, err := s.listUsers(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("list Panther users: %w", err)
	}
	s.rememberAdmins(pusers) // the last-administrator check's candidates
	roles, err := s.ResolveRoles(ctx)
	if err != nil {
		return Plan{}, err
	}
	plan, work, err := s.planReconcile(ctx, pusers, roles)
	if err != nil {
		return plan, err
	}
	if err := s.recheck(ctx, &plan, work); err != nil {
		return plan, err
	}
	sort.Slice(plan.Drift, func(i, j int) bool { return plan.Drift[i].Email < plan.Drift[j].Email })
	for _, d := range plan.Skipped {
		s.log.Warn("reconcile skips a Panther user that is no longer panther-scim's", "user", d.UserID, "detail", strings.Join(d.Fields, "; "))
	}
	if dryRun || len(work.repairs) == 0 {
		return plan, nil
	}
	return plan, s.repair(ctx, &plan, work.repairs)
}

// reconcileWork is what a reconcile's plan leaves to do.
type reconcileWork struct {
	// recheck holds the linked users missing from the listing (user id -> Panther id):
	// they may have been invited after it was taken, so they are looked up once more
	// before being called drift.
	recheck map[string]string
	// repairs holds the users to repair (user id -> what Panther actually holds; nil:
	// nothing).
	repairs map[string]*PantherLink
}

// planReconcile is the first of a reconcile's three jobs: it compares each user the
// store holds with Panther's listing (pusers) under the rules (roles resolved) and
// plans the drift, the skipped users and the pending removals, and counts the Panther
// users no record manages. It calls nothing.
func (s *Service) planReconcile(ctx context.Context, pusers []PantherUser, roles map[string]PantherRole) (Plan, reconcileWork, error) {
	var plan Plan
	// Indexes into pusers rather than copies of its users: at 100,000 Panther users two
	// maps of copies were 50 MB of live heap for the whole reconcile.
	byID := make(map[string]int32, len(pusers))
	byEmail := make(map[string]int32, len(pusers))
	pace := yield.Counter{Every: mapYieldEvery}
	for i := range pusers {
		pace.Tick()
		byID[pusers[i].ID] = int32(i)
		byEmail[EmailKey(pusers[i].Email)] = int32(i)
	}
	managed := make(map[string]bool, len(pusers))
	recheck := map[string]string{}
	repairs := map[string]*PantherLink{}
	scanned := 0
	err := s.store.View(ctx, func(tx ReadTx) error {
		refs := newGroupRefCache(tx)
		pending := map[string]bool{}
		_ = tx.ScanIntents(func(in Intent) bool {
			pending[in.UserID] = true
			if in.Remove != nil {
				plan.PendingRemoves++
				if in.Remove.ID != "" {
					managed[in.Remove.ID] = true
				}
			}
			return true
		})
		var scanErr error
		// The scan holds a core for about a second at 100,000 users: the SCIM
		// requests waiting for one run now and then, not at the next preemption
		// (10 ms) or the end of the thread's time slice.
		scanPace := yield.Counter{Every: scanYieldEvery}
		// Only what the identity comes from: the reconciler compares nothing else.
		err := tx.ScanUserIdentities(func(u User, src IdentitySource) bool {
			scanned++
			scanPace.Tick()
			want, err := s.desiredFor(tx, refs, u)
			if err != nil {
				scanErr = err
				return false
			}
			// The listing's index of the linked Panther user. managed is keyed by the
			// listing's id, not the record's: every string of a scanned record shares
			// one allocation (the store copies them out together), which a map key
			// would keep alive for the whole reconcile, for every linked user.
			var i int32
			var exists bool
			if u.Panther.ID != "" {
				if i, exists = byID[u.Panther.ID]; exists {
					managed[pusers[i].ID] = true
				}
			}
			if pending[u.ID] {
				return true // a sync is under way or queued: it will converge this user
			}
			d := Drift{UserID: u.ID, UserName: u.UserName, Email: u.Email}
			if u.Panther.ID == "" {
				// Never linked: a Panther user with the email is not ours. With access
				// wanted, the sync invites, and adopts that user only if the adoption
				// policy allows; without, it is left alone.
				if !want.Access || s.isProtected(u.Email) {
					return true
				}
				d.Action = "invite"
				if i, ok := byEmail[EmailKey(u.Email)]; ok {
					pu := &pusers[i]
					d.differs("account", "unlinked", "present", fmt.Sprintf("not linked; Panther has %s (role %s): adopted only if provisioning.adopt (%s) allows", pu.ID, pu.RoleName, s.opts.Adopt))
				} else {
					d.differs("account", "absent", "present", "missing from Panther")
				}
				plan.Drift = append(plan.Drift, d)
				repairs[u.ID] = nil
				return true
			}
			var pu *PantherUser
			if exists {
				pu = &pusers[i]
			}
			ident, _ := DeriveIdentityFrom(u.UserName, src)
			if exists && (s.isProtected(pu.Email) || !stillOurs(pu.Email, u.Panther, ident.Email)) {
				// Changed in Panther to a protected address or to another one: no longer
				// ours to touch (the sync refuses it too).
				d.Action = "skip"
				d.differs("email", pu.Email, u.Panther.Email, fmt.Sprintf("Panther user %s now has email %s (linked: %s): not panther-scim's to change", pu.ID, pu.Email, u.Panther.Email))
				plan.Skipped = append(plan.Skipped, d)
				return true
			}
			if s.isProtected(u.Email) {
				return true
			}
			// Panther's side of the link, when it has the user; a pointer to it is made
			// only for the users repaired (not one per linked user).
			var actual PantherLink
			if exists {
				actual = linkOf(*pu)
			}
			switch {
			case want.Access && !exists:
				d.Action = "invite"
				d.differs("account", "absent", "present", "missing from Panther")
				recheck[u.ID] = u.Panther.ID
			case !want.Access && exists:
				d.Action = "delete"
				d.differs("account", "present", "absent", "should have no Panther access")
			case want.Access:
				// The drift is what the sync's update would change: one comparison.
				role := roles[want.Role]
				if upd, changed := updateFor(actual, ident, role); changed {
					d.Action = "update"
					d.updates(upd, pu, ident, role)
				}
			}
			if d.Action != "" {
				plan.Drift = append(plan.Drift, d)
				repairs[u.ID] = foundLink(actual, exists)
			} else if exists && u.Panther != actual && want.Access {
				repairs[u.ID] = foundLink(actual, exists) // link is stale but Panther is right: just relink
			}
			return true
		})
		if err != nil {
			return err
		}
		return scanErr
	})
	if err != nil {
		return plan, reconcileWork{}, err
	}
	s.storedUsers.Store(int64(scanned))
	pace = yield.Counter{Every: mapYieldEvery}
	for _, pu := range pusers {
		pace.Tick()
		if !managed[pu.ID] {
			plan.Unmanaged++
		}
	}
	return plan, reconcileWork{recheck: recheck, repairs: repairs}, nil
}

// foundLink is a repair's link to Panther's user: nil when Panther has none.
func foundLink(l PantherLink, exists bool) *PantherLink {
	if !exists {
		return nil
	}
	return &l
}

// recheck is a reconcile's second job: it looks up once more each linked user missing
// from the listing, and drops from the plan and the repairs those Panther has now.
func (s *Service) recheck(ctx context.Context, plan *Plan, work reconcileWork) error {
	if len(work.recheck) == 0 {
		return nil
	}
	kept := plan.Drift[:0]
	for _, d := range plan.Drift {
		if pid, ok := work.recheck[d.UserID]; ok {
			if _, err := s.panther.UserByID(ctx, pid); err == nil {
				delete(work.repairs, d.UserID)
				continue
			} else if !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("recheck Panther user %s: %w", pid, err)
			}
		}
		kept = append(kept, d)
	}
	plan.Drift = kept
	return nil
}

// repair is a reconcile's third job: in one transaction it links each user to repair
// to what Panther holds and queues it, then syncs them, SyncConcurrency at a time; it
// counts the repairs in plan, and logs and audits the drift and what became of it.
func (s *Service) repair(ctx context.Context, plan *Plan, repairs map[string]*PantherLink) error {
	var ids []string
	err := s.store.Update(ctx, func(tx Tx) error {
		for id, actual := range repairs {
			u, err := tx.User(id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			u.Panther = PantherLink{}
			if actual != nil {
				u.Panther = *actual
			}
			if err := tx.PutUser(u); err != nil {
				return err
			}
			if err := s.putIntent(tx, id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The repairs go out SyncConcurrency at a time, as a group change's syncs do: one
	// after the other, 1,000 repairs (an ownership check and an update each) took 40 s
	// at 20 ms of Panther latency.
	repaired := map[string]bool{}
	var mu sync.Mutex
	sem := make(chan struct{}, s.opts.SyncConcurrency)
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := s.SyncUser(ctx, id, false)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				plan.Failed++
				s.log.Warn("reconcile repair failed", "user", id, "err", err)
			} else {
				plan.Repaired++
				repaired[id] = true
			}
		}()
	}
	wg.Wait()
	for _, d := range plan.Drift {
		s.log.Info("drift", "user", d.UserID, "action", d.Action, "fields", strings.Join(d.Fields, "; "))
	}
	if err := s.auditDrift(ctx, plan.Drift, repaired); err != nil {
		s.log.Error("could not record the drift in the audit trail", "err", err)
	}
	return nil
}

// deepEqualJSON compares two attribute maps as JSON values (json.Number and float64
// forms of one number are equal).
func deepEqualJSON(a, b map[string]any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return false
	}
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	return reflect.DeepEqual(va, vb)
}
