package resource

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/scim2/filter-parser/v2"
)

// nested returns a filter nested depth levels deep in the given way.
func nested(kind string, depth int) string {
	switch kind {
	case "parens":
		return strings.Repeat("(", depth) + `userName eq "x"` + strings.Repeat(")", depth)
	case "not":
		return strings.Repeat("not (", depth) + `userName eq "x"` + strings.Repeat(")", depth)
	case "brackets":
		return "emails" + strings.Repeat("[", depth) + `type eq "work"` + strings.Repeat("]", depth)
	case "unclosed":
		return strings.Repeat("(", depth)
	}
	panic(kind)
}

// chain returns n comparisons joined by op.
func chain(n int, op string) string {
	terms := make([]string, n)
	for i := range terms {
		terms[i] = fmt.Sprintf(`userName eq "u%d"`, i)
	}
	return strings.Join(terms, " "+op+" ")
}

// filterSeeds are filters an IdP sends, and ones nested, chained or long enough to
// reach each bound (CheckFilter) or go far past it.
func filterSeeds() []string {
	return []string{
		`userName eq "bjensen@example.com"`,
		`externalId eq "00u1"`,
		`displayName eq "Panther Admins"`,
		`emails[type eq "work" and value co "@example.com"]`,
		`members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`not (userName sw "a") and (title pr or active eq true)`,
		nested("parens", MaxFilterDepth),
		nested("parens", MaxFilterDepth+1),
		nested("not", MaxFilterDepth),
		nested("not", 1000),
		nested("brackets", 3),
		nested("unclosed", 100_000),
		strings.Repeat("not (", 100_000),
		chain(MaxFilterTerms, "and"),
		chain(MaxFilterTerms+1, "or"),
		`userName eq "` + strings.Repeat(`\"(`, 2000) + `"`,
		`displayName eq "` + strings.Repeat("x", MaxFilterLength) + `"`,
		``, `(`, `not`, `emails[`, `userName eq`, `"`,
	}
}

func TestCheckFilter(t *testing.T) {
	ok := []string{
		`userName eq "bjensen@example.com"`,
		nested("parens", MaxFilterDepth),
		nested("not", MaxFilterDepth),
		chain(MaxFilterTerms, "or"),
		// Brackets, parentheses and operators inside strings are not syntax.
		`displayName eq "` + strings.Repeat("(((( eq [[[[ ", 50) + `"`,
		`displayName eq "a\"(((((((((((((((((((((((((((((((((((((b"`,
		`emails[type eq "work" and value co "@example.com"]`,
		strings.Repeat(" ", MaxFilterLength-20) + `title pr`,
	}
	for _, s := range ok {
		if err := CheckFilter("the filter", s); err != nil {
			t.Errorf("CheckFilter(%.60q): %v", s, err)
		}
	}
	for _, tc := range []struct {
		name, in, frag string
	}{
		{"too long", `displayName eq "` + strings.Repeat("x", MaxFilterLength) + `"`, strconv.Itoa(MaxFilterLength) + " bytes"},
		{"parentheses", nested("parens", MaxFilterDepth+1), strconv.Itoa(MaxFilterDepth)},
		{"not", nested("not", MaxFilterDepth+1), strconv.Itoa(MaxFilterDepth)},
		{"brackets", nested("brackets", MaxFilterDepth+1), strconv.Itoa(MaxFilterDepth)},
		{"unclosed", nested("unclosed", MaxFilterDepth+1), strconv.Itoa(MaxFilterDepth)},
		{"or chain", chain(MaxFilterTerms+1, "or"), strconv.Itoa(MaxFilterTerms) + " comparisons"},
		{"and chain of pr", strings.TrimSuffix(strings.Repeat("title PR and ", MaxFilterTerms+1), " and "), strconv.Itoa(MaxFilterTerms)},
		{"operators in any case", strings.Repeat(`a Eq 1 `, MaxFilterTerms+1), strconv.Itoa(MaxFilterTerms)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantScimError(t, CheckFilter("the filter", tc.in), scimerrors.ScimTypeInvalidFilter, "the filter", "limit", tc.frag)
		})
	}
}

// TestParseFilterNestedAtAnyDepth feeds filters nested far beyond the limit to
// ParseFilter: filter-parser recurses per level and overflows the stack (a fatal
// error, not a panic) near 100,000 levels; the bound answers before it runs.
func TestParseFilterNestedAtAnyDepth(t *testing.T) {
	for _, kind := range []string{"parens", "not", "brackets", "unclosed"} {
		for _, depth := range []int{MaxFilterDepth + 1, 1000, 100_000} {
			t.Run(fmt.Sprintf("%s %d", kind, depth), func(t *testing.T) {
				s := nested(kind, depth)
				if len(s) <= MaxFilterLength {
					// Short enough to be judged on its depth, not its length.
					_, err := ParseFilter(s)
					wantScimError(t, err, scimerrors.ScimTypeInvalidFilter, "nests", strconv.Itoa(MaxFilterDepth))
					return
				}
				_, err := ParseFilter(s)
				wantScimError(t, err, scimerrors.ScimTypeInvalidFilter, "limit")
			})
		}
	}
}

// patchOps builds n operations with op, path and value.
func repeatOps(t testing.TB, n int, op, path string, value func(i int) any) []PatchOp {
	t.Helper()
	p, err := filter.ParsePath([]byte(path))
	if err != nil {
		t.Fatal(err)
	}
	ops := make([]PatchOp, n)
	for i := range ops {
		ops[i] = PatchOp{Op: op, Path: &p, Value: value(i)}
	}
	return ops
}

func email(i int) any { return []any{map[string]any{"value": fmt.Sprintf("e%d@example.com", i)}} }

func TestApplyPatchLimits(t *testing.T) {
	user := testUser(t)
	t.Run("operations", func(t *testing.T) {
		if _, err := UserSchema.ApplyPatch(user, repeatOps(t, MaxPatchOperations, "replace", "title", func(i int) any { return fmt.Sprint(i) })); err != nil {
			t.Fatalf("%d operations: %v", MaxPatchOperations, err)
		}
		_, err := UserSchema.ApplyPatch(user, repeatOps(t, MaxPatchOperations+1, "replace", "title", func(i int) any { return fmt.Sprint(i) }))
		wantScimError(t, err, scimerrors.ScimTypeInvalidValue, strconv.Itoa(MaxPatchOperations+1)+" operations", "limit is "+strconv.Itoa(MaxPatchOperations))
	})
	t.Run("values added one operation each", func(t *testing.T) {
		// The user has 2 emails: MaxValues-2 more fill the list.
		if _, err := UserSchema.ApplyPatch(user, repeatOps(t, MaxValues-2, "add", "emails", email)); err != nil {
			t.Fatalf("up to %d emails: %v", MaxValues, err)
		}
		_, err := UserSchema.ApplyPatch(user, repeatOps(t, 10_000/10, "add", "emails", email))
		wantScimError(t, err, scimerrors.ScimTypeInvalidValue, "emails", strconv.Itoa(MaxValues+1)+" values", "limit is "+strconv.Itoa(MaxValues))
	})
	t.Run("values added in one operation", func(t *testing.T) {
		var many []any
		for i := range 20_000 {
			many = append(many, map[string]any{"value": fmt.Sprintf("e%d@example.com", i)})
		}
		_, err := UserSchema.ApplyPatch(user, repeatOps(t, 1, "add", "emails", func(int) any { return many }))
		wantScimError(t, err, scimerrors.ScimTypeInvalidValue, "emails", "limit is "+strconv.Itoa(MaxValues))
		_, err = UserSchema.ApplyPatch(user, repeatOps(t, 1, "replace", "emails", func(int) any { return many }))
		wantScimError(t, err, scimerrors.ScimTypeInvalidValue, "emails", "limit is "+strconv.Itoa(MaxValues))
	})
	t.Run("a longer stored list may shrink", func(t *testing.T) {
		long := testUser(t)
		var list []any
		for i := range MaxValues + 50 {
			list = append(list, map[string]any{"value": fmt.Sprintf("e%d@example.com", i)})
		}
		long["emails"] = list
		got, err := UserSchema.ApplyPatch(long, repeatOps(t, 1, "remove", `emails[value eq "e0@example.com"]`, func(int) any { return nil }))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got["emails"].([]any)); n != MaxValues+49 {
			t.Fatalf("%d emails left", n)
		}
	})
	t.Run("members are not capped", func(t *testing.T) {
		var members []any
		for i := range 3 * MaxValues {
			members = append(members, map[string]any{"value": fmt.Sprintf("u%d", i)})
		}
		got, err := GroupSchema.ApplyPatch(testGroup(t), repeatOps(t, 1, "add", "members", func(int) any { return members }))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got["members"].([]any)); n != 3*MaxValues+2 {
			t.Fatalf("%d members", n)
		}
	})
	t.Run("values examined one by one", func(t *testing.T) {
		group := testGroup(t)
		var members []any
		for i := range 10_000 {
			members = append(members, map[string]any{"value": fmt.Sprintf("u%d", i), "display": "d"})
		}
		group["members"] = members
		// Okta's per-member removes, as value lists: index lookups, not counted.
		removes := repeatOps(t, MaxPatchOperations, "remove", "members", func(i int) any { return []any{map[string]any{"value": fmt.Sprintf("u%d", i)}} })
		got, err := GroupSchema.ApplyPatch(group, removes)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got["members"].([]any)); n != 10_000-MaxPatchOperations {
			t.Fatalf("%d members left", n)
		}
		// Value filters other than value eq examine every member each.
		filtered := repeatOps(t, MaxPatchOperations, "replace", `members[display eq "d" and value eq "nobody"]`, func(int) any { return map[string]any{"value": "nobody", "display": "d"} })
		filtered = append(repeatOps(t, 1, "add", "members", func(int) any { return []any{map[string]any{"value": "nobody", "display": "d"}} }), filtered[:MaxPatchOperations-1]...)
		_, err = GroupSchema.ApplyPatch(group, filtered)
		wantScimError(t, err, scimerrors.ScimTypeInvalidValue, "examines more than "+strconv.Itoa(MaxPatchScan))
	})
}

func TestCheckValues(t *testing.T) {
	user := testUser(t)
	if err := UserSchema.CheckValues(user); err != nil {
		t.Fatal(err)
	}
	var list []any
	for i := range MaxValues + 1 {
		list = append(list, fmt.Sprintf("+1 555 %04d", i))
	}
	user["phoneNumbers"] = list
	wantScimError(t, UserSchema.CheckValues(user), scimerrors.ScimTypeInvalidValue, "phoneNumbers", "limit is "+strconv.Itoa(MaxValues))
	group := testGroup(t)
	var members []any
	for i := range MaxValues + 1 {
		members = append(members, map[string]any{"value": fmt.Sprint(i)})
	}
	group["members"] = members
	if err := GroupSchema.CheckValues(group); err != nil {
		t.Fatalf("members: %v", err)
	}
}

// BenchmarkPatchMemberOps applies MaxPatchOperations member operations, one value
// each, to groups of 1,000 and 10,000 members: adds, and alternating adds and
// removes (Okta's Group Push mixes them). Each operation costs its own values, so
// the time grows with the group only by the copy of the document.
func BenchmarkPatchMemberOps(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		group := testGroup(b)
		members := make([]any, n)
		for i := range members {
			members[i] = map[string]any{"value": fmt.Sprintf("0190a000-0000-7000-8000-%012d", i)}
		}
		group["members"] = members
		adds := repeatOps(b, MaxPatchOperations, "add", "members", func(i int) any {
			return []any{map[string]any{"value": fmt.Sprintf("0190a000-0000-7000-9000-%012d", i)}}
		})
		mixed := repeatOps(b, MaxPatchOperations, "remove", "members", func(i int) any {
			return []any{map[string]any{"value": fmt.Sprintf("0190a000-0000-7000-8000-%012d", i)}}
		})
		for i := 0; i < len(mixed); i += 2 {
			mixed[i] = adds[i]
		}
		for name, ops := range map[string][]PatchOp{"add": adds, "add+remove": mixed} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				for b.Loop() {
					if _, err := GroupSchema.ApplyPatch(group, ops); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
