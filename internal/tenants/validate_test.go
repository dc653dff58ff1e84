package tenants

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
	"github.com/extauthz/extauthz/jwkscache"
)

func ptr[T any](v T) *T { return &v }

func TestValidate_Rules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // each must appear in the error text
	}{
		{"no tenants", func(c *Config) { c.Tenants = nil }, []string{"tenants: at least one tenant is required"}},
		{"bad tenant id", func(c *Config) { c.Tenants[0].ID = "ac me" }, []string{`tenants[0].id: "ac me" must be 1-64`}},
		{"empty tenant id", func(c *Config) { c.Tenants[0].ID = "" }, []string{`tenants[0].id: "" must be`}},
		{"long tenant id", func(c *Config) { c.Tenants[0].ID = strings.Repeat("a", 65) }, []string{"tenants[0].id:"}},
		{"underscore in tenant id", func(c *Config) { c.Tenants[0].ID = "a_b" }, []string{"tenants[0].id:"}},
		{"duplicate tenant id", func(c *Config) { c.Tenants[1].ID = "acme" }, []string{`tenants[1].id: duplicate tenant id "acme" (also tenants[0])`}},
		{"bad provider id", func(c *Config) { c.Tenants[1].Providers[0].ID = "a.b" }, []string{`tenants[1].providers[0].id: "a.b" must be`}},
		{"duplicate provider id", func(c *Config) {
			p := c.Tenants[0].Providers[0]
			p.Issuer = "https://other/"
			c.Tenants[0].Providers = append(c.Tenants[0].Providers, p)
		}, []string{`tenants[0].providers[1].id: duplicate provider id "main"`}},
		{"duplicate issuer in tenant", func(c *Config) {
			p := c.Tenants[0].Providers[0]
			p.ID = "second"
			p.ClaimsToHeaders = nil
			c.Tenants[0].Providers = append(c.Tenants[0].Providers, p)
		}, []string{`tenants[0].providers[1].issuer: issuer "https://idp.acme.test/" already used by providers[0]`}},
		{"missing issuer", func(c *Config) { c.Tenants[0].Providers[0].Issuer = "" }, []string{"tenants[0].providers[0].issuer: required"}},
		{"jwks_url and discovery", func(c *Config) { c.Tenants[0].Providers[0].Discovery = "oauth" }, []string{"tenants[0].providers[0].jwks_url: set jwks_url, or discovery/discovery_url, not both"}},
		{"unknown discovery", func(c *Config) { c.Tenants[0].Providers[0].JWKSURL, c.Tenants[0].Providers[0].Discovery = "", "oauth2" }, []string{`tenants[0].providers[0].discovery: "oauth2" must be oidc or oauth`}},
		{"issuer with a query, no jwks_url", func(c *Config) {
			c.Tenants[0].Providers[0].JWKSURL, c.Tenants[0].Providers[0].Issuer = "", "https://idp.acme.test/?x=1"
		}, []string{`tenants[0].providers[0].issuer: issuer "https://idp.acme.test/?x=1" is not a URL`}},
		{"template without jwks_url", func(c *Config) {
			p := &c.Tenants[0].Providers[0]
			p.JWKSURL, p.Issuer, p.IssuerTemplate, p.TemplateValues = "", "", "https://idp.acme.test/{tid}", []string{"*"}
		}, []string{"tenants[0].providers[0].jwks_url: required with issuer_template (or discovery_url)"}},
		{"no providers", func(c *Config) { c.Tenants[1].Providers = nil }, []string{"tenants[1].providers: at least one provider is required"}},
		{"same host in two tenants", func(c *Config) { c.Tenants[1].Hosts = []string{"API.acme.test."} }, []string{`tenants[1].hosts[0]: host "api.acme.test" already used at tenants[0].hosts[0]`}},
		{"same wildcard in two tenants", func(c *Config) { c.Tenants[1].Hosts = []string{"*.ACME.test"} }, []string{`tenants[1].hosts[0]: host "*.acme.test" already used at tenants[0].hosts[1]`}},
		{"host with port", func(c *Config) { c.Tenants[0].Hosts[0] = "api.acme.test:8443" }, []string{"tenants[0].hosts[0]: ", "must not carry a port"}},
		{"inner wildcard", func(c *Config) { c.Tenants[0].Hosts[0] = "a.*.acme.test" }, []string{"tenants[0].hosts[0]: ", `only a leading "*." wildcard`}},
		{"bare wildcard", func(c *Config) { c.Tenants[0].Hosts[0] = "*" }, []string{"tenants[0].hosts[0]: ", "only a leading"}},
		{"partial-label wildcard", func(c *Config) { c.Tenants[0].Hosts[0] = "*foo.acme.test" }, []string{"tenants[0].hosts[0]: "}},
		{"empty host", func(c *Config) { c.Tenants[0].Hosts[0] = "" }, []string{"tenants[0].hosts[0]: host must not be empty"}},
		{"bad host chars", func(c *Config) { c.Tenants[0].Hosts[0] = "a b.test" }, []string{"tenants[0].hosts[0]: ", "not a valid host name"}},
		{"empty label", func(c *Config) { c.Tenants[0].Hosts[0] = "a..test" }, []string{"tenants[0].hosts[0]: "}},
		{"alg none", func(c *Config) { c.Tenants[0].Providers[0].Algorithms = []string{"none"} }, []string{`tenants[0].providers[0].algorithms[0]: "none" is never allowed`}},
		{"alg HS256", func(c *Config) { c.Tenants[0].Providers[0].Algorithms = []string{"RS256", "HS256"} }, []string{`tenants[0].providers[0].algorithms[1]: "HS256" is never allowed`}},
		{"alg unknown", func(c *Config) { c.Tenants[0].Providers[0].Algorithms = []string{"RS257"} }, []string{`algorithms[0]: unknown algorithm "RS257"`}},
		{"empty audience", func(c *Config) { c.Tenants[0].Providers[0].Audiences = []string{""} }, []string{"tenants[0].providers[0].audiences[0]: must not be empty"}},
		{"negative skew", func(c *Config) { c.Tenants[0].Providers[0].ClockSkew = ptr(Duration(-time.Second)) }, []string{"tenants[0].providers[0].clock_skew: -1s must be between"}},
		{"huge skew", func(c *Config) { c.Tenants[0].Providers[0].ClockSkew = ptr(Duration(time.Hour)) }, []string{"clock_skew: 1h0m0s must be between"}},
		{"bad source header", func(c *Config) {
			c.Tenants[0].Providers[0].FromHeaders = []HeaderSource{{Name: ":authority"}}
		}, []string{`tenants[0].providers[0].from_headers[0].name: ":authority" is not a valid header name`}},
		{"bad prefix", func(c *Config) {
			c.Tenants[0].Providers[0].FromHeaders = []HeaderSource{{Name: "x-token", ValuePrefix: "a\nb"}}
		}, []string{"from_headers[0].value_prefix: must be printable ASCII"}},
		{"bad cookie", func(c *Config) { c.Tenants[0].Providers[0].FromCookies = []string{"a=b"} }, []string{`from_cookies[0]: "a=b" is not a valid cookie name`}},
		{"bad param", func(c *Config) { c.Tenants[0].Providers[0].FromParams = []string{"a&b"} }, []string{`from_params[0]: "a&b" is not a valid query parameter`}},
		{"empty param", func(c *Config) { c.Tenants[0].Providers[0].FromParams = []string{""} }, []string{`from_params[0]: "" is not`}},
		{"claim header invalid", func(c *Config) { c.Tenants[0].Providers[0].ClaimsToHeaders["sub"] = "x auth" }, []string{`tenants[0].providers[0].claims_to_headers.sub: "x auth" is not a valid header name`}},
		{"claim header pseudo", func(c *Config) { c.Tenants[0].Providers[0].ClaimsToHeaders["sub"] = ":path" }, []string{`claims_to_headers.sub: ":path" is not a valid header name`}},
		{"claim header hop-by-hop", func(c *Config) { c.Tenants[0].Providers[0].ClaimsToHeaders["sub"] = "Transfer-Encoding" }, []string{`claims_to_headers.sub: header "Transfer-Encoding" is reserved`}},
		{"claim header host", func(c *Config) { c.Tenants[0].Providers[0].ClaimsToHeaders["sub"] = "host" }, []string{`claims_to_headers.sub: header "host" is reserved`}},
		{"claim header authorization", func(c *Config) { c.Tenants[0].Providers[0].ClaimsToHeaders["sub"] = "Authorization" }, []string{`header "Authorization" is reserved`}},
		{"claim header content-length", func(c *Config) { c.Tenants[0].Providers[0].ClaimsToHeaders["sub"] = "content-length" }, []string{`header "content-length" is reserved`}},
		{"claim header envoy", func(c *Config) { c.Tenants[0].Providers[0].ClaimsToHeaders["sub"] = "x-envoy-upstream" }, []string{"reserved for Envoy"}},
		{"claim header is token source", func(c *Config) {
			c.Tenants[0].Providers[0].FromHeaders = []HeaderSource{{Name: "x-token"}}
			c.Tenants[0].Providers[0].ClaimsToHeaders["sub"] = "X-Token"
		}, []string{`claims_to_headers.sub: header "X-Token" carries the token`}},
		{"claim header is tenant header", func(c *Config) {
			c.TenantHeader = "x-tenant-id"
			c.Tenants[0].Providers[0].ClaimsToHeaders["sub"] = "x-tenant-id"
		}, []string{`claims_to_headers.sub: header "x-tenant-id" is the tenant_header`}},
		{"two claims one header", func(c *Config) { c.Tenants[0].Providers[0].ClaimsToHeaders["sub"] = "X-Auth-Email" }, []string{`claims_to_headers.sub: header "X-Auth-Email" already set from claim "email"`}},
		{"empty claim name", func(c *Config) { c.Tenants[0].Providers[0].ClaimsToHeaders[""] = "x-y" }, []string{"claims_to_headers.: claim name must not be empty"}},
		{"bad tenant header", func(c *Config) { c.TenantHeader = "x tenant" }, []string{`tenant_header: "x tenant" is not a valid header name`}},
		{"bad grpc addr", func(c *Config) { c.Listen.GRPC = "nope" }, []string{`listen.grpc: "nope" is not host:port`}},
		{"empty grpc addr", func(c *Config) { c.Listen.GRPC = "" }, []string{"listen.grpc: required"}},
		{"bad admin addr", func(c *Config) { c.Listen.Admin = "x" }, []string{"listen.admin:"}},
		{"bad http addr", func(c *Config) { c.Listen.HTTP = "x" }, []string{"listen.http:"}},
		{"admin on every interface without token", func(c *Config) { c.Listen.Admin = ":9193" }, []string{`listen.admin: ":9193" is not a loopback address: set admin.token_file`}},
		{"admin on a pod IP without token", func(c *Config) { c.Listen.Admin = "0.0.0.0:9193" }, []string{`listen.admin: "0.0.0.0:9193" is not a loopback address`}},
		{"admin on a host name without token", func(c *Config) { c.Listen.Admin = "admin.internal:9193" }, []string{`listen.admin: "admin.internal:9193" is not a loopback`}},
		{"admin token file missing", func(c *Config) {
			c.Listen.Admin = "0.0.0.0:9193"
			c.Admin.TokenFile = "/nonexistent/token"
		}, []string{`admin.token_file: cannot read "/nonexistent/token"`}},
		{"refresh interval too short", func(c *Config) { c.Admin.RefreshMinInterval = Duration(time.Millisecond) }, []string{"admin.refresh_min_interval: 1ms must be between 1s and 1h"}},
		{"request header limit too small", func(c *Config) { c.Limits.MaxRequestHeaderBytes = 1024 }, []string{"limits.max_request_header_bytes: 1024 must be between"}},
		{"request header limit below the token", func(c *Config) { c.Limits.MaxTokenBytes = 64 << 10 }, []string{"limits.max_request_header_bytes: 32768 must leave room for limits.max_token_bytes (65536)"}},
		{"no connections", func(c *Config) { c.Limits.MaxConnections = -1 }, []string{"limits.max_connections: -1 must be between"}},
		{"too many streams", func(c *Config) { c.Limits.MaxConcurrentStreams = 5000 }, []string{"limits.max_concurrent_streams: 5000 must be between"}},
		{"negative token cache", func(c *Config) { c.Limits.TokenCacheEntries = new(-1) }, []string{"limits.token_cache_entries: -1 must be between 0 (off) and 1048576"}},
		{"bad log level", func(c *Config) { c.Log.Level = "loud" }, []string{`log.level: "loud" must be one of`}},
		{"bad log format", func(c *Config) { c.Log.Format = "xml" }, []string{`log.format: "xml" must be json or text`}},
		{"token limit", func(c *Config) { c.Limits.MaxTokenBytes = 10 }, []string{"limits.max_token_bytes: 10 must be between"}},
		{"header limit", func(c *Config) { c.Limits.MaxHeaderValueBytes = -1 }, []string{"limits.max_header_value_bytes: -1 must be between"}},
		{"cold wait", func(c *Config) { c.Limits.ColdWait = Duration(-time.Second) }, []string{"limits.cold_wait:"}},
		{"readiness share above one", func(c *Config) { c.Readiness.MinAvailableShare = 1.5 }, []string{"readiness.min_available_share: 1.5 must be in [0, 1] (0: off)"}},
		{"readiness share negative", func(c *Config) { c.Readiness.MinAvailableShare = -0.1 }, []string{"readiness.min_available_share:"}},
		{"concurrency", func(c *Config) { c.JWKS.MaxConcurrentFetches = -1 }, []string{"jwks.max_concurrent_fetches: must be at least 1"}},
		{"ca file missing", func(c *Config) { c.JWKS.CAFile = "/nonexistent/ca.pem" }, []string{`jwks.ca_file: cannot read "/nonexistent/ca.pem"`}},
		{"redis url missing", func(c *Config) { c.JWKS.Redis = &Redis{} }, []string{"jwks.redis.url: required when redis is set"}},
		{"redis url scheme", func(c *Config) { c.JWKS.Redis = &Redis{URL: "http://x"} }, []string{"jwks.redis.url: must be a redis://"}},
		{"redis url and url_file", func(c *Config) {
			c.JWKS.Redis = &Redis{URL: "redis://x:6379", URLFile: redisURLFile(t, "redis://y:6379")}
		}, []string{"jwks.redis.url: set url or url_file, not both"}},
		{"redis url_file missing", func(c *Config) { c.JWKS.Redis = &Redis{URLFile: "/nonexistent/redis-url"} }, []string{`jwks.redis.url_file: cannot read "/nonexistent/redis-url"`}},
		{"redis url_file not a URL", func(c *Config) { c.JWKS.Redis = &Redis{URLFile: redisURLFile(t, "http://:secret@x")} }, []string{"jwks.redis.url_file: must be a redis://"}},
		{"redis without an hmac key file", func(c *Config) { c.JWKS.Redis = &Redis{URL: "redis://x"} }, []string{"jwks.redis.hmac_key_file: required when redis is set"}},
		{"redis hmac key file missing", func(c *Config) {
			c.JWKS.Redis = &Redis{URL: "redis://x", HMACKeyFile: "/nonexistent/keys"}
		}, []string{"jwks.redis.hmac_key_file: redisstore: hmac keys: open /nonexistent/keys"}},
		{"redis hmac key too short", func(c *Config) {
			c.JWKS.Redis = &Redis{URL: "redis://x", HMACKeyFile: writeFile(t, "0123456789\n")}
		}, []string{"jwks.redis.hmac_key_file: redisstore: hmac keys", "line 1: key of 10 bytes, want at least 32"}},
		{"provider allowlist widens the global one", func(c *Config) {
			c.JWKS.AllowedDomains = []string{"acme.test"}
			c.Tenants[0].Providers[0].AllowedDomains = []string{"idp.acme.test", "evil.test", "notacme.test"}
		}, []string{`tenants[0].providers[0].allowed_domains[1]: "evil.test" is not inside jwks.allowed_domains`,
			`tenants[0].providers[0].allowed_domains[2]: "notacme.test" is not inside`}},
		{"provider allowlist lifts the global one", func(c *Config) {
			c.JWKS.AllowedDomains = []string{"acme.test"}
			c.Tenants[0].Providers[0].AllowedDomains = []string{}
		}, []string{"tenants[0].providers[0].allowed_domains: must not be empty while jwks.allowed_domains is set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, validYAML)
			tt.mutate(c)
			err := c.Validate(nil)
			if err == nil {
				t.Fatal("Validate succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *PathError", err)
			}
			if _, err := NewSet(c); err == nil {
				t.Error("NewSet accepted an invalid config")
			}
		})
	}
}

func TestValidate_ReportsEveryProblem(t *testing.T) {
	c := mustParse(t, validYAML)
	c.Tenants[0].ID = "bad id"
	c.Tenants[0].Providers[0].Algorithms = []string{"none"}
	c.Tenants[1].Providers[0].Issuer = ""
	c.Log.Level = "x"
	errs := Problems(c.Validate(nil))
	var paths []string
	for _, e := range errs {
		var pe *PathError
		if !errors.As(e, &pe) {
			t.Fatalf("%v is not a *PathError", e)
		}
		paths = append(paths, pe.Path)
	}
	want := []string{"log.level", "tenants[0].id", "tenants[0].providers[0].algorithms[0]", "tenants[1].providers[0].issuer"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
}

func TestValidate_AcceptsGoodVariants(t *testing.T) {
	c := mustParse(t, validYAML)
	c.TenantHeader = "X-Tenant-ID"
	c.Tenants[0].Hosts = append(c.Tenants[0].Hosts, "Upper.Acme.Test.", "10.0.0.1", "*.eu.acme.test")
	c.Tenants[0].Providers[0].Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	c.Tenants[0].Providers[0].FromCookies = []string{"session"}
	c.Tenants[0].Providers[0].FromParams = []string{"access_token"}
	for _, loop := range []string{"127.0.0.1:9193", "[::1]:9193", "localhost:0", "127.0.0.2:1"} {
		c.Listen.Admin = loop // loopback needs no admin token
		if err := c.Validate(nil); err != nil {
			t.Fatalf("Validate with listen.admin %s: %v", loop, err)
		}
	}
	c.Listen.Admin = "0.0.0.0:9193"
	c.Admin.TokenFile = "validate_test.go" // any readable file
	// A provider may narrow the global allowlist.
	c.JWKS.AllowedDomains = []string{"acme.test", "globex.test"}
	c.Tenants[0].Providers[0].AllowedDomains = []string{"idp.acme.test"}
	// Redis with a key file of two keys (rotation), one ≥ 32 bytes each.
	c.JWKS.Redis = &Redis{URL: "rediss://redis.internal:6380/0", HMACKeyFile: writeFile(t, "# new first\n"+strings.Repeat("n", 44)+"\n"+strings.Repeat("o", 32)+"\n")}
	if err := c.Validate(nil); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestValidate_WithRealRegistryValidate(t *testing.T) {
	reg, err := jwkscache.New(jwkscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	c := mustParse(t, validYAML)
	if err := c.Validate(reg.Validate); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	c.Tenants[1].Providers[0].JWKSURL = "http://idp.globex.test/jwks.json"
	err = c.Validate(reg.Validate)
	if err == nil || !strings.Contains(err.Error(), "tenants[1].providers[0].jwks_url: ") {
		t.Errorf("Validate = %v, want a jwks_url error at the provider's path", err)
	}
}

func TestRegistrations_Layered(t *testing.T) {
	c := mustParse(t, validYAML)
	c.JWKS.RefreshEarly = ptr(Duration(10 * time.Second))
	c.JWKS.AllowedDomains = []string{"acme.test"}
	c.Tenants[0].Providers[0].RefreshEarly = ptr(Duration(20 * time.Second))
	c.Tenants[0].Providers[0].RetryPolicy = &RetryPolicy{Jitter: ptr("none"), MaxRetries: ptr(0)}
	regs := c.Registrations()
	if len(regs) != 2 {
		t.Fatalf("got %d registrations, want 2", len(regs))
	}
	want0 := jwkscache.DefaultRegistration("acme", "main", "https://idp.acme.test/jwks.json")
	want0.Issuer = c.Tenants[0].Providers[0].Issuer
	want0.RefreshEarly = 20 * time.Second
	want0.AllowedDomains = []string{"acme.test"}
	want0.RetryPolicy.Jitter = jwkscache.JitterNone
	want0.RetryPolicy.MaxRetries = 0
	want1 := jwkscache.DefaultRegistration("globex", "main", "https://idp.globex.test/jwks.json")
	want1.Issuer = c.Tenants[1].Providers[0].Issuer
	want1.RefreshEarly = 10 * time.Second
	want1.AllowedDomains = []string{"acme.test"}
	if diff := cmp.Diff([]jwkscache.Registration{want0, want1}, regs); diff != "" {
		t.Errorf("registrations (-want +got):\n%s", diff)
	}
}

func ExampleConfig_Validate() {
	c, err := Parse([]byte(`
tenants:
  - id: acme
    hosts: ["api.acme.test:443"]
    providers:
      - id: main
        issuer: https://idp.acme.test/
        jwks_url: https://idp.acme.test/jwks.json
        algorithms: [HS256]
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Validate(nil))
	// Output:
	// tenants[0].hosts[0]: host "api.acme.test:443" must not carry a port (ports are stripped before matching)
	// tenants[0].providers[0].algorithms[0]: "HS256" is never allowed for a JWKS-backed provider
}

// redisURLFile writes url to a file, as a mounted Secret holds it.
func redisURLFile(t *testing.T, url string) string {
	t.Helper()
	return writeFile(t, url+"\n")
}

func TestValidate_RedisURLFile(t *testing.T) {
	c := mustParse(t, validYAML)
	c.JWKS.Redis = &Redis{
		URLFile:     redisURLFile(t, "rediss://:s3cret@redis.test:6379/0"),
		HMACKeyFile: writeFile(t, "0123456789abcdef0123456789abcdef\n"),
		Namespace:   "jwks-cache",
	}
	if err := c.Validate(nil); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	got, err := c.JWKS.Redis.ResolveURL()
	if err != nil || got != "rediss://:s3cret@redis.test:6379/0" {
		t.Fatalf("ResolveURL = %q, %v; want the file's URL without the newline", got, err)
	}
	// A broken URL is reported without its contents: they hold the password.
	c.JWKS.Redis.URLFile = redisURLFile(t, "https://:s3cret@redis.test")
	err = c.Validate(nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Validate = %v; want an error that does not quote the password", err)
	}
}

func TestValidate_TokenTypes(t *testing.T) {
	for _, tc := range []struct {
		types   string
		wantErr string
	}{
		{"[at+jwt]", ""},
		{"[application/at+jwt, JWT]", ""},
		{`[""]`, `tenants[0].providers[0].token_types[0]: "" is not a media type`},
		{`["at jwt"]`, `tenants[0].providers[0].token_types[0]: "at jwt" is not a media type`},
		{`["a/b/c"]`, `tenants[0].providers[0].token_types[0]: "a/b/c" is not a media type`},
	} {
		t.Run(tc.types, func(t *testing.T) {
			c, err := Parse([]byte(tenantstest.Config("", tenantstest.Tenant("acme", "", tenantstest.Main("token_types: "+tc.types)))))
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, c.Validate(nil), tc.wantErr)
		})
	}
}
