package resource

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/scim2/filter-parser/v2"
)

// membersAttr is the Group schema's members attribute.
func membersAttr(t testing.TB) (AttrRef, *filter.Path) {
	t.Helper()
	ref, err := GroupSchema.Resolve("members")
	if err != nil {
		t.Fatal(err)
	}
	path, err := filter.ParsePath([]byte("members"))
	if err != nil {
		t.Fatal(err)
	}
	return ref, &path
}

// TestAddMembersSameAsLinearScan checks that adding to a reference list with the
// index keeps exactly what the element-by-element comparison (containsElement) keeps.
func TestAddMembersSameAsLinearScan(t *testing.T) {
	ref, path := membersAttr(t)
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
		{"element without a value", []any{map[string]any{"display": "d"}}, []any{m("d"), map[string]any{"value": "e"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := append([]any{}, tc.old...)
			for _, it := range tc.add {
				if !containsElement(ref.Attr, want, it) {
					want = append(want, it)
				}
			}
			doc := map[string]any{"id": "g", "displayName": "G"}
			if tc.old != nil {
				doc["members"] = tc.old
			}
			got, err := GroupSchema.ApplyPatch(doc, []PatchOp{{Op: "add", Path: path, Value: tc.add}})
			if err != nil {
				t.Fatal(err)
			}
			if g := got["members"]; fmt.Sprint(g) != fmt.Sprint(want) && !reflect.DeepEqual(g, want) {
				t.Fatalf("members\n got %v\nwant %v", g, want)
			}
		})
	}
}

// TestMemberWithoutValue checks that a member given without its "value" is refused
// by add, replace and remove alike (the index needs the value; the record could not
// keep such a member anyway).
func TestMemberWithoutValue(t *testing.T) {
	_, path := membersAttr(t)
	doc := map[string]any{"id": "g", "displayName": "G", "members": []any{map[string]any{"value": "a"}}}
	for _, op := range []string{"add", "replace", "remove"} {
		_, err := GroupSchema.ApplyPatch(doc, []PatchOp{{Op: op, Path: path, Value: []any{map[string]any{"display": "d"}}}})
		wantScimError(t, err, scimerrors.ScimTypeInvalidValue, `"value"`)
	}
}

// TestRefListOpsSameAsLinearScan applies random sequences of add and remove
// operations on members in one PATCH (batched by refBatch, or applied one by one with
// the index kept between them when a value-filter remove is among them), mixed with
// renames, and checks each result against the element-by-element semantics
// (containsElement for add, matchesAny for remove) applied one operation at a time.
func TestRefListOpsSameAsLinearScan(t *testing.T) {
	ref, path := membersAttr(t)
	rename, err := filter.ParsePath([]byte("displayName"))
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"a", "A", "b", "k", "K", "\u212a", "s", "ſ", "ß", "ss", "é", "É", "\xff", "\xfe"}
	rng := rand.New(rand.NewPCG(1, 2))
	item := func() any {
		m := map[string]any{"value": ids[rng.IntN(len(ids))]}
		if rng.IntN(4) == 0 {
			m["display"] = "d"
		}
		return m
	}
	for round := range 1000 {
		var old []any
		for range rng.IntN(6) {
			old = append(old, item())
		}
		want := append([]any{}, old...)
		var ops []PatchOp
		for range 1 + rng.IntN(8) {
			var values []any
			for range 1 + rng.IntN(3) {
				values = append(values, item())
			}
			switch rng.IntN(7) {
			case 3:
				ops = append(ops, PatchOp{Op: "replace", Path: &rename, Value: fmt.Sprint("G", len(ops))})
			case 5:
				// Pathless: a rename keeps the members operations batched...
				ops = append(ops, PatchOp{Op: "replace", Value: map[string]any{"displayName": fmt.Sprint("G", len(ops))}})
			case 6:
				// ... and members named in a pathless value keep them from being batched.
				ops = append(ops, PatchOp{Op: "add", Value: map[string]any{"MEMBERS": values}})
				for _, it := range values {
					if !containsElement(ref.Attr, want, it) {
						want = append(want, it)
					}
				}
			case 4:
				// Okta's form; it keeps the members operations of this PATCH from being batched.
				target := []string{"a", "b"}[rng.IntN(2)]
				fp, err := filter.ParsePath([]byte(`members[value eq "` + target + `"]`))
				if err != nil {
					t.Fatal(err)
				}
				ops = append(ops, PatchOp{Op: "remove", Path: &fp})
				var kept []any
				for _, e := range want {
					if v, _ := stringValue(e); !strings.EqualFold(v, target) {
						kept = append(kept, e)
					}
				}
				want = kept
			case 0, 1:
				ops = append(ops, PatchOp{Op: "add", Path: path, Value: values})
				for _, it := range values {
					if !containsElement(ref.Attr, want, it) {
						want = append(want, it)
					}
				}
			default:
				ops = append(ops, PatchOp{Op: "remove", Path: path, Value: values})
				var kept []any
				for _, e := range want {
					if !matchesAny(ref.Attr, e, values) {
						kept = append(kept, e)
					}
				}
				want = kept
			}
		}
		doc := map[string]any{"id": "g", "displayName": "G"}
		if old != nil {
			doc["members"] = old
		}
		got, err := GroupSchema.ApplyPatch(doc, ops)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		g, _ := got["members"].([]any)
		if len(g) != len(want) || (len(want) > 0 && !reflect.DeepEqual(g, want)) {
			t.Fatalf("round %d: old %v, ops %v\n got %v\nwant %v", round, old, describeOps(ops), g, want)
		}
	}
}

func describeOps(ops []PatchOp) string {
	var b strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&b, "%s %v; ", op.Op, op.Value)
	}
	return b.String()
}

// TestFoldKeyIsEqualFold checks that two strings share a foldKey exactly when
// strings.EqualFold holds, over strings built from runes with several case forms and
// bytes that are not UTF-8.
func TestFoldKeyIsEqualFold(t *testing.T) {
	atoms := []string{"a", "A", "k", "K", "\u212a", "s", "S", "ſ", "ß", "ẞ", "σ", "Σ", "ς", "ǅ", "ǆ", "Ǆ", "é", "É", "1", "-", "\xff", "\xc0", "\ufffd", "İ", "ı", "i", "I"}
	var words []string
	for _, a := range atoms {
		words = append(words, a)
		for _, b := range atoms {
			words = append(words, a+b)
		}
	}
	for _, x := range words {
		for _, y := range words {
			if got, want := foldKey(x) == foldKey(y), strings.EqualFold(x, y); got != want {
				t.Fatalf("foldKey(%q)==foldKey(%q) is %v, EqualFold %v", x, y, got, want)
			}
		}
	}
}
