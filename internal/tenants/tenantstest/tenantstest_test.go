package tenantstest_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
)

// TestConfig_ParsesAsWritten: what the builders write is a configuration
// tenants.Parse reads into the tenants, hosts, providers and settings
// given, with the top-level settings kept.
func TestConfig_ParsesAsWritten(t *testing.T) {
	c, err := tenants.Parse([]byte(tenantstest.Config("tenant_header: x-tenant-id\n",
		tenantstest.Acme("audiences: [orders]", "retry_policy:", "  max_retries: 2"),
		tenantstest.Tenant("bare", "", tenantstest.Provider("p", "https://p.test/", "https://p.test/jwks")),
		tenantstest.Globex("down", "algorithms: [ES256]"))))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(nil); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	type provider struct{ ID, Issuer, JWKSURL string }
	type tenant struct {
		ID        string
		Hosts     []string
		Providers []provider
	}
	var got []tenant
	for _, tn := range c.Tenants {
		g := tenant{ID: tn.ID, Hosts: tn.Hosts}
		for _, p := range tn.Providers {
			g.Providers = append(g.Providers, provider{p.ID, p.Issuer, p.JWKSURL})
		}
		got = append(got, g)
	}
	want := []tenant{
		{"acme", []string{tenantstest.AcmeHost}, []provider{{"main", tenantstest.AcmeIssuer, tenantstest.AcmeJWKSURL}}},
		{"bare", nil, []provider{{"p", "https://p.test/", "https://p.test/jwks"}}},
		{"globex", []string{tenantstest.GlobexHost}, []provider{{"down", tenantstest.GlobexIssuer, tenantstest.GlobexJWKSURL}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tenants (-want +got):\n%s", diff)
	}
	main := c.Tenants[0].Providers[0]
	if c.TenantHeader != "x-tenant-id" || !cmp.Equal(main.Audiences, []string{"orders"}) ||
		main.RetryPolicy == nil || main.RetryPolicy.MaxRetries == nil || *main.RetryPolicy.MaxRetries != 2 {
		t.Errorf("settings lost: tenant_header %q, audiences %v, retry_policy %+v", c.TenantHeader, main.Audiences, main.RetryPolicy)
	}
	if got := c.Tenants[2].Providers[0].Algorithms; !cmp.Equal(got, []string{"ES256"}) {
		t.Errorf("globex algorithms %v", got)
	}
}
