package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/panther-scim/panther-scim/mappings"
)

// DeactivationMode says what active=false does in Panther.
type DeactivationMode string

const (
	// DeactivateDelete deletes the Panther user (Panther's API cannot disable one);
	// the SCIM record stays, and active=true re-invites.
	DeactivateDelete DeactivationMode = "delete"
	// DeactivateRole moves the Panther user to a configured no-access role, keeping
	// their Panther identity and history.
	DeactivateRole DeactivationMode = "role"
)

// Options configure a Service.
type Options struct {
	Mapping          mappings.Mapping
	Deactivation     DeactivationMode
	DeactivationRole string
	// ProtectedEmails are never provisioned, adopted, changed or deleted (break-glass
	// admins, the API token's owner).
	ProtectedEmails []string
	// Adopt says which existing Panther users a record may take over (default
	// AdoptNonAdmin).
	Adopt AdoptPolicy
	// Observer, when set, is told of every adoption and refusal (for metrics).
	Observer Observer
	// SyncConcurrency bounds the Panther syncs one request runs at once.
	SyncConcurrency int
	// RequestSyncTimeout bounds how long a request waits for its Panther calls; what
	// is not done by then stays queued as an intent (default 20s).
	RequestSyncTimeout time.Duration
	// InviteRetention is how long an invite record (InviteRecord) is kept after the
	// latest invite of its email, when no record links the user it may have created
	// (default DefaultInviteRetention).
	InviteRetention time.Duration
	Logger          *slog.Logger
	Now             func() time.Time
	// Hooks are test seams for crash injection.
	Hooks Hooks
}

// Hooks are called at the two points where a crash is most dangerous.
type Hooks struct {
	// AfterStoreWrite runs after a change and its intent are committed, before Panther is called.
	AfterStoreWrite func()
	// AfterPantherCall runs after a Panther mutation succeeded, before the intent is cleared.
	AfterPantherCall func()
}

// Service holds the provisioning rules: it turns what the IdP asks into store
// records, intents and Panther calls.
type Service struct {
	store   Store
	panther Panther
	opts    Options
	log     *slog.Logger
	now     func() time.Time

	protected map[string]bool
	locks     keyedMutex

	rolesMu sync.RWMutex
	roles   map[string]PantherRole // role reference (name or id, lower-cased) -> role

	delayedMu sync.Mutex
	delayed   delayedState // AlertDelayedDeprovisions' memory

	avail *availability // whether Panther answers; wakes Run when it does again

	admins *adminGuard // the last-administrator check's memory and turn (lastadmin.go)

	// storedUsers is how many users the last full scan of the store found (the
	// start-up requeue's, a reconcile's): the size of the first users listing.
	storedUsers atomic.Int64
}

// New returns a Service over a store and a Panther client.
func New(st Store, p Panther, opts Options) *Service {
	if opts.Deactivation == "" {
		opts.Deactivation = DeactivateDelete
	}
	if opts.Adopt == "" {
		opts.Adopt = AdoptNonAdmin
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	if opts.SyncConcurrency <= 0 {
		opts.SyncConcurrency = 8
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RequestSyncTimeout <= 0 {
		opts.RequestSyncTimeout = 20 * time.Second
	}
	if opts.InviteRetention <= 0 {
		opts.InviteRetention = DefaultInviteRetention
	}
	avail := newAvailability(opts.Logger)
	if p != nil {
		p = watchedPanther{p: p, av: avail}
	}
	s := &Service{
		store: st, panther: p, opts: opts, log: opts.Logger, now: opts.Now, avail: avail,
		protected: map[string]bool{},
		roles:     map[string]PantherRole{},
		admins:    newAdminGuard(),
	}
	for _, e := range opts.ProtectedEmails {
		s.protected[EmailKey(e)] = true
	}
	return s
}

// Store returns the service's store, for read paths that need no rules.
func (s *Service) Store() Store { return s.store }

func (s *Service) isProtected(email string) bool {
	return email != "" && s.protected[EmailKey(email)]
}

// ---- context: who asked, for the audit trail and logs -----------------------------

type ctxKey int

const (
	actorKey ctxKey = iota
	requestIDKey
)

// WithActor records which token or client made the request.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey, actor)
}

// WithRequestID records the request id for audit entries.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

func (s *Service) audit(ctx context.Context, tx Tx, action, resource, id string, before, after map[string]string, outcome string) error {
	s.logChange(ctx, action, resource, id, outcome)
	return tx.AppendAudit(s.auditEntry(ctx, action, resource, id, before, after, outcome))
}

func (s *Service) auditEntry(ctx context.Context, action, resource, id string, before, after map[string]string, outcome string) AuditEntry {
	actor, _ := ctx.Value(actorKey).(string)
	rid, _ := ctx.Value(requestIDKey).(string)
	return AuditEntry{
		Time: s.now().UTC(), RequestID: rid, Actor: actor, Action: action, Resource: resource, ID: id,
		Before: before, After: after, Outcome: outcome,
	}
}

func (s *Service) logChange(ctx context.Context, action, resource, id, outcome string) {
	s.log.InfoContext(ctx, "provisioning change", "action", action, "resource", resource, "scim_id", id, "outcome", outcome)
}

func userAuditFields(u *User, groups []string) map[string]string {
	if u == nil {
		return nil
	}
	m := map[string]string{"userName": u.UserName, "email": u.Email, "active": fmt.Sprint(u.Active)}
	if n, ok := u.Attributes["name"].(map[string]any); ok {
		m["givenName"], _ = n["givenName"].(string)
		m["familyName"], _ = n["familyName"].(string)
	}
	if groups != nil {
		m["groups"] = strings.Join(groups, ",")
	}
	return m
}

// ---- users ----------------------------------------------------------------------

// UserFields is what the IdP sets on a user.
type UserFields struct {
	UserName   string
	ExternalID string
	Active     bool
	Attributes map[string]any
}

// GetUser returns a user record, or a CodeNotFound *Error.
func (s *Service) GetUser(ctx context.Context, id string) (User, error) {
	var u User
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		u, err = tx.User(id)
		return err
	})
	return u, s.storeErr(err, "User", id)
}

func (s *Service) storeErr(err error, resource, id string) error {
	var pe *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		return err
	case errors.Is(err, ErrNotFound):
		return newError(CodeNotFound, err, "%s %s not found", resource, id)
	case errors.Is(err, ErrConflict):
		return newError(CodeUniqueness, err, "%s", conflictDetail(err))
	}
	return err
}

// conflictDetail turns a store conflict ("userName \"x\": conflict") into a sentence.
func conflictDetail(err error) string {
	msg := strings.TrimSuffix(err.Error(), ": "+ErrConflict.Error())
	return msg + " is already in use by another resource"
}

// CreateUser stores a new user and gives them Panther access (invite, or adopt an
// existing Panther user with the same email). When Panther cannot be reached the
// record is not kept and the error is CodeUnavailable, so the IdP retries the POST.
func (s *Service) CreateUser(ctx context.Context, f UserFields) (User, error) {
	if err := checkUserFields(f); err != nil {
		return User{}, err
	}
	id, err := DeriveIdentity(f.UserName, f.Attributes)
	if err != nil {
		return User{}, err
	}
	if s.isProtected(id.Email) {
		return User{}, s.refuse(ctx, "", map[string]string{"userName": f.UserName, "email": id.Email}, RefuseProtected, CodeUniqueness,
			"email %q is on the protected list: panther-scim never provisions it", id.Email)
	}
	now := s.now().UTC()
	in := Intent{Since: now, NextAttempt: s.requestDue()}
	_, invites := s.opts.Mapping.Resolve(nil)
	// A new record is in no group, so it asks for access exactly when it is active and
	// the default role is set: its invite is recorded now, with the intent, and the
	// sync that sends it needs no commit of its own.
	invites = invites && f.Active
	u := User{
		ID: uuid.Must(uuid.NewV7()).String(), UserName: f.UserName, ExternalID: f.ExternalID, Active: f.Active,
		Email: id.Email, Attributes: f.Attributes, Created: now, LastModified: now, Version: 1,
	}
	// Batch: an import's creates arrive many at once, and each would otherwise be a
	// commit of its own (two fsyncs) on the store's single writer, which then paces
	// the import more than Panther does. The function only writes through tx (its
	// log line waits for the commit), so it may run twice (see Store.Batch).
	err = s.store.Batch(ctx, func(tx Tx) error {
		if other, err := tx.UserByUserName(u.UserName); err == nil {
			return newError(CodeUniqueness, nil, "userName %q is already taken by user %s", u.UserName, other.ID)
		}
		if other, err := tx.UserByEmail(u.Email); err == nil {
			return newError(CodeUniqueness, nil, "email %q is already used by user %s", u.Email, other.ID)
		}
		if err := tx.PutUser(u); err != nil {
			return err
		}
		in.UserID = u.ID
		if invites {
			// Batch may run this function twice: the intent is rebuilt each time.
			in.Invites = nil
			if _, err := noteInvite(tx, &in, u.Email, now); err != nil {
				return err
			}
		}
		if err := tx.PutIntent(in); err != nil {
			return err
		}
		after := s.accessOf(tx, newGroupRefCache(tx), u.ID, u.Active, false, userAuditFields(&u, nil))
		return tx.AppendAudit(s.auditEntry(ctx, "user.create", "User", u.ID, nil, after, "accepted"))
	})
	if err != nil {
		return User{}, s.storeErr(err, "User", u.ID)
	}
	s.logChange(ctx, "user.create", "User", u.ID, "accepted")
	s.hook(s.opts.Hooks.AfterStoreWrite)
	if err := s.syncNow(ctx, u.ID); err != nil {
		// Nothing recorded but the invite (InviteRecord): the IdP will retry the POST.
		// If Panther did invite the user (a response lost on the way back), that retry
		// finds them by email and, by the invite record, links them as panther-scim's
		// own.
		s.rollbackCreate(ctx, u.ID, err)
		return User{}, s.pantherErr(err)
	}
	return s.GetUser(ctx, u.ID)
}

func (s *Service) rollbackCreate(ctx context.Context, id string, cause error) {
	// Not cancelled with the request, but keeping its actor and request id for the audit.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := s.store.Update(ctx, func(tx Tx) error {
		u, err := tx.User(id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if u.Version != 1 {
			return nil // changed since: keep it, the intent will finish it
		}
		if err := tx.DeleteUser(id); err != nil {
			return err
		}
		if err := tx.DeleteIntent(id); err != nil {
			return err
		}
		return s.audit(ctx, tx, "user.create", "User", id, nil, nil, "rolled back: "+safeCause(cause))
	})
	if err != nil {
		s.log.ErrorContext(ctx, "rollback of failed create", "user", id, "err", err)
	}
}

func safeCause(err error) string {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Detail
	}
	for _, e := range []error{ErrUnavailable, ErrRateLimited, ErrUnauthorized, ErrInvalid, ErrConflict, ErrNotFound} {
		if errors.Is(err, e) {
			return "panther " + e.Error()
		}
	}
	return "error"
}

// pantherErr maps a sync failure to what the IdP sees.
func (s *Service) pantherErr(err error) error {
	var pe *Error
	switch {
	case errors.As(err, &pe):
		return pe
	case Retryable(err), errors.Is(err, context.DeadlineExceeded):
		return unavailable(err)
	case errors.Is(err, ErrInvalid):
		return newError(CodeInvalid, err, "Panther rejected the user: %s", pantherMessage(err))
	case errors.Is(err, ErrUnauthorized):
		return newError(CodeUnavailable, err, "panther-scim cannot authenticate to Panther; an administrator must fix its API token")
	}
	return newError(CodeInternal, err, "provisioning failed")
}

// pantherMessage returns Panther's own message of an ErrInvalid error (the client puts
// it after the last ": ").
func pantherMessage(err error) string {
	msg := err.Error()
	msg = strings.TrimSuffix(msg, ": "+ErrInvalid.Error())
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// UpdateUser applies a change (PUT or PATCH) computed by mutate from the current
// record, in one transaction; expect, when non-zero, is the If-Match version.
// A change that makes no difference writes nothing and calls nothing.
//
// A change that Panther refuses, or that panther-scim refuses to make there (an email
// another Panther user holds, an administrator the adoption policy keeps, the last
// administrator), is not kept: the record is put back as it was and the IdP gets 409.
// Only a deactivation is kept when the Panther user is not panther-scim's (any more) or
// protected: the record says what the IdP wants, and Panther is left alone.
//
// A change that would give Panther an address it does not hold for this user (a new
// email, or a re-invite on reactivation) is checked with Panther before anything is
// written (checkEmail): held by another Panther user, it is refused and nothing is
// written; when Panther cannot be asked, the IdP gets 503 and nothing is written
// either (a deactivation excepted: it goes ahead, as every deactivation does). What
// changes in Panther between the check and the update is the intent's Revert's to
// undo.
func (s *Service) UpdateUser(ctx context.Context, id string, expect int64, mutate func(User) (UserFields, error)) (User, error) {
	var before, after User
	var needSync, changed, pendingBefore bool
	checked := map[string]bool{} // emails (EmailKey) Panther was asked about in this request
	for round := 0; ; round++ {
		var check *emailCheck
		err := s.store.Update(ctx, func(tx Tx) error {
			old, err := tx.User(id)
			if err != nil {
				return err
			}
			if expect != 0 && old.Version != expect {
				return newError(CodePrecondition, nil, "user %s is at version %d, not %d", id, old.Version, expect)
			}
			f, err := mutate(old)
			if err != nil {
				return err
			}
			if err := checkUserFields(f); err != nil {
				return err
			}
			ident, err := DeriveIdentity(f.UserName, f.Attributes)
			if err != nil {
				return err
			}
			if s.isProtected(ident.Email) && !SameEmail(ident.Email, old.Email) {
				return s.refuse(ctx, id, map[string]string{"userName": f.UserName, "email": ident.Email}, RefuseProtected, CodeUniqueness,
					"email %q is on the protected list: panther-scim never provisions it", ident.Email)
			}
			nu := old
			nu.UserName, nu.ExternalID, nu.Active, nu.Attributes, nu.Email = f.UserName, f.ExternalID, f.Active, f.Attributes, ident.Email
			before, after = old, nu
			if sameUser(old, nu) {
				return nil
			}
			changed = true
			if !strings.EqualFold(old.UserName, nu.UserName) {
				if other, err := tx.UserByUserName(nu.UserName); err == nil && other.ID != id {
					return newError(CodeUniqueness, nil, "userName %q is already taken by user %s", nu.UserName, other.ID)
				}
			}
			if !SameEmail(old.Email, nu.Email) {
				if other, err := tx.UserByEmail(nu.Email); err == nil && other.ID != id {
					return newError(CodeUniqueness, nil, "email %q is already used by user %s", nu.Email, other.ID)
				}
			}
			pending, perr := tx.Intent(id)
			if c, err := s.emailToCheck(tx, old, nu); err != nil {
				return err
			} else if c != nil && !checked[EmailKey(c.email)] {
				c.in = pending
				if perr != nil {
					c.in = Intent{UserID: id}
				}
				check = c
				return c // nothing written: checkEmail asks Panther, then the change runs again
			}
			nu.Version++
			nu.LastModified = s.now().UTC()
			after = nu
			if err := tx.PutUser(nu); err != nil {
				return err
			}
			oldIdent, _ := DeriveIdentity(old.UserName, old.Attributes)
			pendingBefore = perr == nil
			needSync = pendingBefore || old.Active != nu.Active || oldIdent != ident
			if needSync {
				// Revert: the record to put back if what this change (and any still
				// pending before it) asks of Panther is refused. A change to neither the
				// identity nor the active flag asks Panther nothing new.
				var revert *PriorState
				if old.Active != nu.Active || oldIdent != ident {
					revert = priorState(old, pendingBefore && pending.Revert == nil)
				}
				if err := s.putIntentReverting(tx, id, revert); err != nil {
					return err
				}
			}
			action := "user.update"
			switch {
			case old.Active && !nu.Active:
				action = "user.deactivate"
			case !old.Active && nu.Active:
				action = "user.reactivate"
			}
			refs, linked := newGroupRefCache(tx), nu.Panther.ID != ""
			return s.audit(ctx, tx, action, "User", id, s.accessOf(tx, refs, id, old.Active, linked, userAuditFields(&old, nil)),
				s.accessOf(tx, refs, id, nu.Active, linked, userAuditFields(&nu, nil)), "accepted")
		})
		if check == nil || !errors.Is(err, check) {
			if err != nil {
				return User{}, s.storeErr(err, "User", id)
			}
			break
		}
		if round >= maxEmailChecks {
			return User{}, newError(CodeUnavailable, nil, "user %s kept changing while its email was checked with Panther; retry", id)
		}
		if cerr := s.checkEmail(ctx, id, check); cerr != nil {
			if _, refused := refusalOf(cerr); refused || !check.deactivation {
				return User{}, s.pantherErr(cerr)
			}
			// A deactivation is never held up: it goes ahead unchecked, and should
			// Panther refuse the email later, the sync puts the email back and keeps the
			// deactivation (Intent.Revert).
			s.log.WarnContext(ctx, "could not check a new email with Panther; the deactivation goes ahead", "user", id, "err", cerr)
		}
		checked[EmailKey(check.email)] = true
	}
	if !changed {
		return before, nil
	}
	if needSync {
		s.hook(s.opts.Hooks.AfterStoreWrite)
		if err := s.syncNow(ctx, id); err != nil {
			if r, refused := refusalOf(err); refused {
				if before.Active && !after.Active && s.stillInactive(ctx, id) {
					// The Panther user is not panther-scim's to change (any more), or
					// protected, or only the email was refused: the deactivation stands
					// (the sync put the rest back), and the IdP is told it did.
					s.log.WarnContext(ctx, "deactivation recorded; the rest of the change was refused", "user", id, "reason", r.Reason)
					return s.GetUser(ctx, id)
				}
				s.rollbackUpdate(ctx, before, after, pendingBefore, r)
				return User{}, r
			}
			deactivation := before.Active && !after.Active
			if !deactivation && !Retryable(err) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrUnauthorized) {
				// Panther refused the change itself (invalid, a conflict, or words the
				// client does not know): it is not kept, nor retried. A deactivation is
				// kept and retried whatever Panther says: a leaver must lose access.
				pe := s.pantherErr(err)
				var e *Error
				if errors.As(pe, &e) {
					s.rollbackUpdate(ctx, before, after, pendingBefore, &Error{Code: e.Code, Detail: e.Detail, Reason: "refused by Panther"})
				}
				return User{}, pe
			}
			if !Retryable(err) && !errors.Is(err, context.DeadlineExceeded) {
				return User{}, s.pantherErr(err)
			}
			// The change is recorded and its intent queued. Deprovisioning is done by
			// the background worker whatever happens, so it is accepted; any other change
			// answers 503 so that the IdP retries (an idempotent no-op for the store).
			if after.Active || before.Panther.ID == "" {
				return User{}, s.pantherErr(err)
			}
			s.log.WarnContext(ctx, "deactivation queued: Panther unavailable", "user", id, "err", err)
		}
	}
	return s.GetUser(ctx, id)
}

// maxEmailChecks bounds the rounds of UpdateUser's email check: each round asks
// Panther about an email the record took meanwhile, which a record changing that fast
// does not need answered now.
const maxEmailChecks = 4

// emailCheck is UpdateUser's request to ask Panther about an email before the change
// that gives it is written; it is also the error that rolls back the transaction.
type emailCheck struct {
	email string
	// invite: the record has no Panther user, so its sync invites the email, and a
	// Panther user already holding it is adopted or refused by the adoption policy
	// (claim); otherwise the sync updates the linked user's email, which another
	// Panther user's holding it refuses.
	invite       bool
	deactivation bool
	u            User   // the record as the change makes it
	in           Intent // its intent (invites recorded), or an empty one
}

func (c *emailCheck) Error() string { return "check " + c.email + " with Panther first" }

// emailToCheck returns the check the change from old to nu needs before it is written:
// one when the sync will give Panther an address it does not hold for this user, that
// is, when the change sets a new email and the record keeps access, or gives access
// back to a record without a Panther user (a reactivation re-invites). Nil otherwise.
func (s *Service) emailToCheck(tx ReadTx, old, nu User) (*emailCheck, error) {
	linked := old.Panther.ID != ""
	newEmail := !SameEmail(old.Email, nu.Email)
	switch {
	case linked && (!newEmail || SameEmail(nu.Email, old.Panther.Email)):
		return nil, nil // Panther holds the address for this user already
	case !linked && !newEmail && old.Active == nu.Active:
		return nil, nil // access asked for (or not) as before: nothing new to invite
	}
	refs := newGroupRefCache(tx)
	want, err := s.desiredOf(tx, refs, nu.ID, nu.Active, linked)
	if err != nil || !want.Access {
		return nil, err // no access: the address goes nowhere
	}
	if !linked && !newEmail {
		// Reactivated: a new invite, unless the record had access already (its own
		// sync, under way, invites the address).
		if had, err := s.desiredOf(tx, refs, old.ID, old.Active, linked); err != nil || had.Access {
			return nil, err
		}
	}
	return &emailCheck{email: nu.Email, invite: !linked, deactivation: old.Active && !nu.Active, u: nu}, nil
}

// checkEmail asks Panther whether c.email may become the record's: nil when no Panther
// user holds it, or the record's own does, or (for an invite) the user holding it is
// panther-scim's own invitee or one the adoption policy lets it adopt. A refusal is
// audited and returned; any other error means Panther could not be asked.
func (s *Service) checkEmail(ctx context.Context, id string, c *emailCheck) error {
	pu, err := s.panther.UserByEmail(ctx, c.email)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.invite {
		_, _, err := s.claim(ctx, c.u, pu, &c.in)
		return err
	}
	if pu.ID == c.u.Panther.ID {
		return nil // an update whose answer was lost already gave it the email
	}
	return s.refuse(ctx, id, map[string]string{"email": c.email, "pantherId": c.u.Panther.ID, "holder": pu.ID},
		RefuseEmailTaken, CodeUniqueness,
		"email %q is already used by another Panther user (%s): the change is refused and not kept", c.email, pu.ID)
}

// stillInactive reports whether the record is (still) inactive: after a refused
// change, whether its deactivation stood.
func (s *Service) stillInactive(ctx context.Context, id string) bool {
	u, err := s.GetUser(ctx, id)
	return err == nil && !u.Active
}

// rollbackUpdate puts back the record a refused change replaced, unless it changed
// again since (that change stands, and its own sync answers for it). The link keeps
// what the refused sync found in Panther; an intent pending before the change is queued
// again, as the refusal cleared it.
func (s *Service) rollbackUpdate(ctx context.Context, before, after User, pendingBefore bool, cause *Error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := s.store.Update(ctx, func(tx Tx) error {
		cur, err := tx.User(before.ID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur.Version != after.Version {
			return nil
		}
		back := before
		back.Panther = cur.Panther
		back.Version = cur.Version + 1
		back.LastModified = s.now().UTC()
		if err := tx.PutUser(back); err != nil {
			return err
		}
		if pendingBefore {
			if err := s.putIntent(tx, back.ID); err != nil {
				return err
			}
		} else if err := tx.DeleteIntent(back.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, "user.update", "User", back.ID, userAuditFields(&after, nil), userAuditFields(&back, nil),
			"rolled back: refused: "+cause.Reason)
	})
	if err != nil {
		s.log.ErrorContext(ctx, "rollback of a refused change", "user", before.ID, "err", err)
	}
}

// putIntent records, in the transaction of a change, that the user must be synced; the
// caller then syncs them itself (see requestDue).
func (s *Service) putIntent(tx Tx, userID string) error {
	return s.putIntentReverting(tx, userID, nil)
}

// putIntentReverting is putIntent for a change to the record: revert, when not nil, is
// the record before it, kept as the intent's Revert unless an earlier change still
// pending set one (the record is then put back to before that one).
func (s *Service) putIntentReverting(tx Tx, userID string, revert *PriorState) error {
	in, err := tx.Intent(userID)
	if errors.Is(err, ErrNotFound) {
		in = Intent{UserID: userID, Since: s.now().UTC()}
	} else if err != nil {
		return err
	}
	if in.Revert == nil {
		in.Revert = revert
	}
	in.NextAttempt = s.requestDue()
	in.Gen++
	return tx.PutIntent(in)
}

// requestDue is when the background worker may take up an intent that a request has
// just written: after the request has had its RequestSyncTimeout to sync it (or, on
// failure, to reschedule it with backoff). A worker sync started earlier would race the
// request's for the per-user lock, and the request would wait for it past its timeout.
func (s *Service) requestDue() time.Time {
	return s.now().UTC().Add(s.opts.RequestSyncTimeout)
}

// sameUser reports whether two records hold the same SCIM data.
func sameUser(a, b User) bool {
	return a.UserName == b.UserName && a.ExternalID == b.ExternalID && a.Active == b.Active &&
		a.Email == b.Email && deepEqualJSON(a.Attributes, b.Attributes)
}

// DeleteUser removes the record and the user's Panther access. The removal is queued
// durably, so it is never lost: a Panther outage delays it but the call succeeds.
//
// Deleting the last enabled Panther administrator is refused (CodeConflict) before
// anything changes.
func (s *Service) DeleteUser(ctx context.Context, id string, expect int64) error {
	release, err := s.preflightRemoval(ctx, id)
	if err != nil {
		return err
	}
	defer release()
	var link PantherLink
	err = s.store.Update(ctx, func(tx Tx) error {
		u, err := tx.User(id)
		if err != nil {
			return err
		}
		if expect != 0 && u.Version != expect {
			return newError(CodePrecondition, nil, "user %s is at version %d, not %d", id, u.Version, expect)
		}
		groups, err := tx.GroupIDsOfUser(id)
		if err != nil {
			return err
		}
		link = u.Panther
		in, ierr := tx.Intent(id)
		since := s.now().UTC()
		if ierr == nil {
			since = in.Since
		}
		// Read before the record and its memberships go.
		before := s.accessOf(tx, newGroupRefCache(tx), id, u.Active, u.Panther.ID != "", userAuditFields(&u, groups))
		if err := tx.DeleteUser(id); err != nil {
			return err
		}
		// A record that is not linked and recorded no invite never reached Panther:
		// nothing to remove.
		if u.Panther.ID != "" || len(in.Invites) > 0 {
			rm := Intent{UserID: id, Remove: &link, Email: u.Email, Invites: in.Invites, Since: since, Gen: in.Gen + 1,
				Attempts: in.Attempts, NextAttempt: s.requestDue()}
			if err := tx.PutIntent(rm); err != nil {
				return err
			}
		} else if ierr == nil {
			if err := tx.DeleteIntent(id); err != nil {
				return err
			}
		}
		return s.audit(ctx, tx, "user.delete", "User", id, before, nil, "accepted")
	})
	if err != nil {
		return s.storeErr(err, "User", id)
	}
	s.hook(s.opts.Hooks.AfterStoreWrite)
	if err := s.syncNow(ctx, id); err != nil {
		s.log.WarnContext(ctx, "user deletion queued: Panther call failed", "user", id, "err", err)
	}
	return nil
}

// preflightRemoval refuses, before anything is written, the deletion of a record whose
// Panther user is the last enabled administrator. A record whose linked role is known
// not to hold UserModify costs no Panther call; the sync checks again before deleting.
// When it lets an administrator's deletion through, the Panther user stays reserved
// (no other check counts it as another administrator) until the caller calls release,
// which DeleteUser defers past the deletion's own sync: so that of two administrators deleted at once, the
// last two, the second is refused here (409) rather than accepted and then refused by
// its sync.
func (s *Service) preflightRemoval(ctx context.Context, id string) (release func(), _ error) {
	nop := func() {}
	var link PantherLink
	err := s.store.View(ctx, func(tx ReadTx) error {
		u, err := tx.User(id)
		if err != nil {
			return err
		}
		link = u.Panther
		return nil
	})
	if err != nil || link.ID == "" || s.knownNonAdmin(link.RoleID) {
		return nop, nil // a missing record is DeleteUser's to report
	}
	pu, err := s.panther.UserByID(ctx, link.ID)
	if errors.Is(err, ErrNotFound) || (err == nil && !SameEmail(pu.Email, link.Email)) {
		return nop, nil
	}
	if err == nil {
		if release, err = s.guardLastAdmin(ctx, id, pu, "delete"); err == nil {
			return release, nil
		}
	}
	if _, refused := refusalOf(err); refused {
		return nop, err
	}
	// Panther cannot answer now: the deletion is queued as always (a deprovisioning is
	// never held up), and its sync checks again before deleting.
	s.log.WarnContext(ctx, "could not check for another Panther administrator before the deletion; its sync will", "user", id, "err", err)
	return nop, nil
}

// ---- groups ---------------------------------------------------------------------

// GroupFields is what the IdP sets on a group.
type GroupFields struct {
	DisplayName string
	ExternalID  string
	Members     []string
}

// GetGroup returns a group record, or a CodeNotFound *Error.
func (s *Service) GetGroup(ctx context.Context, id string) (Group, error) {
	var g Group
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		g, err = tx.Group(id)
		return err
	})
	return g, s.storeErr(err, "Group", id)
}

// CreateGroup stores a new group and gives its members the roles it maps to.
func (s *Service) CreateGroup(ctx context.Context, f GroupFields) (Group, error) {
	if err := checkGroupFields(f); err != nil {
		return Group{}, err
	}
	now := s.now().UTC()
	g := Group{ID: uuid.Must(uuid.NewV7()).String(), Created: now, LastModified: now, Version: 1}
	return s.writeGroup(ctx, g.ID, "group.create", func(tx Tx) (*Group, *Group, error) {
		if other, err := tx.GroupByDisplayName(f.DisplayName); err == nil {
			return nil, nil, newError(CodeUniqueness, nil, "displayName %q is already taken by group %s", f.DisplayName, other.ID)
		}
		g.DisplayName, g.ExternalID, g.Members = f.DisplayName, f.ExternalID, f.Members
		return nil, &g, nil
	})
}

// UpdateGroup applies a PUT or PATCH computed by mutate, in one transaction, and
// recomputes the role of every member whose groups changed.
func (s *Service) UpdateGroup(ctx context.Context, id string, expect int64, mutate func(Group) (GroupFields, error)) (Group, error) {
	return s.writeGroup(ctx, id, "group.update", func(tx Tx) (*Group, *Group, error) {
		old, err := tx.Group(id)
		if err != nil {
			return nil, nil, err
		}
		if expect != 0 && old.Version != expect {
			return nil, nil, newError(CodePrecondition, nil, "group %s is at version %d, not %d", id, old.Version, expect)
		}
		f, err := mutate(old)
		if err != nil {
			return nil, nil, err
		}
		if err := checkGroupFields(f); err != nil {
			return nil, nil, err
		}
		if !strings.EqualFold(f.DisplayName, old.DisplayName) {
			if other, err := tx.GroupByDisplayName(f.DisplayName); err == nil && other.ID != id {
				return nil, nil, newError(CodeUniqueness, nil, "displayName %q is already taken by group %s", f.DisplayName, other.ID)
			}
		}
		nu := old
		nu.DisplayName, nu.ExternalID, nu.Members = f.DisplayName, f.ExternalID, dedupe(f.Members)
		if nu.DisplayName == old.DisplayName && nu.ExternalID == old.ExternalID && slices.Equal(nu.Members, old.Members) {
			return &old, nil, nil
		}
		nu.Version++
		nu.LastModified = s.now().UTC()
		return &old, &nu, nil
	})
}

// DeleteGroup removes a group and recomputes the role of its former members.
func (s *Service) DeleteGroup(ctx context.Context, id string, expect int64) error {
	_, err := s.writeGroup(ctx, id, "group.delete", func(tx Tx) (*Group, *Group, error) {
		old, err := tx.Group(id)
		if err != nil {
			return nil, nil, err
		}
		if expect != 0 && old.Version != expect {
			return nil, nil, newError(CodePrecondition, nil, "group %s is at version %d, not %d", id, old.Version, expect)
		}
		return &old, nil, nil
	})
	return err
}

// writeGroup runs change in a transaction: it returns the group before and after
// (nil before: created; nil after: deleted; after == before pointer-equal content: no-op).
// The transaction also writes an intent for every member whose Panther access or role
// changes; those users are then synced with bounded concurrency.
//
// A change that would take UserModify away from the last enabled Panther administrator
// is refused before anything is written. Only a change that moves a linked member out
// of a role that may hold UserModify asks Panther (see checkGroupAdmins: the demoted
// members by id and one other administrator, or one listing when many are demoted);
// the demoted administrators stay reserved until their syncs are over, and each sync
// checks again before its Panther call.
func (s *Service) writeGroup(ctx context.Context, id, action string, change func(Tx) (*Group, *Group, error)) (Group, error) {
	var chk *groupAdminCheck
	defer func() {
		if chk != nil {
			chk.release()
		}
	}()
	for checks := 0; ; checks++ {
		g, err := s.writeGroupOnce(ctx, id, action, change, chk)
		var need *needAdmins
		if !errors.As(err, &need) {
			return g, err
		}
		if chk != nil {
			chk.release()
		}
		if checks == groupAdminChecks {
			// Each new check follows a concurrent change of the group's members.
			return Group{}, &Error{Code: CodeUnavailable, RetryAfter: time.Second, Err: err,
				Detail: "the group's members kept changing while it was checked for Panther's last administrator; retry"}
		}
		chk = s.checkGroupAdmins(ctx, id, need.pantherIDs)
	}
}

// groupAdminChecks bounds the last-administrator checks of one group change.
const groupAdminChecks = 4

// needAdmins asks writeGroup to check the Panther users a change demotes before it
// runs the change again.
type needAdmins struct{ pantherIDs []string }

func (*needAdmins) Error() string { return "need Panther's administrators" }

func (s *Service) writeGroupOnce(ctx context.Context, id, action string, change func(Tx) (*Group, *Group, error), admins *groupAdminCheck) (Group, error) {
	var result Group
	var affected []string
	var refusal *Error
	deleting := false
	err := s.store.Update(ctx, func(tx Tx) error {
		before, after, err := change(tx)
		if err != nil {
			return err
		}
		if after == nil && before != nil && action != "group.delete" {
			result = *before // nothing changed
			return nil
		}
		var oldMembers, newMembers []string
		renamed := true
		if before != nil {
			oldMembers = before.Members
		}
		if after != nil {
			newMembers = after.Members
			if before != nil {
				renamed = !strings.EqualFold(before.DisplayName, after.DisplayName) || before.ExternalID != after.ExternalID
			}
		}
		// Before the write: what each candidate's desired access is now.
		cands := changedMembers(oldMembers, newMembers, renamed)
		ctxRefs := newGroupRefCache(tx)
		prev := make(map[string]desired, len(cands))
		for _, uid := range cands {
			prev[uid], err = s.desiredRole(tx, ctxRefs, uid)
			if err != nil {
				return err
			}
		}
		if after != nil {
			if err := tx.PutGroup(*after); err != nil {
				if errors.Is(err, ErrNotFound) {
					return newError(CodeInvalid, err, "members must be existing users: %v", err)
				}
				return err
			}
			result = *after
		} else {
			deleting = true
			if err := tx.DeleteGroup(id); err != nil {
				return err
			}
		}
		ctxRefs.reset()
		var demoted []string // linked members leaving a role that may hold UserModify
		for _, uid := range cands {
			d, err := s.desiredRole(tx, ctxRefs, uid)
			if err != nil {
				return err
			}
			if d == prev[uid] {
				continue
			}
			if p := prev[uid]; p.Access && ctxRefs.states[uid].Linked && s.roleMayAdmin(p.Role) && (!d.Access || !s.roleMayAdmin(d.Role)) {
				demoted = append(demoted, uid)
			}
			if err := s.putIntent(tx, uid); err != nil {
				return err
			}
			affected = append(affected, uid)
			if err := s.auditRole(ctx, tx, uid, id, prev[uid], d); err != nil {
				return err
			}
		}
		if len(demoted) > 0 {
			r, err := s.lastAdminOf(tx, admins, demoted)
			if err != nil {
				return err
			}
			if r != nil {
				refusal = r
				return r
			}
		}
		b, a := groupAudit(before), groupAudit(after)
		return s.audit(ctx, tx, action, "Group", id, b, a, fmt.Sprintf("accepted; %d member(s) to re-sync", len(affected)))
	})
	if refusal != nil {
		s.noteRefusal(ctx, "", map[string]string{"group": id}, refusal)
		return Group{}, refusal
	}
	var need *needAdmins
	if errors.As(err, &need) {
		return Group{}, err
	}
	if err != nil {
		return Group{}, s.storeErr(err, "Group", id)
	}
	if len(affected) > 0 {
		s.hook(s.opts.Hooks.AfterStoreWrite)
		sctx, cancel := context.WithTimeout(ctx, s.opts.RequestSyncTimeout)
		defer cancel()
		if err := s.syncMany(sctx, affected); err != nil {
			// A member whose Panther user is not panther-scim's (any more) is left alone
			// and the refusal audited; the group change itself stands.
			if r, refused := refusalOf(err); !refused || r.Reason == RefuseLastAdmin {
				return Group{}, s.pantherErr(err)
			}
		}
	}
	if deleting {
		return Group{}, nil
	}
	return s.GetGroup(ctx, result.ID)
}

// lastAdminOf returns a refusal when the members leaving an administrator role are
// all the enabled Panther administrators there are, as admins found them; a
// *needAdmins error when admins is nil or was made for other members.
func (s *Service) lastAdminOf(tx ReadTx, admins *groupAdminCheck, demoted []string) (*Error, error) {
	var ids []string
	for _, uid := range demoted {
		u, err := tx.User(uid)
		if err != nil {
			return nil, err
		}
		if u.Panther.ID != "" && !slices.Contains(ids, u.Panther.ID) {
			ids = append(ids, u.Panther.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if admins == nil {
		return nil, &needAdmins{pantherIDs: ids}
	}
	emails, stale := admins.decide(ids)
	if stale {
		return nil, &needAdmins{pantherIDs: ids}
	}
	if len(emails) == 0 {
		return nil, nil
	}
	return &Error{Code: CodeConflict, Reason: RefuseLastAdmin, Detail: fmt.Sprintf(
		"refused: this change would take UserModify away from %s, the only enabled Panther administrator(s), and leave Panther without an administrator. "+
			"Give another Panther user an administrator role first", strings.Join(emails, ", "))}, nil
}

// auditRole records a member's change of Panther access caused by a change to a
// group: the group entry says what the IdP changed, this one what it did to the user.
func (s *Service) auditRole(ctx context.Context, tx Tx, uid, groupID string, before, after desired) error {
	u, err := tx.User(uid)
	if errors.Is(err, ErrNotFound) {
		return nil // a member deleted in the same change: its own entry says so
	}
	if err != nil {
		return err
	}
	fields := func(d desired) map[string]string {
		return s.withAccess(map[string]string{"userName": u.UserName, "email": u.Email}, d)
	}
	return s.audit(ctx, tx, "user.role", "User", uid, fields(before), fields(after), "accepted; group "+groupID)
}

func groupAudit(g *Group) map[string]string {
	if g == nil {
		return nil
	}
	return map[string]string{"displayName": g.DisplayName, "externalId": g.ExternalID, "members": fmt.Sprint(len(g.Members))}
}

// changedMembers returns the users whose group list changes: all of them when the
// group's name (which mapping rules match) changes, else the symmetric difference.
func changedMembers(old, nu []string, renamed bool) []string {
	if renamed {
		return dedupe(append(append([]string{}, old...), nu...))
	}
	inOld := make(map[string]bool, len(old))
	for _, id := range old {
		inOld[id] = true
	}
	inNew := make(map[string]bool, len(nu))
	var out []string
	for _, id := range nu {
		inNew[id] = true
		if !inOld[id] {
			out = append(out, id)
		}
	}
	for _, id := range old {
		if !inNew[id] {
			out = append(out, id)
		}
	}
	return out
}

func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// syncNow syncs one user within the request's sync budget.
func (s *Service) syncNow(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestSyncTimeout)
	defer cancel()
	return s.SyncUser(ctx, id, false)
}

func (s *Service) hook(f func()) {
	if f != nil {
		f()
	}
}
