package auditexport

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/auditexport/schemacheck"
	"github.com/panther-scim/panther-scim/internal/provision"
)

// The shipped Panther side (deploy/panther) and the events the bridge sends must not
// drift apart: these tests hold the Event type, the events of every action and the
// sample events to the custom log schema.

var samplesPath = filepath.Join(schemacheck.Dir(), "samples", "pantherscim_audit.jsonl")

func loadSchema(t *testing.T) schemacheck.Schema {
	t.Helper()
	s, err := schemacheck.Load(schemacheck.AuditSchemaPath())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type schemaField = schemacheck.Field

var field = schemacheck.Lookup

func TestSchemaShape(t *testing.T) {
	s := loadSchema(t)
	if s.Schema != LogType || s.Version != 0 || s.Description == "" {
		t.Errorf("schema %q version %d: want %s, version 0, a description", s.Schema, s.Version, LogType)
	}
	var check func(path string, fs []schemaField)
	check = func(path string, fs []schemaField) {
		seen := map[string]bool{}
		for _, f := range fs {
			p := path + f.Name
			if seen[f.Name] {
				t.Errorf("%s declared twice", p)
			}
			seen[f.Name] = true
			switch f.Type {
			case "string", "boolean", "bigint", "json":
			case "timestamp":
				if !slices.Equal(f.TimeFormats, []string{"rfc3339"}) {
					t.Errorf("%s: timeFormats %v, want [rfc3339] (Go's time.Time JSON)", p, f.TimeFormats)
				}
			case "object":
				if len(f.Fields) == 0 {
					t.Errorf("%s: object without fields", p)
				}
				check(p+".", f.Fields)
			default:
				t.Errorf("%s: type %q", p, f.Type)
			}
			if len(f.Indicators) > 0 && f.Type != "string" {
				t.Errorf("%s: indicators on a %s", p, f.Type)
			}
		}
	}
	check("", s.Fields)
	// p_event_time comes from time; emails and addresses are indicators.
	for name, want := range map[string][]string{"email": {"email"}, "userName": {"username"}, "sourceIP": {"ip"}} {
		if f, _ := field(s.Fields, name); !slices.Equal(f.Indicators, want) {
			t.Errorf("%s: indicators %v, want %v", name, f.Indicators, want)
		}
	}
	if f, _ := field(s.Fields, "time"); !f.IsEventTime || !f.Required || f.Type != "timestamp" {
		t.Errorf("time: %+v, want the required event time", f)
	}
	for _, name := range []string{"eventId", "action"} {
		if f, _ := field(s.Fields, name); !f.Required {
			t.Errorf("%s is not required", name)
		}
	}
}

// schemaType is the schema type a Go field must be declared with.
func schemaType(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(time.Time{}):
		return "timestamp"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() == reflect.Int64 || t.Kind() == reflect.Int:
		return "bigint"
	case t.Kind() == reflect.Struct, t.Kind() == reflect.Map:
		return "object"
	}
	return "unknown " + t.String()
}

// Every field of Event (and of its nested types) is declared with its type, and the
// schema declares nothing Event lacks.
func TestEventTypeMatchesSchema(t *testing.T) {
	s := loadSchema(t)
	var walk func(path string, typ reflect.Type, fs []schemaField)
	walk = func(path string, typ reflect.Type, fs []schemaField) {
		names := map[string]bool{}
		for i := range typ.NumField() {
			sf := typ.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			names[name] = true
			f, ok := field(fs, name)
			if !ok {
				t.Errorf("%s%s: sent but not declared in the schema", path, name)
				continue
			}
			if want := schemaType(sf.Type); f.Type != want {
				t.Errorf("%s%s: schema type %s, the event's is %s", path, name, f.Type, want)
			}
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Time{}) {
				walk(path+name+".", ft, f.Fields)
			}
		}
		for _, f := range fs {
			if !names[f.Name] && path != "before." && path != "after." {
				t.Errorf("%s%s: declared in the schema but never sent", path, f.Name)
			}
		}
	}
	walk("", reflect.TypeOf(Event{}), s.Fields)
}

// entriesOfEveryAction are audit entries as the bridge writes them (provision, the
// reconciler, AlertDelayedDeprovisions, app.AuthFailureLog), one or more per action,
// with every field map key they can carry.
func entriesOfEveryAction() []provision.AuditEntry {
	at := time.Date(2026, 3, 2, 9, 14, 5, 118e6, time.UTC)
	user := func(active, role, access, um string) map[string]string {
		return map[string]string{"userName": "ada@example.com", "email": "ada@example.com", "active": active,
			"givenName": "Ada", "familyName": "Lovelace", "role": role, "access": access, "roleUserModify": um}
	}
	deleted := user("true", "Analyst", "true", "false")
	deleted["groups"] = "g1,g2"
	group := func(n string) map[string]string {
		return map[string]string{"displayName": "Panther Admins", "externalId": "00g1", "members": n}
	}
	e := func(action, resource string, before, after map[string]string) provision.AuditEntry {
		return provision.AuditEntry{EventID: "e-" + action, Time: at, RequestID: "r1", Actor: "token:3fa85f64",
			Action: action, Resource: resource, ID: "u1", Before: before, After: after, Outcome: "accepted"}
	}
	outcome := func(a provision.AuditEntry, o string) provision.AuditEntry { a.Outcome = o; return a }
	return []provision.AuditEntry{
		e("user.create", "User", nil, user("true", "AnalystReadOnly", "true", "false")),
		e("user.create", "User", nil, nil), // a create rolled back
		e("user.update", "User", user("true", "Admin", "true", "true"), user("true", "Admin", "true", "true")),
		e("user.deactivate", "User", user("true", "Admin", "true", "true"), user("false", "", "false", "false")),
		e("user.reactivate", "User", user("false", "", "false", "false"), user("true", "Admin", "true", "true")),
		e("user.delete", "User", deleted, nil),
		e("user.role", "User", map[string]string{"userName": "a", "email": "a@x.io", "role": "Analyst", "access": "true", "roleUserModify": "false"},
			map[string]string{"userName": "a", "email": "a@x.io", "role": "Admin", "access": "true", "roleUserModify": "true"}),
		e("group.create", "Group", nil, group("0")),
		e("group.update", "Group", group("0"), group("3")),
		e("group.delete", "Group", group("3"), nil),
		e(ActionDrift, "User", nil, map[string]string{"userName": "b", "email": "b@x.io", "field": "role",
			"found": "Admin", "expected": "Analyst", "repair": "update: repaired"}),
		e(ActionDeprovision, "User", nil, map[string]string{"userName": "c", "email": "c@x.io", "reason": "deactivated",
			"pendingSince": at.Add(-6 * time.Minute).Format(time.RFC3339Nano), "attempts": "4", "lastError": "panther unavailable"}),
		e(ActionAuthFailed, "", nil, map[string]string{"reason": "invalid", "sourceIP": "203.0.113.45", "limited": "true", "count": "37"}),
		// Ownership (provision/ownership.go): an adoption with the Panther user's role before
		// and after, and refusals with every key a refusal's fields carry.
		outcome(e("user.adopt", "User", map[string]string{"pantherId": "p1", "email": "ana@example.com", "role": "Analyst", "createdAt": "2026-03-01T08:00:00Z"},
			map[string]string{"pantherId": "p1", "userName": "ana@example.com", "role": "AnalystReadOnly", "policy": "nonAdmin"}), "adopted"),
		outcome(e("user.refuse", "User", nil, map[string]string{"reason": "adopt_admin", "detail": "Panther user p2 (boss@example.com) has role Admin, which holds UserModify",
			"email": "boss@example.com", "pantherId": "p2", "pantherRole": "Admin", "userName": "boss@example.com"}), "refused: adopt_admin"),
		outcome(e("user.refuse", "User", nil, map[string]string{"reason": "not_owned", "detail": "it was changed in Panther",
			"pantherId": "p3", "email": "root@example.com", "linkedEmail": "mallory@example.com", "pantherRole": "Admin"}), "refused: not_owned"),
		outcome(e("user.refuse", "User", nil, map[string]string{"reason": "email_taken", "detail": "already used by another Panther user",
			"email": "boss@example.com", "pantherId": "p4", "holder": "p2"}), "refused: email_taken"),
		outcome(e("user.refuse", "User", nil, map[string]string{"reason": "last_admin", "detail": "the only administrator", "group": "g1"}), "refused: last_admin"),
	}
}

// The event of every action, as sent, is valid under the schema.
func TestEventsOfEveryActionMatchSchema(t *testing.T) {
	s := loadSchema(t)
	covered := map[string]bool{}
	for _, entry := range entriesOfEveryAction() {
		line, err := json.Marshal(FromEntry(entry))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range s.Check(line) {
			t.Errorf("%s: %s\n%s", entry.Action, p, line)
		}
		covered[entry.Action] = true
	}
	for _, a := range Actions {
		if !covered[a] {
			t.Errorf("no event of action %s checked", a)
		}
	}
}

// The typed fields are lifted from the entry's maps as the detections expect.
func TestFromEntry(t *testing.T) {
	entries := entriesOfEveryAction()
	byAction := map[string]Event{}
	for _, e := range entries {
		if e.After != nil || e.Before != nil {
			byAction[e.Action] = FromEntry(e)
		}
	}
	yes, no := true, false
	for _, tc := range []struct {
		action string
		check  func(Event) bool
	}{
		{"user.create", func(e Event) bool {
			return e.Role == "AnalystReadOnly" && *e.Access && !*e.RoleHasUserModify && e.PreviousAccess == nil && *e.Active
		}},
		{"user.role", func(e Event) bool {
			return e.Role == "Admin" && *e.RoleHasUserModify && e.PreviousRole == "Analyst" && !*e.PreviousRoleHasUserModify
		}},
		{"user.deactivate", func(e Event) bool {
			return e.Role == "" && !*e.Access && *e.PreviousAccess && !*e.Active && e.UserName == "ada@example.com"
		}},
		{"user.delete", func(e Event) bool {
			return reflect.DeepEqual(e.Access, &no) && reflect.DeepEqual(e.PreviousAccess, &yes) && e.Email == "ada@example.com" && e.After == nil
		}},
		{"group.update", func(e Event) bool { return e.Group == "Panther Admins" && e.After["members"] == "3" }},
		{ActionDrift, func(e Event) bool {
			return e.Drift != nil && *e.Drift == Drift{Field: "role", Expected: "Analyst", Found: "Admin", Repair: "update: repaired"} &&
				e.Email == "b@x.io" && e.After == nil
		}},
		{ActionDeprovision, func(e Event) bool {
			d := e.Deprovision
			return d != nil && d.Reason == "deactivated" && d.PendingSeconds == 360 && d.Attempts == 4 && e.After == nil
		}},
		{ActionAuthFailed, func(e Event) bool {
			return e.SourceIP == "203.0.113.45" && e.Auth != nil && *e.Auth == AuthFailure{Reason: "invalid", Limited: true, Count: 37}
		}},
		{"user.adopt", func(e Event) bool {
			return e.Role == "AnalystReadOnly" && e.PreviousRole == "Analyst" && e.Email == "ana@example.com" && e.After["pantherId"] == "p1"
		}},
		{"user.refuse", func(e Event) bool {
			return e.After["reason"] == "last_admin" && e.Outcome == "refused: last_admin" && e.Role == "" && e.Access == nil
		}},
	} {
		if e := byAction[tc.action]; !tc.check(e) {
			t.Errorf("%s: %+v", tc.action, e)
		}
	}
}

// The sample events are valid and show every action.
func TestSamplesMatchSchema(t *testing.T) {
	s := loadSchema(t)
	f, err := os.Open(samplesPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	covered := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		for _, p := range s.Check(sc.Bytes()) {
			t.Errorf("sample line %d: %s", n, p)
		}
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("sample line %d: %v", n, err)
		}
		a, _ := v["action"].(string)
		if !slices.Contains(Actions, a) {
			t.Errorf("sample line %d: action %q is not one the bridge writes", n, a)
		}
		covered[a] = true
	}
	for _, a := range Actions {
		if !covered[a] {
			t.Errorf("no sample event of action %s", a)
		}
	}
}
