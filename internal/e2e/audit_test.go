package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
	"github.com/panther-scim/panther-scim/internal/provision"
)

// Audit entries older than the retention are pruned; newer ones stay.
func TestAuditRetention(t *testing.T) {
	e := newEnv(t, func(o *app.Options) { o.AuditRetention = 24 * time.Hour })
	e.createUser("kept@example.com", "Kept", "Entry")
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour)
	if err := e.App.Store.Update(ctx, func(tx provision.Tx) error {
		return tx.AppendAudit(provision.AuditEntry{Time: old, Action: "user.create", Resource: "User", ID: "ancient", Outcome: "accepted"})
	}); err != nil {
		t.Fatal(err)
	}
	count := func() (oldN, newN int) {
		_ = e.App.Store.View(ctx, func(tx provision.ReadTx) error {
			return tx.ScanAudit(time.Time{}, func(a provision.AuditEntry) bool {
				if a.ID == "ancient" {
					oldN++
				} else {
					newN++
				}
				return true
			})
		})
		return
	}
	if o, _ := count(); o != 1 {
		t.Fatalf("old entry not written: %d", o)
	}
	e.restart() // pruning runs at start, then hourly
	waitFor(t, "old audit entry pruned", func() bool { o, _ := count(); return o == 0 })
	if _, n := count(); n == 0 {
		t.Error("recent entries were pruned too")
	}
	e.do("GET", "/Users", nil).must(t, http.StatusOK)
}
