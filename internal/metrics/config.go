package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// configMetrics are the series of the loaded configuration beside the
// reload counters: which configuration runs, and which files failed.
type configMetrics struct {
	errors *prometheus.CounterVec
	info   *prometheus.GaugeVec

	mu   sync.Mutex // orders SetConfigHash calls
	hash string
}

func newConfigMetrics() *configMetrics {
	return &configMetrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_config_reload_errors_total",
			Help: "Configuration files that failed to load, at start or on a reload, by source: the configuration file (the load was refused) or a tenants_dir file (that tenant kept its last good version or stayed absent).",
		}, []string{"source"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "extauthz_config_info",
			Help: "1, labelled with the hash of the configuration in effect (file and tenants_dir merged); replicas with the same hash run the same configuration.",
		}, []string{"hash"}),
	}
}

// ConfigError counts one configuration file that failed to load. source
// is its path, set by the operator, never by a client.
func (m *Metrics) ConfigError(source string) {
	m.config.errors.WithLabelValues(source).Inc()
}

// SetConfigHash makes extauthz_config_info carry hash, the configuration
// now in effect; the previous hash's series goes away.
func (m *Metrics) SetConfigHash(hash string) {
	c := m.config
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hash == hash {
		return
	}
	if c.hash != "" {
		c.info.DeleteLabelValues(c.hash)
	}
	c.hash = hash
	c.info.WithLabelValues(hash).Set(1)
}
