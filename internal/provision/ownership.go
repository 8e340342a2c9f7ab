package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Ownership: panther-scim acts only on the Panther users it owns. A Panther user is
// its own when it invited it (the invite recorded durably in the intent before the
// call, Intent.Invites, and in the email's invite record, which outlives the intent)
// or adopted it under the adoption policy (the link records its id). Before any update or delete the Panther user is read afresh by id, and acted on
// only while its email is still the one linked (or the one the record asks for) and not
// protected. Each refusal is audited, logged, counted and answered with an *Error whose
// Reason names it; a refused change is never queued for a retry, and the record is put
// back as it was before it (putBack).

// AdoptPolicy says which existing Panther users (ones panther-scim did not invite) a
// record whose email they hold may take over.
type AdoptPolicy string

// The adoption policies (provisioning.adopt).
const (
	// AdoptNone adopts no existing Panther user: the record is refused.
	AdoptNone AdoptPolicy = "none"
	// AdoptNonAdmin adopts an existing Panther user unless its role holds UserModify.
	AdoptNonAdmin AdoptPolicy = "nonAdmin"
	// AdoptAll adopts any existing Panther user that is not protected.
	AdoptAll AdoptPolicy = "all"
)

// Observer is told of adoptions and refusals; app counts them.
type Observer interface {
	Adopted()
	Refused(reason string)
}

type nopObserver struct{}

func (nopObserver) Adopted()       {}
func (nopObserver) Refused(string) {}

// refuse records a refusal (audit entry, warning, metric) for the record id (empty
// when there is none yet) and returns it as an *Error for the IdP.
func (s *Service) refuse(ctx context.Context, id string, fields map[string]string, reason string, code Code, format string, args ...any) *Error {
	e := &Error{Code: code, Detail: fmt.Sprintf(format, args...), Reason: reason}
	s.noteRefusal(ctx, id, fields, e)
	return e
}

// noteRefusal audits, logs and counts a refusal. The audit entry has its own
// transaction: a refusal changes nothing else, and must be on the trail even when the
// change it refuses is rolled back.
func (s *Service) noteRefusal(ctx context.Context, id string, fields map[string]string, e *Error) {
	s.opts.Observer.Refused(e.Reason)
	s.log.WarnContext(ctx, "refused", "reason", e.Reason, "scim_id", id, "detail", e.Detail)
	after := map[string]string{"reason": e.Reason, "detail": e.Detail}
	for k, v := range fields {
		after[k] = v
	}
	s.auditLater(ctx, s.auditEntry(ctx, "user.refuse", "User", id, nil, after, "refused: "+e.Reason))
}

// auditLater appends an entry in a transaction of its own (Batch: many syncs may
// write at once); a failure to write it is logged, not returned, since the Panther
// side has already happened or been refused.
func (s *Service) auditLater(ctx context.Context, e AuditEntry) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.store.Batch(wctx, func(tx Tx) error { return tx.AppendAudit(e) }); err != nil {
		s.log.ErrorContext(ctx, "audit entry not written", "action", e.Action, "scim_id", e.ID, "err", err)
	}
}

// DefaultInviteRetention is how long an invite record is kept after the latest invite
// of its email by default: longer than an IdP takes to retry a POST it was answered
// 503 for (Okta retries within the hour, Entra ID at its next cycles), short enough that
// an address invited once is not claimed as panther-scim's own for long.
const DefaultInviteRetention = 7 * 24 * time.Hour

// recordInvite writes, durably and before any inviteUser call for the email, that the
// user's intent may invite it, and returns the attempt as recorded (an email already
// recorded keeps its first time).
func (s *Service) recordInvite(ctx context.Context, in *Intent, email string) (InviteAttempt, error) {
	if a, ok := in.invite(email); ok {
		return a, nil
	}
	at := s.now().UTC()
	var a InviteAttempt
	err := s.store.Batch(ctx, func(tx Tx) error {
		cur, err := tx.Intent(in.UserID)
		if err != nil {
			return fmt.Errorf("record the invite of %s: %w", email, err)
		}
		if a, err = noteInvite(tx, &cur, email, at); err != nil {
			return fmt.Errorf("record the invite of %s: %w", email, err)
		}
		return tx.PutIntent(cur)
	})
	if err != nil {
		return a, err
	}
	in.addInvite(a.Email, a.At)
	return a, nil
}

// withdrawInvites forgets the invites of email that in's record made, in its intent and
// in the email's invite record, once Panther has refused an invite of it and has no user
// with it: none of them created a Panther user.
func (s *Service) withdrawInvites(ctx context.Context, in *Intent, email string) error {
	ofEmail := func(a InviteAttempt) bool { return SameEmail(a.Email, email) }
	err := s.store.Batch(ctx, func(tx Tx) error {
		switch cur, err := tx.Intent(in.UserID); {
		case err == nil:
			cur.Invites = slices.DeleteFunc(cur.Invites, ofEmail)
			if err := tx.PutIntent(cur); err != nil {
				return err
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if r, err := tx.Invite(email); err == nil && r.UserID == in.UserID {
			return tx.DeleteInvite(email)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("forget the refused invite of %s: %w", email, err)
	}
	in.Invites = slices.DeleteFunc(in.Invites, ofEmail)
	return nil
}

// noteInvite records in tx that the record of in may invite email from at on: in the
// intent (which the caller writes) and in the email's invite record, which outlives
// the intent. It returns the attempt as the intent holds it. An invite record keeps
// its first time; one that cannot be read is replaced.
func noteInvite(tx Tx, in *Intent, email string, at time.Time) (InviteAttempt, error) {
	a := in.addInvite(email, at)
	r, err := tx.Invite(email)
	if err != nil {
		r = InviteRecord{At: a.At}
	}
	if a.At.Before(r.At) {
		r.At = a.At
	}
	r.Email, r.Last, r.UserID = email, at, in.UserID
	return a, tx.PutInvite(r)
}

// invitedAt returns when panther-scim first recorded an invite of email that it still
// remembers: in the record's intent, or in the email's invite record (which outlives a
// create rolled back after its invite was sent).
func (s *Service) invitedAt(ctx context.Context, in *Intent, email string) (time.Time, bool, error) {
	var at time.Time
	found := false
	if a, ok := in.invite(email); ok {
		at, found = a.At, true
	}
	err := s.store.View(ctx, func(tx ReadTx) error {
		r, err := tx.Invite(email)
		if err != nil {
			return nil // none, or unreadable: the intent's is all there is
		}
		if !found || r.At.Before(at) {
			at, found = r.At, true
		}
		return nil
	})
	return at, found, err
}

// PruneInvites deletes the invite records whose latest invite is older than
// Options.InviteRetention, and returns how many it deleted. Run calls it hourly.
func (s *Service) PruneInvites(ctx context.Context) (int, error) {
	before := s.now().UTC().Add(-s.opts.InviteRetention)
	n := 0
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		n, err = tx.PruneInvites(before)
		return err
	})
	return n, err
}

// claim decides whether a Panther user found by email may be linked to record u: it is
// panther-scim's own when an invite of that email was recorded (in the intent, or in
// the invite record a rolled-back create left) at or before the time Panther created
// it; otherwise linking it is an adoption, which the adoption policy allows or refuses.
// adopted says which it was.
func (s *Service) claim(ctx context.Context, u User, pu PantherUser, in *Intent) (_ PantherUser, adopted bool, _ error) {
	fields := map[string]string{"email": pu.Email, "pantherId": pu.ID, "pantherRole": pu.RoleName, "userName": u.UserName}
	if other, err := s.linkedTo(ctx, pu.ID); err != nil {
		return pu, false, err
	} else if other != "" && other != u.ID {
		return pu, false, s.refuse(ctx, u.ID, fields, RefuseLinkedElsewhere, CodeUniqueness,
			"Panther user %s (%s) is already linked to SCIM user %s", pu.ID, pu.Email, other)
	}
	if s.isProtected(pu.Email) {
		return pu, false, s.refuse(ctx, u.ID, fields, RefuseProtected, CodeUniqueness,
			"email %q is on the protected list: panther-scim never provisions it", pu.Email)
	}
	at, invited, err := s.invitedAt(ctx, in, pu.Email)
	if err != nil {
		return pu, false, err
	}
	if invited && !pu.CreatedAt.IsZero() && !pu.CreatedAt.Before(at) {
		s.log.InfoContext(ctx, "found the Panther user of an earlier invite", "scim_id", u.ID, "panther_id", pu.ID)
		return pu, false, nil
	}
	switch s.opts.Adopt {
	case AdoptNone:
		return pu, false, s.refuse(ctx, u.ID, fields, RefuseAdoptNone, CodeUniqueness,
			"a Panther user with email %s already exists (id %s, role %s) and provisioning.adopt is none: panther-scim takes over no existing Panther user. "+
				"Set provisioning.adopt to nonAdmin or all to manage it, or remove it from Panther", pu.Email, pu.ID, pu.RoleName)
	case AdoptNonAdmin:
		if pu.Admin {
			return pu, false, s.refuse(ctx, u.ID, fields, RefuseAdoptAdmin, CodeUniqueness,
				"Panther user %s (%s) has role %s, which holds UserModify, and provisioning.adopt is nonAdmin: panther-scim does not take over administrators. "+
					"Add %s to provisioning.protectedEmails to leave it alone, or set provisioning.adopt: all to manage it", pu.ID, pu.Email, pu.RoleName, pu.Email)
		}
	}
	return pu, true, nil
}

// noteAdoption audits, logs and counts a completed adoption: the Panther user, and its
// role before and after.
func (s *Service) noteAdoption(ctx context.Context, u User, before PantherUser, roleAfter string) {
	s.opts.Observer.Adopted()
	s.log.WarnContext(ctx, "adopted an existing Panther user", "scim_id", u.ID, "panther_id", before.ID,
		"email", before.Email, "role_before", before.RoleName, "role_after", roleAfter, "policy", string(s.opts.Adopt))
	s.auditLater(ctx, s.auditEntry(ctx, "user.adopt", "User", u.ID,
		map[string]string{"pantherId": before.ID, "email": before.Email, "role": before.RoleName, "createdAt": before.CreatedAt.UTC().Format("2006-01-02T15:04:05Z07:00")},
		map[string]string{"pantherId": before.ID, "userName": u.UserName, "role": roleAfter, "policy": string(s.opts.Adopt)},
		"adopted"))
}

// current reads the linked Panther user afresh and confirms it is still panther-scim's
// to change or delete: its email is the one linked, or the one the record asks for
// (an update whose answer was lost), and it is not protected. ErrNotFound when it is
// gone.
func (s *Service) current(ctx context.Context, id string, link PantherLink, emails ...string) (PantherUser, error) {
	pu, err := s.panther.UserByID(ctx, link.ID)
	if err != nil {
		return pu, err
	}
	fields := map[string]string{"pantherId": pu.ID, "email": pu.Email, "linkedEmail": link.Email, "pantherRole": pu.RoleName}
	if s.isProtected(pu.Email) {
		return pu, s.refuse(ctx, id, fields, RefuseProtected, CodeConflict,
			"Panther user %s now has the protected email %s: panther-scim never changes or deletes it", pu.ID, pu.Email)
	}
	if !stillOurs(pu.Email, link, emails...) {
		return pu, s.refuse(ctx, id, fields, RefuseNotOwned, CodeConflict,
			"Panther user %s now has email %s, not %s: it was changed in Panther, so panther-scim no longer treats it as its own. "+
				"Change it back in Panther, or delete this SCIM user and provision it again", pu.ID, pu.Email, link.Email)
	}
	return pu, nil
}

// stillOurs reports whether a linked Panther user's email (email) is still the one the
// link recorded, or one the record asks for (an update whose answer was lost): whether
// the user is still panther-scim's, protection aside. Reconcile and every sync that
// changes or deletes a linked user ask it.
func stillOurs(email string, link PantherLink, wanted ...string) bool {
	if SameEmail(email, link.Email) {
		return true
	}
	for _, e := range wanted {
		if e != "" && SameEmail(email, e) {
			return true
		}
	}
	return false
}

// removeLinked deletes the linked Panther user after confirming, against Panther's
// current state, that it is still ours and that Panther keeps an administrator.
// emails are the record's emails the user may hold besides the linked one.
func (s *Service) removeLinked(ctx context.Context, link PantherLink, self string, emails ...string) error {
	if s.isProtected(link.Email) {
		s.log.WarnContext(ctx, "not removing a protected Panther user", "panther_id", link.ID)
		return nil
	}
	if other, err := s.linkedTo(ctx, link.ID); err != nil {
		return err
	} else if other != "" && other != self {
		return nil // adopted by another record since: no longer ours to remove
	}
	pu, err := s.current(ctx, self, link, emails...)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	release, err := s.guardLastAdmin(ctx, self, pu, "delete")
	if err != nil {
		return err
	}
	defer release()
	return s.deletePanther(ctx, pu.ID)
}

// removeInvited removes the Panther users that the recorded invites of a record that
// was never linked may have created: each email is looked up, and its user deleted only
// when Panther created it at or after the attempt, no other record holds it, and it is
// not protected. A Panther user that existed before is not ours: it is left alone (and
// the refusal audited).
func (s *Service) removeInvited(ctx context.Context, invites []InviteAttempt, self string) error {
	for _, a := range invites {
		pu, err := s.panther.UserByEmail(ctx, a.Email)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if other, err := s.linkedTo(ctx, pu.ID); err != nil {
			return err
		} else if other != "" && other != self {
			continue
		}
		fields := map[string]string{"pantherId": pu.ID, "email": pu.Email, "pantherRole": pu.RoleName}
		switch {
		case s.isProtected(pu.Email):
			s.refuse(ctx, self, fields, RefuseProtected, CodeConflict, "Panther user %s has the protected email %s: not removed", pu.ID, pu.Email)
			continue
		case pu.CreatedAt.IsZero() || pu.CreatedAt.Before(a.At):
			s.refuse(ctx, self, fields, RefuseNotOwned, CodeConflict,
				"Panther user %s (%s) was created at %s, before panther-scim's first invite of that email (%s): it is not panther-scim's, and is left alone",
				pu.ID, pu.Email, pu.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"), a.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
			continue
		}
		if err := s.removeInvitedOne(ctx, self, pu); err != nil {
			return err
		}
	}
	return nil
}

// removeInvitedOne deletes one Panther user that removeInvited found to be ours.
func (s *Service) removeInvitedOne(ctx context.Context, self string, pu PantherUser) error {
	release, err := s.guardLastAdmin(ctx, self, pu, "delete")
	if err != nil {
		return err
	}
	defer release()
	return s.deletePanther(ctx, pu.ID)
}

func (s *Service) deletePanther(ctx context.Context, id string) error {
	err := s.panther.DeleteUser(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err == nil {
		s.log.InfoContext(ctx, "panther call", "op", "deleteUser", "panther_id", id)
		s.hook(s.opts.Hooks.AfterPantherCall)
	}
	return err
}
