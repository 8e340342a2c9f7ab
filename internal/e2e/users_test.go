package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
)

func TestUserLifecycle(t *testing.T) {
	e := newEnv(t)

	// Create: invited in Panther with the default role.
	r := e.do("POST", "/Users", newUser("ada@example.com", "Ada", "Lovelace")).must(t, http.StatusCreated)
	id := r.str("id")
	if r.Header.Get("Location") != e.Base+"/Users/"+id {
		t.Errorf("Location %q", r.Header.Get("Location"))
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/scim+json") {
		t.Errorf("content type %q", r.Header.Get("Content-Type"))
	}
	meta, _ := r.Body["meta"].(map[string]any)
	if meta["location"] != e.Base+"/Users/"+id || meta["version"] == "" || r.Header.Get("ETag") == "" {
		t.Errorf("meta %v etag %q", meta, r.Header.Get("ETag"))
	}
	pu, ok := e.Fake.UserByEmail("ada@example.com")
	if !ok || pu.GivenName != "Ada" || pu.FamilyName != "Lovelace" || pu.RoleName != "AnalystReadOnly" {
		t.Fatalf("panther user %+v %v", pu, ok)
	}
	if e.pending() != 0 {
		t.Errorf("pending intents after a clean create: %d", e.pending())
	}

	// Get and list.
	e.do("GET", "/Users/"+id, nil).must(t, http.StatusOK)
	l := e.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "ADA@example.COM"`)+"&startIndex=1&count=100", nil).must(t, http.StatusOK)
	if l.Body["totalResults"] != float64(1) || l.Body["itemsPerPage"] != float64(1) {
		t.Errorf("filter any case: %s", l.Raw)
	}

	// A PUT that changes nothing makes no Panther call.
	before := e.Fake.Count("updateUser")
	put := newUser("ada@example.com", "Ada", "Lovelace")
	e.do("PUT", "/Users/"+id, put).must(t, http.StatusOK)
	if e.Fake.Count("updateUser") != before {
		t.Errorf("no-op PUT called updateUser")
	}

	// A name change reaches Panther.
	put["name"] = map[string]any{"givenName": "Augusta", "familyName": "King"}
	e.do("PUT", "/Users/"+id, put).must(t, http.StatusOK)
	pu, _ = e.Fake.UserByEmail("ada@example.com")
	if pu.GivenName != "Augusta" || pu.FamilyName != "King" {
		t.Errorf("names not updated: %+v", pu)
	}

	// Okta deactivation: PATCH active=false deletes the Panther user, keeps the record.
	e.do("PATCH", "/Users/"+id, patchOp(map[string]any{"op": "replace", "value": map[string]any{"active": false}})).must(t, http.StatusOK)
	if _, ok := e.Fake.UserByEmail("ada@example.com"); ok {
		t.Fatal("deactivated user still in Panther")
	}
	g := e.do("GET", "/Users?filter="+url.QueryEscape(`active eq false`), nil).must(t, http.StatusOK)
	if g.Body["totalResults"] != float64(1) {
		t.Errorf("inactive user not filterable: %s", g.Raw)
	}

	// Reactivation re-invites.
	e.do("PATCH", "/Users/"+id, patchOp(map[string]any{"op": "Replace", "path": "active", "value": "True"})).must(t, http.StatusOK)
	if e.pantherRole("ada@example.com") != "AnalystReadOnly" {
		t.Fatal("reactivated user not back in Panther")
	}

	// Delete removes both.
	e.do("DELETE", "/Users/"+id, nil).must(t, http.StatusNoContent)
	e.do("GET", "/Users/"+id, nil).scimErr(t, http.StatusNotFound, "")
	if _, ok := e.Fake.UserByEmail("ada@example.com"); ok {
		t.Fatal("deleted user still in Panther")
	}
	if e.pending() != 0 {
		t.Errorf("pending intents: %d", e.pending())
	}
}

func TestUserAdoptAndProtected(t *testing.T) {
	e := newEnv(t, withProtected("root@example.com"))
	existing, err := e.Fake.AddUser("grace@example.com", "Grace", "Hopper", "Analyst") // not an administrator: adopted (provisioning.adopt: nonAdmin)
	if err != nil {
		t.Fatal(err)
	}
	users := len(e.Fake.Users())
	e.Fake.ResetCalls()
	r := e.do("POST", "/Users", newUser("grace@example.com", "Grace", "Hopper")).must(t, http.StatusCreated)
	if len(e.Fake.Users()) != users {
		t.Fatal("adoption made a second Panther user")
	}
	// The invite goes first (a new person costs one call); Panther refuses the
	// duplicate, the lookup finds the user, and the update gives it the mapped role.
	if got := callOps(e.Fake.Calls()); got != "inviteUser userByEmail updateUser" {
		t.Errorf("calls: %s", got)
	}
	pu, _ := e.Fake.UserByEmail("grace@example.com")
	if pu.ID != existing.ID || pu.RoleName != "AnalystReadOnly" {
		t.Errorf("adopted user %+v (was %+v)", pu, existing)
	}
	// A second record for the same email: 409.
	other := newUser("grace2@example.com", "G", "H")
	other["emails"] = []any{map[string]any{"value": "grace@example.com", "primary": true}}
	e.do("POST", "/Users", other).scimErr(t, http.StatusConflict, "uniqueness")
	// userName taken, any case.
	e.do("POST", "/Users", newUser("GRACE@example.com", "G", "H")).scimErr(t, http.StatusConflict, "uniqueness")
	_ = r

	// Protected email: 409 and Panther untouched.
	if _, err := e.Fake.AddUser("root@example.com", "Root", "Admin", "Admin"); err != nil {
		t.Fatal(err)
	}
	calls := len(e.Fake.Calls())
	p := e.do("POST", "/Users", newUser("root@example.com", "Root", "Admin"))
	p.scimErr(t, http.StatusConflict, "uniqueness")
	if !strings.Contains(p.str("detail"), "protected") {
		t.Errorf("detail does not say why: %s", p.Raw)
	}
	if len(e.Fake.Calls()) != calls || e.pantherRole("root@example.com") != "Admin" {
		t.Error("protected user touched")
	}
}

func TestUserBadInput(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("keep@example.com", "Keep", "Me")
	big := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"big@example.com","title":"` + strings.Repeat("x", 1<<20) + `"}`
	cases := []struct {
		name, method, path, body string
		status                   int
		scimType                 string
	}{
		{"malformed JSON", "POST", "/Users", `{"userName": "x@example.com",`, 400, "invalidSyntax"},
		{"not an object", "POST", "/Users", `["x"]`, 400, "invalidSyntax"},
		{"missing userName", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"emails":[{"value":"a@example.com"}]}`, 400, "invalidValue"},
		{"no usable email", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"plainname"}`, 400, "invalidValue"},
		{"invalid email", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"u1","emails":[{"value":"not an email","primary":true}]}`, 400, "invalidValue"},
		{"wrong type", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"u2@example.com","active":"maybe"}`, 400, "invalidValue"},
		{"oversized body", "POST", "/Users", big, 413, ""},
		{"bad filter", "GET", "/Users?filter=" + url.QueryEscape(`userName eq`), "", 400, "invalidFilter"},
		{"filter unknown attribute", "GET", "/Users?filter=" + url.QueryEscape(`shoeSize eq "4"`), "", 400, "invalidFilter"},
		{"patch bad op", "PATCH", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"frobnicate","path":"title","value":"x"}]}`, 400, ""},
		{"patch id", "PATCH", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"id","value":"x"}]}`, 400, ""},
		{"unknown user", "GET", "/Users/does-not-exist", "", 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			usersBefore, calls := len(e.Fake.Users()), len(e.Fake.Calls())
			var body any
			if c.body != "" {
				body = c.body
			}
			e.do(c.method, c.path, body).scimErr(t, c.status, c.scimType)
			if len(e.Fake.Users()) != usersBefore || len(e.Fake.Calls()) != calls {
				t.Error("Panther was called for a bad request")
			}
			l := e.do("GET", "/Users", nil).must(t, http.StatusOK)
			if l.Body["totalResults"] != float64(1) {
				t.Errorf("store changed: %s", l.Raw)
			}
		})
	}
}

func TestUserNoAuth(t *testing.T) {
	e := newEnv(t)
	for _, h := range [][]string{{"Authorization", ""}, {"Authorization", "Bearer wrong-token-value-123456"}, {"Authorization", "Basic Zm9vOmJhcg=="}} {
		e.do("GET", "/Users", nil, h...).scimErr(t, http.StatusUnauthorized, "")
	}
}

func TestUserPaging(t *testing.T) {
	e := newEnv(t)
	for i := range 7 {
		e.createUser(fmt.Sprintf("p%d@example.com", i), "P", fmt.Sprint(i))
	}
	seen := map[string]bool{}
	for start := 1; start <= 7; start += 3 {
		r := e.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=3", start), nil).must(t, http.StatusOK)
		res, _ := r.Body["Resources"].([]any)
		if r.Body["totalResults"] != float64(7) || r.Body["itemsPerPage"] != float64(len(res)) || r.Body["startIndex"] != float64(start) {
			t.Fatalf("page %d: %s", start, r.Raw)
		}
		for _, x := range res {
			seen[x.(map[string]any)["id"].(string)] = true
		}
	}
	if len(seen) != 7 {
		t.Errorf("paging saw %d distinct users", len(seen))
	}
	z := e.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "nobody@example.com"`), nil).must(t, http.StatusOK)
	if z.Body["totalResults"] != float64(0) {
		t.Errorf("zero-hit: %s", z.Raw)
	}
}

// callOps lists the user operations of calls (not the role lookups, which the
// bridge caches and may make at any moment), in order, separated by spaces.
func callOps(calls []pantherfake.Call) string {
	var ops []string
	for _, c := range calls {
		if !strings.HasPrefix(c.Op, "role") {
			ops = append(ops, c.Op)
		}
	}
	return strings.Join(ops, " ")
}

// Location and meta.location come from the configured base URL (or, without one, the
// listener's own address), never from headers the client sets: a client that sends
// another Host or X-Forwarded-Proto must not choose the URLs an IdP stores.
func TestLocationIgnoresRequestHeaders(t *testing.T) {
	spoof := []string{"Host", "evil.example:8443", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example"}
	for name, base := range map[string]string{"configured baseURL": "https://scim.acme.test/scim/v2", "listener address": ""} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(o *app.Options) { o.BaseURL = base })
			want := base
			if want == "" {
				want = e.Base
			}
			r := e.do("POST", "/Users", newUser("loc@example.com", "Lo", "Cation"), spoof...).must(t, http.StatusCreated)
			loc := want + "/Users/" + r.str("id")
			if got := r.Header.Get("Location"); got != loc {
				t.Errorf("Location = %q, want %q", got, loc)
			}
			if got := r.Body["meta"].(map[string]any)["location"]; got != loc {
				t.Errorf("meta.location = %q, want %q", got, loc)
			}
			spc := e.do("GET", "/ServiceProviderConfig", nil, spoof...).must(t, http.StatusOK)
			if got := spc.Body["meta"].(map[string]any)["location"]; got != want+"/ServiceProviderConfig" {
				t.Errorf("ServiceProviderConfig meta.location = %q", got)
			}
		})
	}
}
