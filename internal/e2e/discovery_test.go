package e2e

import (
	"net/http"
	"testing"
)

// Discovery says what the server enforces: Group displayName is unique, User
// userName is unique, and both resource types are listed.
func TestDiscoveryTellsTheTruth(t *testing.T) {
	e := newEnv(t)
	uniqueness := func(schemaID, attr string) string {
		t.Helper()
		r := e.do("GET", "/Schemas/"+schemaID, nil).must(t, http.StatusOK)
		attrs, _ := r.Body["attributes"].([]any)
		for _, a := range attrs {
			m := a.(map[string]any)
			if m["name"] == attr {
				u, _ := m["uniqueness"].(string)
				return u
			}
		}
		t.Fatalf("%s has no %s: %s", schemaID, attr, r.Raw)
		return ""
	}
	if u := uniqueness("urn:ietf:params:scim:schemas:core:2.0:Group", "displayName"); u != "server" {
		t.Errorf("Group displayName uniqueness %q, want server", u)
	}
	if u := uniqueness("urn:ietf:params:scim:schemas:core:2.0:User", "userName"); u != "server" {
		t.Errorf("User userName uniqueness %q, want server", u)
	}
	rt := e.do("GET", "/ResourceTypes", nil).must(t, http.StatusOK)
	if rt.Body["totalResults"] != float64(2) {
		t.Errorf("resource types: %s", rt.Raw)
	}
	spc := e.do("GET", "/ServiceProviderConfig", nil).must(t, http.StatusOK)
	for feature, want := range map[string]bool{"patch": true, "filter": true, "sort": true, "etag": true, "bulk": false, "changePassword": false} {
		m, _ := spc.Body[feature].(map[string]any)
		if m["supported"] != want {
			t.Errorf("%s supported = %v, want %v", feature, m["supported"], want)
		}
	}
}
