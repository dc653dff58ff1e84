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
	count     prometheus.Counter
	duration  prometheus.Observer
	tokenHit  prometheus.Counter
	tokenMiss prometheus.Counter
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
		v = m.resolveLive(k)
	}
	s := v.(*checkSeries)
	s.count.Inc()
	s.duration.Observe(elapsed.Seconds())
	switch d.Cache {
	case authz.CacheHit:
		s.tokenHit.Inc()
	case authz.CacheMiss:
		s.tokenMiss.Inc()
	}
	if d.WouldDeny != "" {
		m.shadowDone(k, d.WouldDeny)
	}
}

// shadowDone counts a shadow-mode allow that would have been a denial. It
// is off the hot path of enforce mode, so the vector's own lookup is fine.
func (m *Metrics) shadowDone(k checkKey, wouldDeny authz.Reason) {
	l := checkLabels(k)
	tenant, provider := l.tenant, l.provider
	if !m.live.Load().has(tenant, provider) {
		return
	}
	reason := string(wouldDeny)
	if !m.reasons[wouldDeny] {
		reason = "other"
	}
	m.wouldDeny.WithLabelValues(tenant, provider, reason).Inc()
}

// TokenEvicted implements authz.TokenCacheObserver. The evicted token of a
// provider a reload removed is not counted (see Retain).
func (m *Metrics) TokenEvicted(tenantID, providerID string) {
	if !m.live.Load().has(tenantID, providerID) {
		return
	}
	m.tokenEvicted.WithLabelValues(tenantID, providerID).Inc()
}

// resolveLive is CheckDone's slow path, once per checkKey: it resolves k's
// series and keeps them in the checkCache, unless k's tenant or provider is
// no longer configured (discarded). It holds liveMu, so Retain cannot run
// between the check and the store and leave unexported series cached.
func (m *Metrics) resolveLive(k checkKey) *checkSeries {
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	if v, ok := m.checkCache.m.Load(k); ok {
		return v.(*checkSeries)
	}
	l := checkLabels(k)
	if !m.live.Load().has(l.tenant, l.provider) {
		return discarded
	}
	s := m.resolve(k)
	m.checkCache.m.Store(k, s)
	return s
}

func (m *Metrics) resolve(k checkKey) *checkSeries {
	l := checkLabels(k)
	tenant, provider := l.tenant, l.provider
	reason := string(k.reason)
	if !m.reasons[k.reason] {
		reason = "other"
	}
	decision := DecisionDeny
	if k.allowed {
		decision = DecisionAllow
	}
	return &checkSeries{
		count:     m.checks.WithLabelValues(tenant, provider, decision, reason),
		duration:  m.checkDuration.WithLabelValues(tenant, decision),
		tokenHit:  m.tokenCache.WithLabelValues(tenant, provider, "hit"),
		tokenMiss: m.tokenCache.WithLabelValues(tenant, provider, "miss"),
	}
}
