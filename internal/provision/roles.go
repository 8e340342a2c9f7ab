package provision

import (
	"context"
	"errors"
	"strings"
)

// RoleLookup is the part of Panther's API that resolves roles.
type RoleLookup interface {
	RoleByName(ctx context.Context, name string) (PantherRole, error)
	RoleByID(ctx context.Context, id string) (PantherRole, error)
}

// UnknownRoleError says that a role reference names no Panther role, by name or by
// id. It wraps Panther's answer (ErrNotFound), whose text it keeps.
type UnknownRoleError struct {
	Ref string
	Err error
}

func (e *UnknownRoleError) Error() string { return e.Err.Error() }

func (e *UnknownRoleError) Unwrap() error { return e.Err }

// LookupRole resolves a role reference as the mapping writes it: a Panther role name
// (Panther compares names case-insensitively), else a role id. A reference that is
// neither gets an *UnknownRoleError; a failure to ask Panther is returned as is.
func LookupRole(ctx context.Context, p RoleLookup, ref string) (PantherRole, error) {
	r, err := p.RoleByName(ctx, ref)
	if errors.Is(err, ErrNotFound) {
		r, err = p.RoleByID(ctx, ref)
	}
	if errors.Is(err, ErrNotFound) {
		return PantherRole{}, &UnknownRoleError{Ref: ref, Err: err}
	}
	return r, err
}

// RoleFor resolves a mapping role reference (LookupRole), caching the answer. A
// reference Panther has no role for is a CodeInternal *Error (a configuration
// problem, not the IdP's) whose cause is an *UnknownRoleError.
func (s *Service) RoleFor(ctx context.Context, ref string) (PantherRole, error) {
	if r, ok := s.knownRole(ref); ok {
		return r, nil
	}
	r, err := LookupRole(ctx, s.panther, ref)
	if errors.Is(err, ErrNotFound) {
		return PantherRole{}, newError(CodeInternal, err, "mapped role %q does not exist in Panther", ref)
	}
	if err != nil {
		return PantherRole{}, err
	}
	s.rolesMu.Lock()
	s.roles[strings.ToLower(ref)] = r
	s.rolesMu.Unlock()
	return r, nil
}

// ResolveRoles resolves with RoleFor every role the rules name: the mapping's roles
// (its rules' and the default role) and the deactivation role. It returns them by
// reference, or RoleFor's error for the first it cannot resolve.
func (s *Service) ResolveRoles(ctx context.Context) (map[string]PantherRole, error) {
	refs := s.opts.Mapping.Roles()
	if s.opts.DeactivationRole != "" {
		refs = append(refs, s.opts.DeactivationRole)
	}
	roles := make(map[string]PantherRole, len(refs))
	for _, ref := range refs {
		r, err := s.RoleFor(ctx, ref)
		if err != nil {
			return nil, err
		}
		roles[ref] = r
	}
	return roles, nil
}

// knownRole is a role already resolved with Panther (RoleFor's cache); it never calls
// Panther, so that writing the audit trail never waits on it.
func (s *Service) knownRole(ref string) (PantherRole, bool) {
	s.rolesMu.RLock()
	defer s.rolesMu.RUnlock()
	r, ok := s.roles[strings.ToLower(ref)]
	return r, ok
}

// knownNonAdmin reports whether a role id is one of the roles the mapping assigns and
// its permissions (as last read) lack UserModify.
func (s *Service) knownNonAdmin(roleID string) bool {
	s.rolesMu.RLock()
	defer s.rolesMu.RUnlock()
	for _, r := range s.roles {
		if r.ID == roleID {
			return !r.Administrator()
		}
	}
	return false
}

// roleMayAdmin reports whether a mapped role may hold UserModify: it does, or its
// permissions are not known.
func (s *Service) roleMayAdmin(ref string) bool {
	r, _ := s.knownRole(ref)
	return r.ID == "" || r.Administrator()
}
