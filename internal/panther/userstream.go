package panther

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// Panther's users query is not paginated: at 100,000 users its answer is about 30 MB of
// JSON, each user carrying its role's permissions. The generated code would read all
// of it into one buffer and decode it into a tree of generated structs (a slice of
// permissions per user) before the client converts it: a heap peak of several times the
// answer. Users instead decodes the answer as it arrives, one user at a time into the
// generated fragment type (userFields), and keeps only the compact provision.PantherUser,
// with each role's id and name shared between its users.

// maxErrorBody bounds what is read of an answer that is not a 200.
const maxErrorBody = 1 << 20

// streamUsers makes one attempt of the users query, decoding the answer as it
// arrives and appending each user to out.
func (c *Client) streamUsers(ctx context.Context, out []provision.PantherUser) ([]provision.PantherUser, error) {
	req := &graphql.Request{OpName: "users", Query: users_Operation}
	err := c.exchange(ctx, req, false, func(op string, hresp *http.Response, release func(), readErr func(error) *Error) error {
		if hresp.StatusCode != http.StatusOK {
			raw, err := io.ReadAll(io.LimitReader(hresp.Body, maxErrorBody))
			if err != nil {
				return readErr(err)
			}
			release()
			return c.decode(op, hresp, raw, &graphql.Response{Data: &usersResponse{}})
		}
		body := &watchedReader{r: io.LimitReader(hresp.Body, maxResponseBytes+1)}
		roles := map[string]*internedRole{}
		errs, err := decodeUsers(body, func(f *userFields) {
			out = append(out, compactUser(f, roles))
		})
		e := &Error{Op: op, StatusCode: hresp.StatusCode}
		switch {
		case body.err != nil:
			return readErr(body.err)
		case body.n > maxResponseBytes:
			e.Message = fmt.Sprintf("response larger than %d bytes", maxResponseBytes)
			return e
		case err != nil:
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) || errors.Is(err, errNotUsersShape) {
				// Well-formed JSON of the wrong shape: Panther's schema changed under us.
				e.Message = "response does not match the schema: " + err.Error()
				return e
			}
			// A truncated or garbled answer.
			e.Kind, e.Message, e.reason, e.mayHaveApplied = ErrUnavailable,
				"unreadable response: "+err.Error(), "bad_response", true
			return e
		case len(errs) > 0:
			return c.graphQLError(e, errs)
		}
		return nil
	})
	return out, err
}

// watchedReader counts the bytes read and keeps the first read error, so that a broken
// connection is told apart from malformed JSON.
type watchedReader struct {
	r   io.Reader
	n   int64
	err error
}

func (w *watchedReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.n += int64(n)
	if err != nil && err != io.EOF && w.err == nil {
		w.err = err
	}
	return n, err
}

var errNotUsersShape = errors.New("not a users answer")

// decodeUsers reads a GraphQL answer to the users query ({"data":{"users":[...]},
// "errors":[...]}, keys in any order, data or users possibly null) and calls each for
// every user, in order, as it is decoded. It returns the answer's GraphQL errors.
func decodeUsers(r io.Reader, each func(*userFields)) (gqlerror.List, error) {
	dec := json.NewDecoder(r)
	var errs gqlerror.List
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	for dec.More() {
		key, err := keyToken(dec)
		if err != nil {
			return nil, err
		}
		switch key {
		case "data":
			if err := decodeUsersData(dec, each); err != nil {
				return nil, err
			}
		case "errors":
			if err := dec.Decode(&errs); err != nil {
				return nil, err
			}
		default:
			if err := skipValue(dec); err != nil {
				return nil, err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	// Nothing may follow the answer's object.
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("%w: data after the answer", errNotUsersShape)
		}
		return nil, err
	}
	return errs, nil
}

// decodeUsersData reads the value of "data": null, or an object whose "users" is null
// or an array of users.
func decodeUsersData(dec *json.Decoder, each func(*userFields)) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("%w: data is %v", errNotUsersShape, tok)
	}
	for dec.More() {
		key, err := keyToken(dec)
		if err != nil {
			return err
		}
		if key != "users" {
			if err := skipValue(dec); err != nil {
				return err
			}
			continue
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if tok == nil {
			continue
		}
		if tok != json.Delim('[') {
			return fmt.Errorf("%w: users is %v", errNotUsersShape, tok)
		}
		for n := 1; dec.More(); n++ {
			var u userFields // a fresh one: each user's slices are its own
			if err := dec.Decode(&u); err != nil {
				return err
			}
			each(&u)
			if n%256 == 0 {
				// Decoding 100,000 users holds a core for about a second: let the
				// requests waiting for it run (see provision's reconcile scan).
				runtime.Gosched()
			}
		}
		if err := expectDelim(dec, ']'); err != nil {
			return err
		}
	}
	return expectDelim(dec, '}')
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if tok != d {
		return fmt.Errorf("%w: %v where %v was expected", errNotUsersShape, tok, d)
	}
	return nil
}

func keyToken(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	key, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("%w: %v where a key was expected", errNotUsersShape, tok)
	}
	return key, nil
}

func skipValue(dec *json.Decoder) error {
	var skip json.RawMessage
	return dec.Decode(&skip)
}

// internedRole is a role as its users share it: one copy of its id and name, and
// whether it holds UserModify, worked out once.
type internedRole struct {
	id, name string
	admin    bool
	perms    []string
}

// compactUser converts a decoded user, sharing the role's strings with the other
// users of the same role (a role whose permissions differ between two users of one
// answer is not shared).
func compactUser(f *userFields, roles map[string]*internedRole) provision.PantherUser {
	r := roles[f.Role.Id]
	if r == nil || r.name != f.Role.Name || !slices.Equal(r.perms, f.Role.Permissions) {
		r = &internedRole{id: f.Role.Id, name: f.Role.Name, perms: f.Role.Permissions,
			admin: provision.HoldsUserModify(f.Role.Permissions)}
		roles[f.Role.Id] = r
	}
	u := toUser(*f)
	u.RoleID, u.RoleName, u.Admin = r.id, r.name, r.admin
	return u
}
