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
}

func newGroupRefCache(tx ReadTx) *groupRefCache {
	return &groupRefCache{tx: tx, refs: map[string]mappings.GroupRef{}, states: map[string]UserState{}}
}

// reset forgets the groups, after a group write; user states stay, as a group write
// changes no user record.
func (c *groupRefCache) reset() { clear(c.refs) }

func (c *groupRefCache) get(ids []string) ([]mappings.GroupRef, error) {
	out := make([]mappings.GroupRef, 0, len(ids))
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

// RoleFor resolves a mapping role reference (a Panther role name, matched
// case-insensitively, or a role id) to the Panther role, caching the answer.
func (s *Service) RoleFor(ctx context.Context, ref string) (PantherRole, error) {
	key := strings.ToLower(ref)
	s.rolesMu.RLock()
	r, ok := s.roles[key]
	s.rolesMu.RUnlock()
	if ok {
		return r, nil
	}
	r, err := s.panther.RoleByName(ctx, ref)
	if errors.Is(err, ErrNotFound) {
		r, err = s.panther.RoleByID(ctx, ref)
	}
	if errors.Is(err, ErrNotFound) {
		return PantherRole{}, newError(CodeInternal, err, "mapped role %q does not exist in Panther", ref)
	}
	if err != nil {
		return PantherRole{}, err
	}
	s.rolesMu.Lock()
	s.roles[key] = r
	s.rolesMu.Unlock()
	return r, nil
}

// SyncUser makes Panther match the store for one user, if an intent says it may not.
// Calls for one user, and for one email, are serialised; the latest record is what
// gets applied, so concurrent changes converge whatever order they arrive in.
// uncertain says that an earlier attempt may have reached Panther without being
// recorded (a crash or a lost response), so lookups by email come before any invite or
// give-up.
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
	if in.Remove != nil && errors.Is(uerr, ErrNotFound) {
		email = in.Remove.Email
	}
	if email != "" {
		defer s.locks.lock("email:" + EmailKey(email))()
	}

	if errors.Is(uerr, ErrNotFound) {
		if in.Remove == nil {
			return s.finishIntent(id, in.Gen, nil)
		}
		err := s.removeFromPanther(ctx, *in.Remove, id)
		return s.finishIntent(id, in.Gen, err)
	}
	if uerr != nil {
		return uerr
	}
	link, err := s.apply(ctx, u, want, uncertain)
	if ferr := s.saveLink(id, in.Gen, link, err); ferr != nil && err == nil {
		err = ferr
	}
	return err
}

// apply makes the Panther user match want and returns the new link.
func (s *Service) apply(ctx context.Context, u User, want desired, uncertain bool) (PantherLink, error) {
	link := u.Panther
	ident, err := DeriveIdentity(u.UserName, u.Attributes)
	if err != nil {
		return link, err
	}
	if !want.Access {
		if link.ID != "" {
			if err := s.removeFromPanther(ctx, link, u.ID); err != nil {
				return link, err
			}
			return PantherLink{}, nil
		}
		if uncertain {
			// A lost invite may have created a Panther user we never linked.
			return PantherLink{}, s.removeFromPanther(ctx, PantherLink{Email: ident.Email}, u.ID)
		}
		return PantherLink{}, nil
	}
	role, err := s.RoleFor(ctx, want.Role)
	if err != nil {
		return link, err
	}
	if link.ID == "" {
		if s.isProtected(ident.Email) {
			return link, newError(CodeUniqueness, nil, "email %q is on the protected list: panther-scim never provisions it", ident.Email)
		}
		pu, err := s.inviteOrAdopt(ctx, u, ident, role, uncertain)
		if err != nil {
			return link, err
		}
		link = linkOf(pu)
	}
	upd := UpdateInput{ID: link.ID}
	changed := false
	if !SameEmail(link.Email, ident.Email) {
		upd.Email, changed = &ident.Email, true
	}
	if link.GivenName != ident.GivenName {
		upd.GivenName, changed = &ident.GivenName, true
	}
	if link.FamilyName != ident.FamilyName {
		upd.FamilyName, changed = &ident.FamilyName, true
	}
	if link.RoleID != role.ID {
		upd.Role, changed = &RoleRef{ByID: true, Value: role.ID}, true
	}
	if !changed {
		return link, nil
	}
	if s.isProtected(link.Email) {
		return link, newError(CodeUniqueness, nil, "Panther user %s is on the protected list: panther-scim never changes it", link.Email)
	}
	pu, err := s.panther.UpdateUser(ctx, upd)
	if errors.Is(err, ErrNotFound) {
		// Deleted behind our back: invite again.
		u.Panther = PantherLink{}
		return s.apply(ctx, u, want, true)
	}
	if err != nil {
		return link, err
	}
	s.log.InfoContext(ctx, "panther call", "op", "updateUser", "scim_id", u.ID, "panther_id", link.ID,
		"email_changed", upd.Email != nil, "names_changed", upd.GivenName != nil || upd.FamilyName != nil, "role", role.Name)
	s.hook(s.opts.Hooks.AfterPantherCall)
	return linkOf(pu), nil
}

// inviteOrAdopt gives a record without a link its Panther user: the one Panther already
// has for the email (adopted, DESIGN: a POST for an existing email adopts that user), or
// a new invite.
//
// The usual case, a new person, costs one call: the invite goes first, and only an
// invite Panther refuses (a duplicate email, or input it calls invalid, in case its
// duplicate error is worded that way) is followed by a lookup. When an earlier attempt
// may have reached Panther (uncertain) the lookup goes first, so a replayed invite
// never meets our own earlier invite as a stranger.
func (s *Service) inviteOrAdopt(ctx context.Context, u User, ident Identity, role PantherRole, uncertain bool) (PantherUser, error) {
	invite := func() (PantherUser, error) {
		pu, err := s.panther.InviteUser(ctx, InviteInput{
			Email: ident.Email, GivenName: ident.GivenName, FamilyName: ident.FamilyName,
			Role: RoleRef{ByID: true, Value: role.ID},
		})
		if err != nil {
			return pu, err
		}
		s.log.InfoContext(ctx, "panther call", "op", "inviteUser", "scim_id", u.ID, "panther_id", pu.ID, "role", role.Name)
		s.hook(s.opts.Hooks.AfterPantherCall)
		return pu, nil
	}
	adopt := func(pu PantherUser) (PantherUser, error) {
		if other, err := s.linkedTo(ctx, pu.ID); err != nil {
			return pu, err
		} else if other != "" && other != u.ID {
			return pu, newError(CodeUniqueness, nil, "Panther user %s (%s) is already linked to SCIM user %s", pu.ID, pu.Email, other)
		}
		s.log.InfoContext(ctx, "adopting existing Panther user", "scim_id", u.ID, "panther_id", pu.ID)
		return pu, nil
	}

	// lookup adopts the Panther user of the email, or calls notFound when there is none.
	lookup := func(notFound func() (PantherUser, error)) (PantherUser, error) {
		pu, err := s.panther.UserByEmail(ctx, ident.Email)
		switch {
		case err == nil:
			return adopt(pu)
		case errors.Is(err, ErrNotFound):
			return notFound()
		default:
			return pu, err
		}
	}

	if uncertain {
		return lookup(invite)
	}
	pu, ierr := invite()
	if ierr == nil || !(errors.Is(ierr, ErrConflict) || errors.Is(ierr, ErrInvalid)) {
		return pu, ierr
	}
	// Refused for another reason than a duplicate: Panther's answer is the one to report.
	return lookup(func() (PantherUser, error) { return pu, ierr })
}

// removeFromPanther deletes the Panther user of a link, after checking it is still
// ours: not protected, and not linked to a record other than self. A link without an
// id (a record that may have been invited without the answer reaching us) is looked up
// by email.
func (s *Service) removeFromPanther(ctx context.Context, link PantherLink, self string) error {
	id := link.ID
	if id == "" {
		if link.Email == "" {
			return nil
		}
		pu, err := s.panther.UserByEmail(ctx, link.Email)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		id, link.Email = pu.ID, pu.Email
	}
	if s.isProtected(link.Email) {
		s.log.WarnContext(ctx, "not removing a protected Panther user", "panther_id", id)
		return nil
	}
	if other, err := s.linkedTo(ctx, id); err != nil {
		return err
	} else if other != "" && other != self {
		return nil // adopted by another record since: no longer ours to remove
	}
	err := s.panther.DeleteUser(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err == nil {
		s.log.InfoContext(ctx, "panther call", "op", "deleteUser", "panther_id", id)
		s.hook(s.opts.Hooks.AfterPantherCall)
	}
	return err
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
// change meanwhile and the sync succeeded; on failure it schedules a retry.
func (s *Service) saveLink(id string, gen int64, link PantherLink, syncErr error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Batch: many syncs finish at once (a group change re-syncs its members), and
	// sharing commits keeps the single writer's fsyncs from pacing them.
	return s.store.Batch(ctx, func(tx Tx) error {
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
		if cur.Panther != link {
			cur.Panther = link
			if err := tx.PutUser(cur); err != nil {
				return err
			}
		}
		if syncErr != nil {
			return s.retryLater(tx, id, syncErr)
		}
		return s.clearIntent(tx, id, gen)
	})
}

func (s *Service) finishIntent(id string, gen int64, syncErr error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.store.Batch(ctx, func(tx Tx) error {
		if syncErr == nil {
			return s.clearIntent(tx, id, gen)
		}
		return s.retryLater(tx, id, syncErr)
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

func (s *Service) retryLater(tx Tx, id string, cause error) error {
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
