package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/extauthz/extauthz/internal/authz"
)

// The decision label's values.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// reasonSet returns the fixed reason list as a set. A reason outside it (one
// added to authz without a release of this package) is counted as "other"
// rather than trusted as a label value.
func reasonSet() map[authz.Reason]bool {
	m := make(map[authz.Reason]bool, len(authz.Reasons))
	for _, r := range authz.Reasons {
		m[r] = true
	}
	return m
}

// checkKey identifies one extauthz_check_total series.
type checkKey struct {
	tenant, provider string
	allowed          bool
	reason           authz.Reason
}

// checkSeries are the resolved series of one checkKey.
type checkSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// checkCache maps a checkKey to its series, so the hot path skips the
// label hashing and locking of CounterVec.WithLabelValues. It holds at most
// one entry per series, which the labels bound already.
type checkCache struct{ m sync.Map } // checkKey → *checkSeries

// CheckDone implements authz.Observer: it counts d and observes elapsed.
// Tenant and provider ids in a Decision come from the configuration (authz
// never copies them from the request), so the label sets are bounded by it.
func (m *Metrics) CheckDone(d *authz.Decision, elapsed time.Duration) {
	k := checkKey{d.TenantID, d.ProviderID, d.Allowed, d.Reason}
	v, ok := m.checkCache.m.Load(k)
	if !ok {
		v, _ = m.checkCache.m.LoadOrStore(k, m.resolve(k))
	}
	s := v.(*checkSeries)
	s.count.Inc()
	s.duration.Observe(elapsed.Seconds())
	if d.WouldDeny != "" {
		m.shadowDone(k, d.WouldDeny)
	}
}

// shadowDone counts a shadow-mode allow that would have been a denial. It
// is off the hot path of enforce mode, so the vector's own lookup is fine.
func (m *Metrics) shadowDone(k checkKey, wouldDeny authz.Reason) {
	tenant, provider := k.tenant, k.provider
	if tenant == "" {
		tenant = UnknownTenant
	}
	if provider == "" {
		provider = NoProvider
	}
	reason := string(wouldDeny)
	if !m.reasons[wouldDeny] {
		reason = "other"
	}
	m.wouldDeny.WithLabelValues(tenant, provider, reason).Inc()
}

func (m *Metrics) resolve(k checkKey) *checkSeries {
	tenant, provider := k.tenant, k.provider
	if tenant == "" {
		tenant = UnknownTenant
	}
	if provider == "" {
		provider = NoProvider
	}
	reason := string(k.reason)
	if !m.reasons[k.reason] {
		reason = "other"
	}
	decision := DecisionDeny
	if k.allowed {
		decision = DecisionAllow
	}
	return &checkSeries{
		count:    m.checks.WithLabelValues(tenant, provider, decision, reason),
		duration: m.checkDuration.WithLabelValues(tenant, decision),
	}
}
