package scim

import (
	"context"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// Service is what the handlers ask of the provisioning rules. *provision.Service
// implements it; its errors are *provision.Error values whose Code WriteError maps to
// a status (CodeNotFound for an unknown id, CodePrecondition for an If-Match that
// does not match the version given as expect, ...).
type Service interface {
	CreateUser(ctx context.Context, f provision.UserFields) (provision.User, error)
	GetUser(ctx context.Context, id string) (provision.User, error)
	UpdateUser(ctx context.Context, id string, expect int64, mutate func(provision.User) (provision.UserFields, error)) (provision.User, error)
	DeleteUser(ctx context.Context, id string, expect int64) error
	CreateGroup(ctx context.Context, f provision.GroupFields) (provision.Group, error)
	GetGroup(ctx context.Context, id string) (provision.Group, error)
	UpdateGroup(ctx context.Context, id string, expect int64, mutate func(provision.Group) (provision.GroupFields, error)) (provision.Group, error)
	DeleteGroup(ctx context.Context, id string, expect int64) error
}

var _ Service = (*provision.Service)(nil)

// Records is the query port of lists, lookups and the references a response shows
// (a user's groups, a group's members): one consistent read per call.
type Records interface {
	View(ctx context.Context, fn func(RecordsTx) error) error
}

// RecordsTx is what the handlers read in one transaction: provision.ReadTx's lookups
// and scans of users and groups. Lookups that miss return provision.ErrNotFound.
type RecordsTx interface {
	User(id string) (provision.User, error)
	UserByUserName(userName string) (provision.User, error)
	UsersByExternalID(ext string) ([]provision.User, error)
	UserByEmail(email string) (provision.User, error)
	UserState(id string) (provision.UserState, error)
	UserCount() (int, error)
	ScanUsers(offset int, fn func(provision.User) bool) error

	Group(id string) (provision.Group, error)
	GroupByDisplayName(name string) (provision.Group, error)
	GroupsByExternalID(ext string) ([]provision.Group, error)
	GroupCount() (int, error)
	ScanGroups(offset int, fn func(provision.Group) bool) error
	GroupIDsOfUser(userID string) ([]string, error)
	GroupHeader(id string) (provision.GroupHeader, error)
}

var _ RecordsTx = provision.ReadTx(nil)

// StoreRecords serves Records from the store's read transactions.
func StoreRecords(st provision.Store) Records { return storeRecords{st} }

type storeRecords struct{ st provision.Store }

func (s storeRecords) View(ctx context.Context, fn func(RecordsTx) error) error {
	return s.st.View(ctx, func(tx provision.ReadTx) error { return fn(tx) })
}
