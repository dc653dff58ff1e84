// Package metrics provides extauthz's Prometheus metrics: the JWKS cache's
// per-provider series, read from the cache's status at scrape time, refresh
// durations, authorization decisions and configuration reloads, plus the Go
// runtime and process collectors, all on a registry of its own (never the
// global default one, so two services in one process, or two tests, do not
// share counters).
//
// Label values come only from configured tenant and provider ids and from
// fixed lists (reasons, decisions, refresh results): a client cannot create a
// series. A request that matched no tenant is counted under tenant="unknown",
// and one that matched no provider under provider="none".
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/version"
	"github.com/extauthz/extauthz/jwkscache"
)

// Label values used when a decision carries no tenant or provider: the
// placeholders the decision log lines use too.
const (
	UnknownTenant = authz.NoTenant
	NoProvider    = authz.NoProvider
)

// checkBuckets are extauthz_check_duration_seconds' buckets: 10 µs to 1 s in
// 1-2.5-5 steps. A warm check takes tens of microseconds; a cold one can wait
// for a first fetch (limits.cold_wait).
var checkBuckets = []float64{
	10e-6, 25e-6, 50e-6,
	100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3,
	10e-3, 25e-3, 50e-3,
	100e-3, 250e-3, 500e-3,
	1,
}

// refreshBuckets are jwks_cache_refresh_duration_seconds' buckets: 5 ms to
// the retry policy's default deadline and beyond.
var refreshBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// StatusSource is what the cache collector reads at scrape time.
// *jwkscache.Registry satisfies it.
type StatusSource interface {
	Statuses() []jwkscache.Status
}

// Metrics holds every extauthz series. It implements jwkscache.Observer
// (RefreshDone) and authz.Observer (CheckDone); pass it to both. It is safe
// for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	checks        *prometheus.CounterVec
	checkDuration *prometheus.HistogramVec
	wouldDeny     *prometheus.CounterVec
	refresh       *refreshDurations
	reloads       *prometheus.CounterVec
	lastReloadOK  prometheus.Gauge
	config        *configMetrics
	reasons       map[authz.Reason]bool // read-only after New
	checkCache    checkCache
	tokenCache    *prometheus.CounterVec // by tenant, provider, result (hit, miss)
	tokenEvicted  *prometheus.CounterVec // by tenant, provider

	// live is the configured tenants and providers (Retain); liveMu
	// serialises Retain with the creation of series.
	live   atomic.Pointer[liveSet]
	liveMu sync.Mutex
}

// New returns the metrics of one service, without cache series until
// CollectCache names their source.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), reasons: reasonSet()}
	m.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "extauthz_check_total",
		Help: "Authorization decisions, by tenant, provider, decision (allow, deny) and reason code.",
	}, []string{"tenant", "provider", "decision", "reason"})
	m.checkDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "extauthz_check_duration_seconds",
		Help:    "Time to make one authorization decision, by tenant and decision (allow, deny).",
		Buckets: checkBuckets,
	}, []string{"tenant", "decision"})
	m.wouldDeny = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "extauthz_shadow_would_deny_total",
		Help: "Requests of tenants in shadow mode that were allowed but would have been denied, by tenant, provider and reason code.",
	}, []string{"tenant", "provider", "reason"})
	m.tokenCache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "extauthz_token_cache_requests_total",
		Help: "Look-ups in the verified-token cache, by tenant, provider and result (hit: the token's verification was reused; miss: verified in full).",
	}, []string{"tenant", "provider", "result"})
	m.tokenEvicted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "extauthz_token_cache_evictions_total",
		Help: "Verified tokens dropped from the cache for lack of room (limits.token_cache_entries), by tenant and provider.",
	}, []string{"tenant", "provider"})
	m.refresh = newRefreshDurations()
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "extauthz_config_reload_total",
		Help: "Configuration reloads, by result (success, failure).",
	}, []string{"result"})
	m.lastReloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "extauthz_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful configuration load (at start or by a reload).",
	})
	// Both results exist from the start, so rate() and alerts on failures
	// see a zero rather than an absent series.
	m.reloads.WithLabelValues(ReloadSuccess)
	m.reloads.WithLabelValues(ReloadFailure)
	m.config = newConfigMetrics()

	m.reg.MustRegister(
		m.checks, m.checkDuration, m.wouldDeny, m.reloads, m.lastReloadOK, m.config.errors, m.config.info, buildInfo(version.Get()), m.tokenCache, m.tokenEvicted,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.reg.MustRegister(m.refresh.vec)
	return m
}

// buildInfo is extauthz_build_info: always 1, its labels say which build
// runs, so a dashboard can show a rollout and group series by version.
func buildInfo(v version.Info) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "extauthz_build_info",
		Help: "Always 1; the labels say which build is running: version, revision (VCS commit) and goversion.",
		ConstLabels: prometheus.Labels{
			"version":   v.Version,
			"revision":  v.Revision,
			"goversion": v.GoVersion,
		},
	})
	g.Set(1)
	return g
}

// CollectCache makes every scrape read the cache series from src
// (*jwkscache.Registry). They are read at scrape time, so a key lookup pays
// nothing for them. The cache takes m as its Observer at construction, hence
// this second step. It fails if called twice.
func (m *Metrics) CollectCache(src StatusSource) error {
	c := newCacheCollector(src, m.refresh)
	// From now on the cache collector also collects the refresh-duration
	// histogram, after dropping removed providers' series.
	if !m.reg.Unregister(m.refresh.vec) {
		return errors.New("metrics: CollectCache called twice")
	}
	if err := m.reg.Register(c); err != nil {
		m.reg.MustRegister(m.refresh.vec) // put things back as they were
		return fmt.Errorf("metrics: collect cache: %w", err)
	}
	return nil
}

// Registry returns the Prometheus registry holding every series.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler returns the /metrics handler (text exposition or OpenMetrics, by
// content negotiation). A failing collector is reported in the answer, not
// fatal to the scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg, // promhttp_metric_handler_errors_total
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// The results of extauthz_config_reload_total.
const (
	ReloadSuccess = "success"
	ReloadFailure = "failure"
)

// ConfigLoaded records the configuration loaded at start, at time at: it
// sets the last-success timestamp without counting a reload.
func (m *Metrics) ConfigLoaded(at time.Time) {
	m.lastReloadOK.Set(float64(at.UnixNano()) / 1e9)
}

// ConfigReloaded records one reload: a success is counted and sets the
// last-success timestamp to at; a refused configuration is counted as a
// failure and leaves the timestamp alone.
func (m *Metrics) ConfigReloaded(ok bool, at time.Time) {
	if !ok {
		m.reloads.WithLabelValues(ReloadFailure).Inc()
		return
	}
	m.reloads.WithLabelValues(ReloadSuccess).Inc()
	m.ConfigLoaded(at)
}
