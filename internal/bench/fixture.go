// Package bench builds large panther-scim stores quickly and holds the SCIM-level
// benchmarks (bench_test.go) that run against them. A fixture is written straight
// through the store in big transactions without fsync, not through HTTP: building
// 100,000 users that way takes seconds instead of the hours an import would take
// against a Panther with real latency. cmd/scim-load uses it to pre-fill the store of
// the server it starts, for the polling and start-up measurements.
//
// The users and groups look like what Okta and Entra send (name, emails, title, the
// enterprise extension), and when a Panther double is given every user is invited
// there with the role the mapping gives it and linked to it, so that the bridge sees a
// store and a Panther that agree, as after a completed import.
package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
	"github.com/panther-scim/panther-scim/mappings"
)

// Spec describes a fixture.
type Spec struct {
	// Users is the number of users; Groups the number of groups, each with
	// MembersPerGroup members spread over the whole user range (default 100).
	// Groups*MembersPerGroup = 2*Users puts every user in exactly two groups.
	Users, Groups, MembersPerGroup int
	// Mapping decides each user's Panther role; Panther, when set, gets every active
	// user with that role, and the store links to it.
	Mapping mappings.Mapping
	Panther *pantherfake.Server
}

// Mapping is the mapping the benchmarks and scim-load use with a fixture: the first
// two groups map to Admin and Analyst, everyone else gets AnalystReadOnly.
func Mapping() mappings.Mapping {
	return mappings.Mapping{
		Rules: []mappings.Rule{
			{Group: GroupName(0), Role: "Admin"},
			{Group: GroupName(1), Role: "Analyst"},
		},
		DefaultRole: "AnalystReadOnly",
	}
}

// UserID is the SCIM id of fixture user n: a UUIDv7 like those the service mints,
// dated May 2024 and 1.7 s after user n-1 (so ids sort in the order of n, as an
// import creates them, and before users created later), with its 74 random bits
// drawn from n. Ids that were mostly zeros would compress far better than real ones
// in the records that hold them.
func UserID(n int) string { return uuidV7(fixtureEpoch+int64(n)*1700, uint64(n)) }

// GroupID is the SCIM id of fixture group g, a UUIDv7 in the same way.
func GroupID(g int) string { return uuidV7(fixtureEpoch+int64(g)*60_000, uint64(g)^0x9e3779b97f4a7c15) }

// fixtureEpoch is 2024-05-01T00:00:00Z in Unix milliseconds.
const fixtureEpoch = 1714521600000

// uuidV7 formats a version 7 UUID with the Unix time ms and random bits drawn from seed.
func uuidV7(ms int64, seed uint64) string {
	r := splitmix64(seed)
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], uint64(ms)<<16|r&0x0fff|0x7000)
	binary.BigEndian.PutUint64(b[8:16], splitmix64(r)&^(3<<62)|1<<63)
	return uuid.UUID(b).String()
}

// splitmix64 is one step of the SplitMix64 generator: a bijection that scatters bits.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// UserName is the userName (and email) of fixture user n, shaped like a work email
// ("grace.5f3a9c21@example.com"). Users are written in the order of n, as an
// import creates them, and real userNames arrive in no particular order: so the name
// is scrambled from n (Scramble), not counted, and as long as a typical work email. Counted names ("user1", "user2", ...)
// are appends to the userName index, which leave every page bbolt splits half empty
// (14 MB for that index at 100k users against 10 MB for names in any order).
func UserName(n int) string {
	s := Scramble(n)
	return fmt.Sprintf("%s.%08x@example.com", givenNames[s%16], s)
}

// ExternalID is the externalId of fixture user n, Okta-style ("00u" and a random-looking
// id, in no order, like Okta's).
func ExternalID(n int) string { return fmt.Sprintf("00u%08x", Scramble(n^0x5bd1e995)) }

var (
	givenNames  = [16]string{"ada", "alan", "anita", "barbara", "claude", "dennis", "edsger", "frances", "grace", "hedy", "john", "ken", "linus", "margaret", "radia", "tim"}
	familyNames = [16]string{"allen", "berners", "cerf", "dijkstra", "floyd", "hamilton", "hopper", "kahn", "knuth", "lamport", "liskov", "perlman", "ritchie", "shannon", "thompson", "turing"}
)

// Scramble maps n to a 32-bit value one to one (so distinct users get distinct
// names) in an order unrelated to n's.
func Scramble(n int) uint32 {
	x := uint32(n)
	x *= 0x9e3779b1
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	return x
}

// GroupName is the displayName of fixture group g.
func GroupName(g int) string { return fmt.Sprintf("Team %04d", g) }

// User returns fixture user n as the SCIM layer stores a POSTed user (without its
// Panther link).
func User(n int) provision.User {
	mail := UserName(n)
	t := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
	s := Scramble(n)
	given, family := capitalize(givenNames[s%16]), capitalize(familyNames[s/16%16])
	return provision.User{
		ID:         UserID(n),
		UserName:   mail,
		ExternalID: ExternalID(n),
		Active:     true,
		Email:      mail,
		Attributes: map[string]any{
			"displayName": given + " " + family,
			"name":        map[string]any{"givenName": given, "familyName": family, "formatted": given + " " + family},
			"emails":      []any{map[string]any{"value": mail, "type": "work", "primary": true}},
			"title":       "Engineer",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{
				"department": fmt.Sprintf("Dept %d", n%40), "employeeNumber": fmt.Sprint(n),
			},
		},
		Created:      t,
		LastModified: t,
		Version:      1,
	}
}

// Members returns the member numbers of group g: users x*p mod users for x in
// [g*m, g*m+m), with p a prime that does not divide users. x -> x*p mod users is a
// bijection on any run of users consecutive x, so a group has no duplicates, the
// memberships cover the user range evenly, and with groups*m = k*users every user is
// in exactly k groups.
func Members(g, users, m int) []int {
	p := 7919
	for users%p == 0 {
		p = 104729
	}
	out := make([]int, 0, m)
	for x := g * m; len(out) < m; x++ {
		out = append(out, x*p%users)
	}
	return out
}

func (s Spec) membersPerGroup() int {
	if s.MembersPerGroup > 0 {
		return s.MembersPerGroup
	}
	return 100
}

// Build writes the fixture into a new store file at path (which must not exist).
func Build(path string, spec Spec) error {
	if spec.Users <= 0 {
		return errors.New("bench: a fixture needs users")
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("bench: %s exists", path)
	}
	m := spec.membersPerGroup()
	if spec.Groups > 0 && m > spec.Users {
		return fmt.Errorf("bench: %d members per group but only %d users", m, spec.Users)
	}
	// Who is in which group, to resolve roles before writing the users.
	groupsOf := make([][]int32, spec.Users)
	for g := range spec.Groups {
		for _, n := range Members(g, spec.Users, m) {
			groupsOf[n] = append(groupsOf[n], int32(g))
		}
	}
	roleIDs := map[string]string{}
	if spec.Panther != nil {
		for _, r := range spec.Panther.Roles() {
			roleIDs[r.Name] = r.ID
		}
	}

	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	const userBatch = 10_000
	for lo := 0; lo < spec.Users; lo += userBatch {
		users := make([]provision.User, 0, userBatch)
		for n := lo; n < min(lo+userBatch, spec.Users); n++ {
			u := User(n)
			if spec.Panther != nil {
				refs := make([]mappings.GroupRef, len(groupsOf[n]))
				for i, g := range groupsOf[n] {
					refs[i] = mappings.GroupRef{DisplayName: GroupName(int(g))}
				}
				if role, ok := spec.Mapping.Resolve(refs); ok {
					attrs := u.Attributes["name"].(map[string]any)
					pu, err := spec.Panther.AddUser(u.Email, attrs["givenName"].(string), attrs["familyName"].(string), role)
					if err != nil {
						return fmt.Errorf("bench: Panther user %d: %w", n, err)
					}
					u.Panther = provision.PantherLink{ID: pu.ID, Email: pu.Email, GivenName: pu.GivenName,
						FamilyName: pu.FamilyName, RoleID: roleIDs[pu.RoleName]}
				}
			}
			users = append(users, u)
		}
		err := st.Update(ctx, func(tx provision.Tx) error {
			for _, u := range users {
				if err := tx.PutUser(u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bench: users: %w", err)
		}
	}
	// The membership index is keyed by user, so a group's entries land all over it;
	// bbolt rebalances only at commit, and a transaction with a great many scattered
	// inserts gets slow. Fifty groups (5,000 memberships at 100 each) per transaction
	// keeps each one cheap.
	groupBatch := max(1, 5_000/m)
	created := time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)
	for lo := 0; lo < spec.Groups; lo += groupBatch {
		err := st.Update(ctx, func(tx provision.Tx) error {
			for g := lo; g < min(lo+groupBatch, spec.Groups); g++ {
				ms := Members(g, spec.Users, m)
				ids := make([]string, len(ms))
				for i, n := range ms {
					ids[i] = UserID(n)
				}
				err := tx.PutGroup(provision.Group{
					ID: GroupID(g), DisplayName: GroupName(g), ExternalID: fmt.Sprintf("00g%06d", g),
					Members: ids, Created: created, LastModified: created, Version: 1,
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bench: groups: %w", err)
		}
	}
	return st.Close()
}

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }
