package provision

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/panther-scim/panther-scim/mappings"
)

// desired is the Panther access a record calls for: whether the user should exist in
// Panther, and with which role (the mapping's role reference, name or id).
type desired struct {
	Access bool
	Role   string
}

// groupRefCache memoises the (displayName, externalId) of groups within one
// transaction, and the state of the users whose role it resolves.
type groupRefCache struct {
	tx     ReadTx
	refs   map[string]mappings.GroupRef
	states map[string]UserState
	out    []mappings.GroupRef // get's, reused: a reconcile calls it for every user
}

func newGroupRefCache(tx ReadTx) *groupRefCache {
	return &groupRefCache{tx: tx, refs: map[string]mappings.GroupRef{}, states: map[string]UserState{}}
}

// reset forgets the groups, after a group write; user states stay, as a group write
// changes no user record.
func (c *groupRefCache) reset() { clear(c.refs) }

// get returns the groups' refs, in a slice that the next call reuses.
func (c *groupRefCache) get(ids []string) ([]mappings.GroupRef, error) {
	out := c.out[:0]
	for _, id := range ids {
		ref, ok := c.refs[id]
		if !ok {
			// The header, not the group: a sync reads the groups of its user afresh, and
			// decoding a large group's members for each of its users costs O(members).
			g, err := c.tx.GroupHeader(id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			ref = mappings.GroupRef{DisplayName: g.DisplayName, ExternalID: g.ExternalID}
			c.refs[id] = ref
		}
		out = append(out, ref)
	}
	c.out = out
	return out, nil
}

func (s *Service) desiredRole(tx ReadTx, refs *groupRefCache, uid string) (desired, error) {
	// The state, not the record: desiredFor reads only the id, the active flag and
	// the Panther link, and a group change calls this twice for every member it moves
	// (the second time from refs' memo).
	st, ok := refs.states[uid]
	if !ok {
		var err error
		st, err = tx.UserState(uid)
		if errors.Is(err, ErrNotFound) {
			return desired{}, nil
		}
		if err != nil {
			return desired{}, err
		}
		refs.states[uid] = st
	}
	return s.desiredOf(tx, refs, st.ID, st.Active, st.Linked)
}

// desiredFor applies the role rules: the first mapping rule matching one of the user's
// groups, else the default role; no role means no access; an inactive user has no
// access (or, in role mode, keeps their Panther user with the no-access role).
func (s *Service) desiredFor(tx ReadTx, refs *groupRefCache, u User) (desired, error) {
	return s.desiredOf(tx, refs, u.ID, u.Active, u.Panther.ID != "")
}

// desiredOf is desiredFor given what it reads of the user: id, active flag, and
// whether it is linked to a Panther user.
func (s *Service) desiredOf(tx ReadTx, refs *groupRefCache, id string, active, linked bool) (desired, error) {
	if !active {
		if s.opts.Deactivation == DeactivateRole && linked {
			return desired{Access: true, Role: s.opts.DeactivationRole}, nil
		}
		return desired{}, nil
	}
	ids, err := tx.GroupIDsOfUser(id)
	if err != nil {
		return desired{}, err
	}
	groups, err := refs.get(ids)
	if err != nil {
		return desired{}, err
	}
	role, ok := s.opts.Mapping.Resolve(groups)
	if !ok {
		return desired{}, nil
	}
	return desired{Access: true, Role: role}, nil
}

// SyncUser makes Panther match the store for one user, if an intent says it may not.
// Calls for one user, and for one email, are serialised; the latest record is what
// gets applied, so concurrent changes converge whatever order they arrive in.
// uncertain says that an earlier attempt may have reached Panther without being
// recorded (a crash or a lost response): an email with a recorded invite is then
// looked up before it is invited again.
func (s *Service) SyncUser(ctx context.Context, id string, uncertain bool) error {
	unlock := s.locks.lock(id)
	defer unlock()

	var (
		u         User
		uerr      error
		in        Intent
		hasIntent bool
		want      desired
	)
	err := s.store.View(ctx, func(tx ReadTx) error {
		i, err := tx.Intent(id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		in, hasIntent = i, true
		u, uerr = tx.User(id)
		if uerr != nil {
			return nil
		}
		want, err = s.desiredFor(tx, newGroupRefCache(tx), u)
		return err
	})
	if err != nil || !hasIntent {
		return err
	}
	uncertain = uncertain || in.Attempts > 0

	// Two records can reach for one Panther user: a deleted record's queued removal and
	// a new record for the same email, which adopts that user. Each checks who the Panther
	// user is linked to and then acts; serialised by email, the removal either runs
	// first (and the new record invites afresh) or sees the adoption and leaves the user.
	email := u.Email
	if errors.Is(uerr, ErrNotFound) {
		email = in.Email
		if in.Remove != nil && in.Remove.Email != "" {
			email = in.Remove.Email
		}
		if email == "" && len(in.Invites) > 0 {
			email = in.Invites[0].Email
		}
	}
	if email != "" {
		defer s.locks.lock("email:" + EmailKey(email))()
	}

	if errors.Is(uerr, ErrNotFound) {
		if in.Remove == nil {
			return s.finishIntent(id, in.Gen, nil, nil)
		}
		err := s.removeFromPanther(ctx, *in.Remove, &in)
		return s.finishIntent(id, in.Gen, err, in.Invites)
	}
	if uerr != nil {
		return uerr
	}
	link, err := s.apply(ctx, u, want, &in, uncertain)
	if ferr := s.saveLink(ctx, u, in.Gen, link, err); ferr != nil && err == nil {
		err = ferr
	}
	return err
}

// apply makes the Panther user match want and returns the new link.
func (s *Service) apply(ctx context.Context, u User, want desired, in *Intent, uncertain bool) (PantherLink, error) {
	link := u.Panther
	ident, err := DeriveIdentity(u.UserName, u.Attributes)
	if err != nil {
		return link, err
	}
	if !want.Access {
		if link.ID != "" {
			if err := s.removeLinked(ctx, link, u.ID, u.Email); err != nil {
				return link, err
			}
			return PantherLink{}, nil
		}
		// Never linked: only an invite this record recorded can have made a Panther
		// user; a record that never asked for access makes no call at all.
		return PantherLink{}, s.removeInvited(ctx, in.Invites, u.ID)
	}
	role, err := s.RoleFor(ctx, want.Role)
	if err != nil {
		return link, err
	}
	var (
		cur     PantherUser // the Panther user as it is now, when read in this sync
		known   bool
		adopted bool
	)
	if link.ID == "" {
		if s.isProtected(ident.Email) {
			return link, s.refuse(ctx, u.ID, map[string]string{"email": ident.Email}, RefuseProtected, CodeUniqueness,
				"email %q is on the protected list: panther-scim never provisions it", ident.Email)
		}
		cur, adopted, err = s.inviteOrAdopt(ctx, u, ident, role, in, uncertain)
		if err != nil {
			return link, err
		}
		link, known = linkOf(cur), true
	}
	if !linkDiffers(link, ident, role) {
		if adopted {
			s.noteAdoption(ctx, u, cur, role.Name)
		}
		return link, nil
	}
	if !known {
		cur, err = s.current(ctx, u.ID, link, ident.Email)
		if errors.Is(err, ErrNotFound) {
			// Deleted behind our back: invite again (an email with a recorded invite is
			// looked up first).
			u.Panther = PantherLink{}
			return s.apply(ctx, u, want, in, true)
		}
		if err != nil {
			return link, err
		}
		link = linkOf(cur)
	}
	orig := u.Panther
	upd, changed := updateFor(linkOf(cur), ident, role)
	if !changed {
		if adopted {
			s.noteAdoption(ctx, u, cur, role.Name)
		}
		return link, nil
	}
	if upd.Role != nil && cur.Admin {
		newRole := role
		if fresh, err := s.panther.RoleByID(ctx, role.ID); err == nil {
			newRole = fresh // permissions as they are now, not as cached
		} else if !errors.Is(err, ErrNotFound) {
			return orig, err
		}
		if !newRole.Administrator() {
			release, err := s.guardLastAdmin(ctx, u.ID, cur, "move to role "+role.Name)
			if err != nil {
				return orig, err
			}
			// Held until apply returns: past the update, whatever its answer.
			defer release()
		}
	}
	pu, err := s.panther.UpdateUser(ctx, upd)
	if errors.Is(err, ErrNotFound) {
		u.Panther = PantherLink{}
		return s.apply(ctx, u, want, in, true)
	}
	if err != nil && upd.Email != nil && !Retryable(err) && !errors.Is(err, ErrUnauthorized) {
		// Panther refused the new email: when another Panther user holds it (whatever
		// words Panther used), the change is refused, never retried.
		if other, lerr := s.panther.UserByEmail(ctx, *upd.Email); lerr == nil && other.ID != cur.ID {
			return orig, s.refuse(ctx, u.ID, map[string]string{"email": *upd.Email, "pantherId": cur.ID, "holder": other.ID},
				RefuseEmailTaken, CodeUniqueness,
				"email %q is already used by another Panther user (%s): the change is refused and not kept", *upd.Email, other.ID)
		}
	}
	if err != nil {
		if adopted {
			return orig, err
		}
		return link, err
	}
	s.log.InfoContext(ctx, "panther call", "op", "updateUser", "scim_id", u.ID, "panther_id", link.ID,
		"email_changed", upd.Email != nil, "names_changed", upd.GivenName != nil || upd.FamilyName != nil, "role", role.Name)
	s.hook(s.opts.Hooks.AfterPantherCall)
	if adopted {
		s.noteAdoption(ctx, u, cur, role.Name)
	}
	return linkOf(pu), nil
}

// linkDiffers reports whether what was last applied differs from what the record wants.
func linkDiffers(link PantherLink, ident Identity, role PantherRole) bool {
	_, changed := updateFor(link, ident, role)
	return changed
}

// updateFor is the update that takes a Panther user from have to what the record wants.
func updateFor(have PantherLink, ident Identity, role PantherRole) (UpdateInput, bool) {
	upd := UpdateInput{ID: have.ID}
	changed := false
	// Each field is copied where it changes: pointing into ident put ident on the
	// heap at every call, one allocation per user of a reconcile that changes nothing.
	if !SameEmail(have.Email, ident.Email) {
		email := ident.Email
		upd.Email, changed = &email, true
	}
	if have.GivenName != ident.GivenName {
		given := ident.GivenName
		upd.GivenName, changed = &given, true
	}
	if have.FamilyName != ident.FamilyName {
		family := ident.FamilyName
		upd.FamilyName, changed = &family, true
	}
	if have.RoleID != role.ID {
		upd.Role, changed = &RoleRef{ByID: true, Value: role.ID}, true
	}
	return upd, changed
}

// inviteOrAdopt gives a record without a link its Panther user: a new invite, or the
// user Panther already has for the email, linked as the record's own (an earlier
// invite of this record) or adopted under the adoption policy (claim).
//
// The usual case, a new person, costs one call: the invite is recorded in the intent
// (durably, before the call) and sent. Any refusal Panther answers other than
// unavailable, rate-limited or unauthorized (a duplicate, or words nobody documented)
// is followed by a lookup of the email before the IdP is answered. When an earlier
// recorded attempt may have reached Panther (uncertain) the lookup goes first, so a
// replayed invite never meets our own earlier invite as a stranger.
func (s *Service) inviteOrAdopt(ctx context.Context, u User, ident Identity, role PantherRole, in *Intent, uncertain bool) (PantherUser, bool, error) {
	if _, recorded := in.invite(ident.Email); uncertain && recorded {
		pu, err := s.panther.UserByEmail(ctx, ident.Email)
		switch {
		case err == nil:
			return s.claim(ctx, u, pu, in)
		case !errors.Is(err, ErrNotFound):
			return pu, false, err
		}
	}
	if _, err := s.recordInvite(ctx, in, ident.Email); err != nil {
		return PantherUser{}, false, err
	}
	pu, ierr := s.panther.InviteUser(ctx, InviteInput{
		Email: ident.Email, GivenName: ident.GivenName, FamilyName: ident.FamilyName,
		Role: RoleRef{ByID: true, Value: role.ID},
	})
	if ierr == nil {
		// Created by this invite: the client never returns a user that existed before
		// its invite was sent.
		s.log.InfoContext(ctx, "panther call", "op", "inviteUser", "scim_id", u.ID, "panther_id", pu.ID, "role", role.Name)
		s.hook(s.opts.Hooks.AfterPantherCall)
		return pu, false, nil
	}
	if Retryable(ierr) || errors.Is(ierr, ErrUnauthorized) || errors.Is(ierr, context.Canceled) || errors.Is(ierr, context.DeadlineExceeded) {
		return pu, false, ierr
	}
	found, err := s.panther.UserByEmail(ctx, ident.Email)
	switch {
	case err == nil:
		if !errors.Is(ierr, ErrConflict) {
			s.log.WarnContext(ctx, "Panther refused an invite in words the client does not know, and has a user with the email: treated as a duplicate",
				"scim_id", u.ID, "panther_id", found.ID)
		}
		return s.claim(ctx, u, found, in)
	case errors.Is(err, ErrNotFound):
		// Refused for another reason, and Panther holds no user with the email: no
		// invite of it created one. Forget them, so that a Panther user someone else
		// creates with the address later (in the console, say) is not taken for
		// panther-scim's own invitee, outside the adoption policy.
		if werr := s.withdrawInvites(ctx, in, ident.Email); werr != nil {
			return PantherUser{}, false, werr
		}
		return PantherUser{}, false, ierr // Panther's answer is the one to report
	default:
		return PantherUser{}, false, err
	}
}

// removeFromPanther removes the Panther user of a deleted record: the linked one
// (after checking it is still ours), or, for a record never linked, whatever its
// recorded invites created.
func (s *Service) removeFromPanther(ctx context.Context, link PantherLink, in *Intent) error {
	if link.ID == "" {
		return s.removeInvited(ctx, in.Invites, in.UserID)
	}
	return s.removeLinked(ctx, link, in.UserID, in.Email)
}

// linkedTo returns the id of the record linked to a Panther user id, or "".
func (s *Service) linkedTo(ctx context.Context, pantherID string) (string, error) {
	var id string
	err := s.store.View(ctx, func(tx ReadTx) error {
		u, err := tx.UserByPantherID(pantherID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		id = u.ID
		return err
	})
	return id, err
}

func linkOf(pu PantherUser) PantherLink {
	return PantherLink{ID: pu.ID, Email: pu.Email, GivenName: pu.GivenName, FamilyName: pu.FamilyName, RoleID: pu.RoleID}
}

// saveLink records what Panther now holds and clears the intent when the record did not
// change meanwhile and the sync succeeded; on failure it schedules a retry, and on a
// refusal (by an ownership rule, or by Panther itself) it puts back the record the
// refused changes replaced (putBack), in the same transaction. synced is the record the
// sync applied; ctx names who asked, for the audit trail.
func (s *Service) saveLink(ctx context.Context, synced User, gen int64, link PantherLink, syncErr error) error {
	id := synced.ID
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var back *AuditEntry
	// Batch: many syncs finish at once (a group change re-syncs its members), and
	// sharing commits keeps the single writer's fsyncs from pacing them.
	err := s.store.Batch(wctx, func(tx Tx) error {
		back = nil
		cur, err := tx.User(id)
		if errors.Is(err, ErrNotFound) {
			// Deleted while we synced: make sure the removal knows what we created.
			in, err := tx.Intent(id)
			if err == nil && in.Remove != nil && in.Remove.ID == "" && link.ID != "" {
				in.Remove = &link
				return tx.PutIntent(in)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if link.ID != "" && link.ID != cur.Panther.ID {
			// Linked: the Panther user is this record's now, and an invite record of
			// its email has nothing left to tell.
			if err := tx.DeleteInvite(link.Email); err != nil {
				return err
			}
		}
		if cur.Panther != link {
			cur.Panther = link
			if err := tx.PutUser(cur); err != nil {
				return err
			}
		}
		if syncErr == nil {
			in, err := tx.Intent(id)
			if err == nil && in.Gen != gen && in.Revert != nil && in.Revert.Version < synced.Version {
				// A newer change landed while this sync applied the record: Panther holds
				// what was applied, so that is what a refusal of the newer one puts back.
				in.Revert = priorState(synced, true)
				return tx.PutIntent(in)
			}
			return s.clearIntent(tx, id, gen)
		}
		if reason, refused := rollbackReason(syncErr); refused {
			e, done, err := s.putBack(ctx, tx, cur, gen, reason)
			if err != nil || done {
				back = e
				return err
			}
		}
		return s.retryLater(tx, id, gen, syncErr)
	})
	if err == nil && back != nil {
		s.log.WarnContext(ctx, "put back a change that was refused", "scim_id", id, "outcome", back.Outcome)
	}
	return err
}

// refusedByPanther is the rollback reason of a change Panther itself refused (invalid
// input, a conflict), as opposed to one an ownership rule refused.
const refusedByPanther = "refused by Panther"

// rollbackReason says whether a sync's failure refuses the change it applied, and why:
// a refusal, or Panther's own answer that the input is invalid or conflicts. Anything
// else (Panther unavailable, the token refused) may pass with time, and is retried.
func rollbackReason(err error) (string, bool) {
	if r, ok := refusalOf(err); ok {
		return r.Reason, true
	}
	if !Retryable(err) && (errors.Is(err, ErrInvalid) || errors.Is(err, ErrConflict)) {
		return refusedByPanther, true
	}
	return "", false
}

// putBack undoes, in tx, the changes to cur that the sync of intent generation gen
// applied and that were refused (reason): cur goes back to the intent's Revert, with a
// new version (an IdP that reads it sees the change), audited, and the intent ends
// without queueing them. done is false when there is nothing it may put back: the
// intent was rewritten by a newer change (whose own sync answers for it) or has no
// Revert, or the change was a deactivation of a Panther user that is not
// panther-scim's or is protected, which is kept as the IdP asked (Panther is left
// alone).
//
// A deactivation among the changes stands (the IdP was told it was done), unless it
// is what was refused (last_admin): the rest is put back and the deactivation queued
// again, now without what was refused. So is the work the intent carried before the
// changes (PriorState.Pending).
func (s *Service) putBack(ctx context.Context, tx Tx, cur User, gen int64, reason string) (*AuditEntry, bool, error) {
	in, err := tx.Intent(cur.ID)
	if err != nil || in.Gen != gen || in.Revert == nil {
		return nil, false, nil
	}
	prev := *in.Revert
	deactivated := prev.Active && !cur.Active
	if deactivated && (reason == RefuseNotOwned || reason == RefuseProtected) {
		return nil, false, nil
	}
	standing := deactivated && reason != RefuseLastAdmin
	back := cur
	back.UserName, back.ExternalID, back.Active, back.Attributes = prev.UserName, prev.ExternalID, prev.Active && !standing, prev.Attributes
	if !strings.EqualFold(back.UserName, cur.UserName) {
		if other, err := tx.UserByUserName(back.UserName); err == nil && other.ID != cur.ID {
			back.UserName = cur.UserName // taken since by another record: keep the one it has
		}
	}
	back.Email = prev.Email
	if ident, err := DeriveIdentity(back.UserName, back.Attributes); err == nil {
		back.Email = ident.Email
	}
	var entry *AuditEntry
	if !sameUser(back, cur) {
		if other, err := tx.UserByEmail(back.Email); err == nil && other.ID != cur.ID {
			// The address it had is another record's now: the record cannot go back.
			// The refusal is on the trail; leave the record as it is, and its intent
			// ends as any refused one does.
			s.log.ErrorContext(ctx, "could not put back a refused change: its former email is another user's now",
				"scim_id", cur.ID, "email", back.Email, "other", other.ID)
			return nil, false, nil
		}
		back.Version = cur.Version + 1
		back.LastModified = s.now().UTC()
		if err := tx.PutUser(back); err != nil {
			return nil, false, err
		}
		e := s.auditEntry(ctx, "user.update", "User", cur.ID, userAuditFields(&cur, nil), userAuditFields(&back, nil),
			"rolled back: refused: "+reason)
		if err := tx.AppendAudit(e); err != nil {
			return nil, false, err
		}
		entry = &e
	}
	if standing || prev.Pending {
		in.Revert = nil
		in.Gen++
		in.NextAttempt = s.now().UTC()
		return entry, true, tx.PutIntent(in)
	}
	return entry, true, tx.DeleteIntent(cur.ID)
}

// finishIntent clears (or, on failure, reschedules) the intent of a record that is
// gone. Once its removal is done, the invite records of the emails it invited
// (invites) have nothing left to tell, unless another record has invited them since.
func (s *Service) finishIntent(id string, gen int64, syncErr error, invites []InviteAttempt) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.store.Batch(ctx, func(tx Tx) error {
		if syncErr != nil {
			return s.retryLater(tx, id, gen, syncErr)
		}
		for _, a := range invites {
			if r, err := tx.Invite(a.Email); err == nil && r.UserID == id {
				if err := tx.DeleteInvite(a.Email); err != nil {
					return err
				}
			}
		}
		return s.clearIntent(tx, id, gen)
	})
	if syncErr != nil {
		return syncErr
	}
	return err
}

// clearIntent deletes the intent unless a newer change rewrote it meanwhile.
func (s *Service) clearIntent(tx Tx, id string, gen int64) error {
	in, err := tx.Intent(id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if in.Gen != gen {
		return nil
	}
	return tx.DeleteIntent(id)
}

// retryLater schedules the intent's next attempt with backoff, unless the failure was
// a refusal: a refused change is never retried, so its intent is cleared (when no newer
// change rewrote it meanwhile).
func (s *Service) retryLater(tx Tx, id string, gen int64, cause error) error {
	if _, refused := refusalOf(cause); refused {
		return s.clearIntent(tx, id, gen)
	}
	in, err := tx.Intent(id)
	if err != nil {
		return nil
	}
	in.Attempts++
	in.NextAttempt = s.now().UTC().Add(backoff(in.Attempts))
	in.LastError = safeCause(cause)
	return tx.PutIntent(in)
}

// backoff is exponential with full jitter, from 1s up to 5 minutes.
func backoff(attempt int) time.Duration {
	d := time.Second << min(attempt, 9)
	d = min(d, 5*time.Minute)
	return d/2 + rand.N(d/2+1)
}

// syncMany syncs users with bounded concurrency and returns the first failure.
func (s *Service) syncMany(ctx context.Context, ids []string) error {
	sem := make(chan struct{}, s.opts.SyncConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := s.SyncUser(ctx, id, false); err != nil {
				mu.Lock()
				if first == nil || (Retryable(err) && !Retryable(first)) {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// keyedMutex serialises work per key without a global lock.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu sync.Mutex
	n  int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.n++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.n--; e.n == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
