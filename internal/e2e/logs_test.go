package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Every line a request causes carries its request id: the access line, the
// provisioning change and the Panther call, with the SCIM id and the operations.
func TestLogsCarryRequestID(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/Users", newUser("log@example.com", "Log", "Line")).must(t, http.StatusCreated)
	rid := r.Header.Get("X-Request-Id")
	if rid == "" {
		t.Fatal("no X-Request-Id")
	}
	id := r.str("id")
	var saw = map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(e.Logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["request_id"] != rid {
			continue
		}
		switch rec["msg"] {
		case "request":
			saw["access"] = rec["route"] == "/scim/v2/Users" && rec["method"] == "POST"
		case "provisioning change":
			saw["change"] = rec["action"] == "user.create" && rec["scim_id"] == id
		case "panther call":
			saw["panther"] = rec["op"] == "inviteUser" && rec["scim_id"] == id && rec["panther_id"] != ""
		}
		// The access line is written outside authentication; every other line knows who asked.
		if p, _ := rec["principal"].(string); rec["msg"] != "request" && !strings.HasPrefix(p, "token:") {
			t.Errorf("line without the principal: %s", line)
		}
	}
	for _, k := range []string{"access", "change", "panther"} {
		if !saw[k] {
			t.Errorf("no %s line with request id %s:\n%s", k, rid, e.Logs.String())
		}
	}
}
