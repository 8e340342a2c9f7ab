package panther

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		code, msg string
		want      error
	}{
		{"NOT_FOUND", "whatever", ErrNotFound},
		{"not_found", "", ErrNotFound},
		{"ALREADY_EXISTS", "user not found", ErrConflict}, // the code wins over the message
		{"BAD_USER_INPUT", `role "x" does not exist`, ErrInvalid},
		{"GRAPHQL_VALIDATION_FAILED", `Cannot query field "x"`, ErrInvalid},
		{"UNAUTHENTICATED", "", ErrUnauthorized},
		{"FORBIDDEN", "", ErrUnauthorized},
		{"INTERNAL_SERVER_ERROR", "", ErrUnavailable},
		{"", "User not found", ErrNotFound},
		{"", "Could not find role with name Foo", ErrNotFound},
		{"", "role does not exist", ErrNotFound},
		{"", "A user with this email already exists", ErrConflict},
		{"", "Email is already in use", ErrConflict},
		{"", "Invalid API key", ErrUnauthorized},
		{"", "You are not authorized to perform this action", ErrUnauthorized},
		{"", "Rate limit exceeded", ErrRateLimited},
		{"", "Variable \"$input\" got invalid value", ErrInvalid},
		{"", "givenName cannot be empty", ErrInvalid},
		{"", "Internal server error", ErrUnavailable},
		{"", "Something odd happened", nil},
		{"SOME_NEW_CODE", "Something odd happened", nil},
	}
	for _, tt := range tests {
		e := &gqlerror.Error{Message: tt.msg}
		if tt.code != "" {
			e.Extensions = map[string]any{"code": tt.code}
		}
		if got, _ := kindOf(e); got != tt.want {
			t.Errorf("code %q message %q: %v, want %v", tt.code, tt.msg, got, tt.want)
		}
	}
}

func TestClassifyPicksTheMostTellingError(t *testing.T) {
	kind, code, msg := classifyGraphQL(gqlerror.List{
		{Message: "bad input", Extensions: map[string]any{"code": "BAD_USER_INPUT"}},
		{Message: "no key", Extensions: map[string]any{"code": "UNAUTHENTICATED"}},
	})
	if kind != ErrUnauthorized || code != "UNAUTHENTICATED" || msg != "bad input; no key" {
		t.Errorf("%v %q %q", kind, code, msg)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-3", 0},
		{"7", 7 * time.Second},
		{" 2 ", 2 * time.Second},
		{"999999999", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestBackoffIsBoundedFullJitter(t *testing.T) {
	c := &Client{cfg: Config{BaseBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond}}
	for n := range 40 {
		ceiling := min(80*time.Millisecond, 10*time.Millisecond<<min(n, 20))
		for range 50 {
			if d := c.backoff(n, errors.New("x")); d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %s, want within [0, %s]", n, d, ceiling)
			}
		}
	}
	ra := &Error{Kind: ErrRateLimited, retryAfter: 3 * time.Second}
	if d := c.backoff(0, ra); d != 3*time.Second {
		t.Errorf("with Retry-After: %s", d)
	}
}

func TestErrorUnwrapsKindAndCause(t *testing.T) {
	cause := errors.New("connection reset")
	e := &Error{Op: "users", Kind: ErrUnavailable, StatusCode: 502, Message: "Bad Gateway", cause: cause}
	if !errors.Is(e, ErrUnavailable) || !errors.Is(e, cause) || errors.Is(e, ErrNotFound) {
		t.Error("errors.Is does not see the kind and the cause")
	}
	if got := e.Error(); got != "panther users: unavailable (HTTP 502): Bad Gateway" {
		t.Errorf("Error() = %q", got)
	}
	if outcome(e) != OutcomeUnavailable || outcome(nil) != OutcomeOK || outcome(&Error{Op: "x"}) != OutcomeError {
		t.Error("outcome")
	}
}

func TestUnclassifiedLogIsBounded(t *testing.T) {
	var u unclassifiedLog
	for i := range maxUnclassifiedLogged {
		if first, full := u.first("users", "E", string(rune('a'+i%26))+strconv.Itoa(i)); !first || full {
			t.Fatalf("triple %d: first %v full %v", i, first, full)
		}
	}
	if first, _ := u.first("users", "E", "a0"); first {
		t.Error("a triple seen before is first again")
	}
	if first, full := u.first("users", "E", "new"); first || !full {
		t.Errorf("beyond the bound: first %v full %v, want false true (said once)", first, full)
	}
	if first, full := u.first("users", "E", "newer"); first || full {
		t.Errorf("beyond the bound again: first %v full %v, want false false", first, full)
	}
}
