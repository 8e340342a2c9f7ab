package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Entra ID provisioning, as its provisioning service sends it: capitalised ops,
// booleans as strings, the enterprise extension with manager as a bare id, value
// filters on emails and members, externalId lookups and member-less group reads.
// The Panther state is checked after every step.

const (
	coreUserURN   = "urn:ietf:params:scim:schemas:core:2.0:User"
	coreGroupURN  = "urn:ietf:params:scim:schemas:core:2.0:Group"
	entraEntURN   = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	entraMgrPath  = entraEntURN + ":manager"
	entraDeptPath = entraEntURN + ":department"
)

// entraUser is a POST /Users body as Entra sends it.
func entraUser(userName, externalID, given, family string, ent map[string]any) map[string]any {
	u := map[string]any{
		"schemas":     []string{coreUserURN, entraEntURN},
		"externalId":  externalID,
		"userName":    userName,
		"active":      true,
		"displayName": given + " " + family,
		"emails":      []any{map[string]any{"primary": true, "type": "work", "value": userName}},
		"meta":        map[string]any{"resourceType": "User"},
		"name":        map[string]any{"formatted": given + " " + family, "familyName": family, "givenName": given},
		"roles":       []any{},
	}
	if ent != nil {
		u[entraEntURN] = ent
	}
	return u
}

func q(filter string) string { return url.QueryEscape(filter) }

// ext returns the enterprise extension object of a user response.
func ext(r resp) map[string]any {
	m, _ := r.Body[entraEntURN].(map[string]any)
	return m
}

func managerOf(r resp) any {
	m, _ := ext(r)["manager"].(map[string]any)
	if m == nil {
		return nil
	}
	return m["value"]
}

func totalOf(t *testing.T, r resp) int {
	t.Helper()
	n, ok := r.Body["totalResults"].(float64)
	if !ok {
		t.Fatalf("no totalResults: %s", r.Raw)
	}
	return int(n)
}

func resourceIDs(r resp) []string {
	var ids []string
	res, _ := r.Body["Resources"].([]any)
	for _, x := range res {
		if m, ok := x.(map[string]any); ok {
			ids = append(ids, radarString(m["id"]))
		}
	}
	return ids
}

func TestEntraUserSequence(t *testing.T) {
	e := newEnv(t)
	const aliceEmail, bobEmail = "alice@contoso.com", "bob@contoso.com"

	// Entra first asks whether the user exists, by its matching attribute.
	l := e.do("GET", "/Users?filter="+q(`userName eq "alice@contoso.com"`), nil).must(t, http.StatusOK)
	if totalOf(t, l) != 0 {
		t.Fatalf("empty store: %s", l.Raw)
	}

	// Create the manager, then a user with the whole enterprise extension.
	alice := e.do("POST", "/Users", entraUser(aliceEmail, "ext-alice", "Alice", "Adams", nil)).must(t, http.StatusCreated).str("id")
	ent := map[string]any{
		"employeeNumber": "701984", "costCenter": "4130", "organization": "Contoso",
		"division": "Theme Park", "department": "Tour Operations", "manager": map[string]any{"value": alice},
	}
	r := e.do("POST", "/Users", entraUser(bobEmail, "ext-bob", "Bob", "Brown", ent)).must(t, http.StatusCreated)
	bob := r.str("id")
	for k, v := range ent {
		if k == "manager" {
			continue
		}
		if ext(r)[k] != v {
			t.Errorf("create: %s = %v, want %v: %s", k, ext(r)[k], v, r.Raw)
		}
	}
	if managerOf(r) != alice {
		t.Errorf("create: manager %v, want %s", managerOf(r), alice)
	}
	if n, _ := r.Body["name"].(map[string]any); n["formatted"] != "Bob Brown" {
		t.Errorf("name.formatted not kept: %s", r.Raw)
	}
	if _, ok := r.Body["roles"]; ok {
		t.Errorf("empty roles served back: %s", r.Raw)
	}
	pu, ok := e.Fake.UserByEmail(bobEmail)
	if !ok || pu.GivenName != "Bob" || pu.FamilyName != "Brown" || pu.RoleName != "AnalystReadOnly" {
		t.Fatalf("panther after create: %+v %v", pu, ok)
	}
	// Read back: the extension is stored, not just echoed.
	g := e.do("GET", "/Users/"+bob, nil).must(t, http.StatusOK)
	if ext(g)["costCenter"] != "4130" || managerOf(g) != alice {
		t.Errorf("read back: %s", g.Raw)
	}

	// Lookups Entra makes: userName (any case) and externalId (exact).
	for _, f := range []string{`userName eq "BOB@contoso.com"`, `externalId eq "ext-bob"`} {
		l := e.do("GET", "/Users?filter="+q(f), nil).must(t, http.StatusOK)
		if ids := resourceIDs(l); len(ids) != 1 || ids[0] != bob {
			t.Errorf("%s: %s", f, l.Raw)
		}
	}
	l = e.do("GET", "/Users?filter="+q(`externalId eq "EXT-BOB"`), nil).must(t, http.StatusOK)
	if totalOf(t, l) != 0 {
		t.Errorf("externalId is caseExact, yet matched in another case: %s", l.Raw)
	}

	// An update batch: Replace/Add capitalised, a value-filter email, a sub-attribute,
	// an extension attribute by its full path, and a string boolean.
	r = e.do("PATCH", "/Users/"+bob, patchOp(
		map[string]any{"op": "Replace", "path": `emails[type eq "work"].value`, "value": "robert@contoso.com"},
		map[string]any{"op": "Replace", "path": "name.givenName", "value": "Robert"},
		map[string]any{"op": "Add", "path": "title", "value": "Guide"},
		map[string]any{"op": "Replace", "path": entraDeptPath, "value": "Sales"},
		map[string]any{"op": "Replace", "path": "active", "value": "True"},
	)).must(t, http.StatusOK)
	if r.Body["title"] != "Guide" || ext(r)["department"] != "Sales" || ext(r)["costCenter"] != "4130" || r.Body["active"] != true {
		t.Errorf("patch batch: %s", r.Raw)
	}
	emails, _ := r.Body["emails"].([]any)
	if len(emails) != 1 || emails[0].(map[string]any)["value"] != "robert@contoso.com" || emails[0].(map[string]any)["primary"] != true {
		t.Errorf("emails after value-filter replace: %s", r.Raw)
	}
	if _, ok := e.Fake.UserByEmail(bobEmail); ok {
		t.Error("old email still in Panther")
	}
	pu, ok = e.Fake.UserByEmail("robert@contoso.com")
	if !ok || pu.GivenName != "Robert" || pu.FamilyName != "Brown" || pu.RoleName != "AnalystReadOnly" {
		t.Errorf("panther after patch: %+v %v", pu, ok)
	}

	// Manager: set (bare id, as Entra sends it), change, clear.
	carol := e.do("POST", "/Users", entraUser("carol@contoso.com", "ext-carol", "Carol", "Clark", nil)).must(t, http.StatusCreated).str("id")
	updates := e.Fake.Count("updateUser")
	r = e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "Add", "path": entraMgrPath, "value": carol})).must(t, http.StatusOK)
	if managerOf(r) != carol {
		t.Errorf("manager change: %s", r.Raw)
	}
	r = e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "Replace", "path": entraMgrPath, "value": map[string]any{"value": alice}})).must(t, http.StatusOK)
	if managerOf(r) != alice {
		t.Errorf("manager replace with an object: %s", r.Raw)
	}
	r = e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "Remove", "path": entraMgrPath})).must(t, http.StatusOK)
	if _, ok := ext(r)["manager"]; ok {
		t.Errorf("manager not cleared: %s", r.Raw)
	}
	if ext(r)["employeeNumber"] != "701984" {
		t.Errorf("clearing manager lost the rest of the extension: %s", r.Raw)
	}
	if e.Fake.Count("updateUser") != updates {
		t.Error("manager changes called Panther: they map to nothing there")
	}
	// Entra also clears with an empty value.
	e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "Add", "path": entraMgrPath, "value": carol})).must(t, http.StatusOK)
	r = e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "Replace", "path": entraMgrPath, "value": ""})).must(t, http.StatusOK)
	if _, ok := ext(r)["manager"]; ok {
		t.Errorf("manager not cleared by \"\": %s", r.Raw)
	}
	// A remove that names the manager it removes, and null clearing a simple attribute.
	e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "Add", "path": entraMgrPath, "value": carol})).must(t, http.StatusOK)
	r = e.do("PATCH", "/Users/"+bob, patchOp(
		map[string]any{"op": "Remove", "path": entraMgrPath, "value": []any{map[string]any{"value": carol}}},
		map[string]any{"op": "Replace", "path": "title", "value": nil},
	)).must(t, http.StatusOK)
	if _, ok := ext(r)["manager"]; ok || r.Body["title"] != nil {
		t.Errorf("remove with value / null: %s", r.Raw)
	}
	// The pathless forms: the extension object with a bare manager id and a null,
	// and a null core attribute.
	e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "Add", "path": "title", "value": "Guide"})).must(t, http.StatusOK)
	r = e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "Replace", "value": map[string]any{
		entraEntURN: map[string]any{"manager": carol, "division": nil},
		"title":     nil,
	}})).must(t, http.StatusOK)
	if managerOf(r) != carol || ext(r)["division"] != nil || ext(r)["department"] != "Sales" || r.Body["title"] != nil {
		t.Errorf("pathless extension: %s", r.Raw)
	}
	r = e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "Replace", "value": map[string]any{entraMgrPath: ""}})).must(t, http.StatusOK)
	if _, ok := ext(r)["manager"]; ok {
		t.Errorf("pathless manager clear: %s", r.Raw)
	}
	// Filter on the extension.
	l = e.do("GET", "/Users?filter="+q(entraDeptPath+` eq "sales"`), nil).must(t, http.StatusOK)
	if ids := resourceIDs(l); len(ids) != 1 || ids[0] != bob {
		t.Errorf("filter on department: %s", l.Raw)
	}

	// Disable with a string boolean: Panther access goes, the record stays.
	r = e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "Replace", "path": "active", "value": "False"})).must(t, http.StatusOK)
	if r.Body["active"] != false {
		t.Errorf("disable: %s", r.Raw)
	}
	if _, ok := e.Fake.UserByEmail("robert@contoso.com"); ok {
		t.Error("disabled user still in Panther")
	}
	for _, f := range []string{`active eq false`, `active eq false and userName eq "bob@contoso.com"`, `externalId eq "ext-bob" and active eq false`} {
		l := e.do("GET", "/Users?filter="+q(f), nil).must(t, http.StatusOK)
		ids := resourceIDs(l)
		if len(ids) != 1 || ids[0] != bob {
			t.Errorf("%s: %s", f, l.Raw)
			continue
		}
		if res := l.Body["Resources"].([]any)[0].(map[string]any); res["active"] != false {
			t.Errorf("%s: served active %v", f, res["active"])
		}
	}
	l = e.do("GET", "/Users?filter="+q(`active eq true`), nil).must(t, http.StatusOK)
	if totalOf(t, l) != 2 || strings.Contains(l.Raw, bob) {
		t.Errorf("active eq true: %s", l.Raw)
	}

	// Entra's pathless form with a string boolean re-enables.
	e.do("PATCH", "/Users/"+bob, patchOp(map[string]any{"op": "Replace", "value": map[string]any{"active": "True"}})).must(t, http.StatusOK)
	if e.pantherRole("robert@contoso.com") != "AnalystReadOnly" {
		t.Error("re-enabled user not back in Panther")
	}

	// Entra deletes (soft delete is a disable; a hard delete is DELETE).
	e.do("DELETE", "/Users/"+bob, nil).must(t, http.StatusNoContent)
	if _, ok := e.Fake.UserByEmail("robert@contoso.com"); ok {
		t.Error("deleted user still in Panther")
	}
	if e.pending() != 0 {
		t.Errorf("pending intents: %d", e.pending())
	}
}

func TestEntraGroupSequence(t *testing.T) {
	e := newEnv(t)
	users := map[string]string{}
	for _, n := range []string{"dana", "eli", "fay"} {
		users[n] = e.do("POST", "/Users", entraUser(n+"@contoso.com", "ext-"+n, strings.ToUpper(n[:1])+n[1:], "Tester", nil)).must(t, http.StatusCreated).str("id")
	}
	roles := func(step string, want map[string]string) {
		t.Helper()
		for n, role := range want {
			if got := e.pantherRole(n + "@contoso.com"); got != role {
				t.Errorf("%s: %s has %q, want %q", step, n, got, role)
			}
		}
	}
	roles("start", map[string]string{"dana": "AnalystReadOnly", "eli": "AnalystReadOnly", "fay": "AnalystReadOnly"})

	// Entra looks the group up by displayName without members, then creates it empty.
	l := e.do("GET", "/Groups?excludedAttributes=members&filter="+q(`displayName eq "Panther Analysts"`), nil).must(t, http.StatusOK)
	if totalOf(t, l) != 0 {
		t.Fatalf("lookup: %s", l.Raw)
	}
	analysts := e.do("POST", "/Groups", map[string]any{
		"schemas": []string{coreGroupURN}, "externalId": "8aa1a0c0-analysts", "displayName": "Panther Analysts",
		"meta": map[string]any{"resourceType": "Group"},
	}).must(t, http.StatusCreated).str("id")
	admins := e.do("POST", "/Groups", map[string]any{
		"schemas": []string{coreGroupURN}, "externalId": "8aa1a0c0-admins", "displayName": "Panther Admins",
	}).must(t, http.StatusCreated).str("id")

	// Add members, one operation per member as Entra batches them.
	e.do("PATCH", "/Groups/"+analysts, patchOp(
		map[string]any{"op": "Add", "path": "members", "value": []any{map[string]any{"value": users["dana"]}}},
		map[string]any{"op": "Add", "path": "members", "value": []any{map[string]any{"value": users["eli"]}}},
		map[string]any{"op": "Add", "path": "members", "value": []any{map[string]any{"value": users["fay"]}}},
	)).must(t, http.StatusNoContent)
	roles("added to analysts", map[string]string{"dana": "Analyst", "eli": "Analyst", "fay": "Analyst"})
	e.do("PATCH", "/Groups/"+admins, patchOp(map[string]any{"op": "Add", "path": "members", "value": []any{map[string]any{"value": users["dana"]}}})).must(t, http.StatusNoContent)
	roles("dana also admin", map[string]string{"dana": "Admin", "eli": "Analyst", "fay": "Analyst"})

	// Reads without members: by id, by externalId, in a list.
	for _, p := range []string{
		"/Groups/" + analysts + "?excludedAttributes=members",
		"/Groups?excludedAttributes=members&filter=" + q(`externalId eq "8aa1a0c0-analysts"`),
		"/Groups?excludedAttributes=members",
	} {
		r := e.do("GET", p, nil).must(t, http.StatusOK)
		if strings.Contains(r.Raw, `"members"`) || !strings.Contains(r.Raw, analysts) {
			t.Errorf("%s: %s", p, r.Raw)
		}
	}
	// With members, they are there.
	if g := e.do("GET", "/Groups/"+analysts, nil).must(t, http.StatusOK); memberIDs(g) != sortedJoin(users["dana"], users["eli"], users["fay"]) {
		t.Errorf("members: %s", g.Raw)
	}
	// Membership as Entra checks it before removing.
	l = e.do("GET", "/Groups?excludedAttributes=members&filter="+q(fmt.Sprintf(`id eq "%s" and members[value eq "%s"]`, analysts, users["eli"])), nil).must(t, http.StatusOK)
	if totalOf(t, l) != 1 {
		t.Errorf("membership check: %s", l.Raw)
	}

	// Remove, first form: a value-filter path.
	e.do("PATCH", "/Groups/"+analysts, patchOp(map[string]any{"op": "Remove", "path": fmt.Sprintf(`members[value eq "%s"]`, users["eli"])})).must(t, http.StatusNoContent)
	roles("eli removed by filter", map[string]string{"dana": "Admin", "eli": "AnalystReadOnly", "fay": "Analyst"})
	// Second form: path members with a value list.
	e.do("PATCH", "/Groups/"+analysts, patchOp(map[string]any{"op": "Remove", "path": "members", "value": []any{map[string]any{"value": users["fay"]}}})).must(t, http.StatusNoContent)
	roles("fay removed by value", map[string]string{"dana": "Admin", "eli": "AnalystReadOnly", "fay": "AnalystReadOnly"})
	if g := e.do("GET", "/Groups/"+analysts, nil).must(t, http.StatusOK); memberIDs(g) != users["dana"] {
		t.Errorf("members after removals: %s", g.Raw)
	}
	// Leaving admins drops dana to the next rule that matches.
	e.do("PATCH", "/Groups/"+admins, patchOp(map[string]any{"op": "Remove", "path": fmt.Sprintf(`members[value eq "%s"]`, users["dana"])})).must(t, http.StatusNoContent)
	roles("dana left admins", map[string]string{"dana": "Analyst"})

	// Rename with a capitalised Replace: the mapping follows the name.
	e.do("PATCH", "/Groups/"+analysts, patchOp(map[string]any{"op": "Replace", "path": "displayName", "value": "Panther Admins Too"})).must(t, http.StatusNoContent)
	roles("analysts renamed away", map[string]string{"dana": "AnalystReadOnly"})
	e.do("PATCH", "/Groups/"+analysts, patchOp(map[string]any{"op": "Replace", "path": "displayName", "value": "Panther Analysts"})).must(t, http.StatusNoContent)
	roles("renamed back", map[string]string{"dana": "Analyst"})

	// Deleting the group.
	e.do("DELETE", "/Groups/"+analysts, nil).must(t, http.StatusNoContent)
	roles("group deleted", map[string]string{"dana": "AnalystReadOnly"})
	if e.pending() != 0 {
		t.Errorf("pending intents: %d", e.pending())
	}
}

// surfaceUsers creates three users with distinct values for projection, sorting and
// filtering, and returns their ids by first name.
func surfaceUsers(t *testing.T, e *env) map[string]string {
	t.Helper()
	ids := map[string]string{}
	ada := entraUser("ada@example.org", "ext-ada", "Ada", "Lovelace", map[string]any{"department": "Engines", "costCenter": "1"})
	ada["title"] = "Engineer"
	ada["emails"] = []any{
		map[string]any{"type": "work", "value": "ada@example.org", "primary": true},
		map[string]any{"type": "home", "value": "ada@home.example"},
	}
	ids["ada"] = e.do("POST", "/Users", ada).must(t, http.StatusCreated).str("id")
	ids["bob"] = e.do("POST", "/Users", entraUser("bob@example.org", "ext-bob", "Bob", "Babbage", nil)).must(t, http.StatusCreated).str("id")
	ids["cy"] = e.do("POST", "/Users", entraUser("cy@example.net", "ext-cy", "Cy", "Clarke", map[string]any{"department": "Research"})).must(t, http.StatusCreated).str("id")
	return ids
}

func keysOf(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return sortedJoin(ks...)
}

func TestSurfaceProjection(t *testing.T) {
	e := newEnv(t)
	ids := surfaceUsers(t, e)
	ada := "/Users/" + ids["ada"]
	cases := []struct {
		name, query string
		check       func(m map[string]any) bool
	}{
		{"attributes=userName", "attributes=userName", func(m map[string]any) bool {
			_, name := m["name"]
			_, title := m["title"]
			return m["userName"] == "ada@example.org" && m["id"] == ids["ada"] && !name && !title && m[entraEntURN] == nil
		}},
		{"sub-attribute", "attributes=name.givenName", func(m map[string]any) bool {
			n, _ := m["name"].(map[string]any)
			return keysOf(n) == "givenName" && m["userName"] == nil
		}},
		{"multi-valued sub-attribute", "attributes=emails.value", func(m map[string]any) bool {
			es, _ := m["emails"].([]any)
			return len(es) == 2 && keysOf(es[0].(map[string]any)) == "value"
		}},
		{"value filter", "attributes=" + q(`emails[type eq "work"]`), func(m map[string]any) bool {
			es, _ := m["emails"].([]any)
			return len(es) == 1 && es[0].(map[string]any)["value"] == "ada@example.org"
		}},
		{"extension attribute", "attributes=" + q(entraDeptPath), func(m map[string]any) bool {
			x, _ := m[entraEntURN].(map[string]any)
			return keysOf(x) == "department" && m["title"] == nil
		}},
		{"any case", "attributes=USERNAME,Name.FamilyName", func(m map[string]any) bool {
			n, _ := m["name"].(map[string]any)
			return m["userName"] == "ada@example.org" && keysOf(n) == "familyName"
		}},
		{"excluded", "excludedAttributes=emails,name.familyName", func(m map[string]any) bool {
			n, _ := m["name"].(map[string]any)
			_, emails := m["emails"]
			return !emails && n["givenName"] == "Ada" && n["familyName"] == nil && m["title"] == "Engineer"
		}},
		{"excluded extension", "excludedAttributes=" + q(entraEntURN), func(m map[string]any) bool {
			return m[entraEntURN] == nil && m["userName"] == "ada@example.org"
		}},
		{"id cannot be excluded", "excludedAttributes=id,userName", func(m map[string]any) bool {
			return m["id"] == ids["ada"] && m["userName"] == nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("GET", ada+"?"+c.query, nil).must(t, http.StatusOK)
			if !c.check(r.Body) {
				t.Errorf("GET ?%s: %s", c.query, r.Raw)
			}
			// The same projection on a list.
			l := e.do("GET", "/Users?filter="+q(`userName eq "ada@example.org"`)+"&"+c.query, nil).must(t, http.StatusOK)
			res, _ := l.Body["Resources"].([]any)
			if len(res) != 1 || !c.check(res[0].(map[string]any)) {
				t.Errorf("list ?%s: %s", c.query, l.Raw)
			}
		})
	}

	// PATCH and PUT answers follow attributes too.
	r := e.do("PATCH", ada+"?attributes=title", patchOp(map[string]any{"op": "Replace", "path": "title", "value": "Countess"})).must(t, http.StatusOK)
	if r.Body["title"] != "Countess" || r.Body["userName"] != nil {
		t.Errorf("PATCH ?attributes=title: %s", r.Raw)
	}

	// Groups: displayName only, and members excluded.
	gid := e.createGroup("Panther Analysts", ids["ada"], ids["bob"])
	for _, p := range []string{"/Groups/" + gid + "?attributes=displayName", "/Groups/" + gid + "?excludedAttributes=members"} {
		g := e.do("GET", p, nil).must(t, http.StatusOK)
		if g.Body["displayName"] != "Panther Analysts" || g.Body["members"] != nil {
			t.Errorf("%s: %s", p, g.Raw)
		}
	}
	g := e.do("GET", "/Groups/"+gid+"?attributes=members.value", nil).must(t, http.StatusOK)
	if ms, _ := g.Body["members"].([]any); len(ms) != 2 || keysOf(ms[0].(map[string]any)) != "value" || g.Body["displayName"] != nil {
		t.Errorf("attributes=members.value: %s", g.Raw)
	}
}

func TestSurfaceSorting(t *testing.T) {
	e := newEnv(t)
	ids := surfaceUsers(t, e)
	order := func(query string) string {
		t.Helper()
		l := e.do("GET", "/Users?"+query, nil).must(t, http.StatusOK)
		var names []string
		for _, id := range resourceIDs(l) {
			for n, x := range ids {
				if x == id {
					names = append(names, n)
				}
			}
		}
		return strings.Join(names, ",")
	}
	cases := map[string]string{
		"sortBy=userName":                             "ada,bob,cy",
		"sortBy=userName&sortOrder=descending":        "cy,bob,ada",
		"sortBy=name.familyName":                      "bob,cy,ada",
		"sortBy=NAME.FAMILYNAME&sortOrder=Descending": "ada,cy,bob",
		"sortBy=emails":                               "ada,bob,cy",
		"sortBy=title":                                "ada,bob,cy", // no value sorts last, stably
		"sortBy=userName&sortOrder=descending&startIndex=2&count=1": "bob",
		"sortBy=" + q(entraDeptPath):                                "ada,cy,bob",
		"sortBy=userName&filter=" + q(`userName ew ".org"`):         "ada,bob",
	}
	for query, want := range cases {
		if got := order(query); got != want {
			t.Errorf("%s: %s, want %s", query, got, want)
		}
	}
	e.do("GET", "/Users?sortBy=shoeSize", nil).scimErr(t, http.StatusBadRequest, "invalidValue")
	e.do("GET", "/Users?sortBy=userName&sortOrder=sideways", nil).scimErr(t, http.StatusBadRequest, "invalidValue")

	// Groups sort too, and the ServiceProviderConfig says so.
	e.createGroup("Zeta")
	e.createGroup("alpha")
	l := e.do("GET", "/Groups?sortBy=displayName&sortOrder=descending", nil).must(t, http.StatusOK)
	res, _ := l.Body["Resources"].([]any)
	if len(res) != 2 || res[0].(map[string]any)["displayName"] != "Zeta" {
		t.Errorf("groups sorted: %s", l.Raw)
	}
	spc := e.do("GET", "/ServiceProviderConfig", nil).must(t, http.StatusOK)
	for feature, want := range map[string]bool{"sort": true, "etag": true, "patch": true, "filter": true, "bulk": false, "changePassword": false} {
		if m, _ := spc.Body[feature].(map[string]any); m["supported"] != want {
			t.Errorf("ServiceProviderConfig %s.supported = %v, want %v", feature, m["supported"], want)
		}
	}
}

func TestSurfaceETags(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("etag@example.com", "E", "Tag")
	gid := e.createGroup("Tagged", id)
	for _, p := range []string{"/Users/" + id, "/Groups/" + gid} {
		t.Run(p[1:7], func(t *testing.T) {
			r := e.do("GET", p, nil).must(t, http.StatusOK)
			etag := r.Header.Get("ETag")
			meta, _ := r.Body["meta"].(map[string]any)
			if etag == "" || meta["version"] != etag {
				t.Fatalf("ETag %q, meta.version %v", etag, meta["version"])
			}
			nm := e.do("GET", p, nil, "If-None-Match", etag)
			if nm.Status != http.StatusNotModified || nm.Raw != "" {
				t.Errorf("If-None-Match current: %d %s", nm.Status, nm.Raw)
			}
			e.do("GET", p, nil, "If-None-Match", `W/"999"`).must(t, http.StatusOK)

			var change any
			if strings.HasPrefix(p, "/Users") {
				change = patchOp(map[string]any{"op": "replace", "path": "title", "value": "v2"})
			} else {
				change = patchOp(map[string]any{"op": "replace", "path": "externalId", "value": "v2"})
			}
			want := http.StatusOK // a group PATCH answers 204, with the ETag
			if strings.HasPrefix(p, "/Groups") {
				want = http.StatusNoContent
			}
			next := e.do("PATCH", p, change, "If-Match", etag).must(t, want)
			etag2 := next.Header.Get("ETag")
			if etag2 == "" || etag2 == etag {
				t.Fatalf("ETag did not change: %q -> %q", etag, etag2)
			}
			// The old version is stale for every write.
			e.do("PATCH", p, change, "If-Match", etag).scimErr(t, http.StatusPreconditionFailed, "")
			cur := e.do("GET", p, nil).must(t, http.StatusOK)
			delete(cur.Body, "meta")
			e.do("PUT", p, cur.Body, "If-Match", etag).scimErr(t, http.StatusPreconditionFailed, "")
			e.do("DELETE", p, nil, "If-Match", etag).scimErr(t, http.StatusPreconditionFailed, "")
			e.do("GET", p, nil, "If-None-Match", etag).must(t, http.StatusOK)
			// The current one, or any, passes.
			e.do("PUT", p, cur.Body, "If-Match", etag2).must(t, http.StatusOK)
			e.do("PATCH", p, change, "If-Match", "*").must(t, want)
		})
	}
	e.do("DELETE", "/Groups/"+gid, nil, "If-Match", e.do("GET", "/Groups/"+gid, nil).Header.Get("ETag")).must(t, http.StatusNoContent)
	if e.pantherRole("etag@example.com") != "AnalystReadOnly" {
		t.Error("a stale write reached Panther")
	}
}

func TestSurfaceSearch(t *testing.T) {
	e := newEnv(t)
	ids := surfaceUsers(t, e)
	search := func(endpoint string, body map[string]any) resp {
		t.Helper()
		body["schemas"] = []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}
		return e.do("POST", endpoint, body).must(t, http.StatusOK)
	}
	r := search("/Users/.search", map[string]any{
		"filter": `userName ew ".org"`, "attributes": []string{"userName"},
		"sortBy": "userName", "sortOrder": "descending", "startIndex": 1, "count": 1,
	})
	res, _ := r.Body["Resources"].([]any)
	if totalOf(t, r) != 2 || len(res) != 1 {
		t.Fatalf("search: %s", r.Raw)
	}
	first := res[0].(map[string]any)
	if first["id"] != ids["bob"] || first["userName"] != "bob@example.org" || first["name"] != nil {
		t.Errorf("search page: %s", r.Raw)
	}
	r = search("/Users/.search", map[string]any{"filter": `name.familyName sw "l" or name.familyName sw "b"`, "excludedAttributes": []string{"emails", "name"}})
	if totalOf(t, r) != 2 || strings.Contains(r.Raw, `"emails"`) || strings.Contains(r.Raw, `"givenName"`) {
		t.Errorf("search excluded: %s", r.Raw)
	}
	r = search("/Users/.search", map[string]any{"filter": `userName eq "nobody@example.org"`})
	if totalOf(t, r) != 0 {
		t.Errorf("zero-hit search: %s", r.Raw)
	}

	e.createGroup("Panther Analysts", ids["ada"])
	g := search("/Groups/.search", map[string]any{"filter": `displayName co "analyst"`, "excludedAttributes": []string{"members"}})
	if totalOf(t, g) != 1 || strings.Contains(g.Raw, `"members"`) {
		t.Errorf("groups search: %s", g.Raw)
	}
	bad := e.do("POST", "/Users/.search", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}, "filter": `userName zz "x"`,
	})
	bad.scimErr(t, http.StatusBadRequest, "invalidFilter")
}

func TestSurfaceFilters(t *testing.T) {
	e := newEnv(t)
	ids := surfaceUsers(t, e)
	ada := e.do("GET", "/Users/"+ids["ada"], nil).must(t, http.StatusOK)
	modified := ada.Body["meta"].(map[string]any)["lastModified"].(string)
	at, err := time.Parse(time.RFC3339, modified)
	if err != nil {
		t.Fatal(err)
	}
	// The same instant in another zone: equal as dates, not as strings.
	sameInstant := at.In(time.FixedZone("", 3600)).Format(time.RFC3339)
	e.do("PATCH", "/Users/"+ids["cy"], patchOp(map[string]any{"op": "Replace", "path": "active", "value": "False"})).must(t, http.StatusOK)

	cases := map[string]string{
		`userName eq "ADA@example.org"`:             "ada",
		`USERNAME Eq "bob@example.org"`:             "bob",
		`userName ne "ada@example.org"`:             "bob,cy",
		`userName co "B@EXAMPLE"`:                   "bob",
		`userName sw "c"`:                           "cy",
		`userName ew ".org"`:                        "ada,bob",
		`title pr`:                                  "ada",
		`not (title pr)`:                            "bob,cy",
		`name.familyName gt "C"`:                    "ada,cy",
		`name.familyName le "Clarke"`:               "bob,cy",
		`emails[type eq "home"]`:                    "ada",
		`emails[type eq "work" and value co "ada"]`: "ada",
		`emails.value ew "example.net"`:             "cy",
		`userName eq "ada@example.org" or userName eq "cy@example.net"`:          "ada,cy",
		`(userName sw "a" or userName sw "b") and not (name.givenName eq "Bob")`: "ada",
		`active eq false`:                                                  "cy",
		`active eq true and title pr`:                                      "ada",
		entraDeptPath + ` eq "engines"`:                                    "ada",
		entraEntURN + `:department pr`:                                     "ada,cy",
		`externalId eq "ext-bob"`:                                          "bob",
		`meta.lastModified gt "2000-01-01T00:00:00Z"`:                      "ada,bob,cy",
		`meta.lastModified lt "2000-01-01T00:00:00Z"`:                      "",
		`meta.lastModified gt "2999-01-01T00:00:00+14:00"`:                 "",
		`meta.lastModified ge "` + sameInstant + `" and userName sw "ada"`: "ada",
		`meta.created le "` + sameInstant + `" and userName sw "ada"`:      "ada",
		`meta.resourceType eq "User" and userName sw "b"`:                  "bob",
		`userName eq "nobody@example.org"`:                                 "",
	}
	for f, want := range cases {
		l := e.do("GET", "/Users?filter="+q(f), nil)
		if l.Status != http.StatusOK {
			t.Errorf("%s: %d %s", f, l.Status, l.Raw)
			continue
		}
		var names []string
		for _, id := range resourceIDs(l) {
			for n, x := range ids {
				if x == id {
					names = append(names, n)
				}
			}
		}
		if got := sortedJoin(names...); got != want || totalOf(t, l) != len(names) {
			t.Errorf("%s: %q (total %v), want %q", f, got, l.Body["totalResults"], want)
		}
	}

	gid := e.createGroup("Panther Analysts", ids["ada"])
	e.createGroup("Empty")
	for f, want := range map[string]int{
		`displayName co "ANALYST"`:                      1,
		`members pr`:                                    1,
		`not (members pr)`:                              1,
		`members.value eq "` + ids["ada"] + `"`:         1,
		`members[value eq "` + ids["bob"] + `"]`:        0,
		`meta.lastModified gt "2000-01-01T00:00:00Z"`:   2,
		`displayName eq "Empty" or id eq "` + gid + `"`: 2,
	} {
		l := e.do("GET", "/Groups?filter="+q(f), nil).must(t, http.StatusOK)
		if totalOf(t, l) != want {
			t.Errorf("groups %s: %s", f, l.Raw)
		}
	}
}

// TestSurfaceErrors checks the scimType of each error class RFC 7644 §3.12 names,
// and that none of them changes anything.
func TestSurfaceErrors(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("err@example.com", "Err", "Or")
	e.createUser("taken@example.com", "Taken", "Name")
	gid := e.createGroup("Panther Admins", id)
	patch := func(ops ...map[string]any) string {
		b, _ := jsonString(patchOp(ops...))
		return b
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		scimType                 string
	}{
		{"filter syntax", "GET", "/Users?filter=" + q(`userName zz "x"`), "", 400, "invalidFilter"},
		{"filter unbalanced", "GET", "/Users?filter=" + q(`(userName eq "x"`), "", 400, "invalidFilter"},
		{"filter unknown attribute", "GET", "/Groups?filter=" + q(`shoeSize pr`), "", 400, "invalidFilter"},
		{"filter date on a string", "GET", "/Users?filter=" + q(`meta.lastModified gt "yesterday"`), "", 400, "invalidFilter"},
		{"patch remove without path", "PATCH", "/Users/" + id, patch(map[string]any{"op": "Remove"}), 400, "noTarget"},
		{"patch replace unmatched filter", "PATCH", "/Users/" + id, patch(map[string]any{"op": "Replace", "path": `emails[type eq "home"].value`, "value": "x@example.com"}), 400, "noTarget"},
		{"patch wrong type", "PATCH", "/Users/" + id, patch(map[string]any{"op": "Replace", "path": "active", "value": "maybe"}), 400, "invalidValue"},
		{"patch remove required", "PATCH", "/Users/" + id, patch(map[string]any{"op": "Remove", "path": "userName"}), 400, "invalidValue"},
		{"patch unknown member", "PATCH", "/Groups/" + gid, patch(map[string]any{"op": "Add", "path": "members", "value": []any{map[string]any{"value": "nobody"}}}), 400, "invalidValue"},
		{"patch add null to members", "PATCH", "/Groups/" + gid, patch(map[string]any{"op": "Add", "path": "members", "value": nil}), 400, "invalidValue"},
		{"patch read-only", "PATCH", "/Users/" + id, patch(map[string]any{"op": "Add", "path": "groups", "value": []any{map[string]any{"value": gid}}}), 400, "mutability"},
		{"patch not JSON", "PATCH", "/Users/" + id, `{"Operations": [`, 400, "invalidSyntax"},
		{"post not JSON", "POST", "/Groups", `{"displayName": `, 400, "invalidSyntax"},
		{"post missing displayName", "POST", "/Groups", `{"schemas":["` + coreGroupURN + `"]}`, 400, "invalidValue"},
		{"userName taken", "POST", "/Users", `{"schemas":["` + coreUserURN + `"],"userName":"TAKEN@example.com"}`, 409, "uniqueness"},
		{"userName taken by PUT", "PUT", "/Users/" + id, `{"schemas":["` + coreUserURN + `"],"userName":"taken@example.com"}`, 409, "uniqueness"},
		{"userName taken by PATCH", "PATCH", "/Users/" + id, patch(map[string]any{"op": "Replace", "path": "userName", "value": "Taken@Example.com"}), 409, "uniqueness"},
		{"group name taken", "POST", "/Groups", `{"schemas":["` + coreGroupURN + `"],"displayName":"panther admins"}`, 409, "uniqueness"},
		{"sortOrder", "GET", "/Users?sortBy=userName&sortOrder=up", "", 400, "invalidValue"},
		{"unknown group", "PATCH", "/Groups/nope", patch(map[string]any{"op": "Replace", "path": "displayName", "value": "x"}), 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := len(e.Fake.Calls())
			before := e.do("GET", "/Users/"+id, nil).must(t, http.StatusOK).Header.Get("ETag")
			var body any
			if c.body != "" {
				body = c.body
			}
			e.do(c.method, c.path, body).scimErr(t, c.status, c.scimType)
			if len(e.Fake.Calls()) != calls {
				t.Error("Panther was called")
			}
			if after := e.do("GET", "/Users/"+id, nil).Header.Get("ETag"); after != before {
				t.Errorf("user changed: %s -> %s", before, after)
			}
		})
	}
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
