package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/panther-scim/panther-scim/mappings"
)

// Issue 14, case 5: look-alikes. An address with an invisible character is not a
// second account that looks like the first, and text that is not UTF-8 never reaches
// Panther as U+FFFD: both are 400 invalidValue, with no Panther call and no record.
func TestLookAlikesAreRefused(t *testing.T) {
	e := newEnv(t, withProtected("breakglass@corp.example"))
	if _, err := e.Fake.AddUser("breakglass@corp.example", "Break", "Glass", "Admin"); err != nil {
		t.Fatal(err)
	}
	e.Fake.ResetCalls()
	for name, body := range map[string]any{
		"zero-width space":   newUser("breakglass@corp.example\u200b", "Break", "Glass"),
		"zero-width joiner":  newUser("break\u200dglass@corp.example", "Break", "Glass"),
		"bidi override":      newUser("breakglass@corp.example\u202e", "Break", "Glass"),
		"soft hyphen":        newUser("break\u00adglass@corp.example", "Break", "Glass"),
		"control character":  newUser("breakglass@corp.example\u0007", "Break", "Glass"),
		"replacement char":   newUser("breakglass\ufffd@corp.example", "Break", "Glass"),
		"invisible in names": newUser("someone@corp.example", "Some\u200bone", "Else"),
		"invalid UTF-8 userName": `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bad` + "\xff\xfe" +
			`@corp.example","name":{"givenName":"B","familyName":"C"},"active":true}`,
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do("POST", "/Users", body)
			r.scimErr(t, http.StatusBadRequest, "invalidValue")
			if strings.Contains(r.Raw, "\ufffd") && name != "replacement char" {
				t.Errorf("the answer carries U+FFFD: %s", r.Raw)
			}
		})
	}
	if ops := callOps(e.Fake.Calls()); ops != "" {
		t.Errorf("Panther calls for refused input: %s", ops)
	}
	if list := e.do("GET", "/Users", nil).must(t, http.StatusOK); list.Body["totalResults"] != float64(0) {
		t.Errorf("records kept: %s", list.Raw)
	}

	// The protected list compares one canonical form: another case, or the same
	// letters composed differently, is the same address.
	e2 := newEnv(t, withProtected("josé@corp.example"))
	for _, email := range []string{"JOSÉ@corp.example", "jose\u0301@corp.example"} {
		r := e2.do("POST", "/Users", newUser(email, "Jo", "Se"))
		r.scimErr(t, http.StatusConflict, "uniqueness")
		if !strings.Contains(r.str("detail"), "protected") {
			t.Errorf("%q: %s", email, r.Raw)
		}
	}
	if ops := callOps(e2.Fake.Calls()); ops != "" {
		t.Errorf("Panther calls for a protected address: %s", ops)
	}
}

// Issue 14, case 6: a rule {group: Panther Admins} matches the group of that
// displayName, not a group whose externalId is "Panther Admins"; matching an
// externalId takes a rule of its own ({externalId: ...}).
func TestMappingRulesSayWhatTheyMatch(t *testing.T) {
	m := exampleMapping
	m.Rules = append(m.Rules, mappings.Rule{ExternalID: "entra-0b1d", Role: "Analyst"})
	e := newEnv(t, withMapping(m))
	mallory := e.createUser("mallory@example.com", "Mal", "Lory")
	carol := e.createUser("carol@example.com", "Ca", "Rol")
	body := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Contractors", "externalId": "Panther Admins", "members": []any{map[string]any{"value": mallory}}}
	e.do("POST", "/Groups", body).must(t, http.StatusCreated)
	if got := e.pantherRole("mallory@example.com"); got != "AnalystReadOnly" {
		t.Errorf("a group whose externalId is a rule's displayName gave role %q", got)
	}
	body = map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "SOC (Entra)", "externalId": "entra-0b1d", "members": []any{map[string]any{"value": carol}}}
	e.do("POST", "/Groups", body).must(t, http.StatusCreated)
	if got := e.pantherRole("carol@example.com"); got != "Analyst" {
		t.Errorf("the externalId rule gave role %q, want Analyst", got)
	}
}
