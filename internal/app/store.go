package app

import (
	"context"
	"io"
	"time"

	"github.com/panther-scim/panther-scim/internal/auditexport"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
)

// Store is what the App needs of its store: the records the rules work on
// (provision.Store), and what operating them takes: the record check at start and
// GET /admin/verify, an online backup, a write probe and the health and space of the
// store for /readyz and /metrics, and the queue of the audit trail's export to Panther. cmd/panther-scim opens it (a *store.Bolt);
// another backend implements these methods and changes only the wiring.
type Store interface {
	provision.Store
	auditexport.Queue
	// Path names the store in messages (its file).
	Path() string
	// Inspect decodes every record and compares every index, reporting what it
	// found; it stops early, with Complete false, when ctx ends.
	Inspect(ctx context.Context) (store.Report, error)
	// Backup writes a consistent copy of the store to w and returns its size.
	Backup(w io.Writer) (int64, error)
	// Check fails when the store cannot be read now, or cannot be written while its
	// latest commit has failed.
	Check(ctx context.Context) error
	// Health reports the store's health counters (failed commits).
	Health() store.Health
	// Space measures the store's data and the free space beside it.
	Space() (store.Space, error)
	// SetAuditExport turns the export queue on or off; turning it off empties the
	// queue and returns how many entries it dropped (they stay in the audit trail).
	SetAuditExport(on bool) (dropped int, err error)
	// ExportBacklog counts the queued audit entries and reports when the oldest was
	// written (zero when none).
	ExportBacklog(ctx context.Context) (n int, oldest time.Time, err error)
}

var _ Store = (*store.Bolt)(nil)
