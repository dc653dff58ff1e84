// Package tenantstest writes configurations (the YAML tenants.Parse reads)
// for tests, so that a test states only what its configuration adds to the
// tenant most tests share: acme, on api.acme.test, trusting one identity
// provider, main, whose issuer is https://idp.acme.test/.
//
// The builders return YAML text in the layout the configuration reference
// uses: a tenant is an entry of the tenants list (two spaces, "- "), its
// keys are indented by four spaces, a provider's by eight. A tenant's own
// settings (requirements, routes, ...) can follow Tenant's text, indented by
// four spaces; a configuration's top-level settings go in Config's top.
package tenantstest

import "strings"

// The shared tenants' names: acme, and globex beside it where a test needs
// a second tenant.
const (
	AcmeHost      = "api.acme.test"
	AcmeIssuer    = "https://idp.acme.test/"
	AcmeJWKSURL   = "https://idp.acme.test/jwks.json"
	GlobexHost    = "globex.test"
	GlobexIssuer  = "https://idp.globex.test/"
	GlobexJWKSURL = "https://idp.globex.test/jwks.json"
)

// Config returns a configuration: the top-level settings top (whole YAML
// lines, or ""), then the tenants list.
func Config(top string, tenants ...string) string {
	return top + "tenants:\n" + strings.Join(tenants, "")
}

// Tenant returns one entry of the tenants list: its id, its hosts (a YAML
// flow sequence such as `[api.acme.test]`; "" leaves the key out) and its
// providers, each made by Provider (or written out, as a list entry
// indented by six spaces, ending with a newline).
func Tenant(id, hosts string, providers ...string) string {
	var b strings.Builder
	b.WriteString("  - id: " + id + "\n")
	if hosts != "" {
		b.WriteString("    hosts: " + hosts + "\n")
	}
	b.WriteString("    providers:\n")
	for _, p := range providers {
		b.WriteString(p)
	}
	return b.String()
}

// Provider returns one entry of a tenant's providers list: its id, issuer
// and jwks_url, then settings, each one "key: value" line.
func Provider(id, issuer, jwksURL string, settings ...string) string {
	var b strings.Builder
	b.WriteString("      - id: " + id + "\n")
	b.WriteString("        issuer: " + issuer + "\n")
	b.WriteString("        jwks_url: " + jwksURL + "\n")
	for _, s := range settings {
		b.WriteString("        " + s + "\n")
	}
	return b.String()
}

// Main returns acme's provider main (AcmeIssuer, keys at AcmeJWKSURL) with
// settings.
func Main(settings ...string) string {
	return Provider("main", AcmeIssuer, AcmeJWKSURL, settings...)
}

// Acme returns the tenants entry of acme on AcmeHost whose one provider is
// Main(settings...).
func Acme(settings ...string) string {
	return Tenant("acme", "["+AcmeHost+"]", Main(settings...))
}

// Globex returns the tenants entry of globex on GlobexHost whose one
// provider, providerID, has GlobexIssuer, its keys at GlobexJWKSURL, and
// settings.
func Globex(providerID string, settings ...string) string {
	return Tenant("globex", "["+GlobexHost+"]", Provider(providerID, GlobexIssuer, GlobexJWKSURL, settings...))
}
