package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	"github.com/google/uuid"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/tidwall/gjson"
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
// most 50). It reads the whole file, decoding and comparing on every core (at
// 100,000 users about 0.5 s on two), so it is for the start-up check, `verify`, tests
// and support, not for a request path.
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
	// damaged lists the records that did not decode.
	damaged                   []string
	damagedCount              int
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

// The check reads the file on this goroutine (a bbolt transaction is for one
// goroutine) and does the rest on every core: decompressing and decoding the records,
// comparing the indexes with them. What each part finds is merged here in key order,
// so the report is the same however the work was shared. Records are found by id in
// tables keyed by the UUIDs' 16 bytes, which the indexes hold, rather than by their
// text (see table). At 100,000 users this took the check from 2.8-3.7 s to about
// 0.5 s on two cores (BENCHMARKS.md).
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

	users, groups := v.records()
	if v.stopped {
		return
	}
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

	// The index checks read each index once, in key order, and count the entries
	// that name a record holding their key; a record's own entry is looked up (a
	// B-tree search for each of 100,000 users, a third of this check's time once)
	// only when those counts say that some record has none. An index holds one entry
	// per key, and an entry that names a record holding its key is the only one that
	// can (the record has one key), so as many such entries as records with a value
	// means that every record has its entry.
	checkUnique(v, idxUserName, users, func(u *userFacts) string { return u.userName })
	checkUnique(v, idxEmail, users, func(u *userFacts) string { return indexedEmail(u.userName, u.email) })
	checkUnique(v, idxPantherID, users, func(u *userFacts) string { return u.pantherID })
	checkUnique(v, idxDisplayName, groups, func(g *provision.Group) string { return g.DisplayName })
	checkPairs(v, bucketUserExternalID, "user", users, func(u *userFacts) string { return u.externalID })
	checkPairs(v, bucketGroupExtID, "group", groups, func(g *provision.Group) string { return g.ExternalID })
	v.memberships(users, groups)
	if v.stopped {
		return
	}

	for _, c := range []struct {
		key  []byte
		want int
	}{
		{keyCountUsers, len(users.keys)},
		{keyCountGroups, len(groups.keys)},
		{keyCountIntents, v.tx.Bucket(bucketIntents).Stats().KeyN},
		{keyCountOutbox, v.outbox()},
	} {
		if n, _ := readU64(v.tx.Bucket(bucketMeta).Get(c.key)); int(n) != c.want {
			v.fail("counter %s = %d, records %d", c.key, n, c.want)
		}
	}
}

// table holds the records of one kind as the cross-checks compare them, in key
// order, and finds them by id. Ids that are UUIDs in the form the service mints are
// found by their 16 bytes, the form the indexes hold them in: no id to format, and a
// small key to hash (55 ns a lookup at 100,000 users, against 180-290 ns by text).
type table[F any] struct {
	keys  [][]byte // the records' keys (ids), read from the file
	facts []F
	bad   []bool // the record did not decode: its entries cannot be compared
	uuids map[uuid.UUID]int32
	other map[string]int32
}

// newTable makes the table of the records with these keys, facts to be filled in.
func newTable[F any](keys [][]byte) *table[F] {
	t := &table[F]{keys: keys, facts: make([]F, len(keys)), bad: make([]bool, len(keys)),
		uuids: make(map[uuid.UUID]int32, len(keys)), other: map[string]int32{}}
	for i, k := range keys {
		if u, ok := parseUUID(k); ok {
			t.uuids[u] = int32(i)
		} else {
			t.other[string(k)] = int32(i)
		}
	}
	return t
}

// id is the id of the i-th record.
func (t *table[F]) id(i int) string { return string(t.keys[i]) }

// place finds the record with the id.
func (t *table[F]) place(id string) (int, bool) {
	if u, ok := parseUUID(id); ok {
		i, ok := t.uuids[u]
		return int(i), ok
	}
	i, ok := t.other[id]
	return int(i), ok
}

// placeBytes finds the record with the id id.
func (t *table[F]) placeBytes(id []byte) (int, bool) {
	if u, ok := parseUUID(id); ok {
		i, ok := t.uuids[u]
		return int(i), ok
	}
	i, ok := t.other[string(id)]
	return int(i), ok
}

// placePacked finds the record whose id p packs (one whole packed id: packedLen).
func (t *table[F]) placePacked(p []byte) (int, bool) {
	if p[0] == 0 {
		i, ok := t.uuids[uuid.UUID(p[1:17])]
		return int(i), ok
	}
	return t.placeBytes(p[:len(p)-1])
}

// count counts the decoded records for which ok holds.
func (t *table[F]) count(ok func(*F) bool) int {
	n := 0
	for i := range t.facts {
		if !t.bad[i] && ok(&t.facts[i]) {
			n++
		}
	}
	return n
}

// gather reads every key and value of bk (valid while the transaction is).
func gather(bk *bolt.Bucket) []kv {
	// Counting the keys first reads the page headers, which the walk reads anyway,
	// and costs less than growing the slice (a tenth of this check's time otherwise).
	out := make([]kv, 0, bk.Stats().KeyN)
	_ = bk.ForEach(func(k, v []byte) error {
		out = append(out, kv{k, v})
		return nil
	})
	return out
}

// gatherKeys reads every key of bk (valid while the transaction is).
func gatherKeys(bk *bolt.Bucket) [][]byte {
	out := make([][]byte, 0, bk.Stats().KeyN)
	_ = bk.ForEach(func(k, _ []byte) error {
		out = append(out, k)
		return nil
	})
	return out
}

// chunkSize is how many items a core takes at a time in parallel.
const chunkSize = 512

func chunks(n int) int { return (n + chunkSize - 1) / chunkSize }

// parallel calls work(c, lo, hi) for each chunk c of [0, n), items lo to hi, on
// every core, and returns how many items the chunks done before ctx ended hold from
// the first (n when it did not end). work must not use the transaction: it gets the
// keys and values gathered from it. A panic in work is raised again here.
func parallel(ctx context.Context, n int, work func(c, lo, hi int)) int {
	var (
		next     atomic.Int64 // the next chunk to take
		finished = make([]bool, chunks(n))
		panicked any
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	for range min(runtime.GOMAXPROCS(0), len(finished)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					panicked = p
					mu.Unlock()
				}
			}()
			for {
				c := int(next.Add(1) - 1)
				if c >= len(finished) || ctx.Err() != nil {
					return
				}
				work(c, c*chunkSize, min((c+1)*chunkSize, n))
				finished[c] = true // read after wg.Wait
			}
		}()
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
	for c, ok := range finished {
		if !ok {
			return c * chunkSize
		}
	}
	return n
}

// findings are what one chunk of a parallel check found, merged in chunk order.
type findings struct {
	problems []error
	matched  int // entries that name a record holding their key
	n        int // what else the check counts
}

func (f *findings) fail(format string, args ...any) {
	if len(f.problems) < maxProblems {
		f.problems = append(f.problems, fmt.Errorf(format, args...))
	}
}

// merge adds the problems of each chunk to v's, in order, and returns the sums of
// matched and n; a check that ctx cut short (done < items) stops v.
func (v *verifier) merge(res []findings, done, items int) (matched, n int) {
	if done < items {
		v.stopped = true
	}
	for _, f := range res {
		for _, p := range f.problems {
			if len(v.problems) < maxProblems {
				v.problems = append(v.problems, p)
			}
		}
		matched += f.matched
		n += f.n
	}
	return matched, n
}

// records checks every user and group record and returns what the cross-checks
// compare of them: for a user only that (whole records, their attribute maps, were
// 200 MB of live heap at 100,000 users, more than a container sized for the server
// holds, and this check runs at every start), for a group the record. The cores fill
// the tables in; what does not match is reported here, in key order.
func (v *verifier) records() (*table[userFacts], *table[provision.Group]) {
	urecs, grecs := gather(v.tx.Bucket(bucketUsers)), gather(v.tx.Bucket(bucketGroups))
	keys := func(recs []kv) [][]byte {
		out := make([][]byte, len(recs))
		for i, r := range recs {
			out[i] = r.k
		}
		return out
	}
	users, groups := newTable[userFacts](keys(urecs)), newTable[provision.Group](keys(grecs))
	ures, gres := make([]recordCheck, len(urecs)), make([]recordCheck, len(grecs))
	n := len(urecs) + len(grecs)
	done := parallel(v.ctx, n, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			if i < len(urecs) {
				ures[i] = checkUser(urecs[i].k, urecs[i].v, &users.facts[i])
			} else {
				j := i - len(urecs)
				gres[j] = checkGroup(grecs[j].k, grecs[j].v, &groups.facts[j])
			}
		}
	})
	for _, c := range []struct {
		kind string
		recs []kv
		res  []recordCheck
		bad  []bool
		n    *int
	}{
		{"user", urecs[:min(done, len(urecs))], ures, users.bad, &v.nUsers},
		{"group", grecs[:max(0, done-len(urecs))], gres, groups.bad, &v.nGroups},
	} {
		for i, rec := range c.recs {
			*c.n++
			r := &c.res[i]
			if r.err != nil {
				c.bad[i] = true
				v.undecodable(c.kind, rec.k, r.err)
				continue
			}
			if r.otherID != nil {
				v.fail("%s under key %q has id %q", c.kind, rec.k, *r.otherID)
			}
			if r.header != "" {
				v.fail("%s %q: header %s disagrees with the record", c.kind, rec.k, r.header)
			}
		}
	}
	if done < n {
		v.stopped = true
	}
	return users, groups
}

// recordCheck is what checkUser or checkGroup found wrong with a record.
type recordCheck struct {
	err     error   // it does not decode
	otherID *string // the id it holds, when not its key
	header  string  // its header, when it disagrees with the record
}

// checkUser reads a stored user record as the cross-checks need it. A record whose
// frame carries a checksum (every record written since the checksums: see
// recordCodecs) is decompressed, which verifies the checksum, and the few values
// compared are picked out of its JSON (gjson) without decoding the rest: the checksum
// says that the JSON is the one written, which json.Marshal made from a
// provision.User, so it decodes as a read would, and decoding all of it with
// encoding/json was 60% of the check's time (13.9 µs a record against 5.3 µs).
// Any other record (plain JSON, a frame without a checksum) is decoded as a read
// decodes it (decode[provision.User]), except that its attributes are checked to be
// a JSON object instead of being built into maps: every JSON object decodes into
// map[string]any but one holding a number beyond float64's range, which json.Marshal
// never writes.
func checkUser(k, val []byte, facts *userFacts) recordCheck {
	data, release, err := plain(val)
	if err != nil {
		return recordCheck{err: fmt.Errorf("decode user %q: %w", k, err)}
	}
	defer release()
	var (
		r      recordCheck
		id     string
		active bool
	)
	if checksummed(userFrame(val)) {
		// gjson's strings are parts of data, which is reused: the ones kept are
		// cloned (see parseInPlace).
		parseInPlace(data).ForEach(func(key, value gjson.Result) bool {
			switch key.Str {
			case "id":
				id = value.String()
			case "userName":
				facts.userName = strings.Clone(value.String())
			case "externalId":
				facts.externalID = strings.Clone(value.String())
			case "active":
				active = value.Bool()
			case "email":
				facts.email = value.String()
			case "panther":
				facts.pantherID = strings.Clone(value.Get("id").String())
			}
			return true
		})
		if facts.email == facts.userName {
			facts.email = facts.userName // most users': one copy of it
		} else {
			facts.email = strings.Clone(facts.email)
		}
	} else {
		var u struct {
			provision.User
			Attributes jsonObject `json:"attributes,omitempty"`
		}
		if err := json.Unmarshal(data, &u); err != nil {
			return recordCheck{err: fmt.Errorf("decode user %q: %w", k, err)}
		}
		id, active = u.ID, u.Active
		*facts = userFacts{userName: u.UserName, email: u.Email, pantherID: u.Panther.ID, externalID: u.ExternalID}
	}
	if id != string(k) {
		id = strings.Clone(id)
		r.otherID = &id
	}
	if headed(val) {
		h, _, _ := splitUserHeader(val)
		if h != (userState{userName: facts.userName, active: active, linked: facts.pantherID != ""}) {
			r.header = fmt.Sprintf("%+v", h)
		}
	}
	return r
}

// jsonObject accepts a JSON object or null, without keeping it: what decodes into a
// map[string]any.
type jsonObject struct{}

// UnmarshalJSON implements json.Unmarshaler.
func (jsonObject) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && (b[0] == '{' || string(b) == "null") {
		return nil
	}
	return fmt.Errorf("attributes: want a JSON object, have %.20s", b)
}

// checkGroup decodes a stored group record as a read does, into g.
func checkGroup(k, val []byte, g *provision.Group) recordCheck {
	var err error
	if *g, err = decode[provision.Group]("group", k, val); err != nil {
		return recordCheck{err: err}
	}
	var r recordCheck
	if g.ID != string(k) {
		r.otherID = &g.ID
	}
	if groupHeaded(val) {
		h, _, _ := splitGroupHeader(val)
		if h != (provision.GroupHeader{DisplayName: g.DisplayName, ExternalID: g.ExternalID}) {
			r.header = fmt.Sprintf("%+v", h)
		}
	}
	return r
}

// keyIs says whether k is ix.key(value), without building it.
func (ix uniqueIndex) keyIs(k []byte, value string) bool {
	if ix.attr == idxPantherID.attr {
		return packedIs(k, value)
	}
	return string(k) == strings.ToLower(value)
}

// checkUnique checks a unique index against the records of t: each entry names a
// record whose value has that key, and each record with a non-empty value has its
// entry (looked up only when the entries that name a record holding their key are
// fewer than those records: see run).
func checkUnique[F any](v *verifier, ix uniqueIndex, t *table[F], value func(*F) string) {
	entries := gather(v.tx.Bucket(ix.bucket))
	res := make([]findings, chunks(len(entries)))
	done := parallel(v.ctx, len(entries), func(c, lo, hi int) {
		f := &res[c]
		for _, e := range entries[lo:hi] {
			if packedLen(e.v) != len(e.v) {
				f.fail("%s index: %q: %w %x", ix.attr, e.k, errBadIndexValue, e.v)
				continue
			}
			i, ok := t.placePacked(e.v)
			switch {
			case !ok:
				id, _ := unpackValue(e.v)
				f.fail("%s index: %q points to missing record %q", ix.attr, e.k, id)
			case t.bad[i]:
				// a record that did not decode: reported as damaged
			default:
				if val := value(&t.facts[i]); val == "" || !ix.keyIs(e.k, val) {
					f.fail("%s index: %q points to record %q whose %s is %q", ix.attr, e.k, t.id(i), ix.attr, val)
				} else {
					f.matched++
				}
			}
		}
	})
	matched, _ := v.merge(res, done, len(entries))
	if v.stopped || matched == t.count(func(f *F) bool { return value(f) != "" }) {
		return
	}
	for i := range t.keys {
		if t.bad[i] {
			continue
		}
		val := value(&t.facts[i])
		if owner, _ := ix.owner(v.tx, val); val != "" && owner != t.id(i) {
			v.fail("record %q: %s %q not indexed to it", t.keys[i], ix.attr, val)
		}
	}
}

// checkPairs checks a pair index (externalId "\x00" id, one entry per record of t
// with an externalId) against the records as checkUnique checks a unique index.
func checkPairs[F any](v *verifier, bucket []byte, kind string, t *table[F], ext func(*F) string) {
	bk := v.tx.Bucket(bucket)
	entries := gatherKeys(bk)
	res := make([]findings, chunks(len(entries)))
	done := parallel(v.ctx, len(entries), func(c, lo, hi int) {
		f := &res[c]
		for _, k := range entries[lo:hi] {
			j := bytes.LastIndexByte(k, 0)
			if j < 0 {
				f.fail("%s externalId index: malformed key %q", kind, k)
				continue
			}
			i, ok := t.placeBytes(k[j+1:])
			switch {
			case ok && t.bad[i]:
			case !ok || ext(&t.facts[i]) != string(k[:j]):
				f.fail("%s externalId index: stale entry %q", kind, k)
			case j > 0:
				f.matched++
			}
		}
	})
	matched, _ := v.merge(res, done, len(entries))
	if v.stopped || matched == t.count(func(f *F) bool { return ext(f) != "" }) {
		return
	}
	for i := range t.keys {
		if x := ext(&t.facts[i]); !t.bad[i] && x != "" && bk.Get(pairKey(x, t.id(i))) == nil {
			v.fail("%s %q: externalId %q not indexed", kind, t.keys[i], x)
		}
	}
}

// memberships checks that the groups' member lists and the membership index are the
// same relation.
func (v *verifier) memberships(users *table[userFacts], groups *table[provision.Group]) {
	// Each group's members, sorted and without repeats, as ids and packed (the form
	// the index's keys hold them in) for its entries to be looked up in.
	members, packed := make([][]string, len(groups.keys)), make([][]string, len(groups.keys))
	res := make([]findings, chunks(len(groups.keys)))
	done := parallel(v.ctx, len(groups.keys), func(c, lo, hi int) {
		f := &res[c]
		for i := lo; i < hi; i++ {
			if groups.bad[i] {
				continue
			}
			gid := groups.id(i)
			ms := slices.Sorted(slices.Values(groups.facts[i].Members))
			for j, m := range ms {
				if j > 0 && ms[j-1] == m {
					f.fail("group %q lists member %q twice", gid, m)
					continue
				}
				f.n++
				if _, ok := users.place(m); !ok {
					f.fail("group %q lists member %q, who is no user", gid, m)
				}
			}
			members[i] = slices.Compact(ms)
			p := make([]string, len(members[i]))
			for j, m := range members[i] {
				p[j] = string(packID(nil, m))
			}
			slices.Sort(p)
			packed[i] = p
		}
	})
	_, memberships := v.merge(res, done, len(groups.keys))
	if v.stopped {
		return
	}

	mb := v.tx.Bucket(bucketMembers)
	entries := gatherKeys(mb)
	res = make([]findings, chunks(len(entries)))
	done = parallel(v.ctx, len(entries), func(c, lo, hi int) {
		f := &res[c]
		for _, k := range entries[lo:hi] {
			n := packedLen(k)
			if n < 0 || packedLen(k[n:]) != len(k)-n {
				f.n++
				f.fail("membership index: %w: %q", errBadMemberKey, k)
				continue
			}
			g, ok := groups.placePacked(k[n:])
			if ok && groups.bad[g] {
				continue // the members of a group that did not decode cannot be compared
			}
			f.n++
			switch {
			case !ok:
				_, gid, _ := splitMemberKey(k)
				f.fail("membership index: stale entry %q (no group %q)", k, gid)
			case !hasPacked(packed[g], k[:n]):
				uid, _, _ := splitMemberKey(k)
				f.fail("membership index: stale entry %q (group %q does not list member %q)", k, groups.keys[g], uid)
			default:
				f.matched++
			}
		}
	})
	matched, indexed := v.merge(res, done, len(entries))
	if v.stopped {
		return
	}
	if matched != memberships {
		for i := range groups.keys {
			gid := groups.id(i)
			for _, m := range members[i] {
				if mb.Get(memberKey(m, gid)) == nil {
					v.fail("group %q: member %q missing from the membership index", gid, m)
				}
			}
		}
	}
	if indexed != memberships {
		v.fail("membership index has %d entries, group member lists %d", indexed, memberships)
	}
}

// hasPacked says whether the sorted packed ids hold the packed id p (in any form
// that unpacks to the same id).
func hasPacked(sorted []string, p []byte) bool {
	if p[0] != 0 {
		if u, ok := parseUUID(p[:len(p)-1]); ok {
			p = append([]byte{0}, u[:]...) // a UUID packed as text: never written
		}
	}
	i := sort.Search(len(sorted), func(i int) bool { return sorted[i] >= string(p) })
	return i < len(sorted) && sorted[i] == string(p)
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
