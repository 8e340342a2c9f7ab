package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/panther-scim/panther-scim/internal/store"
)

// defaultStoreCheckTimeout bounds the record check at start when Options leave it 0.
const defaultStoreCheckTimeout = 10 * time.Second

// checkRecords is the start-up check of the records, after store.Open has checked the
// pages: every record decoded and every index compared with them, within
// StoreCheckTimeout. Inconsistency refuses the start (a store that lies about who has
// access must not be served); records that do not decode are reported (logged, counted,
// in /readyz) and the store is served without them. A check cut short by its deadline
// is logged: the records it did not reach are checked as they are read.
func (a *App) checkRecords(ctx context.Context, st Store) error {
	timeout := a.opts.StoreCheckTimeout
	if timeout < 0 {
		return nil
	}
	if timeout == 0 {
		timeout = defaultStoreCheckTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	rep, err := st.Inspect(ctx)
	// What the check read is garbage now (about 150 MB at 100,000 users): give it
	// back before the start-up pass, whose reconcile holds Panther's user list, adds
	// its own (without a container limit, GOGC 400 would let both pile up).
	debug.FreeOSMemory()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		rep.Complete = false // out of time before it began
	case err != nil:
		return fmt.Errorf("check store %s: %w", st.Path(), err)
	}
	if len(rep.Problems) > 0 {
		shown := rep.Problems
		if len(shown) > 5 {
			shown = shown[:5]
		}
		return fmt.Errorf("check store %s: %w: %d inconsistencies between records and indexes (%s). %s",
			st.Path(), store.ErrDamaged, len(rep.Problems), strings.Join(shown, "; "), store.RestoreAdvice(st.Path()))
	}
	if rep.DamagedCount > 0 {
		a.log.Error("store records that do not decode are skipped: restore them from a backup, or have the IdP push those users and groups again",
			"damaged", rep.DamagedCount, "path", st.Path())
	}
	if !rep.Complete {
		a.log.Warn("the start-up check of the store records stopped at its deadline; the rest are checked as they are read (panther-scim verify checks them all)",
			"timeout", timeout, "users", rep.Users, "groups", rep.Groups)
		return nil
	}
	a.log.Info("store checked", "users", rep.Users, "groups", rep.Groups, "intents", rep.Intents,
		"duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// LogDamagedRecord is the store's OnDamagedRecord for a server: it logs on log each
// record that does not decode (the store reports each once).
func LogDamagedRecord(log *slog.Logger) func(kind, key string, err error) {
	return func(kind, key string, err error) {
		log.Error("store record does not decode: it is skipped in lists and reported in /readyz; restore it from a backup or have the IdP push it again",
			"kind", kind, "id", key, "err", err)
	}
}

// VerifyReport is the answer of GET /admin/verify: store.Inspect's report of the
// whole file, and the damage met while serving.
type VerifyReport struct {
	Path         string   `json:"path"`
	Users        int      `json:"users"`
	Groups       int      `json:"groups"`
	Intents      int      `json:"intents"`
	DamagedCount int      `json:"damagedRecords"`
	Damaged      []string `json:"damaged,omitempty"`
	Problems     []string `json:"problems,omitempty"`
	Complete     bool     `json:"complete"`
	// DamagedPage is the failure bbolt raised on a damaged page while serving, if any.
	DamagedPage string `json:"damagedPage,omitempty"`
	// Advice says how to recover when the store is not OK.
	Advice string `json:"advice,omitempty"`
	OK     bool   `json:"ok"`
}

// Verify checks the whole store in a read transaction (Inspect: every record decoded,
// every index compared) and reports it with the damage met so far, and how to recover
// when the store is not sound. A live store serves requests meanwhile (at 100,000
// users it takes seconds).
func Verify(ctx context.Context, st Store) VerifyReport {
	rep, err := st.Inspect(ctx)
	out := VerifyReport{Path: st.Path(), Users: rep.Users, Groups: rep.Groups, Intents: rep.Intents,
		DamagedCount: rep.DamagedCount, Damaged: rep.Damaged, Problems: rep.Problems, Complete: rep.Complete,
		DamagedPage: st.Health().DamagedPage}
	if err != nil {
		if out.DamagedPage == "" {
			out.DamagedPage = err.Error()
		}
		out.Complete = false
	}
	out.OK = err == nil && rep.OK() && rep.Complete && out.DamagedPage == ""
	if !out.OK {
		out.Advice = store.RestoreAdvice(st.Path())
	}
	return out
}

// adminVerify is GET /admin/verify, for `panther-scim verify --url`: Verify on the
// live store.
func (a *App) adminVerify(w http.ResponseWriter, r *http.Request) {
	adminJSON(w, Verify(r.Context(), a.Store))
}
