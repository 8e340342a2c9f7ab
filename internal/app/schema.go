package app

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/panther-scim/panther-scim/internal/panther"
)

// Panther's live schema, checked against the operations the client sends at start-up and
// every Options.SchemaCheckInterval: an incompatible schema (a renamed input field, a removed
// argument) makes /readyz answer 503, so that IdPs retry rather than have changes half
// applied, and is logged at error level; a Panther that refuses introspection is a warning.

// Values of panther_scim_panther_schema_compatible.
const (
	schemaCompatible   = 1
	schemaIncompatible = 0
	schemaUnknown      = -1 // not checked yet, introspection refused, or Panther unreachable so far
)

// schemaState is the latest finding; it is replaced whole, never changed.
type schemaState struct {
	status   int
	problems []string
	refused  bool
}

// firstSchemaCheckTimeout bounds the check Start makes before the listeners open.
const firstSchemaCheckTimeout = 15 * time.Second

// schemaRetry is the wait before checking again after the check could not run.
const schemaRetry = time.Minute

// checkSchema runs Options.CheckSchema once and records, logs and exports the result. When
// the check cannot run (Panther unreachable), the previous finding stands. It reports whether
// the check ran.
func (a *App) checkSchema(ctx context.Context) bool {
	comp, err := a.opts.CheckSchema(ctx)
	prev := a.schema.Load()
	var next schemaState
	switch {
	case err == nil && len(comp.Problems) == 0:
		next = schemaState{status: schemaCompatible}
		if prev != nil && prev.status == schemaIncompatible {
			a.log.Info("Panther's schema is compatible again", "operations", comp.Operations)
		}
	case err == nil:
		next = schemaState{status: schemaIncompatible}
		for _, p := range comp.Problems {
			next.problems = append(next.problems, p.String())
		}
		a.log.Error("Panther's schema is incompatible with the operations panther-scim sends; /readyz answers 503 until it is fixed",
			"problems", next.problems)
	case errors.Is(err, panther.ErrIntrospectionRefused):
		next = schemaState{status: schemaUnknown, refused: true}
		if prev == nil || !prev.refused {
			a.log.Warn("Panther refused the introspection query: its schema cannot be checked against panther-scim's operations", "err", err)
		}
	default:
		a.log.Warn("could not check Panther's schema; will try again", "err", err)
		return false
	}
	a.schema.Store(&next)
	a.metrics.schemaCompatible.Set(float64(next.status))
	return true
}

// watchSchema checks the schema every interval (sooner after a check that could not run)
// until ctx ends.
func (a *App) watchSchema(ctx context.Context, ran bool) {
	interval := a.opts.SchemaCheckInterval
	for {
		wait := interval
		if !ran && (wait <= 0 || wait > schemaRetry) {
			wait = schemaRetry
		}
		if wait <= 0 {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		ran = a.checkSchema(ctx)
	}
}

// schemaReadiness is the readiness check's word on the schema: "" when nothing is known
// against it, else why the bridge is not ready.
func (a *App) schemaReadiness() string {
	s := a.schema.Load()
	if s == nil || s.status != schemaIncompatible {
		return ""
	}
	return "incompatible schema: " + strings.Join(s.problems, "; ")
}
