package e2e

// Issue 17: nothing a real IdP sends is refused for its form. Each test sends the form
// over HTTP and checks the answer, what was stored, and what reached Panther.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/provision"
)

const customExtURN = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"

func withStrictAttributes() option {
	return func(o *app.Options) { o.StrictAttributes = true }
}

// storedJSON is the stored record of a user as JSON, for "not stored" checks.
func (e *env) storedJSON(id string) string {
	e.t.Helper()
	u, ok := e.storedUser(id)
	if !ok {
		e.t.Fatalf("user %s not stored", id)
	}
	b, err := json.Marshal(u)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// storedGroup reads a group record.
func (e *env) storedGroup(id string) provision.Group {
	e.t.Helper()
	var g provision.Group
	if err := e.App.Store.View(context.Background(), func(tx provision.ReadTx) error {
		var err error
		g, err = tx.Group(id)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return g
}

// countWarn counts the WARN log lines that mention s.
func (e *env) countWarn(s string) int {
	n := 0
	for line := range strings.Lines(e.Logs.String()) {
		if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// An attribute the schema does not declare (a misspelling, an attribute of an
// extension panther-scim does not serve) is ignored on POST, PUT and PATCH: not
// stored, not echoed, no 400; logged once per name at warn and counted by name.
func TestAcceptUnknownAttributes(t *testing.T) {
	e := newEnv(t, func(o *app.Options) { o.OpsAddr = "127.0.0.1:0" })
	body := newUser("ada@example.com", "Ada", "Lovelace")
	body["adreses"] = []any{map[string]any{"streetAddress": "12 St James's Square"}}
	body["schemas"] = []string{coreUserURN, entraEntURN, customExtURN}
	body[customExtURN] = map[string]any{"CustomAttribute": "blue"}
	body[entraEntURN] = map[string]any{"department": "Engines", "badgeColour": "red"}
	body["name"] = map[string]any{"givenName": "Ada", "familyName": "Lovelace", "middle_name": "Augusta"}
	r := e.do("POST", "/Users", body).must(t, http.StatusCreated)
	id := r.str("id")
	for _, bad := range []string{"adreses", customExtURN, "CustomAttribute", "badgeColour", "middle_name"} {
		if strings.Contains(r.Raw, bad) {
			t.Errorf("the answer echoes %q: %s", bad, r.Raw)
		}
		if strings.Contains(e.storedJSON(id), bad) {
			t.Errorf("the record stores %q: %s", bad, e.storedJSON(id))
		}
	}
	if ext(r)["department"] != "Engines" {
		t.Errorf("the known extension attribute is lost: %s", r.Raw)
	}
	if pu, ok := e.Fake.UserByEmail("ada@example.com"); !ok || pu.GivenName != "Ada" || pu.FamilyName != "Lovelace" {
		t.Fatalf("Panther user: %+v %v", pu, ok)
	}

	// PUT, with the same misspelling and a new one.
	put := newUser("ada@example.com", "Ada", "Byron")
	put["adreses"] = "again"
	put["favouriteColour"] = "Ada"
	e.do("PUT", "/Users/"+id, put).must(t, http.StatusOK)
	if pu, _ := e.Fake.UserByEmail("ada@example.com"); pu.FamilyName != "Byron" {
		t.Errorf("PUT did not reach Panther: %+v", pu)
	}

	// PATCH as Entra sends a mapped custom attribute, beside a real change.
	p := e.do("PATCH", "/Users/"+id, patchOp(
		map[string]any{"op": "Add", "path": customExtURN + ":CustomAttribute", "value": "green"},
		map[string]any{"op": "Replace", "path": "name.middle_name", "value": "A"},
		map[string]any{"op": "Replace", "value": map[string]any{"adreses": "x", "name.familyName": "King"}},
	)).must(t, http.StatusOK)
	if strings.Contains(p.Raw, "green") || strings.Contains(e.storedJSON(id), "green") {
		t.Errorf("the custom attribute is kept: %s", p.Raw)
	}
	if pu, _ := e.Fake.UserByEmail("ada@example.com"); pu.FamilyName != "King" {
		t.Errorf("PATCH did not reach Panther: %+v", pu)
	}
	// A PATCH of nothing but unknown attributes changes nothing, and says so with 200.
	before := e.do("GET", "/Users/"+id, nil).must(t, http.StatusOK).Header.Get("ETag")
	calls := len(e.Fake.Calls())
	e.do("PATCH", "/Users/"+id, patchOp(map[string]any{"op": "replace", "path": "adreses", "value": "y"})).must(t, http.StatusOK)
	if after := e.do("GET", "/Users/"+id, nil).Header.Get("ETag"); after != before || len(e.Fake.Calls()) != calls {
		t.Errorf("a PATCH of unknown attributes changed something: %s -> %s, %d Panther calls", before, after, len(e.Fake.Calls())-calls)
	}

	// Each name logged once, whatever the number of requests that sent it.
	for _, name := range []string{`"attribute":"adreses"`, `"attribute":"` + customExtURN + `:CustomAttribute"`, `"attribute":"name.middle_name"`, `"attribute":"favouriteColour"`, `"attribute":"` + entraEntURN + `:badgeColour"`} {
		if n := e.countWarn(name); n != 1 {
			t.Errorf("%s logged at warn %d times, want 1", name, n)
		}
	}
	_, ss := e.scrape()
	for name, want := range map[string]float64{
		"adreses": 4, customExtURN + ":CustomAttribute": 2, "name.middle_name": 2, "favouriteColour": 1, entraEntURN + ":badgeColour": 1,
	} {
		if got, _ := metric(ss, "panther_scim_unknown_attributes_total", map[string]string{"attribute": name}); got != want {
			t.Errorf("panther_scim_unknown_attributes_total{attribute=%q} = %v, want %v", name, got, want)
		}
	}

	// Groups too.
	g := e.do("POST", "/Groups", map[string]any{
		"schemas": []string{coreGroupURN}, "displayName": "Panther Admins", "owner": "someone",
		"members": []any{map[string]any{"value": id, "display": "Ada", "ref": "x"}},
	}).must(t, http.StatusCreated)
	if strings.Contains(g.Raw, "owner") || strings.Contains(g.Raw, `"ref"`) {
		t.Errorf("group answer echoes unknown attributes: %s", g.Raw)
	}
	if e.pantherRole("ada@example.com") != "Admin" {
		t.Errorf("membership did not reach Panther: role %q", e.pantherRole("ada@example.com"))
	}
}

// With scim.strictAttributes the same requests are refused, with a detail naming the
// attribute, and nothing changes.
func TestStrictAttributes(t *testing.T) {
	e := newEnv(t, withStrictAttributes())
	id := e.createUser("keep@example.com", "Keep", "Me")
	record := e.storedJSON(id)
	body := newUser("new@example.com", "New", "User")
	body["adreses"] = "x"
	custom := newUser("new@example.com", "New", "User")
	custom[customExtURN] = map[string]any{"CustomAttribute": "blue"}
	cases := []struct {
		name, method, path string
		body               any
		scimType, detail   string
	}{
		{"POST misspelling", "POST", "/Users", body, "invalidSyntax", `unknown attribute "adreses"`},
		{"POST custom extension", "POST", "/Users", custom, "invalidSyntax", `"` + customExtURN + `:CustomAttribute"`},
		{"PUT misspelling", "PUT", "/Users/" + id, body, "invalidSyntax", `"adreses"`},
		{"PATCH path", "PATCH", "/Users/" + id, patchOp(map[string]any{"op": "replace", "path": "shoeSize", "value": "4"}), "invalidPath", `"shoeSize"`},
		{"PATCH sub-attribute", "PATCH", "/Users/" + id, patchOp(map[string]any{"op": "replace", "path": "name.nickname", "value": "x"}), "invalidPath", `"name.nickname"`},
		{"PATCH pathless key", "PATCH", "/Users/" + id, patchOp(map[string]any{"op": "replace", "value": map[string]any{"title": "T", "shoeSize": 4}}), "invalidPath", `"shoeSize"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := len(e.Fake.Calls())
			r := e.do(c.method, c.path, c.body)
			r.scimErr(t, http.StatusBadRequest, c.scimType)
			if !strings.Contains(r.str("detail"), c.detail) || !strings.Contains(r.str("detail"), "strictAttributes") {
				t.Errorf("detail %q does not name %s and the switch", r.str("detail"), c.detail)
			}
			if len(e.Fake.Calls()) != calls || e.recordCount() != 1 || e.storedJSON(id) != record {
				t.Error("a refused request changed something")
			}
		})
	}
}

// Core attributes keyed by the core schema URN (RFC 7644 §3.10), alone or mixed with
// plain keys, for Users and Groups; a conflict between the two is 400 invalidSyntax.
func TestAcceptCoreURNKeyedAttributes(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/Users", map[string]any{
		"schemas": []string{coreUserURN},
		coreUserURN: map[string]any{
			"userName": "grace@example.com",
			"name":     map[string]any{"givenName": "Grace", "familyName": "Hopper"},
			"emails":   []any{map[string]any{"value": "grace@example.com", "primary": true}},
		},
		"active":                        true,
		coreUserURN + ":displayName":    "Amazing Grace",
		entraEntURN + ":employeeNumber": "1906",
	}).must(t, http.StatusCreated)
	id := r.str("id")
	u, _ := e.storedUser(id)
	if u.UserName != "grace@example.com" || u.Email != "grace@example.com" || u.Attributes["displayName"] != "Amazing Grace" {
		t.Errorf("stored: %+v", u)
	}
	if ent, _ := u.Attributes[entraEntURN].(map[string]any); ent["employeeNumber"] != "1906" {
		t.Errorf("stored extension: %v", u.Attributes)
	}
	if strings.Contains(r.Raw, `"`+coreUserURN+`":`) {
		t.Errorf("the answer keeps the core container: %s", r.Raw)
	}
	if pu, ok := e.Fake.UserByEmail("grace@example.com"); !ok || pu.GivenName != "Grace" || pu.FamilyName != "Hopper" {
		t.Errorf("Panther user: %+v %v", pu, ok)
	}

	// PATCH with the core container in a pathless value.
	e.do("PATCH", "/Users/"+id, patchOp(map[string]any{"op": "replace", "value": map[string]any{
		coreUserURN: map[string]any{"name": map[string]any{"familyName": "Murray"}},
	}})).must(t, http.StatusOK)
	if pu, _ := e.Fake.UserByEmail("grace@example.com"); pu.FamilyName != "Murray" {
		t.Errorf("PATCH did not reach Panther: %+v", pu)
	}

	// Conflict: nothing stored, Panther not called.
	calls := len(e.Fake.Calls())
	c := e.do("POST", "/Users", map[string]any{
		"schemas": []string{coreUserURN}, "userName": "one@example.com",
		coreUserURN: map[string]any{"userName": "two@example.com"},
	})
	c.scimErr(t, http.StatusBadRequest, "invalidSyntax")
	if !strings.Contains(c.str("detail"), `"userName" is given twice`) {
		t.Errorf("detail: %s", c.Raw)
	}
	if len(e.Fake.Calls()) != calls || e.recordCount() != 1 {
		t.Error("a conflicting body changed something")
	}

	// A Group with its core attributes under its URN; its member gets the mapped role.
	g := e.do("POST", "/Groups", map[string]any{
		"schemas":    []string{coreGroupURN},
		coreGroupURN: map[string]any{"displayName": "Panther Admins", "members": []any{map[string]any{"value": id}}},
	}).must(t, http.StatusCreated)
	if st := e.storedGroup(g.str("id")); st.DisplayName != "Panther Admins" || len(st.Members) != 1 || st.Members[0] != id {
		t.Errorf("stored group: %+v", st)
	}
	if e.pantherRole("grace@example.com") != "Admin" {
		t.Errorf("role in Panther: %q", e.pantherRole("grace@example.com"))
	}
}

// Unquoted filter values as Microsoft's reference collection sends them, in GET and
// .search, alone or inside and/or/parentheses; a PATCH path's member filter too.
// Malformed filters stay 400 invalidFilter.
func TestAcceptBareFilterValues(t *testing.T) {
	e := newEnv(t)
	ada := e.do("POST", "/Users", map[string]any{
		"schemas": []string{coreUserURN}, "userName": "Ola@example.com", "active": true,
		"name":   map[string]any{"givenName": "Ola", "familyName": "Employee"},
		"emails": []any{map[string]any{"value": "ola@example.com", "primary": true}},
	}).must(t, http.StatusCreated).str("id")
	e.createUser("bob@example.com", "Bob", "Other")
	for f, want := range map[string]int{
		`name.familyName eq Employee`:                   1,
		`userName sw O`:                                 1,
		`userName sw o and name.familyName eq Employee`: 1,
		`(userName eq nobody or name.familyName eq Other) and active eq true`: 1,
		`meta.created gt 2015-10-10T14:38:21.8617979-07:00`:                   2,
		`meta.created lt 2015-10-10T14:38:21.8617979-07:00`:                   0,
		`userName eq Ola@example.com`:                                         1,
		`emails[value eq ola@example.com]`:                                    1,
	} {
		l := e.do("GET", "/Users?filter="+q(f), nil).must(t, http.StatusOK)
		if totalOf(t, l) != want {
			t.Errorf("GET filter %s: %d results, want %d: %s", f, totalOf(t, l), want, l.Raw)
		}
		s := e.do("POST", "/Users/.search", map[string]any{
			"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}, "filter": f,
		}).must(t, http.StatusOK)
		if totalOf(t, s) != want {
			t.Errorf(".search filter %s: %d results, want %d: %s", f, totalOf(t, s), want, s.Raw)
		}
	}
	for f, detail := range map[string]string{
		`displayName eq Group One`: `expected "and", "or"`,
		`userName eq`:              `needs a value`,
		`userName eq 'x'`:          `double quotes`,
		`userName xx y`:            `unknown operator "xx"`,
		`shoeSize eq 4`:            `shoeSize`,
		`active gt true`:           `not supported on boolean`,
	} {
		for _, r := range []resp{
			e.do("GET", "/Users?filter="+q(f), nil),
			e.do("POST", "/Users/.search", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}, "filter": f}),
		} {
			r.scimErr(t, http.StatusBadRequest, "invalidFilter")
			if !strings.Contains(r.str("detail"), detail) {
				t.Errorf("filter %s: detail %q does not say %q", f, r.str("detail"), detail)
			}
		}
	}

	gid := e.createGroup("Panther Admins", ada)
	if e.pantherRole("ola@example.com") != "Admin" {
		t.Fatalf("role %q", e.pantherRole("ola@example.com"))
	}
	l := e.do("GET", "/Groups?filter="+q(`displayName eq Panther Admins`), nil)
	l.scimErr(t, http.StatusBadRequest, "invalidFilter") // two words: a string needs its quotes
	if n := totalOf(t, e.do("GET", "/Groups?filter="+q(`members[value eq `+ada+`]`), nil).must(t, http.StatusOK)); n != 1 {
		t.Errorf("groups with member %s: %d", ada, n)
	}
	e.do("PATCH", "/Groups/"+gid, patchOp(map[string]any{"op": "remove", "path": "members[value eq " + ada + "]"})).must(t, http.StatusNoContent)
	if st := e.storedGroup(gid); len(st.Members) != 0 {
		t.Errorf("member not removed: %+v", st)
	}
	if e.pantherRole("ola@example.com") != "AnalystReadOnly" {
		t.Errorf("role in Panther after the remove: %q", e.pantherRole("ola@example.com"))
	}
}

// /users and /groups in any case and with a trailing slash, as Microsoft's tools send
// them: GET /Users/?filter=... is the list.
func TestAcceptResourcePaths(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/users", newUser("lin@example.com", "Lin", "Chen")).must(t, http.StatusCreated)
	id := r.str("id")
	if loc := r.Header.Get("Location"); !strings.HasSuffix(loc, "/scim/v2/Users/"+id) {
		t.Errorf("Location %q", loc)
	}
	if _, ok := e.Fake.UserByEmail("lin@example.com"); !ok {
		t.Fatal("not invited")
	}
	for _, p := range []string{"/USERS/" + id, "/Users/" + id + "/", "/users/" + id} {
		if g := e.do("GET", p, nil).must(t, http.StatusOK); g.str("id") != id {
			t.Errorf("GET %s: %s", p, g.Raw)
		}
	}
	for _, p := range []string{"/Users/?filter=" + q(`userName eq "lin@example.com"`), "/users?filter=" + q(`userName eq "lin@example.com"`), "/USERS/"} {
		if l := e.do("GET", p, nil).must(t, http.StatusOK); totalOf(t, l) != 1 {
			t.Errorf("GET %s: %s", p, l.Raw)
		}
	}
	e.do("PATCH", "/users/"+id+"/", renameOp("Lin", "Wu")).must(t, http.StatusOK)
	if pu, _ := e.Fake.UserByEmail("lin@example.com"); pu.FamilyName != "Wu" {
		t.Errorf("PATCH via /users/{id}/ did not reach Panther: %+v", pu)
	}
	g := e.do("POST", "/groups/", map[string]any{"schemas": []string{coreGroupURN}, "displayName": "Panther Admins",
		"members": []any{map[string]any{"value": id}}}).must(t, http.StatusCreated)
	if e.pantherRole("lin@example.com") != "Admin" {
		t.Errorf("role %q", e.pantherRole("lin@example.com"))
	}
	if l := e.do("GET", "/Groups/?filter="+q(`displayName eq "Panther Admins"`), nil).must(t, http.StatusOK); totalOf(t, l) != 1 {
		t.Errorf("group list: %s", l.Raw)
	}
	e.do("DELETE", "/GROUPS/"+g.str("id"), nil).must(t, http.StatusNoContent)
	e.do("DELETE", "/users/"+id+"/", nil).must(t, http.StatusNoContent)
	if _, ok := e.Fake.UserByEmail("lin@example.com"); ok {
		t.Error("DELETE /users/{id}/ did not reach Panther")
	}
}

// A group PATCH answers 204 No Content with the ETag; with attributes or
// excludedAttributes it answers 200 with the group. A user PATCH answers 200 with the
// user. Each change is stored and reaches Panther.
func TestGroupPatchNoContent(t *testing.T) {
	e := newEnv(t)
	ada := e.createUser("ada@example.com", "Ada", "Lovelace")
	gid := e.createGroup("Panther Admins")
	r := e.do("PATCH", "/Groups/"+gid, patchOp(map[string]any{"op": "Add", "path": "members", "value": []any{map[string]any{"value": ada}}}))
	r.must(t, http.StatusNoContent)
	if r.Raw != "" {
		t.Errorf("204 with a body: %s", r.Raw)
	}
	if g := e.do("GET", "/Groups/"+gid, nil).must(t, http.StatusOK); r.Header.Get("ETag") == "" || r.Header.Get("ETag") != g.Header.Get("ETag") {
		t.Errorf("ETag %q, the group's %q", r.Header.Get("ETag"), g.Header.Get("ETag"))
	}
	if st := e.storedGroup(gid); len(st.Members) != 1 || st.Members[0] != ada {
		t.Errorf("stored: %+v", st)
	}
	if e.pantherRole("ada@example.com") != "Admin" {
		t.Errorf("role %q", e.pantherRole("ada@example.com"))
	}
	// Entra reads groups without their members.
	w := e.do("PATCH", "/Groups/"+gid+"?excludedAttributes=members", patchOp(map[string]any{"op": "Replace", "path": "externalId", "value": "e-1"})).must(t, http.StatusOK)
	if w.str("externalId") != "e-1" || w.Body["members"] != nil {
		t.Errorf("PATCH with excludedAttributes: %s", w.Raw)
	}
	u := e.do("PATCH", "/Users/"+ada, patchOp(map[string]any{"op": "replace", "path": "name.familyName", "value": "King"})).must(t, http.StatusOK)
	if u.str("id") != ada {
		t.Errorf("user PATCH answer: %s", u.Raw)
	}
	if pu, _ := e.Fake.UserByEmail("ada@example.com"); pu.FamilyName != "King" {
		t.Errorf("Panther user %+v", pu)
	}
}

// stallPanther holds the answer of the first inviteUser, which Panther has applied,
// until the test releases it; as a real call does, it gives up when its context ends.
type stallPanther struct {
	provision.Panther
	invited, release chan struct{}
	once             atomic.Bool
}

func (p *stallPanther) InviteUser(ctx context.Context, in provision.InviteInput) (provision.PantherUser, error) {
	u, err := p.Panther.InviteUser(ctx, in)
	if p.once.CompareAndSwap(false, true) {
		close(p.invited)
		select {
		case <-p.release:
		case <-ctx.Done():
			return provision.PantherUser{}, fmt.Errorf("invite: waiting for Panther's answer: %w", ctx.Err())
		}
	}
	return u, err
}

// A POST whose client hangs up after the invite: the request goes on as if the client
// had stayed (the record is written and linked to the one Panther user) and is logged
// at info with status 499, never as an error. The IdP's retry of the POST gets 409
// uniqueness, and its lookup by userName finds the user.
func TestClientHangsUpAfterInvite(t *testing.T) {
	stall := &stallPanther{invited: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, func(o *app.Options) { stall.Panther, o.Panther = o.Panther, stall; o.OpsAddr = "127.0.0.1:0" })
	body, _ := json.Marshal(newUser("ada@example.com", "Ada", "Lovelace"))
	ctx, hangUp := context.WithCancel(context.Background())
	defer hangUp()
	req, err := http.NewRequestWithContext(ctx, "POST", e.Base+"/Users", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	req.Header.Set("Content-Type", "application/scim+json")
	sent := make(chan error, 1)
	go func() {
		res, err := e.Client.Do(req)
		if err == nil {
			res.Body.Close()
		}
		sent <- err
	}()
	select {
	case <-stall.invited:
	case <-time.After(10 * time.Second):
		t.Fatal("no invite")
	}
	hangUp()
	if err := <-sent; !errors.Is(err, context.Canceled) {
		t.Fatalf("the client's request: %v, want cancelled", err)
	}
	waitFor(t, "the server to notice the hang-up", func() bool { return strings.Contains(e.Logs.String(), "the change it asked for goes on") })
	close(stall.release)
	waitFor(t, "the request's end", func() bool {
		return strings.Contains(e.Logs.String(), `"msg":"the client closed the connection before the answer"`)
	})

	if n := pantherCopies(e.Fake, "ada@example.com"); n != 1 {
		t.Fatalf("%d Panther users for the email", n)
	}
	pu, _ := e.Fake.UserByEmail("ada@example.com")
	ids := e.idsByUserName("ada@example.com")
	if len(ids) != 1 {
		t.Fatalf("records: %v", ids)
	}
	if u, _ := e.storedUser(ids[0]); u.Panther.ID != pu.ID {
		t.Errorf("the record is linked to %q, Panther's user is %q", u.Panther.ID, pu.ID)
	}
	if e.pending() != 0 {
		t.Errorf("%d intents pending: the change was not finished", e.pending())
	}
	// The IdP retries the POST: 409 uniqueness; its lookup finds the user.
	e.do("POST", "/Users", newUser("ada@example.com", "Ada", "Lovelace")).scimErr(t, http.StatusConflict, "uniqueness")
	if n := pantherCopies(e.Fake, "ada@example.com"); n != 1 || appliedCalls(e.Fake, "inviteUser") != 1 {
		t.Errorf("%d Panther users, %d invites after the retry", n, appliedCalls(e.Fake, "inviteUser"))
	}

	var access bool
	for line := range strings.Lines(e.Logs.String()) {
		if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"status":500`) {
			t.Errorf("logged as an error: %s", line)
		}
		if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, `"method":"POST"`) && strings.Contains(line, `"status":499`) && strings.Contains(line, `"level":"INFO"`) {
			access = true
		}
	}
	if !access {
		t.Errorf("no access log line at info with status 499:\n%s", e.Logs.String())
	}
	_, ss := e.scrape()
	if n, _ := metric(ss, "panther_scim_http_requests_total", map[string]string{"method": "POST", "code": "499"}); n != 1 {
		t.Errorf("requests counted with code 499: %v", n)
	}
}
