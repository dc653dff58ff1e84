package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// liveSet is the configuration's tenants and providers. The per-tenant and
// per-provider series of others are deleted and not created again.
type liveSet struct {
	tenants   map[string]bool
	providers map[providerKey]bool
}

// has reports whether series labelled tenant and provider (label values:
// UnknownTenant and NoProvider stand for none) may exist. A nil set (no
// configuration given yet) allows everything.
func (l *liveSet) has(tenant, provider string) bool {
	if l == nil || tenant == UnknownTenant {
		return true
	}
	return l.tenants[tenant] && (provider == NoProvider || l.providers[providerKey{tenant, provider}])
}

// Retain makes the decision and verified-token-cache series follow the
// configuration: providers maps each configured tenant id to its provider
// ids. The series of a tenant or provider that is not listed are deleted
// (extauthz_check_total, extauthz_check_duration_seconds,
// extauthz_shadow_would_deny_total, extauthz_token_cache_requests_total,
// extauthz_token_cache_evictions_total) and are not created again by a
// late decision or eviction (a Check in flight during a reload, a cached
// token of a removed provider evicted later): those are not counted. The
// series of tenant "unknown" and of a listed tenant's provider "none" stay.
// The jwks_cache_* series follow the cache's own registrations (see
// CollectCache). The service calls Retain with every configuration it
// loads, at start and on each reload; before the first call every series
// is kept.
func (m *Metrics) Retain(providers map[string][]string) {
	next := &liveSet{tenants: make(map[string]bool, len(providers)), providers: map[providerKey]bool{}}
	for t, ps := range providers {
		next.tenants[t] = true
		for _, p := range ps {
			next.providers[providerKey{t, p}] = true
		}
	}
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	prev := m.live.Swap(next)
	// What may have series: what was configured, and what was counted.
	gone := map[providerKey]bool{}
	if prev != nil {
		for t := range prev.tenants {
			if !next.tenants[t] {
				gone[providerKey{t, NoProvider}] = true
			}
		}
		for k := range prev.providers {
			if !next.has(k.tenant, k.provider) {
				gone[k] = true
			}
		}
	}
	m.checkCache.m.Range(func(key, _ any) bool {
		k := checkLabels(key.(checkKey))
		if !next.has(k.tenant, k.provider) {
			m.checkCache.m.Delete(key)
			gone[k] = true
		}
		return true
	})
	for k := range gone {
		match := prometheus.Labels{"tenant": k.tenant}
		if next.tenants[k.tenant] {
			match["provider"] = k.provider // the tenant stays: only this provider goes
		} else {
			m.checkDuration.DeletePartialMatch(match)
		}
		m.checks.DeletePartialMatch(match)
		m.wouldDeny.DeletePartialMatch(match)
		m.tokenCache.DeletePartialMatch(match)
		m.tokenEvicted.DeletePartialMatch(match)
	}
}

// checkLabels is a checkKey's tenant and provider label values.
func checkLabels(k checkKey) providerKey {
	t, p := k.tenant, k.provider
	if t == "" {
		t = UnknownTenant
	}
	if p == "" {
		p = NoProvider
	}
	return providerKey{t, p}
}

// discarded are the series a decision of a tenant or provider no longer
// configured is counted on: registered nowhere, never exported.
var discarded = &checkSeries{
	count:     prometheus.NewCounter(prometheus.CounterOpts{Name: "discarded"}),
	duration:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "discarded"}),
	tokenHit:  prometheus.NewCounter(prometheus.CounterOpts{Name: "discarded"}),
	tokenMiss: prometheus.NewCounter(prometheus.CounterOpts{Name: "discarded"}),
}
