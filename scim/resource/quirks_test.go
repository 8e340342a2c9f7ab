package resource

import (
	"encoding/json"
	"fmt"
	"testing"
)

// Okta's per-member removes are rewritten into value-list removes; applied to the
// same group, both forms must leave the same members, whatever the ids' case, for
// ids that are not members, and for repeated and mixed operations. Paths the rewrite
// does not recognise are left alone.
func TestMemberFilterRemoveRewrite(t *testing.T) {
	rs := GroupSchema
	group := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g","displayName":"Team",
		"members":[{"value":"018f-a","display":"Ann"},{"value":"018F-B"},{"value":"c-ÄÖ"},{"value":"d"}]}`
	cases := [][]string{
		{"018f-a"},
		{"018F-A"},                        // members.value is not caseExact
		{"018f-b", "d"},                   // several, in turn
		{"c-äö"},                          // non-ASCII case fold
		{"nobody"},                        // no match: no change, no error
		{"d", "d"},                        // the same twice
		{"018f-a", "018F-B", "c-ÄÖ", "d"}, // all: members goes away
	}
	for _, ids := range cases {
		for _, mixed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/mixed=%v", ids, mixed), func(t *testing.T) {
				var okta []map[string]any
				for _, id := range ids {
					okta = append(okta, map[string]any{"op": "remove", "path": fmt.Sprintf("members[value eq %q]", id)})
				}
				wantOps := 1 // removes alone become one operation
				if mixed {
					okta = append(okta, map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": "e"}}})
					wantOps = len(okta) // each in its place: an error names the right index
				}
				body, _ := json.Marshal(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": okta})
				rewritten, _, err := NormalizePatchBody(rs, body)
				if err != nil {
					t.Fatal(err)
				}
				var doc struct{ Operations []map[string]any }
				if err := json.Unmarshal(rewritten, &doc); err != nil {
					t.Fatal(err)
				}
				if len(doc.Operations) != wantOps {
					t.Fatalf("operations %d, want %d: %s", len(doc.Operations), wantOps, rewritten)
				}
				for _, op := range doc.Operations {
					if op["path"] != "members" {
						t.Fatalf("not rewritten: %v", op)
					}
				}
				opsJSON := func(v any) string { b, _ := json.Marshal(v); return string(b) }
				want, err := rs.ApplyPatch(decodeResource(t, group), rawPatchOps(t, opsJSON(okta)))
				if err != nil {
					t.Fatal(err)
				}
				if removed := len(listOf(want["members"])) < 4+btoi(mixed); removed != (ids[0] != "nobody") {
					t.Fatalf("the filter form removed something: %v, want %v", removed, ids[0] != "nobody")
				}
				got, err := rs.ApplyPatch(decodeResource(t, group), elimityPatchOps(t, rs, string(rewritten)))
				if err != nil {
					t.Fatal(err)
				}
				if mustJSON(t, got) != mustJSON(t, want) {
					t.Errorf("rewritten form gives\n%s\nthe filter form\n%s", mustJSON(t, got), mustJSON(t, want))
				}
			})
		}
	}

	for _, path := range []string{
		`members[value eq "a\"b"]`, // an escape: the library parses it
		`members[value eq "a" or value eq "b"]`,
		`members[display eq "Ann"]`,
		`members[value  eq "a"]`,
		`members[value eq "a"].display`,
		`members`,
	} {
		if id, ok := memberFilterPath(rs, path); ok {
			t.Errorf("%s: rewritten (id %q)", path, id)
		}
	}
	if _, ok := memberFilterPath(UserSchema, `members[value eq "a"]`); ok {
		t.Error("rewritten for a User")
	}
	if id, ok := memberFilterPath(rs, `MEMBERS[VALUE EQ "Ab"]`); !ok || id != "Ab" {
		t.Errorf("upper case: %q %v", id, ok)
	}
	// A remove with a value keeps its meaning: not rewritten.
	body := []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"a\"]","value":[{"value":"b"}]}]}`)
	if got, _, _ := NormalizePatchBody(rs, body); string(got) != string(body) {
		t.Errorf("a remove with a value was rewritten: %s", got)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
