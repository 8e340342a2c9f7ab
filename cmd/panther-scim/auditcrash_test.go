package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
)

const rigSourceSecret = "crash-test-http-source-secret-0123456789"

// withAuditExport turns the rig's audit export on, to the double's HTTP source with
// a shared secret read from a file.
func (r *rig) withAuditExport() {
	r.t.Helper()
	secretFile := filepath.Join(filepath.Dir(r.cfg), "source-secret")
	if err := os.WriteFile(secretFile, []byte(rigSourceSecret+"\n"), 0o600); err != nil {
		r.t.Fatal(err)
	}
	raw, err := os.ReadFile(r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "audit:\n  retention: 0s\n", `audit:
  retention: 0s
  panther:
    url: `+r.fakeURL+pantherfake.HTTPSourcePath+`crash-test
    auth: sharedSecret
    header: X-Panther-SCIM-Secret
    secretFile: `+secretFile+`
    flushInterval: 20ms
    maxBackoff: 100ms
`, 1)
	if cfg == string(raw) {
		r.t.Fatal("the rig's config has no audit section to extend")
	}
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		r.t.Fatal(err)
	}
	r.fake.SetHTTPSourceAuth(pantherfake.HTTPSourceAuth{Method: pantherfake.SourceAuthSharedSecret,
		Header: "X-Panther-SCIM-Secret", Secret: rigSourceSecret})
}

func sourceIDs(f *pantherfake.Server) []string {
	var out []string
	for _, e := range f.SourceEvents() {
		id, _ := e["eventId"].(string)
		out = append(out, id)
	}
	return out
}

// testAuditExportCrash: a kill -9 after the HTTP source acknowledged a batch and
// before the export queue recorded it. The restarted bridge sends the batch again,
// with the same eventIds, so that a reader dropping duplicates by eventId sees every
// event of the trail exactly once; nothing is lost.
func testAuditExportCrash(t *testing.T, bin string) {
	r := newRig(t, bin)
	r.withAuditExport()
	r.start("after-audit-send")
	// The user.create entry is exported at once; the process dies right after the
	// source's 200, maybe before it answered this request.
	_, _ = r.send("POST", "/Users", scimUser("kim@example.com", "Kim", "Crash"))
	r.killedBySIGKILL()
	first := sourceIDs(r.fake)
	if len(first) == 0 {
		t.Fatal("the source received nothing before the crash")
	}

	r.start("")
	r.must("POST", "/Users", scimUser("lee@example.com", "Lee", "After"), 201)
	r.poll("the batch sent again and the new events", func() bool {
		got := sourceIDs(r.fake)
		return len(got) > 2*len(first) && slices.Equal(got[len(first):2*len(first)], first)
	})
	r.drained()
	r.poll("the export queue to drain", func() bool {
		var body struct {
			AuditExport struct {
				Pending *int `json:"pendingEvents"`
			} `json:"auditExport"`
		}
		_, raw := get(t, r.base+"/readyz")
		return json.Unmarshal([]byte(raw), &body) == nil && body.AuditExport.Pending != nil && *body.AuditExport.Pending == 0
	})
	r.stop()

	got := sourceIDs(r.fake)
	counts := map[string]int{}
	for _, id := range got {
		counts[id]++
	}
	for _, id := range first {
		if counts[id] != 2 {
			t.Errorf("event %s of the batch cut short arrived %d times, want 2 (sent again after the restart)", id, counts[id])
		}
	}
	st, err := store.Open(r.dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var trail []string
	err = st.View(context.Background(), func(tx provision.ReadTx) error {
		return tx.ScanAudit(time.Time{}, func(e provision.AuditEntry) bool { trail = append(trail, e.EventID); return true })
	})
	if err != nil {
		t.Fatal(err)
	}
	unique := slices.Sorted(func(yield func(string) bool) {
		for id := range counts {
			if !yield(id) {
				return
			}
		}
	})
	if slices.Sort(trail); !slices.Equal(unique, trail) {
		t.Errorf("after dropping duplicates the source has %d events, the trail %d:\n%v\n%v", len(unique), len(trail), unique, trail)
	}
	for id, n := range counts {
		if n > 1 && !slices.Contains(first, id) {
			t.Errorf("event %s arrived %d times though its batch was acknowledged", id, n)
		}
	}
}
