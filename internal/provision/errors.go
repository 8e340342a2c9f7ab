package provision

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies a provisioning failure for the protocol edge, which turns it into
// a SCIM error body. Codes are about what the client should do, not where it failed.
type Code int

// The codes. The scim package maps each to an HTTP status and scimType in one place.
const (
	CodeInternal     Code = iota // a bug or an unexpected store failure: 500
	CodeInvalid                  // bad input: 400 invalidValue
	CodeUniqueness               // a unique value is taken, or a protected email: 409 uniqueness
	CodeNotFound                 // no such resource: 404
	CodePrecondition             // If-Match did not match: 412
	CodeUnavailable              // Panther unavailable or rate limited after retries: 503 + Retry-After
	CodeTooMany                  // more work than the server accepts in one request: 400 tooMany
	CodeConflict                 // refused because of Panther's state (no administrator left, not ours): 409
)

// Error is a provisioning failure with a detail safe to show to the IdP.
// The wrapped Err is for logs only and never reaches the client.
type Error struct {
	Code       Code
	Detail     string
	RetryAfter time.Duration
	Err        error
	// Reason is set on a refusal: panther-scim would not act on a Panther account
	// (one of RefusalReasons). Refusals are audited and counted, and never retried.
	Reason string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Detail, e.Err)
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

func newError(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the Code of err, CodeInternal for errors that are not *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// unavailable wraps a retryable Panther failure for the IdP.
func unavailable(err error) *Error {
	ra := RetryAfter(err)
	if ra <= 0 {
		ra = 30 * time.Second
	}
	return &Error{Code: CodeUnavailable, Detail: "Panther is unavailable; retry later", RetryAfter: ra, Err: err}
}

// Refusal reasons, the label of the refusals metric and the audit trail's reason.
const (
	RefuseProtected       = "protected"        // the email is on provisioning.protectedEmails
	RefuseAdoptNone       = "adopt_none"       // an existing Panther user, and provisioning.adopt is none
	RefuseAdoptAdmin      = "adopt_admin"      // an existing administrator, and provisioning.adopt is nonAdmin
	RefuseLinkedElsewhere = "linked_elsewhere" // the Panther user belongs to another record
	RefuseEmailTaken      = "email_taken"      // another Panther user holds the email
	RefuseNotOwned        = "not_owned"        // Panther's user is not (or no longer) panther-scim's
	RefuseLastAdmin       = "last_admin"       // the change would leave Panther without an administrator
)

// RefusalReasons lists every refusal reason, for metrics exported from the start.
var RefusalReasons = []string{RefuseProtected, RefuseAdoptNone, RefuseAdoptAdmin, RefuseLinkedElsewhere,
	RefuseEmailTaken, RefuseNotOwned, RefuseLastAdmin}

// refusalOf returns the refusal err carries, if it is one.
func refusalOf(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) && e.Reason != "" {
		return e, true
	}
	return nil, false
}
