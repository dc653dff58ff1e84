package tenants

import (
	"errors"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
)

const entra = "https://login.microsoftonline.com/{tid}/v2.0"

func TestIssuerTemplate_Match(t *testing.T) {
	tid := "9188040d-6c67-4c5b-b112-36a304b66dad"
	tests := []struct {
		name    string
		values  []string
		iss     string
		claim   any // the token's tid; nil: absent
		want    string
		wantErr error
	}{
		{"listed value", []string{tid}, "https://login.microsoftonline.com/" + tid + "/v2.0", tid, tid, nil},
		{"any value", []string{"*"}, "https://login.microsoftonline.com/" + tid + "/v2.0", tid, tid, nil},
		{"value not listed", []string{"other"}, "https://login.microsoftonline.com/" + tid + "/v2.0", tid, "", ErrTemplateValue},
		{"tid claim disagrees with iss", []string{"*"}, "https://login.microsoftonline.com/" + tid + "/v2.0", "other", "", ErrTemplateClaim},
		{"tid claim absent", []string{"*"}, "https://login.microsoftonline.com/" + tid + "/v2.0", nil, "", ErrTemplateClaim},
		{"tid claim not a string", []string{"*"}, "https://login.microsoftonline.com/7/v2.0", 7, "", ErrTemplateClaim},
		{"value with host and path", []string{"*"}, "https://login.microsoftonline.com/evil.com/x/v2.0", "evil.com/x", "", ErrTemplateShape},
		{"dot dot", []string{"*"}, "https://login.microsoftonline.com/../v2.0", "..", "", ErrTemplateShape},
		{"empty value", []string{"*"}, "https://login.microsoftonline.com//v2.0", "", "", ErrTemplateShape},
		{"colon", []string{"*"}, "https://login.microsoftonline.com/a:b/v2.0", "a:b", "", ErrTemplateShape},
		{"percent-encoded slash", []string{"*"}, "https://login.microsoftonline.com/a%2Fb/v2.0", "a%2Fb", "", ErrTemplateShape},
		{"other host", []string{"*"}, "https://evil.com/" + tid + "/v2.0", tid, "", ErrTemplateShape},
		{"suffix differs", []string{"*"}, "https://login.microsoftonline.com/" + tid + "/v2.0/", tid, "", ErrTemplateShape},
		{"too long", []string{"*"}, "https://login.microsoftonline.com/" + strings.Repeat("a", MaxTemplateValueBytes+1) + "/v2.0", strings.Repeat("a", MaxTemplateValueBytes+1), "", ErrTemplateShape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := ParseIssuerTemplate(entra, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			claims := map[string]any{}
			if tt.claim != nil {
				claims["tid"] = tt.claim
			}
			got, err := tpl.Match(tt.iss, claims)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("Match = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseIssuerTemplate_Refusals(t *testing.T) {
	tests := []struct {
		name     string
		template string
		values   []string
		want     string
	}{
		{"no placeholder", "https://login.microsoftonline.com/v2.0", []string{"*"}, "exactly one placeholder"},
		{"two placeholders", "https://{a}.test/{b}", []string{"*"}, "exactly one placeholder"},
		{"stray brace", "https://x.test/{tid}/{", []string{"*"}, "brace"},
		{"placeholder in scheme", "{s}://x.test/", []string{"*"}, "https URL"},
		{"http", "http://x.test/{tid}", []string{"*"}, "https URL"},
		{"placeholder is the whole host", "https://{tid}", []string{"*"}, "in its path"},
		{"placeholder in the host", "https://{tid}.auth0.test/", []string{"*"}, "in its path"},
		{"placeholder in the port", "https://x.test:{tid}/", []string{"*"}, "in its path"},
		{"placeholder in the query", "https://x.test/?t={tid}", []string{"*"}, ""},
		{"placeholder in the path", "https://x.test/a/{tid}/b", []string{"*"}, ""},
		{"no values", entra, nil, "required"},
		{"star with others", entra, []string{"*", "a"}, `"*" must be the only value`},
		{"unsafe value", entra, []string{"evil.com/x"}, "must be 1-128 characters"},
		{"empty value", entra, []string{""}, "must be 1-128 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIssuerTemplate(tt.template, tt.values)
			checkErr(t, err, tt.want)
		})
	}
}

func TestValidate_IssuerTemplates(t *testing.T) {
	head := tenantstest.Config("", tenantstest.Tenant("acme", "[acme.test]"))
	tests := []struct {
		name      string
		providers string
		want      string // "" valid
	}{
		{"template alone", `
      - {id: entra, issuer_template: "` + entra + `", template_values: ["*"], jwks_url: "https://login.microsoftonline.com/common/discovery/v2.0/keys"}`, ""},
		{"issuer and template", `
      - {id: entra, issuer: "https://a.test/", issuer_template: "` + entra + `", template_values: ["*"], jwks_url: "https://k.test/"}`,
			"tenants[0].providers[0].issuer_template: set issuer or issuer_template, not both"},
		{"values without template", `
      - {id: a, issuer: "https://a.test/", template_values: ["x"], jwks_url: "https://k.test/"}`,
			"tenants[0].providers[0].template_values: only with issuer_template"},
		{"missing values", `
      - {id: entra, issuer_template: "` + entra + `", jwks_url: "https://k.test/"}`,
			"tenants[0].providers[0].template_values: required"},
		{"hostile value", `
      - {id: entra, issuer_template: "` + entra + `", template_values: [".."], jwks_url: "https://k.test/"}`,
			`tenants[0].providers[0].template_values: ".." must be`},
		{"fixed issuer the template matches", `
      - {id: entra, issuer_template: "` + entra + `", template_values: [abc], jwks_url: "https://k.test/"}
      - {id: one, issuer: "https://login.microsoftonline.com/common/v2.0", jwks_url: "https://k.test/"}`,
			`tenants[0].providers[1].issuer: issuer "https://login.microsoftonline.com/common/v2.0" could match the same iss as providers[0] of this tenant`},
		{"overlapping templates", `
      - {id: a, issuer_template: "https://idp.test/{tid}/v2.0", template_values: ["*"], jwks_url: "https://k.test/"}
      - {id: b, issuer_template: "https://idp.test/{org}/v2.0", template_values: [x], jwks_url: "https://k.test/"}`,
			`tenants[0].providers[1].issuer_template: issuer_template "https://idp.test/{org}/v2.0" could match the same iss as providers[0]`},
		{"template discovering from a discovery_url", `
      - {id: entra, issuer_template: "` + entra + `", template_values: ["*"], discovery_url: "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"}`, ""},
		{"templates on other paths", `
      - {id: a, issuer_template: "https://idp.test/{tid}/v2.0", template_values: ["*"], jwks_url: "https://k.test/"}
      - {id: b, issuer_template: "https://idp.test/{tid}/v1", template_values: ["*"], jwks_url: "https://k.test/"}
      - {id: c, issuer: "https://idp.test/a/b/v2.0", jwks_url: "https://k.test/"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(head + tt.providers))
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, c.Validate(nil), tt.want)
		})
	}
}

func TestValidate_TemplateSharedAcrossTenants(t *testing.T) {
	cfg := tenantstest.Config("",
		tenantstest.Tenant("acme", "[acme.test]", `      - {id: entra, issuer_template: "`+entra+`", template_values: [abc], jwks_url: "https://k.test/"}`+"\n"),
		tenantstest.Tenant("globex", "[globex.test]", `      - {id: entra, issuer_template: "`+entra+`", template_values: [def], jwks_url: "https://k.test/"}`+"\n"))
	c, err := Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	want := `tenants[1].providers[0].issuer_template: issuer_template "` + entra + `" could match the same iss as tenants[0].providers[0]: tenants that share an issuer must both set audiences`
	if err := c.Validate(nil); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Validate = %v\nwant it to contain %q", err, want)
	}
}

func TestProviderForToken_Template(t *testing.T) {
	c, err := Parse([]byte(tenantstest.Config("", tenantstest.Tenant("acme", "[acme.test]",
		`      - {id: fixed, issuer: "https://idp.acme.test/", jwks_url: "https://k.test/"}`+"\n",
		`      - {id: entra, issuer_template: "`+entra+`", template_values: [abc], jwks_url: "https://k.test/"}`+"\n"))))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSet(c)
	if err != nil {
		t.Fatal(err)
	}
	acme, _ := s.Tenant("acme")
	tests := []struct {
		iss, tid   string
		provider   string
		match      IssuerMatch
		wantErr    error
		wantNoProv bool
	}{
		{"https://idp.acme.test/", "", "fixed", IssuerMatch{}, nil, false},
		{"https://login.microsoftonline.com/abc/v2.0", "abc", "entra", IssuerMatch{Claim: "tid", Value: "abc"}, nil, false},
		{"https://login.microsoftonline.com/abc/v2.0", "def", "entra", IssuerMatch{}, ErrTemplateClaim, false},
		{"https://login.microsoftonline.com/def/v2.0", "def", "entra", IssuerMatch{}, ErrTemplateValue, false},
		{"https://login.microsoftonline.com/evil.com/x/v2.0", "evil.com/x", "", IssuerMatch{}, ErrTemplateShape, true},
	}
	for _, tt := range tests {
		p, m, err := acme.ProviderForToken(tt.iss, map[string]any{"tid": tt.tid})
		if tt.wantNoProv {
			if p != nil || err == nil {
				t.Errorf("ProviderForToken(%q) = %v, %v; want no provider", tt.iss, p, err)
			}
			continue
		}
		if p == nil || p.ID != tt.provider || m != tt.match || !errors.Is(err, tt.wantErr) {
			t.Errorf("ProviderForToken(%q, tid %q) = %v, %+v, %v; want %s, %+v, %v", tt.iss, tt.tid, p, m, err, tt.provider, tt.match, tt.wantErr)
		}
	}
}

// FuzzIssuerTemplate_StaysOnItsHostAndPath: whatever the token says, a
// match is the template's own prefix and suffix around one safe value.
func FuzzIssuerTemplate_StaysOnItsHostAndPath(f *testing.F) {
	tpl, err := ParseIssuerTemplate(entra, []string{"*"})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"abc", "evil.com/x", "..", "", "a:b", "a%2F", "a/../b"} {
		f.Add("https://login.microsoftonline.com/"+s+"/v2.0", s)
	}
	f.Fuzz(func(t *testing.T, iss, tid string) {
		v, err := tpl.Match(iss, map[string]any{"tid": tid})
		if err != nil {
			return
		}
		if iss != "https://login.microsoftonline.com/"+v+"/v2.0" || v != tid || strings.ContainsAny(v, "/.:%@?#\\") || v == "" {
			t.Fatalf("Match(%q, tid %q) = %q", iss, tid, v)
		}
	})
}

func TestRegistration_Discovery(t *testing.T) {
	tests := []struct {
		name                    string
		p                       Provider
		jwksURL, discovery, iss string
	}{
		{"jwks_url", Provider{ID: "a", Issuer: "https://idp.test/", JWKSURL: "https://idp.test/keys"}, "https://idp.test/keys", "", "https://idp.test/"},
		{"oidc", Provider{ID: "a", Issuer: "https://idp.test/realms/acme"}, "", "https://idp.test/realms/acme/.well-known/openid-configuration", "https://idp.test/realms/acme"},
		{"oauth", Provider{ID: "a", Issuer: "https://idp.test/oauth2/default", Discovery: DiscoveryOAuth}, "", "https://idp.test/.well-known/oauth-authorization-server/oauth2/default", "https://idp.test/oauth2/default"},
		{"discovery_url", Provider{ID: "a", Issuer: "https://idp.test/", DiscoveryURL: "https://meta.test/doc"}, "", "https://meta.test/doc", "https://idp.test/"},
		{"template", Provider{ID: "a", IssuerTemplate: entra, TemplateValues: []string{"*"}, DiscoveryURL: "https://meta.test/doc"}, "", "https://meta.test/doc", entra},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{}
			reg := c.Registration("acme", tt.p)
			if reg.JWKSURL != tt.jwksURL || reg.DiscoveryURL != tt.discovery || reg.Issuer != tt.iss {
				t.Fatalf("registration jwks_url %q, discovery_url %q, issuer %q; want %q, %q, %q", reg.JWKSURL, reg.DiscoveryURL, reg.Issuer, tt.jwksURL, tt.discovery, tt.iss)
			}
		})
	}
}
