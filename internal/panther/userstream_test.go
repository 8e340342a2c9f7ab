package panther

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/panther-scim/panther-scim/internal/provision"
)

func TestDecodeUsers(t *testing.T) {
	const u1 = `{"id":"u1","email":"a@example.com","givenName":"A","familyName":"B","status":"ACTIVE","enabled":true,"createdAt":"2026-01-02T03:04:05Z","role":{"id":"r1","name":"Admin","permissions":["UserModify","UserRead"]}}`
	const u2 = `{"id":"u2","email":"c@example.com","givenName":"C","familyName":"D","status":"INVITED","enabled":false,"createdAt":"2026-01-02T03:04:06Z","role":{"id":"r2","name":"Analyst","permissions":["AlertRead"]}}`
	tests := []struct {
		name      string
		body      string
		wantIDs   []string
		wantErrs  int
		wantShape bool // a schema mismatch, not garbled JSON
		wantErr   bool
	}{
		{"two users", `{"data":{"users":[` + u1 + `,` + u2 + `]}}`, []string{"u1", "u2"}, 0, false, false},
		{"no users", `{"data":{"users":[]}}`, nil, 0, false, false},
		{"errors after data", `{"data":{"users":[` + u1 + `]},"errors":[{"message":"partial","extensions":{"code":"X"}}]}`, []string{"u1"}, 1, false, false},
		{"errors before null data", `{"errors":[{"message":"denied"}],"data":null}`, nil, 1, false, false},
		{"null users", `{"data":{"users":null}}`, nil, 0, false, false},
		{"unknown keys skipped", `{"extensions":{"cost":3},"data":{"other":[1,2],"users":[` + u2 + `]}}`, []string{"u2"}, 0, false, false},
		{"truncated", `{"data":{"users":[` + u1 + `,{"id":"u2"`, []string{"u1"}, 0, false, true},
		{"users is an object", `{"data":{"users":{"id":"u1"}}}`, nil, 0, true, true},
		{"a user of the wrong type", `{"data":{"users":[5]}}`, nil, 0, true, true},
		{"not an object", `[1]`, nil, 0, true, true},
		{"trailing data", `{"data":{"users":[]}} {}`, nil, 0, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []string
			errs, err := decodeUsers(strings.NewReader(tt.body), func(u *userFields) { ids = append(ids, u.Id) })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error: %v", err, tt.wantErr)
			}
			if err == nil {
				if len(errs) != tt.wantErrs {
					t.Errorf("%d GraphQL errors, want %d", len(errs), tt.wantErrs)
				}
			} else {
				var typeErr interface{ Error() string }
				shape := errors.Is(err, errNotUsersShape) || errors.As(err, &typeErr) && strings.Contains(err.Error(), "cannot unmarshal")
				if shape != tt.wantShape {
					t.Errorf("err %v: schema mismatch %v, want %v", err, shape, tt.wantShape)
				}
			}
			if !reflect.DeepEqual(ids, tt.wantIDs) {
				t.Errorf("users %v, want %v", ids, tt.wantIDs)
			}
		})
	}
}

// generatedUsers lists the users through the generated code, as Users did before it
// decoded the answer as it arrives.
func generatedUsers(ctx context.Context, c *Client) ([]provision.PantherUser, error) {
	resp, err := users(ctx, transport{c: c})
	if err != nil {
		return nil, err
	}
	out := make([]provision.PantherUser, 0, len(resp.Users))
	for _, u := range resp.Users {
		out = append(out, toUser(u.userFields))
	}
	return out, nil
}

// GeneratedUsers is generatedUsers for the package's external tests.
var GeneratedUsers = generatedUsers
