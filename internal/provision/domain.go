package provision

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Store and Panther implementations wrap these so that callers
// can branch with errors.Is.
var (
	// ErrNotFound: the record or the Panther object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique attribute (userName, email, displayName, Panther id) is taken,
	// or Panther reports that the object already exists.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: Panther rejected the input (its message is in the wrapping error).
	ErrInvalid = errors.New("invalid input")
	// ErrUnauthorized: Panther refused the API token (401/403 or an auth GraphQL error).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrRateLimited: Panther answered 429 and retries ran out.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: Panther could not be reached, timed out or answered 5xx after retries.
	ErrUnavailable = errors.New("unavailable")
	// ErrStoreWrite: the store could not commit a change (disk full, an I/O error);
	// nothing of it was written, and a later attempt may succeed.
	ErrStoreWrite = errors.New("store write failed")
)

// Retryable reports whether err is a Panther failure that a later attempt may cure.
func Retryable(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable)
}

// RetryAfter returns the delay a rate-limited or unavailable Panther asked for, if any.
// Errors carry it by implementing interface{ RetryAfter() time.Duration }.
func RetryAfter(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

// User is the stored record of one SCIM user.
type User struct {
	// ID is the SCIM id, minted here (UUIDv7, so that id order is creation order).
	ID string `json:"id"`
	// UserName is unique, compared case-insensitively.
	UserName string `json:"userName"`
	// ExternalID is kept exactly as the IdP sent it; not unique.
	ExternalID string `json:"externalId,omitempty"`
	// Active false means the IdP disabled the user: no Panther access.
	Active bool `json:"active"`
	// Email is the address this user has (or would have) in Panther, derived from the
	// SCIM attributes by the identity rules; unique among records, compared lower-cased.
	Email string `json:"email"`
	// Attributes holds every other SCIM attribute as accepted (canonical names, extension
	// schemas under their URN), without id, externalId, meta, schemas and groups.
	Attributes   map[string]any `json:"attributes,omitempty"`
	Created      time.Time      `json:"created"`
	LastModified time.Time      `json:"lastModified"`
	// Version increases by one on every change; it is the ETag.
	Version int64 `json:"version"`
	// Panther is what panther-scim last applied to (or adopted from) Panther.
	Panther PantherLink `json:"panther"`
}

// PantherLink is the cross-reference to the Panther user and the state last applied
// there. An empty ID means the user has no Panther account that we manage.
type PantherLink struct {
	ID         string `json:"id,omitempty"`
	Email      string `json:"email,omitempty"`
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
	RoleID     string `json:"roleId,omitempty"`
}

// Group is the stored record of one SCIM group. Groups exist only here; Panther has none.
type Group struct {
	ID string `json:"id"`
	// DisplayName is unique, compared case-insensitively.
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId,omitempty"`
	// Members are user ids, without duplicates, in the order they were added. They
	// stay after DisplayName and ExternalID: the store reads a group's header (a
	// GroupHeader) from the start of the record without decoding the members.
	Members      []string  `json:"members,omitempty"`
	Created      time.Time `json:"created"`
	LastModified time.Time `json:"lastModified"`
	Version      int64     `json:"version"`
}

// GroupHeader is a group without its members: what role resolution and a user's
// "groups" attribute need, at a cost that does not grow with the group's size.
type GroupHeader struct {
	ID          string
	DisplayName string
	ExternalID  string
}

// UserState is what role resolution needs of a user: whether it is active and whether
// it is linked to a Panther user, read without its attributes; and its userName, which
// a group's member list shows.
type UserState struct {
	ID       string
	UserName string
	Active   bool
	Linked   bool // Panther.ID != ""
}

// Intent says that Panther may not yet match the store for one user. It is written in
// the same transaction as the change that causes it and deleted once Panther matches.
type Intent struct {
	// UserID is the SCIM id of the user; one intent per user at most.
	UserID string `json:"userId"`
	// Remove is set when the record is gone (DELETE): the Panther user to remove.
	Remove *PantherLink `json:"remove,omitempty"`
	Since  time.Time    `json:"since"`
	// Gen changes each time the intent is rewritten for a new change; a sync clears
	// the intent only if Gen is still the one it started from, so a change that lands
	// while a sync runs is never forgotten.
	Gen int64 `json:"gen,omitempty"`
	// Attempts, NextAttempt and LastError drive the background retry with backoff.
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
	// Invites are the inviteUser calls this intent's syncs may have sent: each is
	// written here, durably, before the call goes out. They are what makes a Panther
	// user found by email after a crash or a lost answer panther-scim's own (created
	// at or after At), and the only reason a record that was never linked may look an
	// email up to remove its user: a record that never asked for access has none.
	Invites []InviteAttempt `json:"invites,omitempty"`
	// Email is, on a removal, the record's email when it was deleted: an email change
	// may have reached Panther without its answer, so the Panther user may hold it
	// rather than Remove.Email.
	Email string `json:"email,omitempty"`
	// Revert is the record as it was before the first of its changes (to its identity
	// or active flag) that has not reached Panther yet, written with that change. When
	// Panther, or an ownership rule, refuses them, the sync that meets the refusal puts
	// the record back to it in the transaction that ends the intent: a refused change is
	// neither kept nor queued, whether the request that made it is still waiting or the
	// background worker meets the refusal later.
	Revert *PriorState `json:"revert,omitempty"`
}

// PriorState is a user record's SCIM data at one version, as an intent keeps it to
// put the record back (Intent.Revert).
type PriorState struct {
	Version    int64          `json:"version"`
	UserName   string         `json:"userName"`
	ExternalID string         `json:"externalId,omitempty"`
	Active     bool           `json:"active"`
	Email      string         `json:"email"`
	Attributes map[string]any `json:"attributes,omitempty"`
	// Pending says the intent also carried work that the record's changes did not
	// make (a group change, a repair): after a rollback it is queued again.
	Pending bool `json:"pending,omitempty"`
}

// priorState is u's SCIM data, to put back later.
func priorState(u User, pending bool) *PriorState {
	return &PriorState{Version: u.Version, UserName: u.UserName, ExternalID: u.ExternalID, Active: u.Active,
		Email: u.Email, Attributes: u.Attributes, Pending: pending}
}

// InviteAttempt is an invite of Email that may have been sent from At on (the time
// it was recorded, before the first call for that email).
type InviteAttempt struct {
	Email string    `json:"email"`
	At    time.Time `json:"at"`
}

// invite returns the recorded attempt for an email, if any.
func (in *Intent) invite(email string) (InviteAttempt, bool) {
	for _, a := range in.Invites {
		if SameEmail(a.Email, email) {
			return a, true
		}
	}
	return InviteAttempt{}, false
}

// addInvite records an attempt for email at `at`, keeping the earliest time of an
// email already recorded (any of the attempts since may have created the user).
func (in *Intent) addInvite(email string, at time.Time) InviteAttempt {
	if a, ok := in.invite(email); ok {
		return a
	}
	a := InviteAttempt{Email: email, At: at}
	in.Invites = append(in.Invites, a)
	return a
}

// InviteRecord is the durable trace of panther-scim's invites of one email, kept apart
// from records and intents (store bucket invites, keyed by EmailKey). It outlives the
// record and intent that made the invite: a POST rolled back after its invite reached
// Panther without an answer leaves it behind, so that the IdP's retry recognises the
// Panther user that invite created (at or after At) as panther-scim's own, not as an
// existing user to adopt. It is deleted when a record links a Panther user with the
// email, when a removal has dealt with what the invites may have created, when Panther
// refuses an invite of the email and has no user with it (withdrawInvites), and after
// Options.InviteRetention without another attempt (PruneInvites).
type InviteRecord struct {
	// Email is the address invited, as the record had it.
	Email string `json:"email"`
	// At is when the first invite of the email still remembered was recorded, before
	// it was sent: a Panther user created at or after At may be its result.
	At time.Time `json:"at"`
	// Last is when the latest invite was recorded; retention counts from it.
	Last time.Time `json:"last"`
	// UserID is the SCIM id of the record that recorded the latest invite.
	UserID string `json:"userId,omitempty"`
}

// AuditEntry is one provisioning change, kept in the store's audit trail.
type AuditEntry struct {
	// EventID names the entry for good: the store gives every entry it appends a
	// UUIDv7 when it has none, so that a reader of an at-least-once export can drop
	// the copies of an entry sent twice.
	EventID   string            `json:"eventId,omitempty"`
	Time      time.Time         `json:"time"`
	RequestID string            `json:"requestId,omitempty"`
	Actor     string            `json:"actor,omitempty"`
	Action    string            `json:"action"`
	Resource  string            `json:"resource"` // "User" or "Group"
	ID        string            `json:"id"`
	Before    map[string]string `json:"before,omitempty"`
	After     map[string]string `json:"after,omitempty"`
	Outcome   string            `json:"outcome"`
}

// ReadTx is a consistent read-only view of the store.
type ReadTx interface {
	// User returns the user with the SCIM id, or ErrNotFound.
	User(id string) (User, error)
	// UserByUserName finds a user by userName, case-insensitively, or ErrNotFound.
	UserByUserName(userName string) (User, error)
	// UsersByExternalID returns the users whose externalId is exactly ext (maybe none).
	UsersByExternalID(ext string) ([]User, error)
	// UserByEmail finds a user by Panther email, case-insensitively, or ErrNotFound.
	UserByEmail(email string) (User, error)
	// UserByPantherID finds the user linked to a Panther user id, or ErrNotFound.
	UserByPantherID(pantherID string) (User, error)
	// UserState returns the id, active flag and Panther link id of a user without
	// decoding the rest of the record, or ErrNotFound.
	UserState(id string) (UserState, error)
	// UserCount is the number of user records.
	UserCount() (int, error)
	// ScanUsers calls fn for users in id order, starting after skipping `offset` records
	// (without decoding the skipped ones), until fn returns false.
	ScanUsers(offset int, fn func(User) bool) error
	// ScanUserIdentities is ScanUsers from the first user, with no attributes: fn
	// gets instead what the user's Panther identity comes from (DeriveIdentityFrom).
	// Cheaper, for scans of every user that need no more.
	ScanUserIdentities(fn func(User, IdentitySource) bool) error

	// Group returns the group with the SCIM id, or ErrNotFound.
	Group(id string) (Group, error)
	// GroupByDisplayName finds a group by displayName, case-insensitively, or ErrNotFound.
	GroupByDisplayName(name string) (Group, error)
	// GroupsByExternalID returns the groups whose externalId is exactly ext.
	GroupsByExternalID(ext string) ([]Group, error)
	// GroupCount is the number of group records.
	GroupCount() (int, error)
	// ScanGroups is ScanUsers for groups.
	ScanGroups(offset int, fn func(Group) bool) error
	// GroupIDsOfUser returns the ids of the groups the user is a member of (from the
	// membership index), in group id order.
	GroupIDsOfUser(userID string) ([]string, error)
	// GroupHeader returns the id, displayName and externalId of a group without
	// reading its members, or ErrNotFound.
	GroupHeader(id string) (GroupHeader, error)

	// Intent returns the pending intent of a user, or ErrNotFound.
	Intent(userID string) (Intent, error)
	// ScanIntents calls fn for each pending intent until fn returns false.
	ScanIntents(fn func(Intent) bool) error
	// IntentCount is the number of pending intents.
	IntentCount() (int, error)

	// ScanAudit calls fn for audit entries at or after since, oldest first.
	ScanAudit(since time.Time, fn func(AuditEntry) bool) error

	// Invite returns the invite record of an email (compared by EmailKey), or
	// ErrNotFound.
	Invite(email string) (InviteRecord, error)
}

// Tx is a read-write transaction. Everything written in one Tx commits together or not at all.
type Tx interface {
	ReadTx
	// PutUser inserts or replaces a user and its indexes. ErrConflict when the userName,
	// email or Panther id belongs to another user.
	PutUser(u User) error
	// DeleteUser removes the user, its indexes and its memberships in every group
	// (the group records are rewritten). ErrNotFound when absent.
	DeleteUser(id string) error
	// PutGroup inserts or replaces a group, keeping the membership index in step with
	// Members. ErrConflict when the displayName belongs to another group; ErrNotFound
	// (wrapped, naming the id) when a member is not a stored user.
	PutGroup(g Group) error
	// DeleteGroup removes the group and its membership index entries. ErrNotFound when absent.
	DeleteGroup(id string) error
	// PutIntent writes (or replaces) the intent of in.UserID.
	PutIntent(in Intent) error
	// DeleteIntent removes the intent of a user; no error when there is none.
	DeleteIntent(userID string) error
	// AppendAudit adds an entry to the audit trail.
	AppendAudit(e AuditEntry) error
	// PruneAudit deletes audit entries older than before.
	PruneAudit(before time.Time) error
	// PutInvite writes (or replaces) the invite record of r.Email.
	PutInvite(r InviteRecord) error
	// DeleteInvite removes the invite record of an email; no error when there is none.
	DeleteInvite(email string) error
	// PruneInvites deletes the invite records whose Last is before before, and
	// returns how many it deleted.
	PruneInvites(before time.Time) (int, error)
}

// Store is the durable record. View and Update run fn in one bbolt transaction;
// an error from fn rolls the Update back and is returned as is.
type Store interface {
	View(ctx context.Context, fn func(ReadTx) error) error
	Update(ctx context.Context, fn func(Tx) error) error
	// Batch is Update for an fn whose only effects go through tx and that may run
	// twice: concurrent Batch calls may share one transaction (one commit, one
	// fsync), and a call whose fn fails is run again alone, with its own result. It is
	// for the many small writes that concurrent Panther syncs make.
	Batch(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// PantherUser is a user as Panther reports it.
type PantherUser struct {
	ID         string
	Email      string
	GivenName  string
	FamilyName string
	RoleID     string
	RoleName   string
	// Admin: the user's role holds UserModify, so the user administers every Panther user.
	Admin     bool
	Status    string
	Enabled   bool
	CreatedAt time.Time
}

// Administrator reports whether the role holds UserModify.
func (r PantherRole) Administrator() bool { return HoldsUserModify(r.Permissions) }

// HoldsUserModify reports whether a role's permissions include UserModify.
func HoldsUserModify(perms []string) bool {
	for _, x := range perms {
		if x == PermissionUserModify {
			return true
		}
	}
	return false
}

// PantherRole is a role as Panther reports it.
type PantherRole struct {
	ID          string
	Name        string
	Permissions []string
}

// RoleRef names a Panther role by id (ByID) or by name.
type RoleRef struct {
	ByID  bool
	Value string
}

// InviteInput is what inviteUser needs; Panther requires every field.
type InviteInput struct {
	Email      string
	GivenName  string
	FamilyName string
	Role       RoleRef
}

// UpdateInput changes only the non-nil fields of the Panther user ID.
type UpdateInput struct {
	ID         string
	Email      *string
	GivenName  *string
	FamilyName *string
	Role       *RoleRef
}

// Panther is the part of Panther's API that provisioning uses. Errors wrap the
// sentinels above (ErrNotFound, ErrConflict, ErrInvalid, ErrUnauthorized,
// ErrRateLimited, ErrUnavailable) so that callers branch with errors.Is.
type Panther interface {
	Users(ctx context.Context) ([]PantherUser, error)
	UserByID(ctx context.Context, id string) (PantherUser, error)
	UserByEmail(ctx context.Context, email string) (PantherUser, error)
	InviteUser(ctx context.Context, in InviteInput) (PantherUser, error)
	UpdateUser(ctx context.Context, in UpdateInput) (PantherUser, error)
	DeleteUser(ctx context.Context, id string) error
	Roles(ctx context.Context) ([]PantherRole, error)
	RoleLookup
}
