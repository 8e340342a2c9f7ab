package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// maxProblems caps the problems Verify reports: past that, more detail does not help.
const maxProblems = 50

// Report is what Inspect found in the store.
type Report struct {
	// Users, Groups and Intents are the records read.
	Users, Groups, Intents int
	// Damaged lists the records that did not decode (at most 50); DamagedCount
	// counts them all. They are skipped by scans and reported, not fatal.
	Damaged      []string
	DamagedCount int
	// Problems lists every other inconsistency (at most 50): an index and its
	// records disagreeing, a counter off, a member who is no user.
	Problems []string
	// Complete is false when ctx ended before the whole file was read.
	Complete bool
}

// OK says whether the store is free of damage and inconsistency as far as it was read.
func (r Report) OK() bool { return len(r.Problems) == 0 && r.DamagedCount == 0 }

// Verify checks, in one read transaction, that every record (user, group, intent,
// invite record) decodes, that each invite record is under its email's key, and that every
// index, the membership index, the group member lists and the counters agree with
// the records, both ways. It returns nil, or an error joining the problems found (at
// most 50). It reads the whole file, so it is for `verify`, tests and support, not for
// a request path.
func (b *Bolt) Verify(ctx context.Context) error {
	r, err := b.Inspect(ctx)
	if err != nil {
		return err
	}
	if r.OK() {
		return nil
	}
	var errs []error
	for _, d := range r.Damaged {
		errs = append(errs, fmt.Errorf("%w: %s", ErrDamaged, d))
	}
	for _, p := range r.Problems {
		errs = append(errs, errors.New(p))
	}
	return fmt.Errorf("store %s is inconsistent: %w", b.Path(), errors.Join(errs...))
}

// Inspect is Verify's check, reported in detail; it stops early, with Complete
// false, when ctx ends (deadline: a bounded check at start). Records that fail to
// decode are noted as damaged (Health, OnDamagedRecord) as a read would note them.
func (b *Bolt) Inspect(ctx context.Context) (rep Report, err error) {
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	defer b.recoverPage(&err)
	err = b.db.View(func(tx *bolt.Tx) error {
		v := verifier{tx: tx, ctx: ctx, dmg: &b.damage}
		v.run()
		rep = Report{Users: v.nUsers, Groups: v.nGroups, Intents: v.nIntents, Damaged: v.damaged,
			DamagedCount: v.damagedCount, Complete: !v.stopped}
		for _, p := range v.problems {
			rep.Problems = append(rep.Problems, p.Error())
		}
		return nil
	})
	return rep, err
}

type verifier struct {
	tx       *bolt.Tx
	ctx      context.Context
	dmg      *damage
	problems []error
	// damaged lists the records that did not decode; badUsers and badGroups hold their
	// ids, which exist (their index entries are not stale) but cannot be compared.
	damaged                   []string
	damagedCount              int
	badUsers, badGroups       map[string]bool
	nUsers, nGroups, nIntents int
	stopped                   bool
	sinceCtx                  int
}

func (v *verifier) fail(format string, args ...any) {
	if len(v.problems) < maxProblems {
		v.problems = append(v.problems, fmt.Errorf(format, args...))
	}
}

// undecodable notes a record that did not decode.
func (v *verifier) undecodable(kind string, k []byte, err error) {
	v.dmg.record(kind, k, err)
	v.damagedCount++
	if len(v.damaged) < maxProblems {
		v.damaged = append(v.damaged, err.Error())
	}
}

// done says whether to stop: ctx is looked at every 256 records.
func (v *verifier) done() bool {
	if v.stopped {
		return true
	}
	if v.sinceCtx++; v.sinceCtx%256 == 0 && v.ctx.Err() != nil {
		v.stopped = true
	}
	return v.stopped
}

// userFacts are the parts of a user record the index cross-checks compare.
type userFacts struct {
	userName, email, pantherID, externalID string
}

// errStop ends a ForEach early.
var errStop = errors.New("stop")

func (v *verifier) run() {
	for _, name := range allBuckets {
		if v.tx.Bucket(name) == nil {
			v.fail("bucket %q is missing", name)
			return
		}
	}
	if ver, _ := readU64(v.tx.Bucket(bucketMeta).Get(keySchema)); ver != SchemaVersion {
		v.fail("schema version %d, want %d", ver, SchemaVersion)
	}
	v.badUsers, v.badGroups = map[string]bool{}, map[string]bool{}

	// Only what the cross-checks compare is kept of each user: whole records (their
	// attribute maps) were 200 MB of live heap at 100,000 users, more than a container
	// sized for the server holds, and this check runs at every start.
	users := map[string]userFacts{}
	_ = v.tx.Bucket(bucketUsers).ForEach(func(k, val []byte) error {
		if v.done() {
			return errStop
		}
		v.nUsers++
		u, err := decode[provision.User]("user", k, val)
		if err != nil {
			v.badUsers[string(k)] = true
			v.undecodable("user", k, err)
			return nil
		}
		if u.ID != string(k) {
			v.fail("user under key %q has id %q", k, u.ID)
		}
		if headed(val) {
			st, _, _ := splitUserHeader(val)
			if st != (userState{userName: u.UserName, active: u.Active, linked: u.Panther.ID != ""}) {
				v.fail("user %q: header %+v disagrees with the record", k, st)
			}
		}
		users[string(k)] = userFacts{userName: u.UserName, email: u.Email, pantherID: u.Panther.ID, externalID: u.ExternalID}
		return nil
	})
	groups := map[string]provision.Group{}
	_ = v.tx.Bucket(bucketGroups).ForEach(func(k, val []byte) error {
		if v.done() {
			return errStop
		}
		v.nGroups++
		g, err := decode[provision.Group]("group", k, val)
		if err != nil {
			v.badGroups[string(k)] = true
			v.undecodable("group", k, err)
			return nil
		}
		if g.ID != string(k) {
			v.fail("group under key %q has id %q", k, g.ID)
		}
		if groupHeaded(val) {
			h, _, _ := splitGroupHeader(val)
			if h != (provision.GroupHeader{DisplayName: g.DisplayName, ExternalID: g.ExternalID}) {
				v.fail("group %q: header %+v disagrees with the record", k, h)
			}
		}
		groups[string(k)] = g
		return nil
	})
	_ = v.tx.Bucket(bucketIntents).ForEach(func(k, val []byte) error {
		if v.done() {
			return errStop
		}
		v.nIntents++
		if _, err := decode[provision.Intent]("intent of user", k, val); err != nil {
			v.undecodable("intent of user", k, err)
		}
		return nil
	})
	_ = v.tx.Bucket(bucketInvites).ForEach(func(k, val []byte) error {
		if v.done() {
			return errStop
		}
		r, err := decode[provision.InviteRecord]("invite of", k, val)
		if err != nil {
			v.undecodable("invite of", k, err)
		} else if !bytes.Equal(inviteKey(r.Email), k) {
			v.fail("invite record under key %q is for %q", k, r.Email)
		}
		return nil
	})
	if v.stopped {
		return // the cross-checks need every record
	}

	userAttr := map[string]func(userFacts) string{
		"userName":   func(u userFacts) string { return u.userName },
		"email":      func(u userFacts) string { return indexedEmail(u.userName, u.email) },
		"panther id": func(u userFacts) string { return u.pantherID },
	}
	for _, ix := range []uniqueIndex{idxUserName, idxEmail, idxPantherID} {
		attr := userAttr[ix.attr]
		v.unique(ix, len(users), func(id string) (string, bool) {
			u, ok := users[id]
			return attr(u), ok
		}, func(yield func(id, value string)) {
			for id, u := range users {
				yield(id, attr(u))
			}
		})
	}
	v.unique(idxDisplayName, len(groups), func(id string) (string, bool) {
		g, ok := groups[id]
		return g.DisplayName, ok
	}, func(yield func(id, value string)) {
		for id, g := range groups {
			yield(id, g.DisplayName)
		}
	})

	v.pairs(bucketUserExternalID, "user externalId", func(ext, id string) bool {
		u, ok := users[id]
		return v.badUsers[id] || ok && u.externalID == ext
	})
	for id, u := range users {
		if u.externalID != "" && v.tx.Bucket(bucketUserExternalID).Get(pairKey(u.externalID, id)) == nil {
			v.fail("user %q: externalId %q not indexed", id, u.externalID)
		}
	}
	v.pairs(bucketGroupExtID, "group externalId", func(ext, id string) bool {
		g, ok := groups[id]
		return v.badGroups[id] || ok && g.ExternalID == ext
	})
	for id, g := range groups {
		if g.ExternalID != "" && v.tx.Bucket(bucketGroupExtID).Get(pairKey(g.ExternalID, id)) == nil {
			v.fail("group %q: externalId %q not indexed", id, g.ExternalID)
		}
	}

	// Membership: Members lists and the index must be the same relation.
	memberships := 0
	mb := v.tx.Bucket(bucketMembers)
	for gid, g := range groups {
		seen := map[string]bool{}
		for _, m := range g.Members {
			if seen[m] {
				v.fail("group %q lists member %q twice", gid, m)
			}
			seen[m] = true
			if _, ok := users[m]; !ok && !v.badUsers[m] {
				v.fail("group %q lists member %q, who is no user", gid, m)
			}
			if mb.Get(memberKey(m, gid)) == nil {
				v.fail("group %q: member %q missing from the membership index", gid, m)
			}
		}
		memberships += len(seen)
	}
	indexed := 0
	_ = mb.ForEach(func(k, _ []byte) error {
		if _, gid, err := splitMemberKey(k); err != nil {
			indexed++
			v.fail("membership index: %w: %q", err, k)
		} else if v.badGroups[gid] {
			// the members of a group that did not decode cannot be compared
		} else if _, ok := groups[gid]; !ok {
			indexed++
			v.fail("membership index: stale entry %q (no group %q)", k, gid)
		} else {
			indexed++
		}
		return nil
	})
	if indexed != memberships {
		v.fail("membership index has %d entries, group member lists %d", indexed, memberships)
	}

	for _, c := range []struct {
		key  []byte
		want int
	}{
		{keyCountUsers, len(users) + len(v.badUsers)},
		{keyCountGroups, len(groups) + len(v.badGroups)},
		{keyCountIntents, v.tx.Bucket(bucketIntents).Stats().KeyN},
		{keyCountOutbox, v.outbox()},
	} {
		if n, _ := readU64(v.tx.Bucket(bucketMeta).Get(c.key)); int(n) != c.want {
			v.fail("counter %s = %d, records %d", c.key, n, c.want)
		}
	}
}

// outbox checks that each place in the export queue names the audit key of its own
// sequence number (the entry itself may be gone: see QueuedAudit.Pruned), and
// returns how many there are.
func (v *verifier) outbox() int {
	n := 0
	_ = v.tx.Bucket(bucketOutbox).ForEach(func(k, auditKey []byte) error {
		n++
		if len(k) != 8 || !bytes.Equal(auditSeq(auditKey), k) {
			v.fail("export queue: entry %x points to audit key %x of another sequence number", k, auditKey)
		}
		return nil
	})
	return n
}

// unique checks a unique index against the records: each entry names a record whose
// attribute has that key, and each record with a non-empty attribute has its entry.
func (v *verifier) unique(ix uniqueIndex, records int, valueOf func(id string) (string, bool), each func(yield func(id, value string))) {
	bk := v.tx.Bucket(ix.bucket)
	_ = bk.ForEach(func(k, packed []byte) error {
		id, err := unpackValue(packed)
		if err != nil {
			v.fail("%s index: %q: %w %x", ix.attr, k, err, packed)
			return nil
		}
		value, ok := valueOf(id)
		if !ok && (v.badUsers[id] || v.badGroups[id]) {
			return nil // a record that did not decode: reported as damaged
		}
		if !ok {
			v.fail("%s index: %q points to missing record %q", ix.attr, k, id)
		} else if !bytes.Equal(ix.key(value), k) {
			v.fail("%s index: %q points to record %q whose %s is %q", ix.attr, k, id, ix.attr, value)
		}
		return nil
	})
	each(func(id, value string) {
		if owner, _ := ix.owner(v.tx, value); value != "" && owner != id {
			v.fail("record %q: %s %q not indexed to it", id, ix.attr, value)
		}
	})
}

// pairs checks each key a "\x00" b of a pair index with ok(a, b).
func (v *verifier) pairs(bucket []byte, what string, ok func(a, b string) bool) {
	_ = v.tx.Bucket(bucket).ForEach(func(k, _ []byte) error {
		i := bytes.LastIndexByte(k, 0)
		if i < 0 {
			v.fail("%s index: malformed key %q", what, k)
		} else if !ok(string(k[:i]), string(k[i+1:])) {
			v.fail("%s index: stale entry %q", what, k)
		}
		return nil
	})
}
