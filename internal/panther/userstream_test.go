package panther

import (
	"context"
	"encoding/json"
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
			errs, err := decodeUsers(strings.NewReader(tt.body), func(u *listedUser) { ids = append(ids, u.Id) })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error: %v", err, tt.wantErr)
			}
			if err == nil {
				if len(errs) != tt.wantErrs {
					t.Errorf("%d GraphQL errors, want %d", len(errs), tt.wantErrs)
				}
			} else {
				if shape := schemaMismatch(err); shape != tt.wantShape {
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

// decodeUsers reuses one value for every user and reads each role once by its text:
// what it gives is what decoding the whole answer into the generated types gives,
// user for user, whatever the next user lacks or however its role differs from the
// previous one with the same id.
func TestDecodeUsersMatchesGeneratedTypes(t *testing.T) {
	users := []string{
		`{"id":"u1","email":"a@example.com","givenName":"A","familyName":"B","status":"ACTIVE","enabled":true,"createdAt":"2026-01-02T03:04:05Z","role":{"id":"r1","name":"Admin","permissions":["UserModify","UserRead"]}}`,
		// No givenName, status, createdAt nor enabled: nothing of u1's may be kept.
		`{"id":"u2","email":"c@example.com","familyName":"D","role":{"id":"r1","name":"Admin","permissions":["UserModify","UserRead"]}}`,
		// The same role id, without UserModify: not u1's role.
		`{"id":"u3","email":"e@example.com","givenName":"E","familyName":"F","status":"INVITED","enabled":false,"createdAt":"2026-01-02T03:04:06Z","role":{"id":"r1","name":"Admin","permissions":["UserRead"]}}`,
		// The same role as u1's, written in another order.
		`{"id":"u4","email":"g@example.com","role":{"permissions":["UserRead","UserModify"],"name":"Admin","id":"r1"}}`,
		// Then u1's role again, after u3's.
		`{"id":"u5","email":"h@example.com","givenName":"H\u00e9","role":{"id":"r1","name":"Admin","permissions":["UserModify","UserRead"]}}`,
		`{"id":"u6","email":"i@example.com","role":null}`,
		`{"id":"u7","email":"j@example.com"}`,
		`{"id":"u8","email":"k@example.com","role":{"id":"r2","name":"Analyst","permissions":null}}`,
		`{"id":"u9","email":"l@example.com","role":{"id":"r2","name":"Renamed","permissions":[]}}`,
		`{"id":"u10","email":"m@example.com","role":{"id":"r2","name":"Analyst","permissions":null,"extra":1}}`,
	}
	body := `{"data":{"users":[` + strings.Join(users, ",") + `]}}`
	var gen struct {
		Data usersResponse `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &gen); err != nil {
		t.Fatal(err)
	}
	var want []provision.PantherUser
	for _, u := range gen.Data.Users {
		want = append(want, toUser(u.userFields))
	}
	var got []provision.PantherUser
	if _, err := decodeUsers(strings.NewReader(body), func(u *listedUser) { got = append(got, u.user()) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d users, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("user %d:\n got %+v\nwant %+v", i+1, got[i], want[i])
		}
	}
	if !want[0].Admin || want[2].Admin || !want[3].Admin {
		t.Errorf("the fixture's roles are not what the test means: %+v", want[:4])
	}
	// A role that is not an object is a schema mismatch, as in the generated type.
	_, err := decodeUsers(strings.NewReader(`{"data":{"users":[`+users[0]+`,{"id":"u2","role":{"id":"r1","permissions":"UserModify"}}]}}`), func(*listedUser) {})
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		t.Errorf("permissions of the wrong type: %v, want a *json.UnmarshalTypeError", err)
	}
}
