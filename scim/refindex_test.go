package scim

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/scim2/filter-parser/v2"
)

// TestAddMembersSameAsLinearScan checks that adding to a reference list with the
// index keeps exactly what the element-by-element comparison (containsElement) keeps.
func TestAddMembersSameAsLinearScan(t *testing.T) {
	members, ok := GroupSchema.Core.Attributes.ContainsAttribute("members")
	if !ok {
		t.Fatal("no members attribute")
	}
	m := func(v any) any { return map[string]any{"value": v} }
	for _, tc := range []struct {
		name     string
		old, add []any
	}{
		{"new ones", []any{m("a"), m("b")}, []any{m("c"), m("d")}},
		{"already there", []any{m("a"), m("b")}, []any{m("b"), m("a")}},
		{"other case", []any{m("abc")}, []any{m("ABC"), m("Abc")}},
		{"twice in one add", nil, []any{m("x"), m("x"), m("X")}},
		{"extra sub-attributes", []any{map[string]any{"value": "a", "display": "A", "$ref": "https://x/Users/a"}}, []any{map[string]any{"value": "a", "type": "User"}}},
		{"non-ASCII element", []any{m("\u212a")}, []any{m("k"), m("K"), m("j")}}, // Kelvin sign folds to k
		{"non-ASCII item", []any{m("k")}, []any{m("\u212a"), m("ſ"), m("s"), m("S")}},
		{"no value", []any{map[string]any{"display": "d"}}, []any{map[string]any{"display": "d"}, map[string]any{"display": "e"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := append([]any{}, tc.old...)
			for _, it := range tc.add {
				if !containsElement(members, want, it) {
					want = append(want, it)
				}
			}
			doc := map[string]any{"id": "g", "displayName": "G"}
			if tc.old != nil {
				doc["members"] = tc.old
			}
			path, err := filter.ParsePath([]byte("members"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := GroupSchema.ApplyPatch(doc, []PatchOp{{Op: "add", Path: &path, Value: tc.add}})
			if err != nil {
				t.Fatal(err)
			}
			if g := got["members"]; fmt.Sprint(g) != fmt.Sprint(want) && !reflect.DeepEqual(g, want) {
				t.Fatalf("members\n got %v\nwant %v", g, want)
			}
		})
	}
}
