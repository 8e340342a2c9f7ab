package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/panther-scim/panther-scim/internal/auditexport"
)

// auditMetrics are the series of the audit trail's export to Panther and of the
// events the bridge adds to the trail for its detections.
type auditMetrics struct {
	exportFailures     *prometheus.CounterVec
	deprovisionDelayed prometheus.Counter
	// backlog reads the export queue; nil until the store is open.
	backlog func(context.Context) (int, time.Time, error)
}

func newAuditMetrics(reg *prometheus.Registry) *auditMetrics {
	m := &auditMetrics{
		exportFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panther_scim_audit_export_failures_total",
			Help: "Failed attempts to send audit events to the Panther HTTP source, by reason (unauthorized: the source refused the secret).",
		}, []string{"reason"}),
		deprovisionDelayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "panther_scim_deprovision_delayed_total",
			Help: "deprovision.delayed events: removals of Panther access still pending after provisioning.deprovisionAlertAfter.",
		}),
	}
	for _, r := range auditexport.Reasons {
		m.exportFailures.WithLabelValues(r)
	}
	read := func(pick func(n int, oldest time.Time) float64) func() float64 {
		return func() float64 {
			if m.backlog == nil {
				return 0
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, oldest, err := m.backlog(ctx)
			if err != nil {
				return -1
			}
			return pick(n, oldest)
		}
	}
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "panther_scim_audit_export_pending_events",
		Help: "Audit events waiting to be acknowledged by the Panther HTTP source (0 with the export off).",
	}, read(func(n int, _ time.Time) float64 { return float64(n) }))
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "panther_scim_audit_export_lag_seconds",
		Help: "Age of the oldest audit event not yet acknowledged by the Panther HTTP source (0 when none).",
	}, read(func(_ int, oldest time.Time) float64 { return lagSeconds(oldest) }))
	reg.MustRegister(m.exportFailures, m.deprovisionDelayed, pending, lag)
	return m
}

func lagSeconds(oldest time.Time) float64 {
	if oldest.IsZero() {
		return 0
	}
	return max(time.Since(oldest).Seconds(), 0)
}

// Exported implements auditexport.Observer.
func (m *Metrics) Exported(int) {}

// ExportFailed implements auditexport.Observer.
func (m *Metrics) ExportFailed(reason string) {
	m.audit.exportFailures.WithLabelValues(reason).Inc()
}

var _ auditexport.Observer = (*Metrics)(nil)

// prepareAuditExport turns the store's export queue on or off as configured, before
// any request can append to the trail, and builds the exporter when on.
func (a *App) prepareAuditExport() error {
	on := a.opts.AuditExport != nil
	dropped, err := a.Store.SetAuditExport(on)
	if err != nil {
		return err
	}
	if dropped > 0 {
		a.log.Warn("audit export to Panther is off: the events that waited for it are no longer queued (they stay in the audit trail)",
			"events", dropped)
	}
	a.metrics.audit.backlog = a.Store.ExportBacklog
	if !on {
		return nil
	}
	eo := *a.opts.AuditExport
	eo.Observer, eo.Logger = a.metrics, a.log
	a.exporter, err = auditexport.New(a.Store, eo)
	return err
}

// runAuditExport runs the exporter, if any, until bg ends.
func (a *App) runAuditExport(bg context.Context) {
	if a.exporter == nil {
		return
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.exporter.Run(bg)
	}()
}

// auditExportReadiness is the export's part of /readyz: informational, it never
// makes the server unready (SCIM works whatever Panther's HTTP source does).
func (a *App) auditExportReadiness(ctx context.Context) map[string]any {
	if a.exporter == nil {
		return nil
	}
	out := map[string]any{}
	if n, oldest, err := a.Store.ExportBacklog(ctx); err == nil {
		out["pendingEvents"] = n
		out["lagSeconds"] = int(lagSeconds(oldest))
	}
	if st := a.exporter.Status(); st.ConsecutiveFailures > 0 {
		out["lastFailureReason"] = st.LastFailureReason
		out["consecutiveFailures"] = st.ConsecutiveFailures
	}
	return out
}
