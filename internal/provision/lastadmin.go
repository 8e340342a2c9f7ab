package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// The last-administrator check (issue 14: never leave Panther without an
// administrator) is made against Panther's current state before every delete,
// deactivation or demotion of an administrator, and must stay cheap at any directory
// size: a leaver who is an administrator must lose access within minutes, and a
// listing of 100,000 Panther users takes seconds and megabytes.
//
// So the service remembers the enabled administrators it last saw in a listing (a
// reconcile's, a group change's or the check's own) and confirms one of them, not the
// one leaving, with a userById call: its role must hold UserModify now and it must be
// enabled. Before any listing (after a start) the candidates are the ones panther-scim
// knows without asking: the protected emails (break-glass accounts, which it never
// changes) and the linked members of the groups the mapping maps to an administrator
// role. Only when no candidate confirms does the check list Panther's users, which
// refreshes the memory; it refuses when the listing has no other enabled
// administrator either. The memory is only ever a hint: nothing is counted without
// being read from Panther in this check.
//
// Two administrators removed at once must not both pass on each other. The checks take
// turns, and a Panther user whose removal or demotion a check let through is reserved
// until its Panther call has returned (a deletion's preflight holds it until the
// deletion's own sync is over): no check counts it as the other administrator
// meanwhile, and a check whose only other administrators are reserved refuses. Should
// the reserved change then fail, the refusal was one too many, never one too few.
// Every caller defers the release as soon as it has it, so that no error path keeps a
// reservation (which would have every later removal of the others refused). The turn
// is needed as well: without it two checks could each confirm the other before either
// reserves itself. A check never waits for a reservation: it runs inside a sync that holds its user's
// lock, and waiting there could deadlock with the holder. This holds within one
// process, which is what the deployment runs (one replica on one store file).

const (
	// adminConfirmations bounds the candidates one check reads with userById before it
	// lists Panther's users instead.
	adminConfirmations = 4
	// adminsRemembered bounds the memory: a few administrators are enough to find one.
	adminsRemembered = 256
	// adminSeeds bounds the members of administrators' groups taken as candidates
	// before any listing.
	adminSeeds = 16
)

// adminCandidate is a Panther user that may be an enabled administrator: by id, or
// (a protected email) by email.
type adminCandidate struct {
	id, email string
}

// adminGuard is the last-administrator check's memory and turn.
type adminGuard struct {
	turn chan struct{} // capacity 1: one check decides at a time

	mu    sync.Mutex
	known []string // Panther ids of enabled administrators, most recently confirmed first
	// reserved counts, by Panther id, the changes that checks let through and whose
	// Panther calls have not returned (a deletion's preflight and its sync, say).
	reserved map[string]int
}

func newAdminGuard() *adminGuard {
	return &adminGuard{turn: make(chan struct{}, 1), reserved: map[string]int{}}
}

// rememberAdmins replaces the memory with the enabled administrators of a listing of
// Panther's users (which may be older than the latest check: candidates are confirmed
// before they count).
func (s *Service) rememberAdmins(users []PantherUser) {
	var ids []string
	for _, u := range users {
		if u.Enabled && u.Admin {
			ids = append(ids, u.ID)
			if len(ids) == adminsRemembered {
				break
			}
		}
	}
	g := s.admins
	g.mu.Lock()
	g.known = ids
	g.mu.Unlock()
}

// confirmed moves id to the front of the memory.
func (g *adminGuard) confirmed(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.known = slices.DeleteFunc(g.known, func(k string) bool { return k == id })
	g.known = slices.Insert(g.known, 0, id)
	if len(g.known) > adminsRemembered {
		g.known = g.known[:adminsRemembered]
	}
}

// forget drops id from the memory.
func (g *adminGuard) forget(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.known = slices.DeleteFunc(g.known, func(k string) bool { return k == id })
}

func (g *adminGuard) remembered() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.known)
}

func (g *adminGuard) isReserved(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reserved[id] > 0
}

// reserve reserves id and returns the release, which may be called more than once.
// The release also drops id from the memory: the change was let through, so id may
// no longer be an administrator (if it still is, a later listing remembers it again).
func (g *adminGuard) reserve(id string) (release func()) {
	g.mu.Lock()
	g.reserved[id]++
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.known = slices.DeleteFunc(g.known, func(k string) bool { return k == id })
			if g.reserved[id]--; g.reserved[id] <= 0 {
				delete(g.reserved, id)
			}
		})
	}
}

// guardLastAdmin refuses a change that takes UserModify away from leaving (a delete,
// or a move to a role without it) when no other enabled Panther user holds it. When it
// lets the change through, leaving is reserved until the caller calls release, which
// it must defer at once, before making the change: a reservation never released would
// have every later removal of the other administrators refused. A failure to ask
// Panther is returned as is: nothing is let through unchecked. release is never nil
// when err is nil.
func (s *Service) guardLastAdmin(ctx context.Context, id string, leaving PantherUser, what string) (release func(), err error) {
	if !leaving.Admin {
		return func() {}, nil
	}
	release, err = s.otherAdmin(ctx, leaving.ID)
	if err != nil {
		return nil, err
	}
	if release != nil {
		return release, nil
	}
	return nil, s.refuse(ctx, id, map[string]string{"pantherId": leaving.ID, "email": leaving.Email, "pantherRole": leaving.RoleName},
		RefuseLastAdmin, CodeConflict,
		"refused to %s Panther user %s (%s): it is the only enabled Panther user whose role holds UserModify, and Panther would be left without an administrator. "+
			"Give another Panther user an administrator role first", what, leaving.ID, leaving.Email)
}

// otherAdmin looks, in its turn, for an enabled Panther administrator other than self
// that no check has let go. Found, it reserves self before giving up the turn, and
// returns the reservation's release; nil when there is none. self may be reserved
// already (by the preflight of the deletion whose sync this is, or by another change
// of the same user): it is checked afresh all the same, and reserved once more.
func (s *Service) otherAdmin(ctx context.Context, self string) (release func(), _ error) {
	g := s.admins
	select {
	case g.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the last-administrator check: %w", ctx.Err())
	}
	defer func() { <-g.turn }()

	tried := 0
	// try confirms candidates with Panther, up to adminConfirmations in all, and
	// reports whether one is an enabled administrator now.
	try := func(cands []adminCandidate) (bool, error) {
		for _, c := range cands {
			if c.id == self || g.isReserved(c.id) {
				continue
			}
			if tried == adminConfirmations {
				return false, nil
			}
			tried++
			var pu PantherUser
			var err error
			if c.id != "" {
				pu, err = s.panther.UserByID(ctx, c.id)
			} else {
				pu, err = s.panther.UserByEmail(ctx, c.email)
			}
			switch {
			case errors.Is(err, ErrNotFound):
				g.forget(c.id)
				continue
			case err != nil:
				return false, fmt.Errorf("confirm another Panther administrator: %w", err)
			case pu.ID == self || g.isReserved(pu.ID):
				continue
			case !pu.Enabled || !pu.Admin:
				g.forget(pu.ID)
				continue
			}
			g.confirmed(pu.ID)
			return true, nil
		}
		return false, nil
	}

	var cands []adminCandidate
	for _, id := range g.remembered() {
		cands = append(cands, adminCandidate{id: id})
	}
	ok, err := try(cands)
	if err == nil && !ok {
		ok, err = try(s.adminSeeds(ctx, self))
	}
	if err != nil {
		return nil, err
	}
	if ok {
		return g.reserve(self), nil
	}

	s.log.DebugContext(ctx, "no remembered Panther administrator confirmed: listing Panther's users", "panther_id", self, "confirmed", tried)
	users, err := s.panther.Users(ctx)
	if err != nil {
		return nil, fmt.Errorf("list Panther users to check for another administrator: %w", err)
	}
	s.rememberAdmins(users)
	for _, o := range users {
		if o.ID != self && o.Enabled && o.Admin && !g.isReserved(o.ID) {
			g.confirmed(o.ID)
			return g.reserve(self), nil
		}
	}
	return nil, nil
}

// adminSeeds are the candidates panther-scim knows before any listing: the protected
// emails (accounts it never changes, often the break-glass administrators), then the
// linked, active members of the groups mapped to a role that holds UserModify (as the
// role cache last read it), up to adminSeeds of them. A store that cannot be read
// gives none: the check then lists.
func (s *Service) adminSeeds(ctx context.Context, self string) []adminCandidate {
	var out []adminCandidate
	for _, e := range s.opts.ProtectedEmails {
		out = append(out, adminCandidate{email: e})
	}
	var rules []int
	for i, r := range s.opts.Mapping.Rules {
		if role, ok := s.knownRole(r.Role); ok && role.Administrator() {
			rules = append(rules, i)
		}
	}
	if len(rules) == 0 {
		return out
	}
	seen := map[string]bool{self: true}
	n := 0
	err := s.store.View(ctx, func(tx ReadTx) error {
		for _, i := range rules {
			r := s.opts.Mapping.Rules[i]
			var groups []Group
			switch {
			case r.Group != "":
				if g, err := tx.GroupByDisplayName(r.Group); err == nil {
					groups = append(groups, g)
				}
			case r.ExternalID != "":
				gs, err := tx.GroupsByExternalID(r.ExternalID)
				if err != nil {
					return err
				}
				groups = append(groups, gs...)
			}
			for _, g := range groups {
				for _, m := range g.Members {
					u, err := tx.User(m)
					if err != nil || !u.Active || u.Panther.ID == "" || seen[u.Panther.ID] {
						continue
					}
					seen[u.Panther.ID] = true
					out = append(out, adminCandidate{id: u.Panther.ID})
					if n++; n == adminSeeds {
						return nil
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "could not read the administrators' groups for the last-administrator check", "err", err)
	}
	return out
}
