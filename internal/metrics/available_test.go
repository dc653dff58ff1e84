package metrics_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/metrics"
	"github.com/extauthz/extauthz/jwkscache"
)

// TestMetrics_ProviderAvailable: jwks_cache_provider_available is 1 exactly
// for the providers whose lookups can be answered (a set held, fresh or
// stale within stale_while_error), so an alert can name the one tenant an
// outage costs.
func TestMetrics_ProviderAvailable(t *testing.T) {
	src := statuses{
		{TenantID: "a", ProviderID: "ready", State: jwkscache.StateReady},
		{TenantID: "a", ProviderID: "refreshing", State: jwkscache.StateRefreshing},
		{TenantID: "a", ProviderID: "stale", State: jwkscache.StateReady, Stale: true},
		{TenantID: "b", ProviderID: "unusable", State: jwkscache.StateReady, Stale: true, Unusable: true},
		{TenantID: "b", ProviderID: "empty", State: jwkscache.StateEmpty, Attempted: true},
		{TenantID: "b", ProviderID: "loading", State: jwkscache.StateLoading},
	}
	m := metrics.New()
	if err := m.CollectCache(src); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"provider=ready,tenant=a": 1, "provider=refreshing,tenant=a": 1, "provider=stale,tenant=a": 1,
		"provider=unusable,tenant=b": 0, "provider=empty,tenant=b": 0, "provider=loading,tenant=b": 0,
	}
	if diff := cmp.Diff(want, series(scrape(t, m), "jwks_cache_provider_available")); diff != "" {
		t.Errorf("jwks_cache_provider_available (-want +got):\n%s", diff)
	}
}
