package tenants

import (
	"strings"
	"testing"
)

// Tenant isolation: the same issuer in two tenants is refused unless both
// set audiences with none in common.
func TestTenantIsolation_SharedIssuerNeedsDisjointAudiences(t *testing.T) {
	tests := []struct {
		name         string
		acme, globex string // audiences of acme/main and globex/main, YAML
		globexIssuer string
		want         string // "" = valid
	}{
		{"different issuers", "[orders]", "[]", "https://idp.globex.test/", ""},
		{"shared, disjoint audiences", "[orders]", "[invoices]", "https://idp.acme.test/", ""},
		{"shared, second has no audiences", "[orders]", "[]", "https://idp.acme.test/",
			`tenants[1].providers[0].issuer: issuer "https://idp.acme.test/" is also used by tenants[0].providers[0]: tenants that share an issuer must both set audiences`},
		{"shared, first has no audiences", "[]", "[invoices]", "https://idp.acme.test/",
			`tenants[1].providers[0].issuer: issuer "https://idp.acme.test/" is also used by tenants[0].providers[0]`},
		{"shared, an audience in common", "[orders, billing]", "[invoices, billing]", "https://idp.acme.test/",
			`tenants[1].providers[0].audiences: audience "billing" is also accepted by tenants[0].providers[0], which has the same issuer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, `
tenants:
  - id: acme
    hosts: ["api.acme.test"]
    providers:
      - {id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/j", audiences: `+tt.acme+`}
  - id: globex
    hosts: ["globex.test"]
    providers:
      - {id: main, issuer: "`+tt.globexIssuer+`", jwks_url: "https://idp.globex.test/j", audiences: `+tt.globex+`}
`)
			if !checkErr(t, c.Validate(nil), tt.want) || tt.want == "" {
				return
			}
			if _, err := NewSet(c); err == nil {
				t.Error("NewSet (what a reload builds) accepted the config")
			}
		})
	}
}

// Tenant isolation: claims_to_headers may not name a header that frames,
// routes, caches or forwards the request, or that any provider reads a
// token from.
func TestTenantIsolation_ReservedClaimHeaders(t *testing.T) {
	for _, h := range []string{
		"forwarded", "X-Forwarded-For", "x-forwarded-host", "x-forwarded-uri", "x-forwarded-client-cert",
		"x-forwarded-anything", "X-Original-URI", "x-original-method", "x-original-whatever", "x-real-ip",
		"Cache-Control", "x-envoy-original-path", "authorization", "cookie",
		"x-globex-token", // globex's provider reads its token from it
	} {
		c := mustParse(t, validYAML)
		c.Tenants[1].Providers[0].FromHeaders = []HeaderSource{{Name: "X-Globex-Token"}}
		c.Tenants[0].Providers[0].ClaimsToHeaders["sub"] = h
		err := c.Validate(nil)
		want := `tenants[0].providers[0].claims_to_headers.sub: header "` + h + `"`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate = %v, want %q", h, err, want)
		}
	}
	for _, h := range []string{"x-auth-subject", "x-forwarded", "x-originals", "x-user-id"} {
		c := mustParse(t, validYAML)
		c.Tenants[0].Providers[0].ClaimsToHeaders["sub"] = h
		if err := c.Validate(nil); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
}

func TestValidate_HostPatterns(t *testing.T) {
	tests := []struct {
		host, want string // want: canonical form, or the error's text
		ok         bool
	}{
		{"API.acme.test.", "api.acme.test", true},
		{"*.acme.test", "*.acme.test", true},
		{"xn--mnchen-3ya.test", "xn--mnchen-3ya.test", true},
		{"10.0.0.1", "10.0.0.1", true},
		{"2001:DB8::1", "2001:db8::1", true},
		{"[2001:db8::1]", "2001:db8::1", true},
		{"münchen.test", `host "münchen.test" is not ASCII: write an internationalised name in its punycode form ("xn--mnchen-3ya.test")`, false},
		{"a_b.test", "not a valid host name", false},
		{"-a.test", "not a valid host name", false},
		{"a-.test", "not a valid host name", false},
		{"1.2.3.999", "not a valid host name", false},
		{"*.10.0.0.1", "a wildcard needs a host name", false},
		{"a@b.test", "not a valid host name", false},
		{"a/b.test", "not a valid host name", false},
		{"[a.test]", "must not carry a port", false},
		{"fe80::1%eth0", "must not carry a port", false},
		{strings.Repeat("a", 64) + ".test", "not a valid host name", false},
	}
	for _, tt := range tests {
		got, err := normalizePattern(tt.host)
		switch {
		case tt.ok && (err != nil || got != tt.want):
			t.Errorf("normalizePattern(%q) = %q, %v; want %q", tt.host, got, err, tt.want)
		case !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("normalizePattern(%q) = %q, %v; want an error with %q", tt.host, got, err, tt.want)
		}
	}
}
