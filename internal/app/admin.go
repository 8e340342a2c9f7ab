package app

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// The admin endpoints answer an operator's questions while the server runs (bbolt lets only
// this process open the store): the `--url` modes of backup, audit, explain, reconcile and
// verify.
// They take the admin credential (Options.AdminAuthenticate), never the IdP's, and are
// served on the ops listener only when there is one.
//
//	GET  /admin/backup                      a consistent copy of the store (application/octet-stream)
//	GET  /admin/audit?since=24h&user=WHO    audit entries as JSON lines, oldest first
//	GET  /admin/explain?user=WHO&audit=N    a provision.Explanation as JSON
//	GET  /admin/reconcile                   the reconciler's plan, changing nothing (a dry run)
//	POST /admin/reconcile                   reconcile now: repair the drift, answer the plan
//	GET  /admin/verify                      the store's consistency report (storecheck.go)
func (a *App) adminRoutes(r chi.Router) {
	if a.opts.AdminAuthenticate != nil {
		r.Use(a.opts.AdminAuthenticate)
	} else {
		r.Use(denyAll) // no admin credential configured: nobody is an admin
	}
	r.Use(withActor)
	r.Get("/backup", a.backup)
	r.Get("/audit", a.adminAudit)
	r.Get("/explain", a.adminExplain)
	r.Get("/reconcile", a.adminReconcile)
	r.Post("/reconcile", a.adminReconcile)
	r.Get("/verify", a.adminVerify)
}

// denyAll answers 401, as a wrong credential gets.
func denyAll(http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		adminError(w, http.StatusUnauthorized, "Authentication failed.")
	})
}

// adminError writes {"error": msg}.
func adminError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func adminJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (a *App) adminAudit(w http.ResponseWriter, r *http.Request) {
	var from time.Time
	if s := r.URL.Query().Get("since"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			adminError(w, http.StatusBadRequest, "since must be a duration such as 24h")
			return
		}
		if d > 0 {
			from = time.Now().Add(-d)
		}
	}
	who := r.URL.Query().Get("user")
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	err := a.Store.View(r.Context(), func(tx provision.ReadTx) error {
		return tx.ScanAudit(from, func(e provision.AuditEntry) bool {
			if who != "" && !provision.AuditAbout(e, who) {
				return true
			}
			return enc.Encode(e) == nil // stop when the client went away
		})
	})
	if err != nil {
		a.log.ErrorContext(r.Context(), "admin audit failed", "err", err)
	}
}

func (a *App) adminExplain(w http.ResponseWriter, r *http.Request) {
	who := r.URL.Query().Get("user")
	if who == "" {
		adminError(w, http.StatusBadRequest, "user (a SCIM id, userName or email) is required")
		return
	}
	n := 0
	if s := r.URL.Query().Get("audit"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 0 {
			adminError(w, http.StatusBadRequest, "audit must be a number of entries")
			return
		}
	}
	ex, err := a.Service.Explain(r.Context(), who, n)
	switch {
	case provision.ErrorCode(err) == provision.CodeNotFound:
		adminError(w, http.StatusNotFound, "no user with the id, userName or email "+strconv.Quote(who))
	case err != nil:
		a.log.ErrorContext(r.Context(), "admin explain failed", "err", err)
		adminError(w, http.StatusInternalServerError, "explain failed; see the server log")
	default:
		adminJSON(w, ex)
	}
}

func (a *App) adminReconcile(w http.ResponseWriter, r *http.Request) {
	dry := r.Method == http.MethodGet
	plan, err := a.Service.Reconcile(r.Context(), dry)
	if err != nil {
		a.log.ErrorContext(r.Context(), "admin reconcile failed", "dryRun", dry, "err", err)
		status := http.StatusInternalServerError
		if provision.Retryable(err) || errors.Is(err, provision.ErrUnauthorized) {
			status = http.StatusBadGateway // Panther's failure, not ours
		}
		adminError(w, status, "reconcile failed: "+err.Error())
		return
	}
	if !dry {
		a.metrics.onPlan(plan)
	}
	adminJSON(w, plan)
}
