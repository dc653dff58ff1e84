package jwkscache_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
	"github.com/google/go-cmp/cmp"
)

func TestValidate_EveryRuleFailsAndPasses(t *testing.T) {
	pin := strings.Repeat("ab", 32) // 32 bytes in hex
	type mut = func(*jwkscache.Registration)
	for _, tc := range []struct {
		rule  string
		field string // the FieldError.Field the failing case reports
		fail  mut
		pass  mut
		opts  jwkscache.Options
	}{
		{"tenant_id syntax", "tenant_id",
			func(r *jwkscache.Registration) { r.TenantID = "acme_corp" },
			func(r *jwkscache.Registration) { r.TenantID = "Acme-42" }, jwkscache.Options{}},
		{"tenant_id length", "tenant_id",
			func(r *jwkscache.Registration) { r.TenantID = strings.Repeat("a", 65) },
			func(r *jwkscache.Registration) { r.TenantID = strings.Repeat("a", 64) }, jwkscache.Options{}},
		{"tenant_id empty", "tenant_id",
			func(r *jwkscache.Registration) { r.TenantID = "" },
			func(r *jwkscache.Registration) { r.TenantID = "a" }, jwkscache.Options{}},
		{"provider_id syntax", "provider_id",
			func(r *jwkscache.Registration) { r.ProviderID = "main.idp" },
			func(r *jwkscache.Registration) { r.ProviderID = "main_idp-2" }, jwkscache.Options{}},
		{"provider_id length", "provider_id",
			func(r *jwkscache.Registration) { r.ProviderID = strings.Repeat("p", 65) },
			func(r *jwkscache.Registration) { r.ProviderID = strings.Repeat("p", 64) }, jwkscache.Options{}},
		{"jwks_url absolute", "jwks_url",
			func(r *jwkscache.Registration) { r.JWKSURL = "/jwks" },
			func(r *jwkscache.Registration) { r.JWKSURL = "https://idp.example.com/jwks" }, jwkscache.Options{}},
		{"jwks_url has a host", "jwks_url",
			func(r *jwkscache.Registration) { r.JWKSURL = "https:///jwks" },
			func(r *jwkscache.Registration) { r.JWKSURL = "https://idp.example.com/jwks" }, jwkscache.Options{}},
		{"jwks_url parses", "jwks_url",
			func(r *jwkscache.Registration) { r.JWKSURL = "https://idp.example.com/%zz" },
			func(r *jwkscache.Registration) { r.JWKSURL = "https://idp.example.com/%41" }, jwkscache.Options{}},
		{"jwks_url https", "jwks_url",
			func(r *jwkscache.Registration) { r.JWKSURL = "http://idp.example.com/jwks" },
			func(r *jwkscache.Registration) { r.JWKSURL = "https://idp.example.com/jwks" }, jwkscache.Options{}},
		{"jwks_url scheme", "jwks_url",
			func(r *jwkscache.Registration) { r.JWKSURL = "ftp://idp.example.com/jwks" },
			func(r *jwkscache.Registration) {}, jwkscache.Options{}},
		{"http needs require_https false", "jwks_url",
			func(r *jwkscache.Registration) { r.JWKSURL = "http://idp.example.com/jwks" },
			func(r *jwkscache.Registration) { r.JWKSURL, r.RequireHTTPS = "http://idp.example.com/jwks", false },
			jwkscache.Options{InsecureAllowHTTP: true}},
		{"require_https off refused by a strict registry", "require_https",
			func(r *jwkscache.Registration) { r.RequireHTTPS = false },
			func(r *jwkscache.Registration) { r.RequireHTTPS = true }, jwkscache.Options{}},
		{"allowed_domains canonical case", "allowed_domains[0]",
			func(r *jwkscache.Registration) { r.AllowedDomains = []string{"Example.com"} },
			func(r *jwkscache.Registration) { r.AllowedDomains = []string{"example.com"} }, jwkscache.Options{}},
		{"allowed_domains no trailing dot", "allowed_domains[0]",
			func(r *jwkscache.Registration) { r.AllowedDomains = []string{"example.com."} },
			func(r *jwkscache.Registration) { r.AllowedDomains = []string{"example.com"} }, jwkscache.Options{}},
		{"allowed_domains host names only", "allowed_domains[0]",
			func(r *jwkscache.Registration) { r.AllowedDomains = []string{"https://example.com"} },
			func(r *jwkscache.Registration) { r.AllowedDomains = []string{"idp.example.com"} }, jwkscache.Options{}},
		{"jwks_url host inside allowed_domains", "jwks_url",
			func(r *jwkscache.Registration) { r.AllowedDomains = []string{"other.com"} },
			func(r *jwkscache.Registration) { r.AllowedDomains = []string{"example.com"} }, jwkscache.Options{}},
		{"subdomain is not a suffix match", "jwks_url",
			func(r *jwkscache.Registration) {
				r.JWKSURL = "https://evilexample.com/jwks"
				r.AllowedDomains = []string{"example.com"}
			},
			func(r *jwkscache.Registration) {
				r.JWKSURL = "https://a.b.example.com/jwks"
				r.AllowedDomains = []string{"example.com"}
			},
			jwkscache.Options{}},
		{"jwks_url host inside the registry allowlist", "jwks_url",
			func(r *jwkscache.Registration) { r.JWKSURL = "https://idp.other.org/jwks" },
			func(r *jwkscache.Registration) {}, jwkscache.Options{AllowedDomains: []string{"example.com"}}},
		{"refresh_early at least 1s", "refresh_early",
			func(r *jwkscache.Registration) { r.RefreshEarly = 999 * time.Millisecond },
			func(r *jwkscache.Registration) { r.RefreshEarly = time.Second }, jwkscache.Options{}},
		{"refresh_early below max_ttl", "refresh_early",
			func(r *jwkscache.Registration) { r.RefreshEarly = r.MaxTTL },
			func(r *jwkscache.Registration) { r.RefreshEarly = r.MaxTTL - time.Second }, jwkscache.Options{}},
		{"stale_while_error not negative", "stale_while_error",
			func(r *jwkscache.Registration) { r.StaleWhileError = -time.Second },
			func(r *jwkscache.Registration) { r.StaleWhileError = 0 }, jwkscache.Options{}},
		{"min_ttl floor", "min_ttl",
			func(r *jwkscache.Registration) { r.MinTTL = 29 * time.Second },
			func(r *jwkscache.Registration) { r.MinTTL = 30 * time.Second }, jwkscache.Options{}},
		{"max_ttl at least min_ttl", "max_ttl",
			func(r *jwkscache.Registration) {
				r.MinTTL, r.MaxTTL, r.RefreshEarly = time.Hour, time.Hour-time.Second, time.Second
			},
			func(r *jwkscache.Registration) {
				r.MinTTL, r.MaxTTL, r.RefreshEarly = time.Hour, time.Hour, time.Second
			},
			jwkscache.Options{}},
		{"max_response_bytes positive", "max_response_bytes",
			func(r *jwkscache.Registration) { r.MaxResponseBytes = 0 },
			func(r *jwkscache.Registration) { r.MaxResponseBytes = 1 }, jwkscache.Options{}},
		{"negative_cache_ttl 0 or at least 1s", "negative_cache_ttl",
			func(r *jwkscache.Registration) { r.NegativeCacheTTL = 500 * time.Millisecond },
			func(r *jwkscache.Registration) { r.NegativeCacheTTL = time.Second }, jwkscache.Options{}},
		{"max_redirects at most 10", "max_redirects",
			func(r *jwkscache.Registration) { r.MaxRedirects = 11 },
			func(r *jwkscache.Registration) { r.MaxRedirects = 10 }, jwkscache.Options{}},
		{"max_redirects not negative", "max_redirects",
			func(r *jwkscache.Registration) { r.MaxRedirects = -1 },
			func(r *jwkscache.Registration) { r.MaxRedirects = 0 }, jwkscache.Options{}},
		{"pinned_spki is 32 bytes", "pinned_spki[0]",
			func(r *jwkscache.Registration) { r.PinnedSPKI = []string{"abcd"} },
			func(r *jwkscache.Registration) { r.PinnedSPKI = []string{pin} }, jwkscache.Options{}},
		{"pinned_spki base64", "pinned_spki[0]",
			func(r *jwkscache.Registration) { r.PinnedSPKI = []string{"!!not base64!!"} },
			func(r *jwkscache.Registration) {
				r.PinnedSPKI = []string{"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}
			},
			jwkscache.Options{}},
		{"prefetch_jitter not negative", "prefetch_jitter",
			func(r *jwkscache.Registration) { r.PrefetchJitter = -time.Second },
			func(r *jwkscache.Registration) { r.PrefetchJitter = 0 }, jwkscache.Options{}},
		{"unknown_kid_cooldown at least 1s", "unknown_kid_cooldown",
			func(r *jwkscache.Registration) { r.UnknownKIDCooldown = 0 },
			func(r *jwkscache.Registration) { r.UnknownKIDCooldown = time.Second }, jwkscache.Options{}},
		{"max_retries not negative", "retry_policy.max_retries",
			func(r *jwkscache.Registration) { r.RetryPolicy.MaxRetries = -1 },
			func(r *jwkscache.Registration) { r.RetryPolicy.MaxRetries = 0 }, jwkscache.Options{}},
		{"attempt_timeout at least 100ms", "retry_policy.attempt_timeout",
			func(r *jwkscache.Registration) { r.RetryPolicy.AttemptTimeout = 99 * time.Millisecond },
			func(r *jwkscache.Registration) { r.RetryPolicy.AttemptTimeout = 100 * time.Millisecond }, jwkscache.Options{}},
		{"initial_backoff positive", "retry_policy.initial_backoff",
			func(r *jwkscache.Registration) { r.RetryPolicy.InitialBackoff = 0 },
			func(r *jwkscache.Registration) { r.RetryPolicy.InitialBackoff = time.Millisecond }, jwkscache.Options{}},
		{"max_backoff at least initial", "retry_policy.max_backoff",
			func(r *jwkscache.Registration) { r.RetryPolicy.MaxBackoff = r.RetryPolicy.InitialBackoff - 1 },
			func(r *jwkscache.Registration) { r.RetryPolicy.MaxBackoff = r.RetryPolicy.InitialBackoff }, jwkscache.Options{}},
		{"deadline at least attempt_timeout", "retry_policy.deadline",
			func(r *jwkscache.Registration) { r.RetryPolicy.Deadline = r.RetryPolicy.AttemptTimeout - 1 },
			func(r *jwkscache.Registration) { r.RetryPolicy.Deadline = r.RetryPolicy.AttemptTimeout }, jwkscache.Options{}},
		{"jitter known", "retry_policy.jitter",
			func(r *jwkscache.Registration) { r.RetryPolicy.Jitter = "random" },
			func(r *jwkscache.Registration) { r.RetryPolicy.Jitter = jwkscache.JitterDecorrelated }, jwkscache.Options{}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r, err := jwkscache.New(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			reg := r.NewRegistration("acme", "main", "https://idp.example.com/jwks")
			tc.pass(&reg)
			if err := r.Validate(reg); err != nil {
				t.Fatalf("passing case: %v", err)
			}
			if err := tc.opts.ValidateRegistration(reg); err != nil {
				t.Fatalf("passing case, without a registry: %v", err)
			}
			reg = r.NewRegistration("acme", "main", "https://idp.example.com/jwks")
			tc.fail(&reg)
			err = r.Validate(reg)
			if alone := tc.opts.ValidateRegistration(reg); fmt.Sprint(alone) != fmt.Sprint(err) {
				t.Fatalf("Options.ValidateRegistration = %v, Registry.Validate = %v", alone, err)
			}
			var fe *jwkscache.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || fe.Reason == "" {
				t.Fatalf("failing case: error %v, want a *FieldError for %s", err, tc.field)
			}
			if err := r.Register(t.Context(), reg); err == nil || !strings.Contains(err.Error(), tc.field+": ") {
				t.Fatalf("Register accepted an invalid registration: %v", err)
			}
		})
	}
}

func TestValidate_ReportsEveryProblem(t *testing.T) {
	r, err := jwkscache.New(jwkscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	var zero jwkscache.Registration
	err = r.Validate(zero)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *jwkscache.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("not a *FieldError: %v", e)
		}
		fields = append(fields, fe.Field)
	}
	want := []string{"tenant_id", "provider_id", "require_https", "jwks_url", "refresh_early", "min_ttl",
		"max_response_bytes", "unknown_kid_cooldown", "retry_policy.attempt_timeout",
		"retry_policy.initial_backoff", "retry_policy.jitter"}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Fatalf("fields of a zero registration (-want +got):\n%s", diff)
	}
}

func TestNew_RejectsBadGlobalAllowlist(t *testing.T) {
	_, err := jwkscache.New(jwkscache.Options{AllowedDomains: []string{"Example.COM"}})
	var fe *jwkscache.FieldError
	if !errors.As(err, &fe) || fe.Field != "allowed_domains[0]" {
		t.Fatalf("error = %v", err)
	}
	if _, err := jwkscache.New(jwkscache.Options{AllowedDomains: []string{"example.com"}}); err != nil {
		t.Fatal(err)
	}
}

func TestNewRegistration_UsesRegistryDefaults(t *testing.T) {
	r, err := jwkscache.New(jwkscache.Options{DefaultRefreshEarly: 10 * time.Second, DefaultStaleWhileError: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	reg := r.NewRegistration("a", "b", "https://idp.example.com/jwks")
	if reg.RefreshEarly != 10*time.Second || reg.StaleWhileError != time.Hour || reg.MinTTL != 30*time.Second {
		t.Fatalf("registration = %+v", reg)
	}
	if err := r.Validate(reg); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultRegistration_DocumentedDefaults: the defaults are the values
// documented on Registration's and RetryPolicy's fields (and in the
// README's settings table), each one a bound: how long stale keys serve, how
// much a refresh may read, how long a retry sequence may last.
func TestDefaultRegistration_DocumentedDefaults(t *testing.T) {
	want := jwkscache.Registration{
		TenantID:           "acme",
		ProviderID:         "main",
		JWKSURL:            "https://idp.acme.test/jwks.json",
		RequireHTTPS:       true,
		RefreshEarly:       30 * time.Second,
		StaleWhileError:    60 * time.Second,
		MinTTL:             30 * time.Second,
		MaxTTL:             24 * time.Hour,
		MaxResponseBytes:   1 << 20,
		MaxRedirects:       3,
		PrefetchJitter:     5 * time.Second,
		UnknownKIDCooldown: 30 * time.Second,
		RetryPolicy: jwkscache.RetryPolicy{
			MaxRetries:     2,
			AttemptTimeout: 3 * time.Second,
			InitialBackoff: 250 * time.Millisecond,
			MaxBackoff:     2 * time.Second,
			Deadline:       8 * time.Second,
			Jitter:         jwkscache.JitterFull,
		},
	}
	got := jwkscache.DefaultRegistration("acme", "main", "https://idp.acme.test/jwks.json")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("DefaultRegistration (-documented +got):\n%s", diff)
	}
}
