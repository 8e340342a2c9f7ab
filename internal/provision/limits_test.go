package provision_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// wantInvalid checks that err is a CodeInvalid *Error whose detail holds every fragment.
func wantInvalid(t *testing.T, err error, fragments ...string) {
	t.Helper()
	var pe *provision.Error
	if !errors.As(err, &pe) || pe.Code != provision.CodeInvalid {
		t.Fatalf("err = %v, want a CodeInvalid *Error", err)
	}
	for _, f := range fragments {
		if !strings.Contains(pe.Detail, f) {
			t.Errorf("detail %q does not mention %q", pe.Detail, f)
		}
	}
}

// TestLengthLimits checks that values too long for a store key or a Panther request
// are refused up front as invalid input naming the attribute and the limit, on create
// and on update, with nothing written and no Panther call; values at the limit pass.
func TestLengthLimits(t *testing.T) {
	ctx := context.Background()
	long := func(n int) string { return strings.Repeat("x", n) }
	address := func(n int) string { return long(n-len("@example.com")) + "@example.com" }
	user := func(mod func(*provision.UserFields)) provision.UserFields {
		f := fields("ada@example.com")
		mod(&f)
		return f
	}
	name := func(given, family string) map[string]any {
		return map[string]any{"name": map[string]any{"givenName": given, "familyName": family}}
	}
	for _, tc := range []struct {
		name  string
		f     provision.UserFields
		frags []string // nil: accepted
	}{
		{"userName at the limit", user(func(f *provision.UserFields) {
			f.UserName = long(provision.MaxUserNameLength)
			f.Attributes["emails"] = []any{map[string]any{"value": "ada@example.com"}}
		}), nil},
		{"userName", user(func(f *provision.UserFields) { f.UserName = address(40 << 10) }), []string{"userName", strconv.Itoa(provision.MaxUserNameLength)}},
		{"externalId at the limit", user(func(f *provision.UserFields) { f.ExternalID = long(provision.MaxExternalIDLength) }), nil},
		{"externalId", user(func(f *provision.UserFields) { f.ExternalID = long(40 << 10) }), []string{"externalId", strconv.Itoa(provision.MaxExternalIDLength)}},
		{"email", user(func(f *provision.UserFields) {
			f.Attributes["emails"] = []any{map[string]any{"value": address(provision.MaxEmailLength + 1), "primary": true}}
		}), []string{"email", strconv.Itoa(provision.MaxEmailLength), "RFC 5321"}},
		{"given name", user(func(f *provision.UserFields) { f.Attributes = name(long(provision.MaxNameLength+1), "F") }), []string{"given name", "name.givenName", strconv.Itoa(provision.MaxNameLength)}},
		{"family name", user(func(f *provision.UserFields) { f.Attributes = name("G", long(64<<10)) }), []string{"family name", "name.familyName"}},
		{"names from displayName", user(func(f *provision.UserFields) { f.Attributes = map[string]any{"displayName": long(2000)} }), []string{"given name", "displayName"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newFake()
			svc := newService(t, p, provision.Options{})
			u, err := svc.CreateUser(ctx, tc.f)
			if tc.frags == nil {
				if err != nil {
					t.Fatalf("CreateUser: %v", err)
				}
				return
			}
			wantInvalid(t, err, tc.frags...)
			if n := len(p.calls); n != 0 {
				t.Errorf("%d Panther calls for a refused user", n)
			}
			// The same change as an update of an existing user.
			u, err = svc.CreateUser(ctx, fields("bob@example.com"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = svc.UpdateUser(ctx, u.ID, 0, func(provision.User) (provision.UserFields, error) { return tc.f, nil })
			wantInvalid(t, err, tc.frags...)
			if got, err := svc.GetUser(ctx, u.ID); err != nil || got.Version != u.Version || got.UserName != u.UserName {
				t.Fatalf("after a refused update: %+v, %v", got, err)
			}
		})
	}
}

func TestGroupLengthLimits(t *testing.T) {
	ctx := context.Background()
	long := func(n int) string { return strings.Repeat("g", n) }
	for _, tc := range []struct {
		name  string
		f     provision.GroupFields
		frags []string
	}{
		{"displayName at the limit", provision.GroupFields{DisplayName: long(provision.MaxDisplayNameLength)}, nil},
		{"displayName", provision.GroupFields{DisplayName: long(40 << 10)}, []string{"displayName", strconv.Itoa(provision.MaxDisplayNameLength)}},
		{"externalId", provision.GroupFields{DisplayName: "G", ExternalID: long(provision.MaxExternalIDLength + 1)}, []string{"externalId"}},
		{"member", provision.GroupFields{DisplayName: "G", Members: []string{"a", long(40 << 10)}}, []string{"member", strconv.Itoa(provision.MaxMemberIDLength)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newService(t, newFake(), provision.Options{})
			_, err := svc.CreateGroup(ctx, tc.f)
			if tc.frags == nil {
				if err != nil {
					t.Fatalf("CreateGroup: %v", err)
				}
				return
			}
			wantInvalid(t, err, tc.frags...)
			g, err := svc.CreateGroup(ctx, provision.GroupFields{DisplayName: "Other"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = svc.UpdateGroup(ctx, g.ID, 0, func(provision.Group) (provision.GroupFields, error) { return tc.f, nil })
			wantInvalid(t, err, tc.frags...)
			if got, err := svc.GetGroup(ctx, g.ID); err != nil || got.Version != g.Version {
				t.Fatalf("after a refused update: %+v, %v", got, err)
			}
		})
	}
}
