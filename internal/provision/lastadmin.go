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
// A group change that moves members out of an administrator role (Okta or Entra
// removing someone from "Panther Admins") is checked the same way, before anything is
// written: it reads the demoted members' Panther users by id to learn which of them
// are enabled administrators, then looks for an enabled administrator outside them.
// Beyond groupAdminReads demoted members one listing is cheaper than reading each, and
// the listing is searched instead.
//
// Two administrators removed at once must not both pass on each other. The checks take
// turns, and a Panther user whose removal or demotion a check let through is reserved
// until its Panther call has returned (a deletion's preflight holds it until the
// deletion's own sync is over, a group change its demoted members until their syncs
// are over): no check counts it as the other administrator
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
	// groupAdminReads bounds the demoted members a group change reads with userById
	// before it lists Panther's users instead.
	groupAdminReads = 8
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

// listAdmins lists Panther's users for the last-administrator check, and remembers
// the enabled administrators among them.
func (s *Service) listAdmins(ctx context.Context) ([]PantherUser, error) {
	users, err := s.listUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list Panther users to check for another administrator: %w", err)
	}
	s.rememberAdmins(users)
	return users, nil
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

// reserve reserves ids and returns the release, which may be called more than once.
// The release also drops them from the memory: the change was let through, so they
// may no longer be administrators (if they still are, a later listing remembers them
// again).
func (g *adminGuard) reserve(ids []string) (release func()) {
	ids = slices.Clone(ids)
	g.mu.Lock()
	for _, id := range ids {
		g.reserved[id]++
	}
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.known = slices.DeleteFunc(g.known, func(k string) bool { return slices.Contains(ids, k) })
			for _, id := range ids {
				if g.reserved[id]--; g.reserved[id] <= 0 {
					delete(g.reserved, id)
				}
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
	release, err = s.otherAdmin(ctx, []string{leaving.ID}, nil)
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

// otherAdmin looks, in its turn, for an enabled Panther administrator outside leaving
// (the users a change takes UserModify away from) that no check has let go. Found, it
// reserves leaving before giving up the turn, and returns the reservation's release;
// nil when there is none. Some of leaving may be reserved already (by the preflight of
// the deletion whose sync this is, by the group change that demoted it, or by another
// change of the same user): they are checked afresh all the same, and reserved once
// more. listed, when not nil, is a listing of Panther's users the caller has just made
// (a group change demoting many members): it is searched instead of confirming
// candidates one by one and listing again.
func (s *Service) otherAdmin(ctx context.Context, leaving []string, listed []PantherUser) (release func(), _ error) {
	g := s.admins
	select {
	case g.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the last-administrator check: %w", ctx.Err())
	}
	defer func() { <-g.turn }()

	// out reports whether id cannot be the other administrator.
	out := func(id string) bool { return slices.Contains(leaving, id) || g.isReserved(id) }
	if listed == nil {
		tried := 0
		// try confirms candidates with Panther, up to adminConfirmations in all, and
		// reports whether one is an enabled administrator now.
		try := func(cands []adminCandidate) (bool, error) {
			for _, c := range cands {
				if c.id != "" && out(c.id) {
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
				case out(pu.ID):
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
			ok, err = try(s.adminSeeds(ctx, leaving))
		}
		if err != nil {
			return nil, err
		}
		if ok {
			return g.reserve(leaving), nil
		}

		s.log.DebugContext(ctx, "no remembered Panther administrator confirmed: listing Panther's users", "panther_ids", leaving, "confirmed", tried)
		if listed, err = s.listAdmins(ctx); err != nil {
			return nil, err
		}
	}
	for _, o := range listed {
		if !out(o.ID) && o.Enabled && o.Admin {
			g.confirmed(o.ID)
			return g.reserve(leaving), nil
		}
	}
	return nil, nil
}

// adminSeeds are the candidates panther-scim knows before any listing: the protected
// emails (accounts it never changes, often the break-glass administrators), then the
// linked, active members of the groups mapped to a role that holds UserModify (as the
// role cache last read it), up to adminSeeds of them. A store that cannot be read
// gives none: the check then lists.
func (s *Service) adminSeeds(ctx context.Context, leaving []string) []adminCandidate {
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
	seen := map[string]bool{}
	for _, id := range leaving {
		seen[id] = true
	}
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

// groupAdminCheck is what a group change learnt from Panther, before its write, about
// the Panther users it demotes (takes out of a role that may hold UserModify).
type groupAdminCheck struct {
	// checked is false when Panther could not be asked: the change goes ahead, and the
	// syncs of its members check before any Panther call.
	checked bool
	// listed: users holds all of Panther's enabled administrators, from a listing.
	// Otherwise it holds those of asked that Panther has.
	listed bool
	asked  []string
	users  map[string]PantherUser
	// leaving are the enabled administrators among the demoted members, sorted.
	leaving []string
	// other: another enabled administrator was confirmed, and leaving is reserved
	// until release.
	other   bool
	release func()
}

// checkGroupAdmins checks a group change that demotes the Panther users demoted: which
// of them are enabled administrators now (read by id, or listed when there are more
// than groupAdminReads), and whether an enabled administrator outside them is left.
// Its release is never nil, and the caller defers it past the members' syncs.
func (s *Service) checkGroupAdmins(ctx context.Context, group string, demoted []string) *groupAdminCheck {
	chk, err := s.groupAdmins(ctx, demoted)
	if err != nil {
		// Panther cannot answer now: the change goes ahead, and the syncs of its
		// members check for another administrator before any Panther call.
		s.log.WarnContext(ctx, "could not check for another Panther administrator before a group change; the syncs will", "group", group, "err", err)
		return &groupAdminCheck{release: func() {}}
	}
	return chk
}

func (s *Service) groupAdmins(ctx context.Context, demoted []string) (*groupAdminCheck, error) {
	chk := &groupAdminCheck{checked: true, users: map[string]PantherUser{}, release: func() {}}
	var listed []PantherUser
	if len(demoted) <= groupAdminReads {
		chk.asked = demoted
		for _, id := range demoted {
			pu, err := s.panther.UserByID(ctx, id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read a demoted member's Panther user: %w", err)
			}
			chk.users[id] = pu
		}
	} else {
		var err error
		if listed, err = s.listAdmins(ctx); err != nil {
			return nil, err
		}
		chk.listed = true
		// Only the enabled administrators: they are all the check reads of a listing,
		// and the check is held until the members' syncs are over (a map of every
		// Panther user would be kept that long).
		for _, u := range listed {
			if u.Enabled && u.Admin {
				chk.users[u.ID] = u
			}
		}
	}
	chk.leaving = chk.admins(demoted)
	if len(chk.leaving) == 0 {
		return chk, nil
	}
	release, err := s.otherAdmin(ctx, chk.leaving, listed)
	if err != nil {
		return nil, err
	}
	if release != nil {
		chk.other, chk.release = true, release
	}
	return chk, nil
}

// admins returns the enabled administrators among ids, sorted.
func (c *groupAdminCheck) admins(ids []string) []string {
	var out []string
	for _, id := range ids {
		if u, ok := c.users[id]; ok && u.Enabled && u.Admin && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// decide is the check's answer for a change that demotes the Panther users demoted,
// as the change's transaction sees it: refused (with the emails of the administrators
// it would take UserModify away from), or not; or stale when the check was made for
// other members (a concurrent change of the store in between) and must be made again.
func (c *groupAdminCheck) decide(demoted []string) (refused []string, stale bool) {
	if !c.checked {
		return nil, false
	}
	if !c.listed {
		for _, id := range demoted {
			if !slices.Contains(c.asked, id) {
				return nil, true
			}
		}
	}
	leaving := c.admins(demoted)
	switch {
	case len(leaving) == 0:
		return nil, false
	case c.other && !slices.ContainsFunc(leaving, func(id string) bool { return !slices.Contains(c.leaving, id) }):
		return nil, false // all of them reserved, another administrator confirmed
	case !c.other && slices.Equal(leaving, c.leaving):
		for _, id := range leaving {
			refused = append(refused, c.users[id].Email)
		}
		slices.Sort(refused)
		return refused, false
	}
	return nil, true
}
