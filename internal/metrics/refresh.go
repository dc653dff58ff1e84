package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/extauthz/extauthz/jwkscache"
)

// providerKey is a (tenant, provider) pair.
type providerKey struct{ tenant, provider string }

// refreshDurations is jwks_cache_refresh_duration_seconds, fed by the cache's
// Observer. It remembers which providers it has series for, so the cache
// collector can drop the series of a provider a reload removed.
type refreshDurations struct {
	vec *prometheus.HistogramVec

	mu   sync.Mutex
	seen map[providerKey]bool
}

func newRefreshDurations() *refreshDurations {
	return &refreshDurations{
		vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "jwks_cache_refresh_duration_seconds",
			Help:    "Duration of one JWKS refresh, retries included, by tenant and provider.",
			Buckets: refreshBuckets,
		}, []string{"tenant", "provider"}),
		seen: map[providerKey]bool{},
	}
}

// observe records one refresh. Refreshes are rare (one per provider per TTL),
// so the mutex is no hot path.
func (r *refreshDurations) observe(ev jwkscache.RefreshEvent) {
	r.mu.Lock()
	r.seen[providerKey{ev.TenantID, ev.ProviderID}] = true
	r.mu.Unlock()
	r.vec.WithLabelValues(ev.TenantID, ev.ProviderID).Observe(ev.Duration.Seconds())
}

// prune deletes the series of providers that are no longer registered.
func (r *refreshDurations) prune(live map[providerKey]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.seen {
		if !live[k] {
			r.vec.DeleteLabelValues(k.tenant, k.provider)
			delete(r.seen, k)
		}
	}
}

// RefreshDone implements jwkscache.Observer. The per-result counts come from
// the cache's own counters at scrape time; the observer adds the duration
// distribution, which the status cannot carry.
func (m *Metrics) RefreshDone(ev jwkscache.RefreshEvent) {
	m.refresh.observe(ev)
}
