package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// CollectAudit exposes extauthz_audit_dropped_total, read from dropped at
// scrape time (audit.Log.Dropped; nil when the audit log is off, which
// reads as 0), so an alert on a full audit buffer needs no extra series.
func (m *Metrics) CollectAudit(dropped func() uint64) error {
	c := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "extauthz_audit_dropped_total",
		Help: "Audit records dropped because the audit log's buffer was full (writes never block a decision).",
	}, func() float64 {
		if dropped == nil {
			return 0
		}
		return float64(dropped())
	})
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("metrics: collect audit: %w", err)
	}
	return nil
}
