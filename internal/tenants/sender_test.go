package tenants

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSenderSettings_LayeredProviderOverTenantOverGlobal(t *testing.T) {
	s := mustSet(t, `
sender_constraint: dpop
dpop: {max_age: 30s}
trust_forwarded_client_cert: true
dpop_replay: {max_entries: 5, on_redis_error: per_replica}
tenants:
  - id: acme
    hosts: [api.acme.test]
    dpop: {algorithms: [ES256]}
    providers:
      - {id: a, issuer: "https://a/", jwks_url: "https://a/jwks"}
      - {id: b, issuer: "https://b/", jwks_url: "https://b/jwks", sender_constraint: mtls, dpop: {max_age: 10s, algorithms: [EdDSA]}}
  - id: globex
    hosts: [globex.test]
    sender_constraint: "off"
    providers:
      - {id: c, issuer: "https://c/", jwks_url: "https://c/jwks"}
  - id: plain
    hosts: [plain.test]
    providers:
      - {id: d, issuer: "https://d/", jwks_url: "https://d/jwks"}
`)
	type got struct {
		Mode   SenderConstraint
		MaxAge time.Duration
		Algs   []string
	}
	for _, tc := range []struct {
		tenant, provider string
		want             got
	}{
		{"acme", "a", got{SenderDPoP, 30 * time.Second, []string{"ES256"}}},      // global mode and max_age, tenant algs
		{"acme", "b", got{SenderMTLS, 10 * time.Second, []string{"EdDSA"}}},      // provider wins
		{"globex", "c", got{SenderOff, 30 * time.Second, DefaultDPoPAlgorithms}}, // tenant mode
	} {
		tr, _ := s.Tenant(tc.tenant)
		p, _ := tr.Provider(tc.provider)
		if diff := cmp.Diff(tc.want, got{p.SenderConstraint, p.DPoPMaxAge, p.DPoPAlgorithms}); diff != "" {
			t.Errorf("%s/%s (-want +got):\n%s", tc.tenant, tc.provider, diff)
		}
	}
	if r := s.DPoPReplay(); r.MaxEntries != 5 || !r.FallBack() {
		t.Errorf("DPoPReplay = %+v", r)
	}
	if !s.TrustForwardedClientCert() {
		t.Error("TrustForwardedClientCert false")
	}
	// The defaults.
	d := mustSet(t, `
tenants:
  - id: plain
    hosts: [plain.test]
    providers:
      - {id: d, issuer: "https://d/", jwks_url: "https://d/jwks"}
`)
	tr, _ := d.Tenant("plain")
	p := tr.Providers[0]
	if p.SenderConstraint != SenderIfBound || p.DPoPMaxAge != time.Minute || !cmp.Equal(p.DPoPAlgorithms, []string{"ES256", "EdDSA", "RS256", "PS256"}) {
		t.Errorf("defaults: %s %s %v", p.SenderConstraint, p.DPoPMaxAge, p.DPoPAlgorithms)
	}
	if r := d.DPoPReplay(); r.MaxEntries != 100_000 || r.FallBack() || d.TrustForwardedClientCert() {
		t.Errorf("default replay %+v, trust %v", r, d.TrustForwardedClientCert())
	}
}

func TestValidate_SenderSettings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		want   string
	}{
		{"global mode", func(c *Config) { c.SenderConstraint = "bearer" }, `sender_constraint: "bearer" must be one of if_bound, dpop, mtls, off`},
		{"tenant mode", func(c *Config) { c.Tenants[0].SenderConstraint = "DPoP" }, `tenants[0].sender_constraint: "DPoP" must be one of`},
		{"provider mode", func(c *Config) { c.Tenants[0].Providers[0].SenderConstraint = "x" }, `tenants[0].providers[0].sender_constraint: "x"`},
		{"zero max_age", func(c *Config) { c.DPoP = &DPoP{MaxAge: ptr(Duration(0))} }, "dpop.max_age: 0s must be more than 0s and at most 10m0s"},
		{"huge max_age", func(c *Config) { c.Tenants[0].Providers[0].DPoP = &DPoP{MaxAge: ptr(Duration(time.Hour))} }, "tenants[0].providers[0].dpop.max_age: 1h0m0s"},
		{"HS256 proof", func(c *Config) { c.Tenants[0].DPoP = &DPoP{Algorithms: []string{"ES256", "HS256"}} }, `tenants[0].dpop.algorithms[1]: "HS256" is not an asymmetric JWS algorithm`},
		{"none proof", func(c *Config) { c.DPoP = &DPoP{Algorithms: []string{"none"}} }, `dpop.algorithms[0]: "none" is not an asymmetric`},
		{"empty algorithms", func(c *Config) { c.DPoP = &DPoP{Algorithms: []string{}} }, "dpop.algorithms: must not be empty when set"},
		{"claim into the DPoP header", func(c *Config) { c.Tenants[0].Providers[0].ClaimsToHeaders = map[string]string{"sub": "DPoP"} }, `claims_to_headers.sub: header "DPoP" is reserved`},
		{"replay entries", func(c *Config) { c.DPoPReplay.MaxEntries = -1 }, "dpop_replay.max_entries: -1 must be between 1 and 10000000"},
		{"replay on error", func(c *Config) { c.DPoPReplay.OnRedisError = "allow" }, `dpop_replay.on_redis_error: "allow" must be deny or per_replica`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, validYAML)
			tc.mutate(c)
			err := c.Validate(nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}
