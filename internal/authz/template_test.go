package authz

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
)

// templateConfig has a multi-tenant Entra-style provider beside a fixed
// issuer, and maps the tid claim (the template's value) to a header.
var templateConfig = tenantstest.Config("", tenantstest.Tenant("saas", "[app.saas.test]",
	tenantstest.Provider("fixed", "https://idp.saas.test/", "https://idp.saas.test/jwks.json"),
	`      - id: entra
        issuer_template: https://login.entra.test/{tid}/v2.0
        template_values: [contoso, fabrikam]
        jwks_url: https://login.entra.test/common/discovery/v2.0/keys
        claims_to_headers: {tid: x-tenant-directory}
`))

func TestDecide_IssuerTemplate(t *testing.T) {
	keys := authztest.NewFakeKeys()
	keys.Add("saas", "entra", "rsa", &authztest.Keys().RSA.PublicKey)
	keys.Add("saas", "fixed", "rsa", &authztest.Keys().RSA.PublicKey)
	srv := New(testSet(t, templateConfig), keys, Options{Now: func() time.Time { return testNow }})
	claims := func(iss string, tid any) jwt.MapClaims {
		c := jwt.MapClaims{
			"iss": iss, "sub": "u",
			"exp": float64(testNow.Add(time.Hour).Unix()),
		}
		if tid != nil {
			c["tid"] = tid
		}
		return c
	}
	tests := []struct {
		name     string
		claims   jwt.MapClaims
		route    string // context_extensions provider
		want     Reason
		provider string
		values   map[string]string
	}{
		{"listed directory", claims("https://login.entra.test/contoso/v2.0", "contoso"), "", ReasonOK, "entra", map[string]string{"tid": "contoso"}},
		{"pinned by the route", claims("https://login.entra.test/fabrikam/v2.0", "fabrikam"), "entra", ReasonOK, "entra", map[string]string{"tid": "fabrikam"}},
		{"fixed issuer beside it", claims("https://idp.saas.test/", nil), "", ReasonOK, "fixed", nil},
		{"directory not listed", claims("https://login.entra.test/evilcorp/v2.0", "evilcorp"), "", ReasonIssuerUnknown, "entra", nil},
		{"tid disagrees with iss", claims("https://login.entra.test/contoso/v2.0", "evilcorp"), "", ReasonIssuerUnknown, "entra", nil},
		{"tid missing", claims("https://login.entra.test/contoso/v2.0", nil), "", ReasonIssuerUnknown, "entra", nil},
		{"value with another host", claims("https://login.entra.test/evil.test/x/v2.0", "evil.test/x"), "", ReasonIssuerUnknown, "", nil},
		{"dot dot", claims("https://login.entra.test/../v2.0", ".."), "", ReasonIssuerUnknown, "", nil},
		{"empty value", claims("https://login.entra.test//v2.0", ""), "", ReasonIssuerUnknown, "", nil},
		{"route pins the template, iss elsewhere", claims("https://idp.saas.test/", "contoso"), "entra", ReasonIssuerUnknown, "entra", nil},
		{"route pins the fixed issuer, templated iss", claims("https://login.entra.test/contoso/v2.0", "contoso"), "fixed", ReasonIssuerUnknown, "fixed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Host: "app.saas.test", Path: "/", Method: "GET", Headers: bearer(rs256(t, tt.claims))}
			if tt.route != "" {
				r.ContextExtensions = map[string]string{"provider": tt.route}
			}
			d := srv.Decide(context.Background(), r)
			if d.Reason != tt.want || d.ProviderID != tt.provider {
				t.Fatalf("Decide = %s by %q, want %s by %q", d.Reason, d.ProviderID, tt.want, tt.provider)
			}
			if len(d.IssuerValues) != len(tt.values) || d.IssuerValues["tid"] != tt.values["tid"] {
				t.Fatalf("IssuerValues = %v, want %v", d.IssuerValues, tt.values)
			}
			if tt.want == ReasonOK && tt.values != nil && !hasHeaderValue(d.Headers, "x-tenant-directory", tt.values["tid"]) {
				t.Fatalf("headers = %v, want x-tenant-directory: %s", d.Headers, tt.values["tid"])
			}
		})
	}
}
