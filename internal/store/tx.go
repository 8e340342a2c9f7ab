package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// readTx is the provision.ReadTx of View. It has no write methods, so a View callback
// cannot type-assert its way to provision.Tx.
type readTx struct {
	tx *bolt.Tx
	// keys remembers, in a write transaction, the indexed values of the users it has
	// read, as stored: a sync reads a user and writes it back, and PutUser would
	// otherwise decode (and decompress) the stored record again to move its index
	// entries. nil in read transactions.
	keys map[string]userKeys
	// dmg notes the records that fail to decode (nil: not noted).
	dmg *damage

	// What the reads of a read-only transaction reuse from one call to the next, so
	// that a scan calling them for every user (the reconciler's) allocates nothing for
	// them: bbolt allocates a bucket (and a cursor to find it) at each Tx.Bucket of a
	// read-only transaction, and a cursor at each Bucket.Cursor. Safe because nothing
	// changes in a read-only transaction and, as bbolt's, a transaction is used by one
	// goroutine at a time (store.parallel gives its workers keys, not the transaction).
	opened  [6]openedBucket
	members *bolt.Cursor // on bucketMembers
	// groupIDs interns the group ids GroupIDsOfUser reads, by packed id, from its
	// second call in a transaction (of either kind): 2,000 group strings for a
	// reconcile instead of one per membership.
	groupIDs    map[string]string
	memberReads int
}

// openedBucket is a bucket a read-only transaction has opened.
type openedBucket struct {
	name string
	b    *bolt.Bucket
}

// userKeys are the indexed values of a stored user record.
type userKeys struct{ userName, email, pantherID, externalID string }

func keysOf(u provision.User) userKeys {
	return userKeys{u.UserName, u.Email, u.Panther.ID, u.ExternalID}
}

// writeTx is the provision.Tx of Update.
type writeTx struct {
	readTx
	now func() time.Time
}

var (
	_ provision.ReadTx = (*readTx)(nil)
	_ provision.Tx     = (*writeTx)(nil)
)

func (r *readTx) bucket(name []byte) *bolt.Bucket {
	if r.tx.Writable() {
		// bbolt keeps the buckets of a writable transaction itself.
		b := r.tx.Bucket(name)
		if fp, ok := fillPercent[string(name)]; ok {
			b.FillPercent = fp
		}
		return b
	}
	for i := range r.opened {
		switch o := &r.opened[i]; {
		case o.b == nil:
			o.b = r.tx.Bucket(name)
			if o.b != nil {
				o.name = string(name)
			}
			return o.b
		case o.name == string(name):
			return o.b
		}
	}
	return r.tx.Bucket(name) // more buckets than slots: not kept
}

// fillPercent is how full bbolt packs the pages it splits, for the buckets whose keys
// arrive in ascending order: user and group ids are UUIDv7s (time order) and audit
// keys start with the time. An append splits the last page, and at bbolt's default
// (half full) every page it leaves behind stays half full: 100k users took 195 MB of
// pages for 78 MB of records. The other buckets take keys in any order and keep the
// default, which leaves room for inserts between keys.
var fillPercent = map[string]float64{
	string(bucketUsers):  0.9,
	string(bucketGroups): 0.9,
	string(bucketAudit):  0.95,
	string(bucketOutbox): 0.95,
}

// --- users ---

// User returns the user with the SCIM id, or ErrNotFound.
func (r *readTx) User(id string) (provision.User, error) {
	k := []byte(id)
	v := r.bucket(bucketUsers).Get(k)
	if v == nil {
		return provision.User{}, fmt.Errorf("user %q: %w", id, ErrNotFound)
	}
	u, err := decodeAs[provision.User](r, "user", k, v)
	if err == nil && r.keys != nil {
		r.keys[id] = keysOf(u)
	}
	return u, err
}

// userVia follows a unique index to the user it names.
func (r *readTx) userVia(ix uniqueIndex, value string) (provision.User, error) {
	id, err := ix.owner(r.tx, value)
	if err != nil {
		return provision.User{}, err
	}
	if id == "" {
		return provision.User{}, fmt.Errorf("user with %s %q: %w", ix.attr, value, ErrNotFound)
	}
	return r.User(id)
}

// UserByUserName finds a user by userName, case-insensitively, or ErrNotFound.
func (r *readTx) UserByUserName(userName string) (provision.User, error) {
	return r.userVia(idxUserName, userName)
}

// UserByEmail finds a user by Panther email, case-insensitively, or ErrNotFound. The
// email index leaves out users whose email is their userName (indexedEmail): such a
// user is found under its userName.
func (r *readTx) UserByEmail(email string) (provision.User, error) {
	u, err := r.userVia(idxEmail, email)
	if !errors.Is(err, ErrNotFound) || email == "" {
		return u, err
	}
	if v, uerr := r.userVia(idxUserName, email); uerr == nil && sameFold(v.Email, email) {
		return v, nil
	} else if uerr != nil && !errors.Is(uerr, ErrNotFound) {
		return v, uerr
	}
	return u, err
}

// UserByPantherID finds the user linked to a Panther user id, or ErrNotFound.
func (r *readTx) UserByPantherID(pantherID string) (provision.User, error) {
	return r.userVia(idxPantherID, pantherID)
}

// UsersByExternalID returns the users whose externalId is exactly ext, in id order.
// An empty ext matches nothing: empty externalIds are not indexed.
func (r *readTx) UsersByExternalID(ext string) ([]provision.User, error) {
	if ext == "" {
		return nil, nil
	}
	var out []provision.User
	err := scanPairs(r.bucket(bucketUserExternalID), ext, func(id string) error {
		u, err := r.User(id)
		if err != nil {
			return fmt.Errorf("externalId index: %w", err)
		}
		out = append(out, u)
		return nil
	})
	return out, err
}

// UserCount is the number of user records, from a counter kept with them.
func (r *readTx) UserCount() (int, error) { return r.count(keyCountUsers), nil }

// ScanUsers calls fn for users in id order after skipping offset records, which it
// steps over with the cursor without decoding them.
func (r *readTx) ScanUsers(offset int, fn func(provision.User) bool) error {
	return scan(r, r.bucket(bucketUsers), "user", offset, fn)
}

// --- groups ---

// Group returns the group with the SCIM id, or ErrNotFound.
func (r *readTx) Group(id string) (provision.Group, error) {
	k := []byte(id)
	v := r.bucket(bucketGroups).Get(k)
	if v == nil {
		return provision.Group{}, fmt.Errorf("group %q: %w", id, ErrNotFound)
	}
	return decodeAs[provision.Group](r, "group", k, v)
}

// GroupByDisplayName finds a group by displayName, case-insensitively, or ErrNotFound.
func (r *readTx) GroupByDisplayName(name string) (provision.Group, error) {
	id, err := idxDisplayName.owner(r.tx, name)
	if err != nil {
		return provision.Group{}, err
	}
	if id == "" {
		return provision.Group{}, fmt.Errorf("group with displayName %q: %w", name, ErrNotFound)
	}
	return r.Group(id)
}

// GroupsByExternalID returns the groups whose externalId is exactly ext, in id order.
// An empty ext matches nothing.
func (r *readTx) GroupsByExternalID(ext string) ([]provision.Group, error) {
	if ext == "" {
		return nil, nil
	}
	var out []provision.Group
	err := scanPairs(r.bucket(bucketGroupExtID), ext, func(id string) error {
		g, err := r.Group(id)
		if err != nil {
			return fmt.Errorf("externalId index: %w", err)
		}
		out = append(out, g)
		return nil
	})
	return out, err
}

// GroupCount is the number of group records.
func (r *readTx) GroupCount() (int, error) { return r.count(keyCountGroups), nil }

// ScanGroups calls fn for groups in id order after skipping offset records undecoded.
func (r *readTx) ScanGroups(offset int, fn func(provision.Group) bool) error {
	return scan(r, r.bucket(bucketGroups), "group", offset, fn)
}

// GroupIDsOfUser returns the ids of the user's groups in group id order, from the
// membership index. An unknown user has none.
func (r *readTx) GroupIDsOfUser(userID string) ([]string, error) {
	c := r.members
	if c == nil {
		c = r.bucket(bucketMembers).Cursor()
		if !r.tx.Writable() {
			// A cursor of a writable transaction is not kept: it may not survive
			// the transaction's writes to the bucket.
			r.members = c
		}
	}
	if r.memberReads++; r.memberReads == 2 {
		r.groupIDs = map[string]string{}
	}
	ids, err := groupsOf(c, userID, r.groupIDs)
	if err != nil {
		return nil, fmt.Errorf("groups of user %q: %w", userID, err)
	}
	return ids, nil
}

// --- intents and audit ---

// Intent returns the pending intent of a user, or ErrNotFound.
func (r *readTx) Intent(userID string) (provision.Intent, error) {
	k := []byte(userID)
	v := r.bucket(bucketIntents).Get(k)
	if v == nil {
		return provision.Intent{}, fmt.Errorf("intent of user %q: %w", userID, ErrNotFound)
	}
	return decodeAs[provision.Intent](r, "intent of user", k, v)
}

// ScanIntents calls fn for each pending intent, in user id order.
func (r *readTx) ScanIntents(fn func(provision.Intent) bool) error {
	return scan(r, r.bucket(bucketIntents), "intent of user", 0, fn)
}

// IntentCount is the number of pending intents.
func (r *readTx) IntentCount() (int, error) { return r.count(keyCountIntents), nil }

// ScanAudit calls fn for audit entries at or after since, oldest first; entries with
// the same time come in the order they were appended.
func (r *readTx) ScanAudit(since time.Time, fn func(provision.AuditEntry) bool) error {
	c := r.bucket(bucketAudit).Cursor()
	for k, v := c.Seek(auditKey(since, 0)); k != nil; k, v = c.Next() {
		e, err := decodeAs[provision.AuditEntry](r, "audit entry", k, v)
		if err != nil {
			continue // noted; the rest of the trail is still worth reading
		}
		if !fn(e) {
			return nil
		}
	}
	return nil
}

// Invite returns the invite record of an email, or ErrNotFound.
func (r *readTx) Invite(email string) (provision.InviteRecord, error) {
	k := inviteKey(email)
	v := r.bucket(bucketInvites).Get(k)
	if v == nil {
		return provision.InviteRecord{}, fmt.Errorf("invite of %q: %w", email, ErrNotFound)
	}
	return decodeAs[provision.InviteRecord](r, "invite of", k, v)
}

func (r *readTx) count(key []byte) int {
	n, _ := readU64(r.bucket(bucketMeta).Get(key))
	return int(n)
}

// scan walks bk in key order, steps over offset entries without decoding them, then
// decodes the rest and hands them to fn until it returns false. A record that does
// not decode is noted (damage.record) and skipped: one damaged record must not make
// every list and every scan fail.
func scan[T any](r *readTx, bk *bolt.Bucket, kind string, offset int, fn func(T) bool) error {
	c := bk.Cursor()
	k, v := c.First()
	for ; offset > 0 && k != nil; offset-- {
		k, v = c.Next()
	}
	for ; k != nil; k, v = c.Next() {
		x, err := decodeAs[T](r, kind, k, v)
		if err != nil {
			continue
		}
		if !fn(x) {
			return nil
		}
	}
	return nil
}

// decodeAs is decode that notes a record that fails to decode as damaged: its error
// wraps ErrDamaged.
func decodeAs[T any](r *readTx, kind string, key, v []byte) (T, error) {
	x, err := decode[T](kind, key, v)
	if err != nil {
		r.dmg.record(kind, key, err)
		err = fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return x, err
}

// decode unmarshals a stored value; key only names it in the error.
func decode[T any](kind string, key, v []byte) (T, error) {
	var x T
	v, release, err := plain(v)
	if err != nil {
		return x, fmt.Errorf("decode %s %q: %w", kind, key, err)
	}
	defer release()
	if err := json.Unmarshal(v, &x); err != nil {
		return x, fmt.Errorf("decode %s %q: %w", kind, key, err)
	}
	return x, nil
}

// --- writes ---

// PutUser inserts or replaces u and moves its index entries from the old values to the
// new ones. Every uniqueness check runs before the first write, so an ErrConflict
// leaves the transaction untouched and usable.
func (w *writeTx) PutUser(u provision.User) error {
	if err := checkID("user", u.ID); err != nil {
		return err
	}
	if u.UserName == "" {
		return fmt.Errorf("user %q: userName is empty", u.ID)
	}
	if err := checkKeys(u.ID, u.UserName, u.Email, u.Panther.ID, u.ExternalID); err != nil {
		return fmt.Errorf("user %q: %w", u.ID, err)
	}
	users := w.bucket(bucketUsers)
	key := []byte(u.ID)
	old, isOld := w.keys[u.ID]
	isNew := false
	if !isOld {
		v := users.Get(key)
		isNew = v == nil
		if !isNew {
			stored, err := decodeAs[provision.User](&w.readTx, "user", key, v)
			if err != nil {
				return err
			}
			old = keysOf(stored)
		}
	}
	for _, c := range []struct {
		ix    uniqueIndex
		value string
	}{{idxUserName, u.UserName}, {idxPantherID, u.Panther.ID}} {
		if err := c.ix.check(w.tx, u.ID, c.value); err != nil {
			return err
		}
	}
	if err := w.checkEmail(u.ID, u.Email); err != nil {
		return err
	}

	data, err := json.Marshal(u)
	if err == nil {
		data, err = encodeUser(userState{userName: u.UserName, active: u.Active, linked: u.Panther.ID != ""}, data)
	}
	if err != nil {
		return fmt.Errorf("encode user %q: %w", u.ID, err)
	}
	delete(w.keys, u.ID) // until the record and its index entries agree again
	if err := users.Put(key, data); err != nil {
		return err
	}
	for _, m := range []struct {
		ix       uniqueIndex
		old, new string
	}{
		{idxUserName, old.userName, u.UserName},
		{idxEmail, indexedEmail(old.userName, old.email), indexedEmail(u.UserName, u.Email)},
		{idxPantherID, old.pantherID, u.Panther.ID},
	} {
		if err := m.ix.move(w.tx, u.ID, m.old, m.new); err != nil {
			return err
		}
	}
	if err := movePair(w.bucket(bucketUserExternalID), u.ID, old.externalID, u.ExternalID); err != nil {
		return err
	}
	if isNew {
		if err := w.addCount(keyCountUsers, 1); err != nil {
			return err
		}
	}
	if w.keys != nil {
		w.keys[u.ID] = keysOf(u)
	}
	return nil
}

// DeleteUser removes the user, its index entries and its memberships. Each group it
// was in is rewritten without it, with Version incremented and LastModified set to
// now: the group's representation changed, so its ETag must change too.
func (w *writeTx) DeleteUser(id string) error {
	old, err := w.User(id)
	if err != nil {
		return err
	}
	groupIDs, err := w.GroupIDsOfUser(id)
	if err != nil {
		return err
	}
	delete(w.keys, id)
	if err := w.bucket(bucketUsers).Delete([]byte(id)); err != nil {
		return err
	}
	for _, m := range []struct {
		ix  uniqueIndex
		old string
	}{{idxUserName, old.UserName}, {idxEmail, indexedEmail(old.UserName, old.Email)}, {idxPantherID, old.Panther.ID}} {
		if err := m.ix.move(w.tx, id, m.old, ""); err != nil {
			return err
		}
	}
	if err := movePair(w.bucket(bucketUserExternalID), id, old.ExternalID, ""); err != nil {
		return err
	}

	members := w.bucket(bucketMembers)
	groups := w.bucket(bucketGroups)
	now := w.now().UTC()
	for _, gid := range groupIDs {
		if err := members.Delete(memberKey(id, gid)); err != nil {
			return err
		}
		g, err := w.Group(gid)
		if err != nil {
			return fmt.Errorf("membership index: %w", err)
		}
		kept := g.Members[:0]
		for _, m := range g.Members {
			if m != id {
				kept = append(kept, m)
			}
		}
		if len(kept) == 0 {
			kept = nil
		}
		g.Members = kept
		g.Version++
		g.LastModified = now
		data, err := encodeGroup(g)
		if err != nil {
			return fmt.Errorf("encode group %q: %w", gid, err)
		}
		if err := groups.Put([]byte(gid), data); err != nil {
			return err
		}
	}
	return w.addCount(keyCountUsers, -1)
}

// PutGroup inserts or replaces g. Members are de-duplicated (first occurrence wins) and
// each one not already in the stored group must be a stored user. The membership index
// changes by the difference between the old and the new Members, found with a set in
// O(len(old)+len(new)). All checks run before the first write.
func (w *writeTx) PutGroup(g provision.Group) error {
	if err := checkID("group", g.ID); err != nil {
		return err
	}
	if g.DisplayName == "" {
		return fmt.Errorf("group %q: displayName is empty", g.ID)
	}
	if err := checkKeys(g.ID, g.DisplayName, g.ExternalID); err != nil {
		return fmt.Errorf("group %q: %w", g.ID, err)
	}
	groups := w.bucket(bucketGroups)
	key := []byte(g.ID)
	var old provision.Group
	v := groups.Get(key)
	isNew := v == nil
	if !isNew {
		var err error
		if old, err = decodeAs[provision.Group](&w.readTx, "group", key, v); err != nil {
			return err
		}
	}
	if err := idxDisplayName.check(w.tx, g.ID, g.DisplayName); err != nil {
		return err
	}

	had := make(map[string]struct{}, len(old.Members))
	for _, m := range old.Members {
		had[m] = struct{}{}
	}
	users := w.bucket(bucketUsers)
	keep := make(map[string]struct{}, len(g.Members))
	members := make([]string, 0, len(g.Members))
	var added []string
	for _, m := range g.Members {
		if _, dup := keep[m]; dup {
			continue
		}
		if _, ok := had[m]; !ok {
			// Old members are stored users already: DeleteUser removes the ones it deletes.
			if users.Get([]byte(m)) == nil {
				return fmt.Errorf("group %q: member %q: %w", g.ID, m, ErrNotFound)
			}
			added = append(added, m)
		}
		keep[m] = struct{}{}
		members = append(members, m)
	}
	if len(members) == 0 {
		members = nil
	}
	g.Members = members

	data, err := encodeGroup(g)
	if err != nil {
		return fmt.Errorf("encode group %q: %w", g.ID, err)
	}
	if err := groups.Put(key, data); err != nil {
		return err
	}
	if err := idxDisplayName.move(w.tx, g.ID, old.DisplayName, g.DisplayName); err != nil {
		return err
	}
	if err := movePair(w.bucket(bucketGroupExtID), g.ID, old.ExternalID, g.ExternalID); err != nil {
		return err
	}
	mb := w.bucket(bucketMembers)
	for _, m := range old.Members {
		if _, ok := keep[m]; !ok {
			if err := mb.Delete(memberKey(m, g.ID)); err != nil {
				return err
			}
		}
	}
	// bbolt splits nodes only at commit: inserting in key order appends within each
	// node instead of shifting a growing slice, which keeps a big add O(n log n)
	// rather than O(n²) when many keys land in one node (an empty index).
	keys := make([][]byte, len(added))
	for i, m := range added {
		keys[i] = memberKey(m, g.ID)
	}
	slices.SortFunc(keys, bytes.Compare)
	for _, k := range keys {
		if err := mb.Put(k, empty); err != nil {
			return err
		}
	}
	if isNew {
		return w.addCount(keyCountGroups, 1)
	}
	return nil
}

// DeleteGroup removes the group, its index entries and its membership index entries.
func (w *writeTx) DeleteGroup(id string) error {
	old, err := w.Group(id)
	if err != nil {
		return err
	}
	if err := w.bucket(bucketGroups).Delete([]byte(id)); err != nil {
		return err
	}
	if err := idxDisplayName.move(w.tx, id, old.DisplayName, ""); err != nil {
		return err
	}
	if err := movePair(w.bucket(bucketGroupExtID), id, old.ExternalID, ""); err != nil {
		return err
	}
	mb := w.bucket(bucketMembers)
	for _, m := range old.Members {
		if err := mb.Delete(memberKey(m, id)); err != nil {
			return err
		}
	}
	return w.addCount(keyCountGroups, -1)
}

// PutIntent writes (or replaces) the intent of in.UserID. The user need not exist: the
// intent of a DELETE outlives the record.
func (w *writeTx) PutIntent(in provision.Intent) error {
	if err := checkID("user", in.UserID); err != nil {
		return fmt.Errorf("intent: %w", err)
	}
	bk := w.bucket(bucketIntents)
	isNew := bk.Get([]byte(in.UserID)) == nil
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode intent of user %q: %w", in.UserID, err)
	}
	if err := bk.Put([]byte(in.UserID), data); err != nil {
		return err
	}
	if isNew {
		return w.addCount(keyCountIntents, 1)
	}
	return nil
}

// DeleteIntent removes the intent of a user; no error when there is none.
func (w *writeTx) DeleteIntent(userID string) error {
	bk := w.bucket(bucketIntents)
	if bk.Get([]byte(userID)) == nil {
		return nil
	}
	if err := bk.Delete([]byte(userID)); err != nil {
		return err
	}
	return w.addCount(keyCountIntents, -1)
}

// AppendAudit adds an entry to the audit trail. An entry without a Time gets the
// store clock's now, one without an EventID a new UUIDv7. While the export is on
// (SetAuditExport) the entry is queued for it too, in the same transaction.
func (w *writeTx) AppendAudit(e provision.AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = w.now().UTC()
	}
	if e.EventID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("audit event id: %w", err)
		}
		e.EventID = id.String()
	}
	bk := w.bucket(bucketAudit)
	seq, err := bk.NextSequence()
	if err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	key := auditKey(e.Time, seq)
	if err := bk.Put(key, data); err != nil {
		return err
	}
	if w.bucket(bucketMeta).Get(keyAuditExport) == nil {
		return nil
	}
	if err := w.bucket(bucketOutbox).Put(u64(seq), key); err != nil {
		return err
	}
	return w.addCount(keyCountOutbox, 1)
}

// PruneAudit deletes audit entries older than before, except those waiting in the
// export queue: retention never drops an event Panther has not acknowledged.
func (w *writeTx) PruneAudit(before time.Time) error {
	bk := w.bucket(bucketAudit)
	queued := w.bucket(bucketOutbox)
	limit := auditKey(before, 0)
	// Collect first: deleting under a moving bbolt cursor can skip entries.
	var doomed [][]byte
	c := bk.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, limit) < 0; k, _ = c.Next() {
		if queued.Get(auditSeq(k)) == nil {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	for _, k := range doomed {
		if err := bk.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// PutInvite writes (or replaces) the invite record of r.Email.
func (w *writeTx) PutInvite(r provision.InviteRecord) error {
	k := inviteKey(r.Email)
	if len(k) == 0 {
		return fmt.Errorf("invite record: email %w", errBadID)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode invite of %q: %w", r.Email, err)
	}
	return w.bucket(bucketInvites).Put(k, data)
}

// DeleteInvite removes the invite record of an email; no error when there is none.
func (w *writeTx) DeleteInvite(email string) error {
	k := inviteKey(email)
	if len(k) == 0 {
		return nil
	}
	return w.bucket(bucketInvites).Delete(k)
}

// PruneInvites deletes the invite records last attempted before before. A record that
// does not decode is deleted too: it can only be read as "no invite", which is what
// its absence says.
func (w *writeTx) PruneInvites(before time.Time) (int, error) {
	bk := w.bucket(bucketInvites)
	var doomed [][]byte
	err := bk.ForEach(func(k, v []byte) error {
		r, err := decodeAs[provision.InviteRecord](&w.readTx, "invite of", k, v)
		if err != nil || r.Last.Before(before) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range doomed {
		if err := bk.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}

func (w *writeTx) addCount(key []byte, delta int64) error {
	meta := w.bucket(bucketMeta)
	n, _ := readU64(meta.Get(key))
	return meta.Put(key, u64(uint64(int64(n)+delta)))
}

// --- indexes ---

// indexedEmail is the value the email index holds for a user: its email, unless that is
// its userName (then "", not indexed). Okta and Entra usually send the work email as the
// userName, and an entry that repeats the userName index's took 12 MB of pages at 100k
// users; UserByEmail and checkEmail look under the userName too.
func indexedEmail(userName, email string) string {
	if sameFold(email, userName) {
		return ""
	}
	return email
}

// sameFold says whether a and b have the same key form (fold).
func sameFold(a, b string) bool { return a == b || strings.ToLower(a) == strings.ToLower(b) }

// checkEmail returns ErrConflict when another user than id has email: in the email
// index, or as the userName that is also its email.
func (w *writeTx) checkEmail(id, email string) error {
	if err := idxEmail.check(w.tx, id, email); err != nil || email == "" {
		return err
	}
	owner, err := idxUserName.owner(w.tx, email)
	if err != nil || owner == "" || owner == id {
		return err
	}
	other, err := w.User(owner)
	if err != nil {
		return err
	}
	if sameFold(other.Email, email) {
		return fmt.Errorf("%s %q: %w", idxEmail.attr, email, ErrConflict)
	}
	return nil
}

// empty is the value of the keys-only indexes.
var empty = []byte{}

// uniqueIndex maps an attribute's key form to the id of the one record that has it,
// packed (packID).
type uniqueIndex struct {
	bucket []byte
	attr   string
	key    func(string) []byte
}

var (
	idxUserName    = uniqueIndex{bucketUserName, "userName", fold}
	idxEmail       = uniqueIndex{bucketUserEmail, "email", fold}
	idxPantherID   = uniqueIndex{bucketUserPantherID, "panther id", func(s string) []byte { return packID(nil, s) }}
	idxDisplayName = uniqueIndex{bucketGroupName, "displayName", fold}
)

// owner returns the id of the record indexed under value, or "" when there is none.
func (ix uniqueIndex) owner(tx *bolt.Tx, value string) (string, error) {
	if value == "" {
		return "", nil
	}
	v := tx.Bucket(ix.bucket).Get(ix.key(value))
	if v == nil {
		return "", nil
	}
	id, err := unpackValue(v)
	if err != nil {
		return "", fmt.Errorf("%s index entry for %q: %w", ix.attr, value, err)
	}
	return id, nil
}

// check returns ErrConflict when value is indexed for a record other than id.
func (ix uniqueIndex) check(tx *bolt.Tx, id, value string) error {
	owner, err := ix.owner(tx, value)
	if err == nil && owner != "" && owner != id {
		err = fmt.Errorf("%s %q: %w", ix.attr, value, ErrConflict)
	}
	return err
}

// move re-points record id's entry from oldValue to newValue (both may be empty: not
// indexed). Unchanged keys are not rewritten, which keeps pages clean.
func (ix uniqueIndex) move(tx *bolt.Tx, id, oldValue, newValue string) error {
	bk := tx.Bucket(ix.bucket)
	var oldKey, newKey []byte
	if oldValue != "" {
		oldKey = ix.key(oldValue)
	}
	if newValue != "" {
		newKey = ix.key(newValue)
	}
	if bytes.Equal(oldKey, newKey) {
		return nil
	}
	if owner, err := ix.owner(tx, oldValue); err != nil {
		return err
	} else if owner == id {
		if err := bk.Delete(oldKey); err != nil {
			return err
		}
	}
	if newKey != nil {
		return bk.Put(newKey, packID(nil, id))
	}
	return nil
}

// movePair moves record id's entry in a non-unique index from oldValue to newValue.
func movePair(bk *bolt.Bucket, id, oldValue, newValue string) error {
	if oldValue == newValue {
		return nil
	}
	if oldValue != "" {
		if err := bk.Delete(pairKey(oldValue, id)); err != nil {
			return err
		}
	}
	if newValue != "" {
		return bk.Put(pairKey(newValue, id), empty)
	}
	return nil
}

// checkKeys rejects values too long to be (part of) a bbolt key before anything is
// written, so that PutUser and PutGroup fail whole. values[0] is the record id; the
// rest are attributes it is indexed under, as themselves or lower-cased (which can
// change the length).
func checkKeys(values ...string) error {
	for _, v := range values {
		n := max(len(v), len(fold(v)))
		if n+1+len(values[0]) > bolt.MaxKeySize {
			return fmt.Errorf("attribute of %d bytes is longer than the store's key limit (%d bytes)", len(v), bolt.MaxKeySize)
		}
	}
	return nil
}
