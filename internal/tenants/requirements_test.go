package tenants

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
)

// reqBase is a valid tenant with two providers; tests append to it.
var reqBase = tenantstest.Config("", tenantstest.Tenant("acme", "[api.acme.test]",
	tenantstest.Main("claims_to_headers: {sub: x-auth-subject, org.id: x-org-id}"),
	tenantstest.Provider("partners", "https://partners.test/", "https://partners.test/jwks.json",
		"forward_token: false",
		"payload_header: x-jwt-payload")))

var reqValid = reqBase + `    requirements:
      orders-read:
        providers: [main, partners]
        claims:
          - {claim: scope, all_of: ["orders:read"]}
          - {claim: groups, any_of: [admins, ops]}
          - {claim: org.tier, equals: gold}
          - {claim: level, equals: 3}
          - {claim: verified, equals: true}
          - {claim: code, equals: "3"}
      public:
        allow_missing: true
    routes:
      - {path_prefix: /admin/, methods: [POST, PUT, DELETE], requirement: orders-read}
      - {path_prefix: /public/, requirement: public}
      - {path_prefix: /open/}
    default_requirement: orders-read
    mode: shadow
`

func TestRequirements_Compile(t *testing.T) {
	s := mustSet(t, reqValid)
	tr, _ := s.Tenant("acme")
	main, _ := tr.Provider("main")
	partners, _ := tr.Provider("partners")
	r := tr.Requirements["orders-read"]
	if r == nil || tr.Default != r || !tr.Shadow {
		t.Fatalf("requirement, default or mode not compiled: %+v", tr)
	}
	if !r.Accepts(main) || !r.Accepts(partners) || len(r.Providers) != 2 {
		t.Errorf("providers %v", r.Providers)
	}
	if r.Scope != "orders:read" {
		t.Errorf("Scope %q, want orders:read", r.Scope)
	}
	wantValues := [][]Value{
		{{Kind: KindString, Str: "orders:read"}},
		{{Kind: KindString, Str: "admins"}, {Kind: KindString, Str: "ops"}},
		{{Kind: KindString, Str: "gold"}},
		{{Kind: KindNumber, Num: json.Number("3")}},
		{{Kind: KindBool, Bool: true}},
		{{Kind: KindString, Str: "3"}}, // quoted: a string
	}
	wantOps := []MatchOp{OpAllOf, OpAnyOf, OpEquals, OpEquals, OpEquals, OpEquals}
	for i, c := range r.Claims {
		if c.Op != wantOps[i] {
			t.Errorf("claims[%d].Op %v, want %v", i, c.Op, wantOps[i])
		}
		if diff := cmp.Diff(wantValues[i], c.Values); diff != "" {
			t.Errorf("claims[%d] values (-want +got):\n%s", i, diff)
		}
	}
	if !tr.Requirements["public"].AllowMissing || !tr.Requirements["public"].Accepts(partners) {
		t.Errorf("public: %+v", tr.Requirements["public"])
	}
	if len(tr.Routes) != 3 || tr.Routes[0].Requirement != r || tr.Routes[2].Requirement != nil {
		t.Fatalf("routes %+v", tr.Routes)
	}
	if !tr.Routes[0].Matches("/admin/x", "POST") || tr.Routes[0].Matches("/admin/x", "GET") || tr.Routes[0].Matches("/adminx", "POST") {
		t.Error("route 0 matching by prefix and method is wrong")
	}
	if !tr.Routes[1].Matches("/public/a", "GET") {
		t.Error("route 1 without methods must match any method")
	}
	if main.ForwardToken != true || partners.ForwardToken != false || partners.PayloadHeader != "x-jwt-payload" {
		t.Errorf("forward_token/payload_header: main %v, partners %v %q", main.ForwardToken, partners.ForwardToken, partners.PayloadHeader)
	}
	if diff := cmp.Diff([]string{"x-auth-subject", "x-jwt-payload", "x-org-id"}, tr.ClaimHeaders); diff != "" {
		t.Errorf("ClaimHeaders must include the payload header (-want +got):\n%s", diff)
	}
}

func TestRequirements_Invalid(t *testing.T) {
	tests := []struct {
		name, yml string
		want      []string
	}{
		{"unknown provider", `    requirements: {r: {providers: [main, nope]}}`, []string{`tenants[0].requirements.r.providers[1]: "nope" is not a provider`}},
		{"provider twice", `    requirements: {r: {providers: [main, main]}}`, []string{`tenants[0].requirements.r.providers[1]: provider "main" listed twice`}},
		{"empty providers", `    requirements: {r: {providers: []}}`, []string{`tenants[0].requirements.r.providers: must not be empty`}},
		{"bad name", `    requirements: {"a b": {allow_missing: true}}`, []string{`tenants[0].requirements.a b: requirement name "a b"`}},
		{"no operator", `    requirements: {r: {claims: [{claim: scope}]}}`, []string{`tenants[0].requirements.r.claims[0]: exactly one of equals, any_of and all_of`}},
		{"two operators", `    requirements: {r: {claims: [{claim: g, equals: a, any_of: [b]}]}}`, []string{`requirements.r.claims[0]: exactly one of`}},
		{"empty any_of", `    requirements: {r: {claims: [{claim: g, any_of: []}]}}`, []string{`requirements.r.claims[0].any_of: must not be empty`}},
		{"empty claim", `    requirements: {r: {claims: [{claim: "", equals: a}]}}`, []string{`requirements.r.claims[0].claim: claim name must not be empty`}},
		{"empty path segment", `    requirements: {r: {claims: [{claim: "org..tier", equals: a}]}}`, []string{`requirements.r.claims[0].claim: claim path "org..tier" has an empty segment`}},
		{"scope with a quote", `    requirements: {r: {claims: [{claim: scope, any_of: ['a"b']}]}}`, []string{`requirements.r.claims[0].any_of[0]: "a\"b" is not an OAuth scope token`}},
		{"scope not a string", `    requirements: {r: {claims: [{claim: scp, all_of: [3]}]}}`, []string{`requirements.r.claims[0].all_of[0]: 3 is not an OAuth scope token`}},
		{"route to unknown requirement", `    routes: [{path_prefix: /admin/, requirement: orders-admin}]`, []string{`tenants[0].routes[0].requirement: no requirement "orders-admin"`}},
		{"route without prefix", `    routes: [{methods: [GET]}]`, []string{`tenants[0].routes[0].path_prefix: required`}},
		{"route prefix not normal", `    routes: [{path_prefix: "/a/../admin/"}]`, []string{`tenants[0].routes[0].path_prefix: "/a/../admin/" is not in normal form and would never match; write "/admin/"`}},
		{"route prefix encoded", `    routes: [{path_prefix: "/%61dmin"}]`, []string{`routes[0].path_prefix: "/%61dmin" is not in normal form`}},
		{"route prefix relative", `    routes: [{path_prefix: "admin"}]`, []string{`routes[0].path_prefix: "admin" is not a path`}},
		{"route prefix with query", `    routes: [{path_prefix: "/a?b"}]`, []string{`routes[0].path_prefix: "/a?b" is not a path`}},
		{"lowercase method", `    routes: [{path_prefix: /, methods: [post]}]`, []string{`tenants[0].routes[0].methods[0]: "post": methods are case-sensitive (RFC 9110 §9.1); write "POST"`}},
		{"bad method", `    routes: [{path_prefix: /, methods: ["GE T"]}]`, []string{`routes[0].methods[0]: "GE T" is not a method name`}},
		{"unknown default", `    default_requirement: nope`, []string{`tenants[0].default_requirement: no requirement "nope"`}},
		{"bad mode", `    mode: audit`, []string{`tenants[0].mode: "audit" must be enforce or shadow`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(reqBase + tt.yml + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate(nil)
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestProviderUpstream_Invalid(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"payload header reserved", "payload_header: x-jwt-payload", "payload_header: authorization", `tenants[0].providers[1].payload_header: header "authorization" is reserved`},
		{"payload header envoy", "payload_header: x-jwt-payload", "payload_header: x-envoy-payload", `providers[1].payload_header: header "x-envoy-payload" is reserved for Envoy`},
		{"payload header invalid", "payload_header: x-jwt-payload", `payload_header: "x y"`, `providers[1].payload_header: "x y" is not a valid header name`},
		{"payload header is a claim header", "payload_header: x-jwt-payload", "payload_header: x-jwt-payload\n        claims_to_headers: {sub: X-JWT-Payload}", `providers[1].payload_header: header "x-jwt-payload" is already set from claim "sub"`},
		{"payload header is a token source", "payload_header: x-jwt-payload", "payload_header: x-token\n        from_headers: [{name: x-token}]", `providers[1].payload_header: header "x-token" carries a token at tenants[0].providers[1].from_headers[0]`},
		{"claims_to_headers empty segment", "{sub: x-auth-subject, org.id: x-org-id}", "{sub: x-auth-subject, org..id: x-org-id}", `providers[0].claims_to_headers.org..id: claim path "org..id" has an empty segment`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(strings.Replace(reqBase, tt.old, tt.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestValue_ParseErrors(t *testing.T) {
	c, err := Parse([]byte(reqBase + "    requirements: {r: {claims: [{claim: x, any_of: [null]}]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(nil); err == nil || !strings.Contains(err.Error(), "tenants[0].requirements.r.claims[0].any_of") {
		t.Errorf("null in any_of: %v", err)
	}
	for _, v := range []string{"[a]", "{a: b}", ".inf", ".nan"} {
		_, err := Parse([]byte(reqBase + "    requirements: {r: {claims: [{claim: x, any_of: [" + v + "]}]}}\n"))
		if err == nil {
			t.Errorf("any_of [%s]: parsed", v)
		}
	}
	c, err = Parse([]byte(reqBase + "    requirements: {r: {claims: [{claim: x, any_of: [0x10, 1e3, -2.5, +7]}]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range c.Tenants[0].Requirements["r"].Claims[0].AnyOf {
		got = append(got, v.String())
	}
	if diff := cmp.Diff([]string{"16", "1e3", "-2.5", "7"}, got); diff != "" {
		t.Errorf("numbers (-want +got):\n%s", diff)
	}
}

func TestClaimPath_Lookup(t *testing.T) {
	claims := map[string]any{
		"sub":       "alice",
		"org":       map[string]any{"tier": "gold", "id": json.Number("42"), "deep": map[string]any{"x": true}},
		"a.b":       "top-level dotted",
		"a":         map[string]any{"b": "nested"},
		"null":      nil,
		"arr":       []any{"x"},
		"org2.tier": nil,
	}
	tests := []struct {
		path string
		want any
		ok   bool
	}{
		{"sub", "alice", true},
		{"org.tier", "gold", true},
		{"org.id", json.Number("42"), true},
		{"org.deep.x", true, true},
		{"a.b", "top-level dotted", true}, // the top-level name wins
		{"org.missing", nil, false},
		{"org.tier.x", nil, false},
		{"sub.x", nil, false},
		{"arr.0", nil, false},
		{"null", nil, false},
		{"missing", nil, false},
	}
	allocs := testing.AllocsPerRun(10, func() { ClaimPath("org.deep.x").Lookup(claims) })
	if allocs != 0 {
		t.Errorf("Lookup allocates %v times", allocs)
	}
	for _, tt := range tests {
		got, ok := ClaimPath(tt.path).Lookup(claims)
		if ok != tt.ok || !cmp.Equal(got, tt.want) {
			t.Errorf("Lookup(%q) = %v, %v; want %v, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}
