package panther

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/yield"
)

// Panther's users query is not paginated: at 100,000 users its answer is about 30 MB of
// JSON, each user carrying its role's permissions. The generated code would read all
// of it into one buffer and decode it into a tree of generated structs (a slice of
// permissions per user) before the client converts it: a heap peak of several times the
// answer. Users instead decodes the answer as it arrives, one user at a time into one
// reused listedUser (the generated fragment type's fields), and keeps only the compact
// provision.PantherUser, with each role decoded once and its id and name shared between
// its users (see roleCache).

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
		errs, err := decodeUsers(body, func(f *listedUser) {
			out = append(out, f.user())
		})
		e := &Error{Op: op, StatusCode: hresp.StatusCode}
		switch {
		case body.err != nil:
			return readErr(body.err)
		case body.n > maxResponseBytes:
			e.Message = fmt.Sprintf("response larger than %d bytes", maxResponseBytes)
			return e
		case err != nil:
			if schemaMismatch(err) {
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

// schemaMismatch tells a decodeUsers error about well-formed JSON of the wrong shape
// from a truncated or garbled answer.
func schemaMismatch(err error) bool {
	var typeErr *json.UnmarshalTypeError
	return errors.As(err, &typeErr) || errors.Is(err, errNotUsersShape)
}

// decodeUsers reads a GraphQL answer to the users query ({"data":{"users":[...]},
// "errors":[...]}, keys in any order, data or users possibly null) and calls each for
// every user, in order, as it is decoded (the *listedUser is reused for the next user
// once each returns). It returns the answer's GraphQL errors.
func decodeUsers(r io.Reader, each func(*listedUser)) (gqlerror.List, error) {
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
func decodeUsersData(dec *json.Decoder, each func(*listedUser)) error {
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
	roles := &roleCache{byRaw: map[string]*internedRole{}}
	var u listedUser
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
		// Decoding 100,000 users holds a core for about half a second: the requests
		// waiting for one run about every millisecond (see provision's reconcile scan).
		// Not more often: while a listing streams in, the thread writing it (the
		// double's, in the benchmarks) always waits for a core too, and yielding twice
		// as often made a no-drift reconcile 8% slower there.
		pace := yield.Counter{Every: 256}
		for dec.More() {
			// One value for every user, emptied first: a key a user lacks must not keep
			// the previous user's value.
			u = listedUser{Role: listedRole{cache: roles}}
			if err := dec.Decode(&u); err != nil {
				return err
			}
			each(&u)
			pace.Tick()
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

// listedUser is a user of the users query's answer as decodeUsers reads it: the
// generated userFields, whose role is read through a roleCache instead (encoding/json
// fills the outer "role" field and leaves the embedded one alone).
type listedUser struct {
	userFields
	Role listedRole `json:"role"`
}

// user converts a decoded user with toUser, its role taken from the roleCache (its
// strings shared with the other users of the same role) instead of the embedded one,
// which decoding leaves empty.
func (f *listedUser) user() provision.PantherUser {
	u := toUser(f.userFields)
	if r := f.Role.role; r != nil { // nil: "role" absent, the zero role toUser gave
		u.RoleID, u.RoleName, u.Admin = r.id, r.name, r.admin
	}
	return u
}

// internedRole is a role as its users share it: one copy of its id and name, and
// whether it holds UserModify, worked out once.
type internedRole struct {
	id, name string
	admin    bool
}

// roleCache holds the roles of one answer by their JSON text. Every user carries
// its role with the role's permissions: at 100,000 users decoding each user's list
// of permissions was most of what a listing allocated, while an answer names a few
// roles, each written the same way for all of its users. A role is decoded (as
// userFieldsRole, the generated type) the first time its text is seen; a user whose
// role reads differently (other permissions, or the same written otherwise) gets a
// role of its own, so nothing is shared that was not equal.
type roleCache struct {
	byRaw map[string]*internedRole
}

// maxCachedRoles bounds a roleCache: an answer with more distinct roles decodes the
// others for each of their users, as it did before the cache.
const maxCachedRoles = 1024

// listedRole is a listedUser's role, read through its roleCache.
type listedRole struct {
	cache *roleCache
	role  *internedRole
}

// UnmarshalJSON finds the role's text in the cache, or decodes it. A role that is
// not an object fails as it would have in userFields (a *json.UnmarshalTypeError).
func (l *listedRole) UnmarshalJSON(b []byte) error {
	if r := l.cache.byRaw[string(b)]; r != nil {
		l.role = r
		return nil
	}
	var f userFieldsRole
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	r := &internedRole{id: f.Id, name: f.Name, admin: provision.HoldsUserModify(f.Permissions)}
	if len(l.cache.byRaw) < maxCachedRoles {
		l.cache.byRaw[string(b)] = r
	}
	l.role = r
	return nil
}
