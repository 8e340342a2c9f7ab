package provision_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/mappings"
)

// roleLookup is a function-field provision.RoleLookup that records what it was asked.
type roleLookup struct {
	byName, byID func(string) (provision.PantherRole, error)
	asked        []string
}

func (l *roleLookup) RoleByName(_ context.Context, name string) (provision.PantherRole, error) {
	l.asked = append(l.asked, "name:"+name)
	return l.byName(name)
}

func (l *roleLookup) RoleByID(_ context.Context, id string) (provision.PantherRole, error) {
	l.asked = append(l.asked, "id:"+id)
	return l.byID(id)
}

// LookupRole tries the name, then the id; a reference that is neither is an
// *UnknownRoleError naming it, and any other failure is returned without trying the id.
func TestLookupRole(t *testing.T) {
	analyst := provision.PantherRole{ID: "r-1", Name: "Analyst"}
	notFound := func(string) (provision.PantherRole, error) {
		return provision.PantherRole{}, fmt.Errorf("roleBy: %w", provision.ErrNotFound)
	}
	found := func(string) (provision.PantherRole, error) { return analyst, nil }
	down := func(string) (provision.PantherRole, error) {
		return provision.PantherRole{}, fmt.Errorf("roleByName: %w", provision.ErrUnavailable)
	}
	for _, tc := range []struct {
		name          string
		byName, byID  func(string) (provision.PantherRole, error)
		asked         int
		want          provision.PantherRole
		unknown, fail bool
	}{
		{name: "by name", byName: found, byID: notFound, asked: 1, want: analyst},
		{name: "by id", byName: notFound, byID: found, asked: 2, want: analyst},
		{name: "neither", byName: notFound, byID: notFound, asked: 2, unknown: true},
		{name: "Panther down", byName: down, byID: found, asked: 1, fail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &roleLookup{byName: tc.byName, byID: tc.byID}
			r, err := provision.LookupRole(context.Background(), l, "Analyst")
			var unknown *provision.UnknownRoleError
			isUnknown := errors.As(err, &unknown)
			switch {
			case len(l.asked) != tc.asked:
				t.Errorf("asked %v, want %d lookups", l.asked, tc.asked)
			case isUnknown != tc.unknown || (tc.unknown && (unknown.Ref != "Analyst" || !errors.Is(err, provision.ErrNotFound))):
				t.Errorf("err %v (%#v), want unknown role %v wrapping ErrNotFound", err, unknown, tc.unknown)
			case tc.fail && !errors.Is(err, provision.ErrUnavailable):
				t.Errorf("err %v, want Panther's failure", err)
			case !tc.fail && !tc.unknown && (err != nil || r.ID != tc.want.ID):
				t.Errorf("role %+v, err %v, want %+v", r, err, tc.want)
			}
		})
	}
}

// ResolveRoles resolves the mapping's roles, its default and the deactivation role
// (case-insensitive names, or ids), and names the first one Panther does not have;
// RoleFor's error for it stays an internal provisioning error.
func TestResolveRoles(t *testing.T) {
	svc := newService(t, newFake(), provision.Options{
		Mapping:          mappings.Mapping{Rules: []mappings.Rule{{Group: "Admins", Role: "admin"}}, DefaultRole: "r-ro"},
		Deactivation:     provision.DeactivateRole,
		DeactivationRole: "Analyst",
	})
	got, err := svc.ResolveRoles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["admin"].ID != "r-admin" || got["r-ro"].Name != "AnalystReadOnly" || got["Analyst"].ID != "r-analyst" {
		t.Errorf("roles %+v", got)
	}

	svc = newService(t, newFake(), provision.Options{
		Mapping: mappings.Mapping{Rules: []mappings.Rule{{Group: "Admins", Role: "Admin"}}, DefaultRole: "Archmage"},
	})
	_, err = svc.ResolveRoles(context.Background())
	var unknown *provision.UnknownRoleError
	if !errors.As(err, &unknown) || unknown.Ref != "Archmage" || provision.ErrorCode(err) != provision.CodeInternal {
		t.Errorf("err %v, want the unknown role Archmage as an internal error", err)
	}
}
