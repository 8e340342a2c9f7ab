package panther

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// The error classes of every Client method. They are provision's sentinels, re-exported so that
// callers holding only this package can branch with errors.Is.
var (
	// ErrNotFound: the user or role does not exist (Panther answers a GraphQL error, not null).
	ErrNotFound = provision.ErrNotFound
	// ErrConflict: Panther says the object already exists (duplicate email or role name).
	ErrConflict = provision.ErrConflict
	// ErrInvalid: Panther rejected the input; the Error's Message is Panther's own text.
	ErrInvalid = provision.ErrInvalid
	// ErrUnauthorized: Panther refused the API token (HTTP 401/403 or an auth GraphQL error).
	ErrUnauthorized = provision.ErrUnauthorized
	// ErrRateLimited: Panther answered 429 (or a rate-limit GraphQL error) until retries ran out.
	ErrRateLimited = provision.ErrRateLimited
	// ErrUnavailable: Panther could not be reached, timed out, or answered 5xx until retries
	// ran out; also returned when the caller's context ended first.
	ErrUnavailable = provision.ErrUnavailable
)

// Outcomes counted per operation by Stats and reported to Observer.Call.
const (
	OutcomeOK           = "ok"
	OutcomeNotFound     = "not_found"
	OutcomeConflict     = "conflict"
	OutcomeInvalid      = "invalid"
	OutcomeUnauthorized = "unauthorized"
	OutcomeRateLimited  = "rate_limited"
	OutcomeUnavailable  = "unavailable"
	OutcomeError        = "error"
)

// Error is what every Client method returns on failure. It wraps one of the sentinels above
// (Kind; nil when Panther's answer fits none of them) and, for transport failures, the cause.
// Its text never contains the API token.
type Error struct {
	// Op is the GraphQL operation, e.g. "inviteUser".
	Op string
	// Kind is ErrNotFound, ErrConflict, ErrInvalid, ErrUnauthorized, ErrRateLimited,
	// ErrUnavailable, or nil for an answer that fits no class.
	Kind error
	// StatusCode is the HTTP status of the answer, 0 when none arrived (GraphQL errors
	// usually come with 200).
	StatusCode int
	// Code is extensions.code of Panther's GraphQL error, when it sent one.
	Code string
	// Message is Panther's error message (or a description of the transport failure).
	Message string

	retryAfter time.Duration
	cause      error
	// reason names the failure for Observer.Retry ("status_429", "timeout", ...).
	reason string
	// mayHaveApplied: the request reached Panther and the answer does not prove it was not
	// acted on (timeout or reset after sending, 5xx other than 503, an unreadable 200).
	mayHaveApplied bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("panther ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString("error")
	}
	if e.StatusCode != 0 && e.StatusCode != http.StatusOK {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Kind == ErrUnauthorized && e.StatusCode != http.StatusUnauthorized {
		// Panther took the key but refused the operation: name what the token lacks.
		if p := Permission(e.Op); p != "" {
			fmt.Fprintf(&b, " (the API token needs Panther's %s permission)", p)
		}
	}
	return b.String()
}

// Permission names the Panther permission (as Panther's console shows it) that an API token
// needs for the operation: Read User Info to read users and roles, Manage Users to change
// them. "" for an operation it does not know.
func Permission(op string) string {
	switch op {
	case "users", "userById", "userByEmail", "roles", "roleById", "roleByName":
		return "Read User Info"
	case "inviteUser", "updateUser", "deleteUser", "createRole":
		return "Manage Users"
	}
	return ""
}

// Unwrap exposes the class (for errors.Is against the sentinels) and the cause (for
// errors.Is(err, context.DeadlineExceeded) and the like).
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// RetryAfter is the delay Panther asked for with a Retry-After header, or 0.
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

// outcome names the class of err for counters.
func outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, ErrConflict):
		return OutcomeConflict
	case errors.Is(err, ErrInvalid):
		return OutcomeInvalid
	case errors.Is(err, ErrUnauthorized):
		return OutcomeUnauthorized
	case errors.Is(err, ErrRateLimited):
		return OutcomeRateLimited
	case errors.Is(err, ErrUnavailable):
		return OutcomeUnavailable
	default:
		return OutcomeError
	}
}

// Extension codes, as Apollo-style servers, gqlgen and pantherfake send them.
var codeKinds = map[string]error{
	"NOT_FOUND":                 ErrNotFound,
	"RESOURCE_NOT_FOUND":        ErrNotFound,
	"ALREADY_EXISTS":            ErrConflict,
	"CONFLICT":                  ErrConflict,
	"DUPLICATE":                 ErrConflict,
	"BAD_USER_INPUT":            ErrInvalid,
	"BAD_REQUEST":               ErrInvalid,
	"INVALID_INPUT":             ErrInvalid,
	"INVALID_ARGUMENT":          ErrInvalid,
	"VALIDATION_ERROR":          ErrInvalid,
	"GRAPHQL_VALIDATION_FAILED": ErrInvalid,
	"GRAPHQL_PARSE_FAILED":      ErrInvalid,
	"UNAUTHENTICATED":           ErrUnauthorized,
	"UNAUTHORIZED":              ErrUnauthorized,
	"FORBIDDEN":                 ErrUnauthorized,
	"ACCESS_DENIED":             ErrUnauthorized,
	"RATE_LIMITED":              ErrRateLimited,
	"TOO_MANY_REQUESTS":         ErrRateLimited,
	"THROTTLED":                 ErrRateLimited,
	"INTERNAL_SERVER_ERROR":     ErrUnavailable,
	"SERVICE_UNAVAILABLE":       ErrUnavailable,
	"TIMEOUT":                   ErrUnavailable,
}

// Message fragments, for servers that send no code (Panther's own wording is not documented,
// so the usual phrasings are matched). Checked in this order: "invalid API key" is an auth
// failure, not invalid input, and "user not found" must not read as invalid.
var messageKinds = []struct {
	kind      error
	fragments []string
}{
	{ErrUnauthorized, []string{"unauthorized", "unauthenticated", "forbidden", "access denied", "not authorized",
		"permission denied", "invalid api key", "invalid token", "api key", "insufficient permission"}},
	{ErrRateLimited, []string{"rate limit", "rate-limit", "too many requests", "throttl"}},
	{ErrNotFound, []string{"not found", "not exist", "could not find", "couldn't find", "cannot find", "no such",
		"no user with", "no role with"}},
	{ErrConflict, []string{"already exists", "already exist", "already in use", "already taken", "already been",
		"duplicate", "is taken", "not unique"}},
	{ErrInvalid, []string{"invalid", "must be", "must not", "must have", "is required", "required field",
		"cannot be empty", "can't be empty", "is empty", "not a valid", "cannot query field", "unknown argument",
		"unknown field", "expected type", "cannot be null", "must be defined", "malformed"}},
	{ErrUnavailable, []string{"internal server error", "internal error", "service unavailable", "timed out",
		"timeout", "try again"}},
}

// kindOf classifies one GraphQL error: extensions.code first, the message second.
func kindOf(e *gqlerror.Error) (kind error, code string) {
	if c, ok := e.Extensions["code"].(string); ok {
		code = c
		if k, ok := codeKinds[strings.ToUpper(c)]; ok {
			return k, code
		}
	}
	msg := strings.ToLower(e.Message)
	for _, mk := range messageKinds {
		for _, f := range mk.fragments {
			if strings.Contains(msg, f) {
				return mk.kind, code
			}
		}
	}
	return nil, code
}

// severity orders classes when a response carries several errors: the one that says most
// about what to do next wins.
func severity(kind error) int {
	switch kind {
	case ErrUnauthorized:
		return 6
	case ErrRateLimited:
		return 5
	case ErrUnavailable:
		return 4
	case ErrNotFound:
		return 3
	case ErrConflict:
		return 2
	case ErrInvalid:
		return 1
	}
	return 0
}

// classifyGraphQL turns the "errors" of a GraphQL response into one class, the code of the
// error that decided it, and all messages joined.
func classifyGraphQL(errs gqlerror.List) (kind error, code, message string) {
	msgs := make([]string, 0, len(errs))
	best := -1
	for _, e := range errs {
		if e == nil {
			continue
		}
		msgs = append(msgs, e.Message)
		k, c := kindOf(e)
		if s := severity(k); s > best {
			best, kind, code = s, k, c
		}
	}
	return kind, code, strings.Join(msgs, "; ")
}
