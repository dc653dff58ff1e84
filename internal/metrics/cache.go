package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/extauthz/extauthz/jwkscache"
)

// cacheCollector turns the cache's Statuses into the jwks_cache_* per-provider
// series at scrape time. The cache already keeps these counters for its
// status API, so reading them here costs the lookup hot path nothing, and a
// provider removed by a reload disappears from the next scrape. It also
// collects jwks_cache_refresh_duration_seconds, dropping the series of
// removed providers first.
type cacheCollector struct {
	src      StatusSource
	refresh  *refreshDurations
	requests *prometheus.Desc
	hits     *prometheus.Desc
	stale    *prometheus.Desc
	errors   *prometheus.Desc
	lastUS   *prometheus.Desc
	results  *prometheus.Desc
	keys     *prometheus.Desc
	expires  *prometheus.Desc
	avail    *prometheus.Desc
	rejected *prometheus.Desc
}

func newCacheCollector(src StatusSource, refresh *refreshDurations) *cacheCollector {
	d := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"tenant", "provider"}, extra...), nil)
	}
	return &cacheCollector{
		src:      src,
		refresh:  refresh,
		requests: d("jwks_cache_requests_total", "Key lookups."),
		hits:     d("jwks_cache_hits_total", "Key lookups answered with a key."),
		stale:    d("jwks_cache_stale_total", "Key lookups answered from an expired key set (stale-while-error)."),
		errors:   d("jwks_cache_refresh_errors_total", "Refreshes that failed after all retries."),
		lastUS:   d("jwks_cache_last_refresh_micros", "Duration of the last refresh, retries included, in microseconds."),
		results:  d("jwks_cache_refresh_total", "Completed refreshes, by result (fetched, not_modified, error).", "result"),
		keys:     d("jwks_cache_keys", "Usable keys in the current key set."),
		expires:  d("jwks_cache_expires_at_seconds", "Unix time at which the current key set expires."),
		avail:    d("jwks_cache_provider_available", "1 when the provider has usable keys (fresh, or stale within stale_while_error), else 0: its Checks answer 503 jwks_unavailable."),
		rejected: d("jwks_cache_redis_snapshots_rejected_total",
			"Shared snapshots found in Redis but not trusted (bad MAC, other trust fingerprint, times out of bounds...), by reason.", "reason"),
	}
}

// Describe implements prometheus.Collector.
func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.hits, c.stale, c.errors, c.lastUS, c.results, c.keys, c.expires, c.avail, c.rejected} {
		ch <- d
	}
	c.refresh.vec.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	statuses := c.src.Statuses()
	live := make(map[providerKey]bool, len(statuses))
	for _, st := range statuses {
		t, p := st.TenantID, st.ProviderID
		live[providerKey{t, p}] = true
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), t, p)
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, t, p)
		}
		result := func(v uint64, result jwkscache.RefreshResult) {
			ch <- prometheus.MustNewConstMetric(c.results, prometheus.CounterValue, float64(v), t, p, string(result))
		}
		counter(c.requests, st.Requests)
		counter(c.hits, st.Hits)
		counter(c.stale, st.StaleServes)
		counter(c.errors, st.RefreshErrors)
		gauge(c.lastUS, float64(st.LastRefreshDuration.Microseconds()))
		result(st.RefreshFetched, jwkscache.RefreshFetched)
		result(st.RefreshNotModified, jwkscache.RefreshNotModified)
		result(st.RefreshErrors, jwkscache.RefreshError)
		gauge(c.keys, float64(len(st.KeyIDs)))
		available := 0.0
		if st.Available() {
			available = 1
		}
		gauge(c.avail, available)
		if !st.ExpiresAt.IsZero() { // nothing cached yet: no expiry to report
			gauge(c.expires, float64(st.ExpiresAt.UnixNano())/1e9)
		}
		for reason, n := range st.SnapshotsRejected {
			ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(n), t, p, reason)
		}
	}
	// The duration histogram is collected here, after the prune, so a
	// removed provider is gone from this very scrape.
	c.refresh.prune(live)
	c.refresh.vec.Collect(ch)
}
