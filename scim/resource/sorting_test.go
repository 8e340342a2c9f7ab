package resource

import (
	"slices"
	"sort"
	"testing"

	scimerrors "github.com/elimity-com/scim/errors"
)

// sortUsers are users listed in no particular order; each has an id to name it.
const sortUsersJSON = `[
  {"id": "carol", "userName": "carol", "externalId": "b", "active": true, "name": {"familyName": "Cooper"},
   "emails": [{"value": "z@x", "type": "home"}, {"value": "c@x", "type": "work", "primary": true}],
   "meta": {"created": "2024-01-02T00:00:00Z"},
   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m2"}}},
  {"id": "none", "externalId": "c"},
  {"id": "alice", "userName": "Alice", "externalId": "B", "active": false, "name": {"familyName": "adams"},
   "emails": [{"value": "y@x"}, {"value": "a@x"}],
   "meta": {"created": "2024-01-02T01:00:00+02:00"},
   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "M1"}}},
  {"id": "bob", "userName": "bob", "externalId": "a", "active": "True", "name": {"familyName": "Brown"},
   "emails": [{"value": "b@x", "primary": "true"}],
   "meta": {"created": "2023-12-31T23:00:00-02:00"}}
]`

func sortUsers(t *testing.T) []map[string]any {
	t.Helper()
	wrapped := decodeResource(t, `{"list": `+sortUsersJSON+`}`)
	var out []map[string]any
	for _, e := range wrapped["list"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

func ids(res []map[string]any) []string {
	var out []string
	for _, r := range res {
		out = append(out, r["id"].(string))
	}
	return out
}

func TestSortResources(t *testing.T) {
	rs := UserSchema
	tests := []struct {
		sortBy, order string
		want          []string
	}{
		{"userName", "", []string{"alice", "bob", "carol", "none"}},
		{"userName", "ascending", []string{"alice", "bob", "carol", "none"}},
		{"USERNAME", "Descending", []string{"none", "carol", "bob", "alice"}},
		{"name.familyName", "", []string{"alice", "bob", "carol", "none"}},
		// externalId is caseExact: "B" sorts before "a".
		{"externalId", "", []string{"alice", "bob", "carol", "none"}},
		// The primary email, else the first.
		{"emails", "", []string{"bob", "carol", "alice", "none"}},
		{"emails.value", "descending", []string{"none", "alice", "carol", "bob"}},
		// Equal keys keep their input order (a stable sort): carol and bob are both active.
		{"active", "", []string{"alice", "carol", "bob", "none"}},
		// 2024-01-01T01:00Z (bob), 2024-01-01T23:00Z (alice), 2024-01-02T00:00Z (carol).
		{"meta.created", "", []string{"bob", "alice", "carol", "none"}},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "", []string{"alice", "carol", "none", "bob"}},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "descending", []string{"none", "bob", "carol", "alice"}},
		{"", "descending", []string{"carol", "none", "alice", "bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.sortBy+" "+tt.order, func(t *testing.T) {
			users := sortUsers(t)
			if err := rs.SortResources(users, tt.sortBy, tt.order); err != nil {
				t.Fatal(err)
			}
			if got := ids(users); !slices.Equal(got, tt.want) {
				t.Errorf("order = %v, want %v", got, tt.want)
			}
			if tt.sortBy == "" || tt.order != "" {
				return
			}
			// Less gives the same ascending order.
			less, err := rs.Less(tt.sortBy)
			if err != nil {
				t.Fatal(err)
			}
			users = sortUsers(t)
			sort.SliceStable(users, func(i, j int) bool { return less(users[i], users[j]) })
			if got := ids(users); !slices.Equal(got, tt.want) {
				t.Errorf("Less order = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSortNumbersAndStability(t *testing.T) {
	rs := numericSchema()
	res := []map[string]any{
		{"label": "a", "age": float64(10)},
		{"label": "b", "age": 9},
		{"label": "c", "age": decodeResource(t, `{"n": 10}`)["n"]},
		{"label": "d"},
		{"label": "e", "age": int64(-1)},
	}
	if err := rs.SortResources(res, "age", ""); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res {
		got = append(got, r["label"].(string))
	}
	// a and c are equal and keep their order.
	if want := []string{"e", "b", "a", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

func TestSortErrors(t *testing.T) {
	rs := UserSchema
	tests := []struct {
		sortBy, order, fragment string
	}{
		{"nope", "", `unknown attribute "nope"`},
		{"name", "", "name.formatted"},
		{enterpriseURN, "", "names a schema"},
		{"userName", "up", `sortOrder "up"`},
		{"emails[", "", "not an attribute path"},
	}
	for _, tt := range tests {
		t.Run(tt.sortBy+" "+tt.order, func(t *testing.T) {
			err := rs.SortResources(sortUsers(t), tt.sortBy, tt.order)
			wantScimError(t, err, scimerrors.ScimTypeInvalidValue, tt.fragment)
			if tt.order == "" {
				_, err := rs.Less(tt.sortBy)
				wantScimError(t, err, scimerrors.ScimTypeInvalidValue, tt.fragment)
			}
		})
	}
}

func TestParseSortOrder(t *testing.T) {
	for in, want := range map[string]bool{"": false, "ascending": false, "ASCENDING": false, " descending ": true, "Descending": true} {
		got, err := ParseSortOrder(in)
		if err != nil || got != want {
			t.Errorf("ParseSortOrder(%q) = %v, %v", in, got, err)
		}
	}
	_, err := ParseSortOrder("desc")
	wantScimError(t, err, scimerrors.ScimTypeInvalidValue, "desc")
}
