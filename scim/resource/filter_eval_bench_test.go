package resource

import (
	"fmt"
	"testing"
)

// benchUsers builds n distinct users shaped like testUser.
func benchUsers(b *testing.B, n int) []map[string]any {
	b.Helper()
	base := testUser(b)
	out := make([]map[string]any, n)
	for i := range out {
		u := cloneResource(base)
		u["userName"] = fmt.Sprintf("user%06d@example.com", i)
		u["emails"].([]any)[0].(map[string]any)["value"] = fmt.Sprintf("user%06d@example.com", i)
		out[i] = u
	}
	return out
}

const benchFilter = `emails[type eq "work" and value co "000042"] or (userName sw "user0001" and meta.lastModified gt "2011-01-01T00:00:00Z")`

// BenchmarkMatch is Match per resource, as a list handler that does not compile would call it (one op = 10k users).
func BenchmarkMatch(b *testing.B) {
	rs := UserSchema
	users := benchUsers(b, 10000)
	expr, err := ParseFilter(benchFilter)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		for _, u := range users {
			if _, err := rs.Match(expr, u); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCompiledMatch compiles once and tests every resource (one op = 10k users).
func BenchmarkCompiledMatch(b *testing.B) {
	rs := UserSchema
	users := benchUsers(b, 10000)
	expr, err := ParseFilter(benchFilter)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		m, err := rs.CompileFilter(expr)
		if err != nil {
			b.Fatal(err)
		}
		for _, u := range users {
			m(u)
		}
	}
}

// BenchmarkApplyPatch applies Entra's recorded user PATCH.
func BenchmarkApplyPatch(b *testing.B) {
	rs := UserSchema
	user := testUser(b)
	ops := rawPatchOps(b, `[
	  {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
	  {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
	  {"op": "Replace", "path": "active", "value": "False"},
	  {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m1"}]`)
	b.ResetTimer()
	for range b.N {
		if _, err := rs.ApplyPatch(user, ops); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSortResources sorts 10k users by userName.
func BenchmarkSortResources(b *testing.B) {
	rs := UserSchema
	users := benchUsers(b, 10000)
	b.ResetTimer()
	for range b.N {
		if err := rs.SortResources(users, "emails.value", "descending"); err != nil {
			b.Fatal(err)
		}
	}
}
