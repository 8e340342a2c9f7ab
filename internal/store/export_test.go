package store

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// appendAudit commits one transaction appending entries with the given actions, at
// the given minutes after t0.
func appendAudit(t *testing.T, s *Bolt, at map[string]int, actions ...string) {
	t.Helper()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	err := s.Update(bg, func(tx provision.Tx) error {
		for _, a := range actions {
			if err := tx.AppendAudit(provision.AuditEntry{Time: t0.Add(time.Duration(at[a]) * time.Minute), Action: a}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func queuedActions(t *testing.T, s *Bolt, max int) ([]string, []QueuedAudit) {
	t.Helper()
	q, err := s.NextExport(bg, max)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range q {
		out = append(out, e.Entry.Action)
	}
	return out, q
}

func backlog(t *testing.T, s *Bolt) (int, time.Time) {
	t.Helper()
	n, oldest, err := s.ExportBacklog(bg)
	if err != nil {
		t.Fatal(err)
	}
	return n, oldest
}

func TestExportQueueOffByDefault(t *testing.T) {
	s := openTemp(t, Options{})
	defer s.Close()
	appendAudit(t, s, nil, "a", "b")
	if got, _ := queuedActions(t, s, 10); len(got) != 0 {
		t.Errorf("queued with the export off: %v", got)
	}
	if n, oldest := backlog(t, s); n != 0 || !oldest.IsZero() {
		t.Errorf("backlog = %d, %v; want 0 and no time", n, oldest)
	}
}

// The queue follows commit order, not the entries' times, and keeps each entry whole
// with the event id the store gave it.
func TestExportQueueOrderAndAck(t *testing.T) {
	s := openTemp(t, Options{})
	defer s.Close()
	appendAudit(t, s, nil, "before") // before the export is on: never queued
	if _, err := s.SetAuditExport(true); err != nil {
		t.Fatal(err)
	}
	at := map[string]int{"late": 30, "early": 1, "middle": 10, "last": 20}
	appendAudit(t, s, at, "late", "early")
	appendAudit(t, s, at, "middle")
	// A rolled-back transaction queues nothing.
	boom := errors.New("boom")
	if err := s.Update(bg, func(tx provision.Tx) error {
		if err := tx.AppendAudit(provision.AuditEntry{Action: "rolled back"}); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	appendAudit(t, s, at, "last")

	got, q := queuedActions(t, s, 10)
	if want := []string{"late", "early", "middle", "last"}; !slices.Equal(got, want) {
		t.Fatalf("queue = %v, want %v (commit order)", got, want)
	}
	ids := map[string]bool{}
	for i, e := range q {
		if e.Pruned || e.Entry.EventID == "" || ids[e.Entry.EventID] {
			t.Errorf("entry %d: pruned %v, event id %q (want a fresh one)", i, e.Pruned, e.Entry.EventID)
		}
		ids[e.Entry.EventID] = true
		if i > 0 && e.Seq <= q[i-1].Seq {
			t.Errorf("sequence numbers not increasing: %d after %d", e.Seq, q[i-1].Seq)
		}
	}
	if n, oldest := backlog(t, s); n != 4 || !oldest.Equal(time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)) {
		t.Errorf("backlog = %d, oldest %v; want 4, the time of the first queued (12:30)", n, oldest)
	}

	// A batch read twice is the same batch (a resend after a crash).
	_, again := queuedActions(t, s, 2)
	if again[0].Entry.EventID != q[0].Entry.EventID || again[1].Seq != q[1].Seq {
		t.Errorf("second read differs: %+v vs %+v", again[:2], q[:2])
	}

	if err := s.AckExport(bg, q[1].Seq); err != nil {
		t.Fatal(err)
	}
	if got, _ := queuedActions(t, s, 10); !slices.Equal(got, []string{"middle", "last"}) {
		t.Errorf("after acknowledging two: %v", got)
	}
	// Acknowledging less far again changes nothing.
	if err := s.AckExport(bg, q[0].Seq); err != nil {
		t.Fatal(err)
	}
	if n, _ := backlog(t, s); n != 2 {
		t.Errorf("backlog after a stale acknowledgement = %d, want 2", n)
	}
	if acked, _ := s.ExportAcked(); acked != q[1].Seq {
		t.Errorf("ExportAcked = %d, want %d", acked, q[1].Seq)
	}
	if err := s.AckExport(bg, q[3].Seq); err != nil {
		t.Fatal(err)
	}
	if n, oldest := backlog(t, s); n != 0 || !oldest.IsZero() {
		t.Errorf("backlog after acknowledging all = %d, %v", n, oldest)
	}
	if err := s.Verify(bg); err != nil {
		t.Error(err)
	}
}

// The queue survives a restart: what was not acknowledged is read again.
func TestExportQueueSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := mustOpen(t, path, Options{})
	if _, err := s.SetAuditExport(true); err != nil {
		t.Fatal(err)
	}
	appendAudit(t, s, nil, "a", "b", "c")
	_, q := queuedActions(t, s, 1)
	if err := s.AckExport(bg, q[0].Seq); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, path, Options{})
	defer s.Close()
	if got, _ := queuedActions(t, s, 10); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("after reopen: %v, want [b c]", got)
	}
	appendAudit(t, s, nil, "d") // still on after the reopen
	if got, _ := queuedActions(t, s, 10); !slices.Equal(got, []string{"b", "c", "d"}) {
		t.Errorf("after an append: %v", got)
	}
}

// Retention never deletes what Panther has not acknowledged; once acknowledged, an
// entry goes at the next prune.
func TestPruneKeepsUnexported(t *testing.T) {
	s := openTemp(t, Options{})
	defer s.Close()
	at := map[string]int{"old exported": 1, "old waiting": 2, "old unqueued": 0, "new": 60}
	appendAudit(t, s, at, "old unqueued")
	if _, err := s.SetAuditExport(true); err != nil {
		t.Fatal(err)
	}
	appendAudit(t, s, at, "old exported", "old waiting", "new")
	_, q := queuedActions(t, s, 1)
	if err := s.AckExport(bg, q[0].Seq); err != nil {
		t.Fatal(err)
	}
	prune := func() []string {
		t.Helper()
		cut := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
		if err := s.Update(bg, func(tx provision.Tx) error { return tx.PruneAudit(cut) }); err != nil {
			t.Fatal(err)
		}
		var left []string
		_ = s.View(bg, func(tx provision.ReadTx) error {
			return tx.ScanAudit(time.Time{}, func(e provision.AuditEntry) bool { left = append(left, e.Action); return true })
		})
		return left
	}
	if got, want := prune(), []string{"old waiting", "new"}; !slices.Equal(got, want) {
		t.Errorf("after prune: %v, want %v", got, want)
	}
	_, q = queuedActions(t, s, 1)
	if err := s.AckExport(bg, q[0].Seq); err != nil {
		t.Fatal(err)
	}
	if got, want := prune(), []string{"new"}; !slices.Equal(got, want) {
		t.Errorf("after acknowledging and pruning again: %v, want %v", got, want)
	}
}

// An entry deleted behind the queue's back (by a release without the queue, whose
// retention ignores it) is reported as pruned, and acknowledging it clears it.
func TestExportQueuePrunedEntry(t *testing.T) {
	s := queueWithFirstEntry(t, "gone", Options{}, func(b *bolt.Bucket, k []byte) error { return b.Delete(k) })
	defer s.Close()
	got, q := queuedActions(t, s, 10)
	if len(q) != 2 || !q[0].Pruned || q[1].Pruned || got[1] != "kept" {
		t.Fatalf("queue = %+v, want the pruned place then kept", q)
	}
	if err := s.Verify(bg); err != nil {
		t.Error(err)
	}
	if err := s.AckExport(bg, q[0].Seq); err != nil {
		t.Fatal(err)
	}
	if got, _ := queuedActions(t, s, 10); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("after acknowledging the pruned place: %v", got)
	}
}

// An entry of the trail that does not decode is returned in its place as Damaged,
// not as an error that would stop the export there for good; it is reported once,
// as every damaged record is, and acknowledging it clears it.
func TestExportQueueDamagedEntry(t *testing.T) {
	var reported []string
	s := queueWithFirstEntry(t, "damaged", Options{OnDamagedRecord: func(kind, _ string, _ error) { reported = append(reported, kind) }},
		func(b *bolt.Bucket, k []byte) error { return b.Put(k, []byte(`{"action":`)) })
	defer s.Close()
	for range 2 { // read twice, as an exporter retrying a failed send does: reported once
		got, q := queuedActions(t, s, 10)
		if len(q) != 2 || !q[0].Damaged || q[0].Pruned || q[1].Damaged || got[1] != "kept" {
			t.Fatalf("queue = %+v, want the damaged place then kept", q)
		}
	}
	if h := s.Health(); h.DamagedRecords != 1 || !slices.Equal(reported, []string{"audit entry"}) {
		t.Errorf("health %+v, reported %v; want the damaged entry once", h, reported)
	}
	_, q := queuedActions(t, s, 10)
	if err := s.AckExport(bg, q[0].Seq); err != nil {
		t.Fatal(err)
	}
	if got, _ := queuedActions(t, s, 10); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("after acknowledging the damaged place: %v", got)
	}
}

// queueWithFirstEntry queues two audit entries for export, first and "kept", changes
// the first behind the store's back with edit (in bbolt itself, the store closed), and
// opens the store again with opts.
func queueWithFirstEntry(t *testing.T, first string, opts Options, edit func(b *bolt.Bucket, k []byte) error) *Bolt {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	s := mustOpen(t, path, Options{})
	if _, err := s.SetAuditExport(true); err != nil {
		t.Fatal(err)
	}
	appendAudit(t, s, map[string]int{first: 1, "kept": 2}, first, "kept")
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		k, _ := b.Cursor().First()
		return edit(b, k)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	return mustOpen(t, path, opts)
}

// Turning the export off empties the queue (the trail keeps the entries) and stops
// queueing; turning it on again queues from then on.
func TestSetAuditExportOff(t *testing.T) {
	s := openTemp(t, Options{})
	defer s.Close()
	if _, err := s.SetAuditExport(true); err != nil {
		t.Fatal(err)
	}
	appendAudit(t, s, nil, "a", "b")
	if n, err := s.SetAuditExport(true); err != nil || n != 0 {
		t.Fatalf("on again: %d, %v", n, err)
	}
	if n, _ := backlog(t, s); n != 2 {
		t.Fatalf("turning it on twice changed the queue: %d", n)
	}
	n, err := s.SetAuditExport(false)
	if err != nil || n != 2 {
		t.Fatalf("SetAuditExport(false) = %d, %v; want 2 dropped", n, err)
	}
	appendAudit(t, s, nil, "c")
	if n, _ := backlog(t, s); n != 0 {
		t.Errorf("queued while off: %d", n)
	}
	if _, err := s.SetAuditExport(true); err != nil {
		t.Fatal(err)
	}
	appendAudit(t, s, nil, "d")
	if got, _ := queuedActions(t, s, 10); !slices.Equal(got, []string{"d"}) {
		t.Errorf("queue after off and on: %v, want [d]", got)
	}
	var all []string
	_ = s.View(bg, func(tx provision.ReadTx) error {
		return tx.ScanAudit(time.Time{}, func(e provision.AuditEntry) bool { all = append(all, e.Action); return true })
	})
	if len(all) != 4 {
		t.Errorf("trail = %v, want all four entries", all)
	}
	if err := s.Verify(bg); err != nil {
		t.Error(err)
	}
}

// A given event id is kept; the store makes one only when there is none.
func TestAppendAuditKeepsEventID(t *testing.T) {
	s := openTemp(t, Options{})
	defer s.Close()
	if _, err := s.SetAuditExport(true); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(bg, func(tx provision.Tx) error {
		return tx.AppendAudit(provision.AuditEntry{EventID: "given", Action: "a"})
	}); err != nil {
		t.Fatal(err)
	}
	if _, q := queuedActions(t, s, 1); q[0].Entry.EventID != "given" {
		t.Errorf("event id = %q, want the given one", q[0].Entry.EventID)
	}
}

// openWithout opens a schema 4 file written before bucket existed (one audit entry,
// bucket deleted with bbolt) and fails the test if it does not verify clean. The caller closes
// the store.
func openWithout(t *testing.T, bucket []byte) *Bolt {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	s := mustOpen(t, path, Options{})
	appendAudit(t, s, nil, "a")
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucket) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = mustOpen(t, path, Options{})
	if err := s.Verify(bg); err != nil {
		t.Error(err)
	}
	return s
}

// A schema 4 file written before the queue existed (no audit/outbox bucket) opens,
// gets the bucket, and verifies clean.
func TestOpenAddsOutboxBucket(t *testing.T) {
	s := openWithout(t, bucketOutbox)
	defer s.Close()
	if _, err := s.SetAuditExport(true); err != nil {
		t.Fatal(err)
	}
	appendAudit(t, s, nil, "b")
	if got, _ := queuedActions(t, s, 10); !slices.Equal(got, []string{"b"}) {
		t.Errorf("queue = %v, want [b]", got)
	}
}

// A schema 4 file written before invite records existed (no invites bucket) opens,
// gets the bucket, verifies clean and keeps invite records from then on.
func TestOpenAddsInvitesBucket(t *testing.T) {
	s := openWithout(t, bucketInvites)
	defer s.Close()
	r := provision.InviteRecord{Email: "a@example.com", At: time.Unix(1, 0).UTC(), Last: time.Unix(2, 0).UTC()}
	if err := s.Update(bg, func(tx provision.Tx) error { return tx.PutInvite(r) }); err != nil {
		t.Fatal(err)
	}
	var got provision.InviteRecord
	if err := s.View(bg, func(tx provision.ReadTx) (err error) { got, err = tx.Invite("A@example.com"); return err }); err != nil || got != r {
		t.Errorf("Invite = %+v, %v; want %+v", got, err, r)
	}
	if err := s.Verify(bg); err != nil {
		t.Error(err)
	}
}
