package auditexport

import (
	"strconv"
	"strings"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// LogType is the Panther custom log type of the events (deploy/panther/schemas).
const LogType = "Custom.PantherSCIM.Audit"

// Event is one line sent to the HTTP source: an audit entry in the shape of the
// Custom.PantherSCIM.Audit schema. The fields Panther's detections look at are at
// the top level, typed; before and after keep the entry's own field maps for the
// changes that have them. A test checks every field against the shipped schema.
type Event struct {
	// EventID is the entry's stable id: the same in every copy of a re-sent event.
	EventID string    `json:"eventId"`
	Time    time.Time `json:"time"`
	// Action is what happened: user.create, user.update, user.deactivate,
	// user.reactivate, user.delete, user.role, group.create, group.update,
	// group.delete, drift.detected, deprovision.delayed or auth.failed.
	Action     string `json:"action"`
	Resource   string `json:"resource,omitempty"`
	ResourceID string `json:"resourceId,omitempty"`
	Outcome    string `json:"outcome,omitempty"`
	// Actor is the SCIM client (a token's hash prefix or the OAuth client) that asked.
	Actor     string `json:"actor,omitempty"`
	RequestID string `json:"requestId,omitempty"`

	UserName string `json:"userName,omitempty"`
	Email    string `json:"email,omitempty"`
	// Active is the user's SCIM active flag after the change.
	Active *bool `json:"active,omitempty"`
	// Role, Access and RoleHasUserModify describe the user's Panther access after the
	// change: the role their groups map to (empty without access), whether they
	// have access, and whether the role holds UserModify (absent when its
	// permissions were not known). The Previous fields are the same before it.
	Role                      string `json:"role,omitempty"`
	Access                    *bool  `json:"access,omitempty"`
	RoleHasUserModify         *bool  `json:"roleHasUserModify,omitempty"`
	PreviousRole              string `json:"previousRole,omitempty"`
	PreviousAccess            *bool  `json:"previousAccess,omitempty"`
	PreviousRoleHasUserModify *bool  `json:"previousRoleHasUserModify,omitempty"`

	// Group is the display name of the group a group.* event is about.
	Group string `json:"group,omitempty"`
	// SourceIP is the client address of an auth.failed event.
	SourceIP string `json:"sourceIP,omitempty"`

	Before map[string]string `json:"before,omitempty"`
	After  map[string]string `json:"after,omitempty"`

	Drift       *Drift       `json:"drift,omitempty"`
	Deprovision *Deprovision `json:"deprovision,omitempty"`
	Auth        *AuthFailure `json:"auth,omitempty"`
}

// Drift is what a drift.detected event found: a field of the user's Panther account
// that differs from what the store says, and what the reconciler did about it.
type Drift struct {
	Field    string `json:"field"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
	// Repair is the reconciler's action (invite, update, delete) and its result:
	// "update: repaired", "invite: failed", ...
	Repair string `json:"repair,omitempty"`
}

// Deprovision describes a deprovision.delayed event: a removal of Panther access
// still not applied.
type Deprovision struct {
	// Reason is why the user must lose access: deactivated, deleted, or unmapped (no
	// mapped group and no default role).
	Reason       string    `json:"reason"`
	PendingSince time.Time `json:"pendingSince"`
	// PendingSeconds is how long it has been pending when the event was written.
	PendingSeconds int64  `json:"pendingSeconds"`
	Attempts       int64  `json:"attempts,omitempty"`
	LastError      string `json:"lastError,omitempty"`
}

// AuthFailure describes an auth.failed event: SCIM requests refused for failed
// authentication from one address, for one reason.
type AuthFailure struct {
	// Reason is missing, scheme, invalid, expired or invalid_client.
	Reason string `json:"reason"`
	// Limited says the address was over its failure limit (answered 429).
	Limited bool `json:"limited"`
	// Count is the number of failures the event stands for (1, unless failures came
	// faster than the audit trail takes them; see app.AuthFailures).
	Count int64 `json:"count"`
}

// Actions lists every action the bridge writes to its audit trail, and so exports:
// the provisioning changes (provision) and the adoptions and refusals of its ownership
// rules (user.adopt, user.refuse), then the events written for the detections
// (drift by the reconciler, delayed deprovisioning, failed SCIM authentication).
var Actions = []string{
	"user.create", "user.update", "user.deactivate", "user.reactivate", "user.delete", "user.role",
	"user.adopt", "user.refuse",
	"group.create", "group.update", "group.delete",
	ActionDrift, ActionDeprovision, ActionAuthFailed,
}

// Audit entry actions that are not provisioning changes; their After map carries
// their details in the audit trail.
const (
	ActionDrift       = "drift.detected"
	ActionDeprovision = "deprovision.delayed"
	ActionAuthFailed  = "auth.failed"
)

// FromEntry turns an audit entry into the event sent to Panther.
func FromEntry(e provision.AuditEntry) Event {
	ev := Event{
		EventID: e.EventID, Time: e.Time.UTC(), Action: e.Action, Resource: e.Resource, ResourceID: e.ID,
		Outcome: e.Outcome, Actor: e.Actor, RequestID: e.RequestID,
	}
	switch {
	case e.Action == ActionDrift:
		a := e.After
		ev.UserName, ev.Email = a["userName"], a["email"]
		ev.Drift = &Drift{Field: a["field"], Expected: a["expected"], Found: a["found"], Repair: a["repair"]}
	case e.Action == ActionDeprovision:
		a := e.After
		ev.UserName, ev.Email = a["userName"], a["email"]
		since, _ := time.Parse(time.RFC3339Nano, a["pendingSince"])
		d := &Deprovision{Reason: a["reason"], PendingSince: since.UTC(), Attempts: parseInt(a["attempts"]), LastError: a["lastError"]}
		if !since.IsZero() {
			d.PendingSeconds = int64(e.Time.Sub(since) / time.Second)
		}
		ev.Deprovision = d
	case e.Action == ActionAuthFailed:
		a := e.After
		ev.SourceIP = a["sourceIP"]
		limited, _ := strconv.ParseBool(a["limited"])
		ev.Auth = &AuthFailure{Reason: a["reason"], Limited: limited, Count: max(parseInt(a["count"]), 1)}
	case strings.HasPrefix(e.Action, "group."):
		ev.Before, ev.After = e.Before, e.After
		ev.Group = pick(e.After, e.Before, "displayName")
	default: // user.*
		ev.Before, ev.After = e.Before, e.After
		ev.UserName = pick(e.After, e.Before, "userName")
		ev.Email = pick(e.After, e.Before, "email")
		if e.After != nil {
			ev.Active = parseBool(e.After["active"])
			ev.Role, ev.Access, ev.RoleHasUserModify = e.After["role"], parseBool(e.After["access"]), parseBool(e.After["roleUserModify"])
		} else if e.Action == "user.delete" {
			no := false
			ev.Access = &no // the record and its access are gone
		}
		if e.Before != nil {
			ev.PreviousRole, ev.PreviousAccess = e.Before["role"], parseBool(e.Before["access"])
			ev.PreviousRoleHasUserModify = parseBool(e.Before["roleUserModify"])
		}
	}
	return ev
}

// pick is m1[key] when set, else m2[key].
func pick(m1, m2 map[string]string, key string) string {
	if v := m1[key]; v != "" {
		return v
	}
	return m2[key]
}

// parseBool is nil for a missing or unreadable value: the field is then left out.
func parseBool(s string) *bool {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return nil
	}
	return &b
}

func parseInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
