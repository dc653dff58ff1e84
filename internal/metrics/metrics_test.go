package metrics_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/metrics"
	"github.com/extauthz/extauthz/internal/version"
	"github.com/extauthz/extauthz/jwkscache"
)

func TestMetrics_ScriptedTrafficExactSeries(t *testing.T) {
	s := newStack(t, true)
	valid := s.token(t, "k1", nil)
	expired := s.token(t, "k1", jwt.MapClaims{"iat": t0.Add(-2 * time.Hour).Unix(), "exp": t0.Add(-time.Hour).Unix()})
	badSig := valid[:len(valid)-4] + strings.Repeat("A", 4)
	if badSig == valid {
		t.Fatal("tampering left the token unchanged")
	}
	otherIss := s.token(t, "k1", jwt.MapClaims{"iss": "https://evil.test/"})

	script := []struct {
		host, token string
		want        authz.Reason
	}{
		{"api.acme.test", valid, authz.ReasonOK},
		{"api.acme.test", valid, authz.ReasonOK},
		{"api.acme.test", valid, authz.ReasonOK},
		{"api.acme.test", "", authz.ReasonTokenMissing},
		{"nobody.test", valid, authz.ReasonTenantUnknown},
		{"nobody.test", "", authz.ReasonTenantUnknown},
		{"api.acme.test", expired, authz.ReasonTokenExpired},
		{"api.acme.test", badSig, authz.ReasonSignatureInvalid},
		{"api.acme.test", otherIss, authz.ReasonIssuerUnknown},
		{"api.acme.test", "abc", authz.ReasonTokenMalformed},
	}
	for i, step := range script {
		if d := s.check(step.host, step.token); d.Reason != step.want {
			t.Fatalf("step %d: reason %q, want %q", i, d.Reason, step.want)
		}
	}
	s.metrics.ConfigLoaded(t0)
	s.metrics.ConfigReloaded(false, t0.Add(time.Minute))

	fams := scrape(t, s.metrics)
	want := map[string]map[string]float64{
		"extauthz_check_total": {
			"decision=allow,provider=main,reason=ok,tenant=acme":               3,
			"decision=deny,provider=none,reason=token_missing,tenant=acme":     1,
			"decision=deny,provider=none,reason=tenant_unknown,tenant=unknown": 2,
			"decision=deny,provider=main,reason=token_expired,tenant=acme":     1,
			"decision=deny,provider=main,reason=signature_invalid,tenant=acme": 1,
			"decision=deny,provider=none,reason=issuer_unknown,tenant=acme":    1,
			"decision=deny,provider=none,reason=token_malformed,tenant=acme":   1,
		},
		// The tenant label: configured ids, and "unknown" for the rest.
		"extauthz_check_duration_seconds": {"decision=allow,tenant=acme": 3, "decision=deny,tenant=acme": 5, "decision=deny,tenant=unknown": 2},
		// Five decisions reached the key lookup: 3 allowed, the expired
		// token (the signature is checked before the claims) and the bad
		// signature.
		"jwks_cache_requests_total":       {"provider=backup,tenant=acme": 0, "provider=main,tenant=acme": 5},
		"jwks_cache_hits_total":           {"provider=backup,tenant=acme": 0, "provider=main,tenant=acme": 5},
		"jwks_cache_stale_total":          {"provider=backup,tenant=acme": 0, "provider=main,tenant=acme": 0},
		"jwks_cache_refresh_errors_total": {"provider=backup,tenant=acme": 0, "provider=main,tenant=acme": 0},
		"jwks_cache_last_refresh_micros":  {"provider=backup,tenant=acme": 0, "provider=main,tenant=acme": 0}, // the fake clock did not move
		"jwks_cache_refresh_total": {
			"provider=backup,result=error,tenant=acme":        0,
			"provider=backup,result=fetched,tenant=acme":      1,
			"provider=backup,result=not_modified,tenant=acme": 0,
			"provider=main,result=error,tenant=acme":          0,
			"provider=main,result=fetched,tenant=acme":        1,
			"provider=main,result=not_modified,tenant=acme":   0,
		},
		"jwks_cache_refresh_duration_seconds": {"provider=backup,tenant=acme": 1, "provider=main,tenant=acme": 1},
		"jwks_cache_keys":                     {"provider=backup,tenant=acme": 1, "provider=main,tenant=acme": 1},
		"jwks_cache_provider_available":       {"provider=backup,tenant=acme": 1, "provider=main,tenant=acme": 1},
		"jwks_cache_expires_at_seconds": {
			"provider=backup,tenant=acme": float64(t0.Add(time.Hour).Unix()),
			"provider=main,tenant=acme":   float64(t0.Add(time.Hour).Unix()),
		},
		"extauthz_config_reload_total":                          {"result=failure": 1, "result=success": 0},
		"extauthz_config_last_reload_success_timestamp_seconds": {"": float64(t0.Unix())},
	}
	for name, w := range want {
		if diff := cmp.Diff(w, series(fams, name)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	// The histogram's buckets run from 10 µs to 1 s (then +Inf).
	h := fams["extauthz_check_duration_seconds"].GetMetric()[0].GetHistogram()
	b := h.GetBucket()
	if first, last := b[0].GetUpperBound(), b[len(b)-2].GetUpperBound(); first != 10e-6 || last != 1 {
		t.Errorf("check duration buckets %g..%g, want 1e-05..1", first, last)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("%s missing: runtime and process collectors not registered", name)
		}
	}
}

func TestMetrics_ReloadCounters(t *testing.T) {
	m := metrics.New()
	at := time.Date(2026, 5, 6, 7, 8, 9, 500_000_000, time.UTC)
	m.ConfigReloaded(true, at)
	m.ConfigReloaded(true, at.Add(time.Second))
	m.ConfigReloaded(false, at.Add(time.Hour)) // a refused reload keeps the last success time
	fams := scrape(t, m)
	if diff := cmp.Diff(map[string]float64{"result=success": 2, "result=failure": 1}, series(fams, "extauthz_config_reload_total")); diff != "" {
		t.Errorf("reload counts (-want +got):\n%s", diff)
	}
	if got, want := series(fams, "extauthz_config_last_reload_success_timestamp_seconds")[""], 1778051290.5; got != want {
		t.Errorf("last success = %v, want %v", got, want)
	}
}

func TestMetrics_BuildInfo(t *testing.T) {
	fams := scrape(t, metrics.New())
	v := version.Get()
	want := map[string]float64{"goversion=" + v.GoVersion + ",revision=" + v.Revision + ",version=" + v.Version: 1}
	if diff := cmp.Diff(want, series(fams, "extauthz_build_info")); diff != "" {
		t.Errorf("extauthz_build_info (-want +got):\n%s", diff)
	}
}

// extauthzSeries counts this service's own series (runtime and process
// collectors excluded: their sets are fixed but not ours to assert).
func extauthzSeries(t *testing.T, m *metrics.Metrics) int {
	t.Helper()
	n := 0
	for name, f := range scrape(t, m) {
		if strings.HasPrefix(name, "extauthz_") || strings.HasPrefix(name, "jwks_cache_") {
			n += len(f.GetMetric())
		}
	}
	return n
}

func TestMetrics_FloodOfRandomRequestsAddsNoSeries(t *testing.T) {
	s := newStack(t, true)
	valid := s.token(t, "k1", nil)
	// One request of each shape first, so every series the flood can touch
	// exists; then the flood must not add any.
	warm := func(i int) (string, string) {
		switch i % 4 {
		case 0: // random host: no tenant
			return fmt.Sprintf("h%d.random-%d.test", i, rand.Int()), valid
		case 1: // random kid: key_not_found (refresh at most once per cooldown)
			return "api.acme.test", s.token(t, fmt.Sprintf("kid-%d", rand.Int()), nil)
		case 2: // random issuer
			return "api.acme.test", s.token(t, "k1", jwt.MapClaims{"iss": fmt.Sprintf("https://%d.test/", rand.Int())})
		default: // random garbage as a token
			return "api.acme.test", fmt.Sprintf("%x", rand.Int())
		}
	}
	for i := range 4 {
		s.check(warm(i))
	}
	s.nextEvent(t) // the refresh the first unknown kid triggered
	before := extauthzSeries(t, s.metrics)
	const flood = 400
	for i := range flood {
		s.check(warm(i))
	}
	if after := extauthzSeries(t, s.metrics); after != before {
		t.Errorf("series: %d before the flood, %d after", before, after)
	}
	got := series(scrape(t, s.metrics), "extauthz_check_total")
	want := map[string]float64{
		"decision=deny,provider=none,reason=tenant_unknown,tenant=unknown": 1 + flood/4,
		"decision=deny,provider=main,reason=key_not_found,tenant=acme":     1 + flood/4,
		"decision=deny,provider=none,reason=issuer_unknown,tenant=acme":    1 + flood/4,
		"decision=deny,provider=none,reason=token_malformed,tenant=acme":   1 + flood/4,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("extauthz_check_total (-want +got):\n%s", diff)
	}
}

func TestMetrics_RemovedProviderSeriesDisappear(t *testing.T) {
	s := newStack(t, true)
	if !s.reg.Unregister("acme", "backup") {
		t.Fatal("backup was not registered")
	}
	fams := scrape(t, s.metrics)
	for _, name := range []string{"jwks_cache_requests_total", "jwks_cache_keys", "jwks_cache_refresh_duration_seconds"} {
		if diff := cmp.Diff(map[string]float64{"provider=main,tenant=acme": series(fams, name)["provider=main,tenant=acme"]}, series(fams, name)); diff != "" {
			t.Errorf("%s still reports the removed provider (-want +got):\n%s", name, diff)
		}
	}
}

func TestCheckDone_LabelValues(t *testing.T) {
	tests := []struct {
		name string
		d    authz.Decision
		want string
	}{
		{"allowed", authz.Decision{Allowed: true, Reason: authz.ReasonOK, TenantID: "acme", ProviderID: "main"},
			"decision=allow,provider=main,reason=ok,tenant=acme"},
		{"no tenant", authz.Decision{Reason: authz.ReasonTenantUnknown},
			"decision=deny,provider=none,reason=tenant_unknown,tenant=unknown"},
		{"no provider", authz.Decision{Reason: authz.ReasonTokenMissing, TenantID: "acme"},
			"decision=deny,provider=none,reason=token_missing,tenant=acme"},
		{"reason outside the fixed list", authz.Decision{Reason: "made_up", TenantID: "acme", ProviderID: "main"},
			"decision=deny,provider=main,reason=other,tenant=acme"},
		{"shadow allow", authz.Decision{Allowed: true, Reason: authz.ReasonOK, WouldDeny: authz.ReasonInsufficientScope, TenantID: "acme", ProviderID: "main"},
			"decision=allow,provider=main,reason=ok,tenant=acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New()
			m.CheckDone(&tt.d, 20*time.Microsecond)
			fams := scrape(t, m)
			if diff := cmp.Diff(map[string]float64{tt.want: 1}, series(fams, "extauthz_check_total")); diff != "" {
				t.Errorf("extauthz_check_total (-want +got):\n%s", diff)
			}
			wantShadow := map[string]float64{}
			if tt.d.WouldDeny != "" {
				wantShadow["provider="+tt.d.ProviderID+",reason="+string(tt.d.WouldDeny)+",tenant="+tt.d.TenantID] = 1
			}
			if diff := cmp.Diff(wantShadow, series(fams, "extauthz_shadow_would_deny_total")); diff != "" {
				t.Errorf("extauthz_shadow_would_deny_total (-want +got):\n%s", diff)
			}
			labels := strings.Split(tt.want, ",")
			decision := labels[0] + "," + labels[len(labels)-1] // decision=…,tenant=…
			if diff := cmp.Diff(map[string]float64{decision: 1}, series(fams, "extauthz_check_duration_seconds")); diff != "" {
				t.Errorf("extauthz_check_duration_seconds (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCollectCache_Twice(t *testing.T) {
	s := newStack(t, true)
	if err := s.metrics.CollectCache(s.reg); err == nil {
		t.Fatal("second CollectCache accepted")
	}
	// The first one still works.
	if got := series(scrape(t, s.metrics), "jwks_cache_keys"); len(got) != 2 {
		t.Errorf("jwks_cache_keys = %v, want two providers", got)
	}
}

// statuses is a StatusSource with fixed contents.
type statuses []jwkscache.Status

func (s statuses) Statuses() []jwkscache.Status { return s }

func TestCollectCache_RedisSnapshotsRejected(t *testing.T) {
	m := metrics.New()
	if err := m.CollectCache(statuses{
		{TenantID: "acme", ProviderID: "main", SnapshotsRejected: map[string]uint64{"bad_mac": 3, jwkscache.RejectFingerprint: 1}},
		{TenantID: "globex", ProviderID: "main"},
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"provider=main,reason=bad_mac,tenant=acme":              3,
		"provider=main,reason=fingerprint_mismatch,tenant=acme": 1,
	}
	if diff := cmp.Diff(want, series(scrape(t, m), "jwks_cache_redis_snapshots_rejected_total")); diff != "" {
		t.Errorf("jwks_cache_redis_snapshots_rejected_total (-want +got):\n%s", diff)
	}
}

func TestCollectAudit(t *testing.T) {
	tests := []struct {
		name    string
		dropped func() uint64
		want    float64
	}{
		{"audit off", nil, 0},
		{"dropped records", func() uint64 { return 7 }, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New()
			if err := m.CollectAudit(tt.dropped); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]float64{"": tt.want}, series(scrape(t, m), "extauthz_audit_dropped_total")); diff != "" {
				t.Errorf("extauthz_audit_dropped_total (-want +got):\n%s", diff)
			}
			if err := m.CollectAudit(tt.dropped); err == nil {
				t.Error("a second CollectAudit succeeded")
			}
		})
	}
}
