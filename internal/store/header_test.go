package store

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// TestGroupFieldOrder pins what decodeGroupHeader relies on: a group record has
// displayName and externalId before members.
func TestGroupFieldOrder(t *testing.T) {
	data, err := json.Marshal(provision.Group{ID: "g", DisplayName: "d", ExternalID: "e", Members: []string{"u"},
		Created: time.Unix(1, 0), LastModified: time.Unix(2, 0), Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	m := strings.Index(s, `"members"`)
	if d, e := strings.Index(s, `"displayName"`), strings.Index(s, `"externalId"`); d < 0 || e < 0 || m < d || m < e {
		t.Fatalf("provision.Group encodes members before displayName or externalId: %s", s)
	}
}

func TestDecodeGroupHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want provision.GroupHeader
		err  bool
	}{
		{"full", `{"id":"g","displayName":"Eng \"A\"","externalId":"x","members":["u1","u2"],"version":1}`, provision.GroupHeader{DisplayName: `Eng "A"`, ExternalID: "x"}, false},
		{"no externalId", `{"id":"g","displayName":"Eng","members":["u1"]}`, provision.GroupHeader{DisplayName: "Eng"}, false},
		{"no members", `{"id":"g","displayName":"Eng","externalId":"x","created":"2026-01-01T00:00:00Z","version":2}`, provision.GroupHeader{DisplayName: "Eng", ExternalID: "x"}, false},
		// Only the part before members is read: a record cut after it still decodes.
		{"members not read", `{"id":"g","displayName":"Eng","members":[`, provision.GroupHeader{DisplayName: "Eng"}, false},
		{"not an object", `["g"]`, provision.GroupHeader{}, true},
		{"bad displayName", `{"displayName":3}`, provision.GroupHeader{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeGroupHeader([]byte(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
