package tenants

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
	"github.com/extauthz/extauthz/jwkscache"
)

// layeredYAML sets every cache setting twice: in the jwks block (what
// globex inherits) and, with other values, on acme's provider.
var layeredYAML = tenantstest.Config(`
jwks:
  require_https: false
  allowed_domains: [globex.test]
  refresh_early: 11s
  stale_while_error: 12s
  min_ttl: 31s
  max_ttl: 1h
  max_response_bytes: 4096
  negative_cache_ttl: 13s
  max_redirects: 1
  pinned_spki: ["`+pinA+`"]
  prefetch_jitter: 14s
  unknown_kid_cooldown: 15s
  retry_policy:
    max_retries: 4
    attempt_timeout: 1s
    initial_backoff: 16ms
    max_backoff: 17ms
    deadline: 5s
    jitter: none
`,
	tenantstest.Tenant("acme", "", tenantstest.Main(
		"require_https: true",
		"allowed_domains: [acme.test]",
		"refresh_early: 21s",
		"stale_while_error: 22s",
		"min_ttl: 32s",
		"max_ttl: 2h",
		"max_response_bytes: 8192",
		"negative_cache_ttl: 23s",
		"max_redirects: 2",
		`pinned_spki: ["`+pinB+`", "`+pinA+`"]`,
		"prefetch_jitter: 24s",
		"unknown_kid_cooldown: 25s",
		"retry_policy:",
		"  max_retries: 5",
		"  attempt_timeout: 2s",
		"  initial_backoff: 26ms",
		"  max_backoff: 27ms",
		"  deadline: 6s",
		"  jitter: decorrelated",
	)),
	tenantstest.Tenant("globex", "", tenantstest.Provider("main", tenantstest.GlobexIssuer, tenantstest.GlobexJWKSURL)))

const (
	pinA = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" // base64 SHA-256
	pinB = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// TestRegistrations_EveryCacheSettingCopied: every cache setting of the
// jwks block reaches the registration of a provider that does not set it,
// and every provider override wins. Dropping one line of applyTo (say,
// pinned_spki, which silently turns pinning off) fails this test.
func TestRegistrations_EveryCacheSettingCopied(t *testing.T) {
	c := mustParse(t, layeredYAML)
	for _, s := range []*CacheSettings{&c.JWKS.CacheSettings, &c.Tenants[0].Providers[0].CacheSettings} {
		requireAllSet(t, reflect.ValueOf(*s))
	}
	acme := jwkscache.Registration{
		TenantID: "acme", ProviderID: "main", JWKSURL: "https://idp.acme.test/jwks.json", Issuer: "https://idp.acme.test/",
		RequireHTTPS: true, AllowedDomains: []string{"acme.test"},
		RefreshEarly: 21 * time.Second, StaleWhileError: 22 * time.Second,
		MinTTL: 32 * time.Second, MaxTTL: 2 * time.Hour, MaxResponseBytes: 8192,
		NegativeCacheTTL: 23 * time.Second, MaxRedirects: 2, PinnedSPKI: []string{pinB, pinA},
		PrefetchJitter: 24 * time.Second, UnknownKIDCooldown: 25 * time.Second,
		RetryPolicy: jwkscache.RetryPolicy{
			MaxRetries: 5, AttemptTimeout: 2 * time.Second, InitialBackoff: 26 * time.Millisecond,
			MaxBackoff: 27 * time.Millisecond, Deadline: 6 * time.Second, Jitter: jwkscache.JitterDecorrelated,
		},
	}
	globex := jwkscache.Registration{
		TenantID: "globex", ProviderID: "main", JWKSURL: "https://idp.globex.test/jwks.json", Issuer: "https://idp.globex.test/",
		RequireHTTPS: false, AllowedDomains: []string{"globex.test"},
		RefreshEarly: 11 * time.Second, StaleWhileError: 12 * time.Second,
		MinTTL: 31 * time.Second, MaxTTL: time.Hour, MaxResponseBytes: 4096,
		NegativeCacheTTL: 13 * time.Second, MaxRedirects: 1, PinnedSPKI: []string{pinA},
		PrefetchJitter: 14 * time.Second, UnknownKIDCooldown: 15 * time.Second,
		RetryPolicy: jwkscache.RetryPolicy{
			MaxRetries: 4, AttemptTimeout: time.Second, InitialBackoff: 16 * time.Millisecond,
			MaxBackoff: 17 * time.Millisecond, Deadline: 5 * time.Second, Jitter: jwkscache.JitterNone,
		},
	}
	if diff := cmp.Diff([]jwkscache.Registration{acme, globex}, c.Registrations()); diff != "" {
		t.Errorf("registrations (-want +got):\n%s", diff)
	}
	// The registrations own their slices: a later edit of the config does
	// not reach a registered provider.
	regs := c.Registrations()
	c.JWKS.PinnedSPKI[0] = "changed"
	c.Tenants[0].Providers[0].AllowedDomains[0] = "changed"
	if regs[1].PinnedSPKI[0] != pinA || regs[0].AllowedDomains[0] != "acme.test" {
		t.Errorf("registrations share slices with the config: %v %v", regs[1].PinnedSPKI, regs[0].AllowedDomains)
	}
}

// requireAllSet fails when a pointer or slice field of v (a CacheSettings,
// recursively its RetryPolicy) is nil: the test above must set every field,
// including fields added later.
func requireAllSet(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.IsNil() {
			t.Fatalf("layeredYAML does not set %s.%s", v.Type().Name(), v.Type().Field(i).Name)
		}
		if f.Kind() == reflect.Pointer && f.Elem().Kind() == reflect.Struct {
			requireAllSet(t, f.Elem())
		}
	}
}

// TestValidate_CacheSettingsAttributed checks, with the registry's own
// validator, that a cache-setting problem is reported at the block that
// set the value: once at jwks. when only the jwks block sets it, at the
// provider when the provider does.
func TestValidate_CacheSettingsAttributed(t *testing.T) {
	reg, err := jwkscache.New(jwkscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		{"global refresh_early once", func(c *Config) {
			c.JWKS.RefreshEarly = ptr(Duration(time.Millisecond))
		}, []string{"jwks.refresh_early: must be at least 1s, got 1ms"}},
		{"provider override of a bad global value", func(c *Config) {
			c.JWKS.RefreshEarly = ptr(Duration(time.Millisecond))
			c.Tenants[0].Providers[0].RefreshEarly = ptr(Duration(0))
		}, []string{
			"tenants[0].providers[0].refresh_early: must be at least 1s, got 0s",
			"jwks.refresh_early: must be at least 1s, got 1ms",
		}},
		{"provider retry policy", func(c *Config) {
			c.Tenants[0].Providers[0].RetryPolicy = &RetryPolicy{MaxBackoff: ptr(Duration(time.Millisecond))}
		}, []string{"tenants[0].providers[0].retry_policy.max_backoff: must be at least initial_backoff (250ms), got 1ms"}},
		{"provider url", func(c *Config) {
			c.Tenants[1].Providers[0].JWKSURL = "http://idp.globex.test/jwks.json"
		}, []string{"tenants[1].providers[0].jwks_url: must use https"}},
		{"global pin once", func(c *Config) {
			c.JWKS.PinnedSPKI = []string{pinA, "nope"}
		}, []string{`jwks.pinned_spki[1]: "nope" is not a SHA-256 fingerprint (32 bytes, base64 or hex)`}},
		{"provider pin", func(c *Config) {
			c.JWKS.PinnedSPKI = []string{pinA}
			c.Tenants[1].Providers[0].PinnedSPKI = []string{"nope"}
		}, []string{`tenants[1].providers[0].pinned_spki[0]: "nope" is not a SHA-256 fingerprint (32 bytes, base64 or hex)`}},
		{"global allowed domain once", func(c *Config) {
			c.JWKS.AllowedDomains = []string{"Acme.test"}
		}, []string{
			`jwks.allowed_domains[0]: "Acme.test" must be lowercase`,
			`tenants[0].providers[0].jwks_url: host "idp.acme.test" is not inside allowed_domains`,
			`tenants[1].providers[0].jwks_url: host "idp.globex.test" is not inside allowed_domains`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, validYAML)
			tc.mutate(c)
			var got []string
			for _, e := range Problems(c.Validate(reg.Validate)) {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCacheSettings_SetsKnowsEveryFieldByItsYAMLName(t *testing.T) {
	d, n, b, i64, j := Duration(time.Second), 1, true, int64(1), "full"
	cases := []struct {
		field string
		s     CacheSettings
	}{
		{"require_https", CacheSettings{RequireHTTPS: &b}},
		{"allowed_domains", CacheSettings{AllowedDomains: []string{}}},
		{"refresh_early", CacheSettings{RefreshEarly: &d}},
		{"stale_while_error", CacheSettings{StaleWhileError: &d}},
		{"min_ttl", CacheSettings{MinTTL: &d}},
		{"max_ttl", CacheSettings{MaxTTL: &d}},
		{"max_response_bytes", CacheSettings{MaxResponseBytes: &i64}},
		{"negative_cache_ttl", CacheSettings{NegativeCacheTTL: &d}},
		{"max_redirects", CacheSettings{MaxRedirects: &n}},
		{"pinned_spki", CacheSettings{PinnedSPKI: []string{}}},
		{"prefetch_jitter", CacheSettings{PrefetchJitter: &d}},
		{"unknown_kid_cooldown", CacheSettings{UnknownKIDCooldown: &d}},
		{"retry_policy", CacheSettings{RetryPolicy: &RetryPolicy{}}},
		{"retry_policy.max_retries", CacheSettings{RetryPolicy: &RetryPolicy{MaxRetries: &n}}},
		{"retry_policy.attempt_timeout", CacheSettings{RetryPolicy: &RetryPolicy{AttemptTimeout: &d}}},
		{"retry_policy.initial_backoff", CacheSettings{RetryPolicy: &RetryPolicy{InitialBackoff: &d}}},
		{"retry_policy.max_backoff", CacheSettings{RetryPolicy: &RetryPolicy{MaxBackoff: &d}}},
		{"retry_policy.deadline", CacheSettings{RetryPolicy: &RetryPolicy{Deadline: &d}}},
		{"retry_policy.jitter", CacheSettings{RetryPolicy: &RetryPolicy{Jitter: &j}}},
	}
	// The table covers every field, so a new setting cannot go unattributed.
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.field] = true
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[CacheSettings](), reflect.TypeFor[RetryPolicy]()} {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if typ == reflect.TypeFor[RetryPolicy]() {
				name = "retry_policy." + name
			}
			if !covered[name] {
				t.Errorf("field %s (%s) is not in the table", f.Name, name)
			}
		}
	}
	for _, tc := range cases {
		if !tc.s.sets(tc.field) {
			t.Errorf("%s set, but sets(%q) = false", tc.field, tc.field)
		}
		if (&CacheSettings{}).sets(tc.field) {
			t.Errorf("nothing set, but sets(%q) = true", tc.field)
		}
		for _, other := range cases {
			want := other.field == tc.field || other.field == "retry_policy" && strings.HasPrefix(tc.field, "retry_policy")
			if got := tc.s.sets(other.field); got != want {
				t.Errorf("only %s set: sets(%q) = %v", tc.field, other.field, got)
			}
		}
	}
	all := CacheSettings{AllowedDomains: []string{"x.test"}, RetryPolicy: &RetryPolicy{Jitter: &j}}
	for _, field := range []string{"allowed_domains[0]", "retry_policy.jitter.x", "retry_policy.nope", "ca_file", ""} {
		if all.sets(field) {
			t.Errorf("sets(%q) = true", field)
		}
	}
}
