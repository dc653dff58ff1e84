package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/metrics"
)

// perProvider are the families Retain prunes, with the label sets of one
// allowed cache hit and one shadow would-deny cache miss per provider.
var perProvider = []string{
	"extauthz_check_total",
	"extauthz_check_duration_seconds",
	"extauthz_shadow_would_deny_total",
	"extauthz_token_cache_requests_total",
	"extauthz_token_cache_evictions_total",
}

// traffic counts, for each tenant/provider pair, an allowed cache hit, a
// shadow-mode would-deny that missed the cache and an eviction, plus a
// tenant-level denial (provider "none") per tenant and one for no tenant.
func traffic(m *metrics.Metrics, pairs ...[2]string) {
	seen := map[string]bool{}
	for _, p := range pairs {
		m.CheckDone(&authz.Decision{Allowed: true, Reason: authz.ReasonOK, TenantID: p[0], ProviderID: p[1], Cache: authz.CacheHit}, time.Millisecond)
		m.CheckDone(&authz.Decision{Allowed: true, Reason: authz.ReasonOK, WouldDeny: authz.ReasonInsufficientScope,
			TenantID: p[0], ProviderID: p[1], Cache: authz.CacheMiss}, time.Millisecond)
		m.TokenEvicted(p[0], p[1])
		if !seen[p[0]] {
			seen[p[0]] = true
			m.CheckDone(&authz.Decision{Reason: authz.ReasonTokenMissing, TenantID: p[0]}, time.Millisecond)
		}
	}
	m.CheckDone(&authz.Decision{Reason: authz.ReasonTenantUnknown}, time.Millisecond)
}

// labelPairs returns, per family, the tenant/provider pairs that have
// series ("acme/main"; "acme" for a family without a provider label).
func labelPairs(t *testing.T, m *metrics.Metrics) map[string]map[string]bool {
	t.Helper()
	fams := scrape(t, m)
	out := map[string]map[string]bool{}
	for _, name := range perProvider {
		out[name] = map[string]bool{}
		for _, s := range fams[name].GetMetric() {
			var tenant, provider string
			for _, l := range s.GetLabel() {
				switch l.GetName() {
				case "tenant":
					tenant = l.GetValue()
				case "provider":
					provider = "/" + l.GetValue()
				}
			}
			out[name][tenant+provider] = true
		}
	}
	return out
}

// want builds labelPairs' expected value from the pairs that should have
// series, given as "tenant/provider".
func want(pairs ...string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, name := range perProvider {
		out[name] = map[string]bool{}
	}
	add := func(name, key string) { out[name][key] = true }
	for _, p := range append(pairs, "unknown/none") {
		tenant, _, _ := strings.Cut(p, "/")
		for _, key := range []string{p, tenant + "/none"} {
			add("extauthz_check_total", key)
			// A decision's hit and miss series exist from its first count,
			// zero for decisions without a cache look-up.
			add("extauthz_token_cache_requests_total", key)
		}
		add("extauthz_check_duration_seconds", tenant)
		if tenant != "unknown" {
			add("extauthz_shadow_would_deny_total", p)
			add("extauthz_token_cache_evictions_total", p)
		}
	}
	return out
}

func TestRetain_RemovedProvidersAndTenantsLoseTheirSeries(t *testing.T) {
	m := metrics.New()
	m.Retain(map[string][]string{"acme": {"main", "backup"}, "beta": {"p"}})
	traffic(m, [2]string{"acme", "main"}, [2]string{"acme", "backup"}, [2]string{"beta", "p"})
	if diff := cmp.Diff(want("acme/main", "acme/backup", "beta/p"), labelPairs(t, m)); diff != "" {
		t.Fatalf("series before the reload (-want +got):\n%s", diff)
	}

	// A reload drops provider acme/backup and tenant beta.
	m.Retain(map[string][]string{"acme": {"main"}})
	if diff := cmp.Diff(want("acme/main"), labelPairs(t, m)); diff != "" {
		t.Errorf("series after removing acme/backup and beta (-want +got):\n%s", diff)
	}
	// Late decisions and evictions (in flight during the reload, a removed
	// provider's cached token evicted later) create nothing again.
	traffic(m, [2]string{"acme", "backup"}, [2]string{"beta", "p"})
	if diff := cmp.Diff(want("acme/main"), labelPairs(t, m)); diff != "" {
		t.Errorf("series after late traffic of removed providers (-want +got):\n%s", diff)
	}

	// Added back, the provider counts from zero on exported series, not
	// on the ones deleted before.
	m.Retain(map[string][]string{"acme": {"main", "backup"}})
	traffic(m, [2]string{"acme", "backup"})
	if diff := cmp.Diff(want("acme/main", "acme/backup"), labelPairs(t, m)); diff != "" {
		t.Errorf("series after adding acme/backup back (-want +got):\n%s", diff)
	}
	fams := scrape(t, m)
	if got := series(fams, "extauthz_check_total")["decision=allow,provider=backup,reason=ok,tenant=acme"]; got != 2 {
		t.Errorf("acme/backup allows after re-adding = %v, want 2 (counted from zero)", got)
	}
	if got := series(fams, "extauthz_token_cache_requests_total")["provider=main,result=hit,tenant=acme"]; got != 1 {
		t.Errorf("acme/main cache hits = %v, want 1 (kept through both reloads)", got)
	}
}
