package tenants

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// pairwiseShared is the plain definition of the shared-issuer rule: every
// provider compared with every earlier provider of another tenant. The
// indexed validateSharedIssuers must report exactly what this reports.
func pairwiseShared(c *Config) []error {
	v := &validator{}
	uses := c.sharedUses()
	for k, u := range uses {
		for _, prev := range uses[:k] {
			if prev.tenant != u.tenant && prev.overlaps(u.issuerUse) {
				reportShared(v, prev, u)
			}
		}
	}
	return v.errs
}

// randomSharedConfig draws tenants whose providers pick from a few issuers,
// templates and audiences, so that overlaps, missing audiences and common
// audiences all occur.
func randomSharedConfig(r *rand.Rand) *Config {
	issuers := []string{
		"https://idp.acme.test/",
		"https://login.microsoftonline.com/t1/v2.0",
		"https://login.microsoftonline.com/t2/v2.0",
		"https://idp.other.test/",
	}
	templates := []struct {
		raw    string
		values []string
	}{
		{"https://login.microsoftonline.com/{tid}/v2.0", []string{"*"}},
		{"https://login.microsoftonline.com/{tid}/v2.0", []string{"t2", "t3"}},
		{"https://idp.other.test/{org}", []string{"*"}},
	}
	auds := []string{"a", "b", "c", "d", "e"}
	c := &Config{}
	for range 1 + r.IntN(8) {
		var t Tenant
		for range 1 + r.IntN(3) {
			var p Provider
			if r.IntN(5) == 0 {
				tp := templates[r.IntN(len(templates))]
				p.IssuerTemplate, p.TemplateValues = tp.raw, tp.values
			} else {
				p.Issuer = issuers[r.IntN(len(issuers))]
			}
			for _, a := range auds {
				if r.IntN(3) == 0 {
					p.Audiences = append(p.Audiences, a)
				}
			}
			t.Providers = append(t.Providers, p)
		}
		c.Tenants = append(c.Tenants, t)
	}
	return c
}

func TestValidateSharedIssuers_SameAsPairwise(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	reported := 0
	for n := range 3000 {
		c := randomSharedConfig(r)
		want := pairwiseShared(c)
		v := &validator{}
		c.validateSharedIssuers(v)
		if !slices.EqualFunc(v.errs, want, func(a, b error) bool { return a.Error() == b.Error() }) {
			t.Fatalf("config %d: indexed check reports\n%v\npairwise reports\n%v", n, v.errs, want)
		}
		reported += len(want)
	}
	if reported == 0 {
		t.Fatal("no random configuration shared an issuer: the comparison checked nothing")
	}
}

// BenchmarkValidateSharedIssuers_OneIssuer is the fleet the index exists
// for: 10,000 tenants on one issuer, an audience each. Pairwise, this was
// 50 million comparisons with error text built for each.
func BenchmarkValidateSharedIssuers_OneIssuer(b *testing.B) {
	c := &Config{}
	for i := range 10000 {
		c.Tenants = append(c.Tenants, Tenant{Providers: []Provider{{
			Issuer:    "https://login.example.test/",
			Audiences: []string{fmt.Sprintf("api-%d", i)},
		}}})
	}
	for b.Loop() {
		v := &validator{}
		c.validateSharedIssuers(v)
		if len(v.errs) != 0 {
			b.Fatal(v.errs)
		}
	}
}
