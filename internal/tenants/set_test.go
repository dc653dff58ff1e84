package tenants

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSet_TenantForHost(t *testing.T) {
	s := mustSet(t, `
tenants:
  - id: exact
    hosts: ["api.acme.test"]
    providers: [{id: p, issuer: "https://exact/", jwks_url: "https://exact/j"}]
  - id: wild
    hosts: ["*.acme.test"]
    providers: [{id: p, issuer: "https://wild/", jwks_url: "https://wild/j"}]
  - id: deeper
    hosts: ["*.eu.acme.test", "Mixed.Case.Test.", "10.1.2.3", "2001:DB8::1"]
    providers: [{id: p, issuer: "https://deeper/", jwks_url: "https://deeper/j"}]
`)
	tests := []struct {
		host string
		want string // "" = no tenant
	}{
		{"api.acme.test", "exact"},
		{"API.ACME.TEST", "exact"},
		{"api.acme.test:8443", "exact"},
		{"api.acme.test.", "exact"},
		{"api.acme.test.:443", "exact"},
		{"x.acme.test", "wild"},
		{"a.b.acme.test", "wild"},         // any depth
		{"x.api.acme.test", "wild"},       // exact api.acme.test does not cover its subdomains
		{"x.eu.acme.test", "deeper"},      // longer suffix beats shorter
		{"a.b.eu.acme.test:80", "deeper"}, // at any depth
		{"eu.acme.test", "wild"},          // *.eu.acme.test never matches eu.acme.test
		{"acme.test", ""},                 // *.acme.test never matches acme.test itself
		{".acme.test", ""},                // empty label
		{"xacme.test", ""},                // not a label boundary
		{"mixed.case.test", "deeper"},     // pattern normalised
		{"10.1.2.3:9000", "deeper"},
		{"[2001:db8:0::1]:9000", "deeper"}, // IPv6 compared in its canonical form
		{"", ""},
		{":443", ""},
		{"other.test", ""},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			tr, ok := s.TenantForHost(tt.host)
			got := ""
			if ok {
				got = tr.ID
			}
			if got != tt.want {
				t.Errorf("TenantForHost(%q) = %q, want %q", tt.host, got, tt.want)
			}
		})
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := map[string]string{
		"Example.COM":        "example.com",
		"example.com:443":    "example.com",
		"example.com.":       "example.com",
		"[2001:DB8::1]:8443": "2001:db8::1",
		"[::1]":              "::1",
		"example.com.:80":    "example.com",
		"":                   "",
		"already.lower":      "already.lower",
	}
	for in, want := range tests {
		if got := NormalizeHost(in); got != want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSet_TenantAndProviders(t *testing.T) {
	s := mustSet(t, validYAML+`
  - id: multi
    providers:
      - id: b
        issuer: https://b/
        jwks_url: https://b/j
        from_cookies: [session]
        claims_to_headers: {email: X-Email}
      - id: a
        issuer: https://a/
        jwks_url: https://a/j
        clock_skew: 5s
        from_headers: [{name: X-Token}]
        from_params: [access_token]
        claims_to_headers: {sub: x-sub, email: x-email}
`)
	if _, ok := s.Tenant("ACME"); ok {
		t.Error("tenant ids are case-sensitive")
	}
	m, ok := s.Tenant("multi")
	if !ok {
		t.Fatal("tenant multi missing")
	}
	if got := []string{m.Providers[0].ID, m.Providers[1].ID}; !cmp.Equal(got, []string{"b", "a"}) {
		t.Errorf("providers in config order = %v", got)
	}
	a, ok := m.ProviderByIssuer("https://a/")
	if !ok || a.ID != "a" {
		t.Fatalf("ProviderByIssuer = %v, %v", a, ok)
	}
	if _, ok := m.ProviderByIssuer("https://A/"); ok {
		t.Error("issuer match must be exact")
	}
	if _, ok := m.Provider("a"); !ok {
		t.Error("Provider(a) missing")
	}
	if a.ClockSkew != 5*time.Second || !a.AllowsAlg("RS256") || a.AllowsAlg("ES256") {
		t.Errorf("provider a compiled wrong: skew %v, algs %v", a.ClockSkew, a.Algorithms)
	}
	wantSources := []TokenSource{{Kind: SourceHeader, Name: "x-token"}, {Kind: SourceParam, Name: "access_token"}}
	if diff := cmp.Diff(wantSources, a.Sources); diff != "" {
		t.Errorf("a.Sources (-want +got):\n%s", diff)
	}
	wantClaims := []ClaimHeader{{Claim: "email", Header: "x-email"}, {Claim: "sub", Header: "x-sub"}}
	if diff := cmp.Diff(wantClaims, a.ClaimHeaders); diff != "" {
		t.Errorf("a.ClaimHeaders (-want +got):\n%s", diff)
	}
	wantUnion := []TokenSource{{Kind: SourceCookie, Name: "session"}, {Kind: SourceHeader, Name: "x-token"}, {Kind: SourceParam, Name: "access_token"}}
	if diff := cmp.Diff(wantUnion, m.Sources); diff != "" {
		t.Errorf("tenant Sources (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"x-email", "x-sub"}, m.ClaimHeaders); diff != "" {
		t.Errorf("tenant ClaimHeaders (-want +got):\n%s", diff)
	}
	acme, _ := s.Tenant("acme")
	if diff := cmp.Diff([]TokenSource{{Kind: SourceHeader, Name: "authorization", Prefix: "Bearer "}}, acme.Providers[0].Sources); diff != "" {
		t.Errorf("default source (-want +got):\n%s", diff)
	}
}

func TestSet_TenantHeaderAndLimits(t *testing.T) {
	c := mustParse(t, validYAML)
	c.TenantHeader = "X-Tenant-ID"
	c.Limits.MaxTokenBytes = 4096
	s, err := NewSet(c)
	if err != nil {
		t.Fatal(err)
	}
	if s.TenantHeader() != "x-tenant-id" {
		t.Errorf("TenantHeader = %q, want lowercase", s.TenantHeader())
	}
	if s.Limits().MaxTokenBytes != 4096 {
		t.Errorf("Limits = %+v", s.Limits())
	}
}

func BenchmarkTenantForHost(b *testing.B) {
	s, err := NewSet(mustParse(b, validYAML))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.TenantForHost("x.y.acme.test:443"); !ok {
			b.Fatal("no match")
		}
	}
}

// Tenant isolation: an authority that is not host[:port] with a host name
// or IP literal belongs to no tenant, whatever a lookup of some part of it
// would find.
func TestTenantIsolation_MalformedAuthorityMatchesNoTenant(t *testing.T) {
	s := mustSet(t, `
tenants:
  - id: acme
    hosts: ["api.acme.test", "*.acme.test", "10.1.2.3"]
    providers: [{id: p, issuer: "https://acme/", jwks_url: "https://acme/j"}]
`)
	for _, host := range []string{
		"evil@api.acme.test",      // userinfo
		"evil.test@api.acme.test", // userinfo that looks like a host
		"api.acme.test/x",         // a path
		"api.acme.test\x00",       // NUL or a control character
		"api.acme.test\x00.evil",  // NUL or a control character
		"api.acme.test\u0000",     // NUL or a control character
		"api.acme.test\n",         // NUL or a control character
		"[api.acme.test]",         // brackets around a name
		"[api.acme.test]:443",     // brackets around a name
		"[10.1.2.3]",              // brackets around IPv4 (RFC 3986 §3.2.2: IPv6 only)
		"[fe80::1%25eth0]",        // a zone
		"x.acme.test:443:443",     // two ports
		"x.acme.test:https",       // a port that is not a number
		"x.acme.test:1234567",     // a port that is too long
		"münchen.acme.test",       // non-ASCII
		"x_y.acme.test",           // not LDH
		"-x.acme.test",            // '-' at a label end
		"x..acme.test",            // empty label
		"2001:db8::1",             // bare IPv6
		"[2001:db8::1]x",          // junk after the brackets
		"[2001:db8::1]:https",     // a port that is not a number
		"010.1.2.3",               // not an IPv4 literal, and all-numeric at the end
		"x.acme.test ",            // a space
		"x.acme.test\t",           // a control character
	} {
		if tr, ok := s.TenantForHost(host); ok {
			t.Errorf("TenantForHost(%q) = %s, want no tenant", host, tr.ID)
		}
		if n := NormalizeHost(host); n != "" {
			t.Errorf("NormalizeHost(%q) = %q, want \"\"", host, n)
		}
	}
	// The same names, well-formed, do match.
	for _, host := range []string{"API.acme.test:443", "xn--mnchen-3ya.acme.test", "10.1.2.3:80"} {
		if _, ok := s.TenantForHost(host); !ok {
			t.Errorf("TenantForHost(%q): no tenant, want acme", host)
		}
	}
}
