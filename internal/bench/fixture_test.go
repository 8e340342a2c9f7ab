package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
	"github.com/panther-scim/panther-scim/scim"
)

// TestFixture builds a small fixture and checks that the store is consistent, that
// memberships and Panther roles follow the spec, and that a fixture user is stored
// as the SCIM layer stores the same user POSTed.
func TestFixture(t *testing.T) {
	const users, groups = 200, 4
	path := filepath.Join(t.TempDir(), "f.db")
	fake := pantherfake.New(pantherfake.Options{Seed: 1})
	if err := Build(path, Spec{Users: users, Groups: groups, Mapping: Mapping(), Panther: fake}); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.Verify(ctx); err != nil {
		t.Fatalf("fixture store is inconsistent: %v", err)
	}
	roles := map[string]string{}
	for _, r := range fake.Roles() {
		roles[r.ID] = r.Name
	}
	err = st.View(ctx, func(tx provision.ReadTx) error {
		for n := range users {
			u, err := tx.User(UserID(n))
			if err != nil {
				return err
			}
			gs, err := tx.GroupIDsOfUser(u.ID)
			if err != nil {
				return err
			}
			if len(gs) != 2 {
				t.Errorf("user %d is in %d groups, want 2", n, len(gs))
			}
			want := "AnalystReadOnly"
			for _, g := range []int{1, 0} { // Admin's rule comes first
				if contains(gs, GroupID(g)) {
					want = Mapping().Rules[g].Role
				}
			}
			pu, ok := fake.UserByEmail(u.Email)
			if !ok || pu.ID != u.Panther.ID || roles[u.Panther.RoleID] != want || pu.RoleName != want {
				t.Errorf("user %d: link %+v, Panther %+v, want role %s", n, u.Panther, pu, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The same user through the SCIM layer: a PUT of user 8 as the fixture wrote it,
	// with another title (a change that needs no Panther call), must store the
	// fixture's attributes with that title.
	h, err := scim.NewHandler(provision.New(st, nil, provision.Options{}), scim.StoreRecords(st), scim.Options{BaseURL: "https://scim.example.com/scim/v2"})
	if err != nil {
		t.Fatal(err)
	}
	fx := User(8)
	doc := map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
		"userName":   fx.UserName,
		"externalId": fx.ExternalID,
		"active":     true,
	}
	for k, v := range fx.Attributes {
		doc[k] = v
	}
	doc["title"] = "Manager"
	fx.Attributes["title"] = "Manager"
	body, _ := json.Marshal(doc)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("PUT", "/Users/"+fx.ID, bytes.NewReader(body)))
	if rec.Code != 200 {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
	}
	err = st.View(ctx, func(tx provision.ReadTx) error {
		got, err := tx.User(fx.ID)
		if err != nil {
			return err
		}
		if a, b := jsonOf(t, got.Attributes), jsonOf(t, fx.Attributes); !reflect.DeepEqual(a, b) {
			t.Errorf("the SCIM layer stores\n%v\nthe fixture writes\n%v", a, b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func jsonOf(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
