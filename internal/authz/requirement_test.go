package authz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/logtest"
	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
)

func str(s string) tenants.Value              { return tenants.Value{Kind: tenants.KindString, Str: s} }
func num(n string) tenants.Value              { return tenants.Value{Kind: tenants.KindNumber, Num: json.Number(n)} }
func boolean(b bool) tenants.Value            { return tenants.Value{Kind: tenants.KindBool, Bool: b} }
func vals(v ...tenants.Value) []tenants.Value { return v }

// TestMatchClaim runs every matcher against claims of every JSON type,
// nested and missing, with numbers both as encoding/json's float64 and as
// json.Number (a decoder with UseNumber keeps integers exact).
func TestMatchClaim(t *testing.T) {
	claims := map[string]any{
		"s":      "gold",
		"scope":  "orders:read orders:write",
		"spaced": "a  b ",
		"n":      float64(3),
		"big":    json.Number("9007199254740993"), // 2^53+1: not a float64
		"jn":     json.Number("3"),
		"jf":     json.Number("2.5"),
		"b":      true,
		"f":      false,
		"null":   nil,
		"arr":    []any{"admins", float64(7), true, json.Number("8")},
		"empty":  []any{},
		"obj":    map[string]any{"tier": "gold", "n": json.Number("1"), "deeper": map[string]any{"x": "y"}},
		"a.b":    "dotted top-level",
	}
	tests := []struct {
		name  string
		claim string
		op    tenants.MatchOp
		vals  []tenants.Value
		want  bool
	}{
		// equals: same JSON type and value.
		{"equals string", "s", tenants.OpEquals, vals(str("gold")), true},
		{"equals string differs", "s", tenants.OpEquals, vals(str("Gold")), false},
		{"equals string vs number", "n", tenants.OpEquals, vals(str("3")), false},
		{"equals number (float64)", "n", tenants.OpEquals, vals(num("3")), true},
		{"equals number written 3.0", "n", tenants.OpEquals, vals(num("3.0")), true},
		{"equals number vs string", "s", tenants.OpEquals, vals(num("3")), false},
		{"equals json.Number int", "jn", tenants.OpEquals, vals(num("3")), true},
		{"equals json.Number int vs 3.0", "jn", tenants.OpEquals, vals(num("3.0")), true},
		{"equals json.Number float", "jf", tenants.OpEquals, vals(num("2.5")), true},
		{"equals json.Number big exact", "big", tenants.OpEquals, vals(num("9007199254740993")), true},
		{"equals json.Number big off by one", "big", tenants.OpEquals, vals(num("9007199254740992")), false},
		{"equals bool", "b", tenants.OpEquals, vals(boolean(true)), true},
		{"equals bool false", "f", tenants.OpEquals, vals(boolean(false)), true},
		{"equals bool vs string", "b", tenants.OpEquals, vals(str("true")), false},
		{"equals array never", "arr", tenants.OpEquals, vals(str("admins")), false},
		{"equals object never", "obj", tenants.OpEquals, vals(str("gold")), false},
		{"equals null never", "null", tenants.OpEquals, vals(str("")), false},
		{"equals missing never", "missing", tenants.OpEquals, vals(str("")), false},
		{"equals nested", "obj.tier", tenants.OpEquals, vals(str("gold")), true},
		{"equals nested number", "obj.n", tenants.OpEquals, vals(num("1")), true},
		{"equals deeper", "obj.deeper.x", tenants.OpEquals, vals(str("y")), true},
		{"equals nested missing", "obj.nope", tenants.OpEquals, vals(str("gold")), false},
		{"equals through a string", "s.x", tenants.OpEquals, vals(str("gold")), false},
		{"equals dotted top-level name", "a.b", tenants.OpEquals, vals(str("dotted top-level")), true},

		// any_of: the claim, an element, or a word.
		{"any_of scalar string", "s", tenants.OpAnyOf, vals(str("silver"), str("gold")), true},
		{"any_of scalar string none", "s", tenants.OpAnyOf, vals(str("silver")), false},
		{"any_of word", "scope", tenants.OpAnyOf, vals(str("orders:write")), true},
		{"any_of whole string", "scope", tenants.OpAnyOf, vals(str("orders:read orders:write")), true},
		{"any_of word prefix is not a word", "scope", tenants.OpAnyOf, vals(str("orders")), false},
		{"any_of words around double spaces", "spaced", tenants.OpAnyOf, vals(str("b")), true},
		{"any_of empty word never", "spaced", tenants.OpAnyOf, vals(str("")), false},
		{"any_of array element", "arr", tenants.OpAnyOf, vals(str("ops"), str("admins")), true},
		{"any_of array number element", "arr", tenants.OpAnyOf, vals(num("7")), true},
		{"any_of array json.Number element", "arr", tenants.OpAnyOf, vals(num("8")), true},
		{"any_of array bool element", "arr", tenants.OpAnyOf, vals(boolean(true)), true},
		{"any_of array string is not number", "arr", tenants.OpAnyOf, vals(str("7")), false},
		{"any_of empty array", "empty", tenants.OpAnyOf, vals(str("admins")), false},
		{"any_of number", "n", tenants.OpAnyOf, vals(num("1"), num("3")), true},
		{"any_of bool", "b", tenants.OpAnyOf, vals(boolean(false)), false},
		{"any_of object never", "obj", tenants.OpAnyOf, vals(str("tier")), false},
		{"any_of missing never", "missing", tenants.OpAnyOf, vals(str("x")), false},
		{"any_of null never", "null", tenants.OpAnyOf, vals(str("")), false},

		// all_of: every value among the elements or words.
		{"all_of words", "scope", tenants.OpAllOf, vals(str("orders:write"), str("orders:read")), true},
		{"all_of words one missing", "scope", tenants.OpAllOf, vals(str("orders:write"), str("orders:admin")), false},
		{"all_of array", "arr", tenants.OpAllOf, vals(str("admins"), num("7"), boolean(true)), true},
		{"all_of array one missing", "arr", tenants.OpAllOf, vals(str("admins"), str("ops")), false},
		{"all_of scalar", "s", tenants.OpAllOf, vals(str("gold")), true},
		{"all_of missing never", "missing", tenants.OpAllOf, vals(str("x")), false},
		{"all_of empty array", "empty", tenants.OpAllOf, vals(str("x")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tenants.ClaimRule{Path: tenants.ClaimPath(tt.claim), Op: tt.op, Values: tt.vals}
			if got := matchClaim(&c, claims); got != tt.want {
				t.Errorf("matchClaim(%s %v %v) = %v, want %v", tt.claim, tt.op, tt.vals, got, tt.want)
			}
		})
	}
}

// reqConfig is a tenant with requirements, routes and two providers.
var reqConfig = tenantstest.Config("tenant_header: x-tenant-id\n", tenantstest.Tenant("acme", "[api.acme.test]",
	tenantstest.Main(
		"audiences: [orders]",
		"claims_to_headers: {sub: x-auth-subject, org.id: x-org-id, groups: x-auth-groups, level: x-auth-level}",
		"payload_header: x-jwt-payload"),
	authztest.Partner("forward_token: false"))) + `    requirements:
      orders-read:
        providers: [main]
        claims:
          - {claim: scope, all_of: ["orders:read"]}
          - {claim: groups, any_of: [admins, ops]}
          - {claim: org.tier, equals: gold}
      admins: {claims: [{claim: groups, any_of: [admins]}]}
      partners-only: {providers: [partner]}
      public: {allow_missing: true}
    routes:
      - {path_prefix: /admin/, methods: [POST, DELETE], requirement: admins}
      - {path_prefix: /public/, requirement: public}
      - {path_prefix: /orders/, requirement: orders-read}
      - {path_prefix: /partners/, requirement: partners-only}
      - {path_prefix: /open/}
    default_requirement: admins
`

func reqFixture(t testing.TB, cfg string) (*Server, *logtest.Buffer) {
	t.Helper()
	logs := &logtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return New(testSet(t, cfg), authztest.NewFakeKeys(), Options{Now: func() time.Time { return testNow }, Logger: log}), logs
}

func goodClaims(edit ...func(jwt.MapClaims)) jwt.MapClaims {
	return acmeClaims(append([]func(jwt.MapClaims){func(c jwt.MapClaims) {
		c["scope"] = "orders:read profile"
		c["groups"] = []any{"ops"}
		c["org"] = map[string]any{"tier": "gold", "id": "org-9"}
	}}, edit...)...)
}

// TestRequirement_Selection: context_extensions beat routes, routes go
// first match by normalised path and method, then default_requirement.
func TestRequirement_Selection(t *testing.T) {
	srv, _ := reqFixture(t, reqConfig)
	admin := rs256(t, acmeClaims(func(c jwt.MapClaims) { c["groups"] = []any{"admins"} }))
	reader := rs256(t, goodClaims())
	tests := []struct {
		name, method, path, tok string
		ext                     map[string]string
		wantReq                 string
		want                    Reason
	}{
		{"route by prefix and method", "POST", "/admin/users", reader, nil, "admins", ReasonInsufficientScope},
		{"route method not listed: next route or default", "GET", "/admin/users", reader, nil, "admins", ReasonInsufficientScope},
		{"route prefix match", "GET", "/orders/7", reader, nil, "orders-read", ReasonOK},
		{"first match wins", "POST", "/admin/users", admin, nil, "admins", ReasonOK},
		{"baseline route", "GET", "/open/x", reader, nil, "", ReasonOK},
		{"default requirement", "GET", "/elsewhere", reader, nil, "admins", ReasonInsufficientScope},
		{"context extension beats routes", "GET", "/open/x", reader, map[string]string{"requirement": "admins"}, "admins", ReasonInsufficientScope},
		{"context extension beats default", "GET", "/elsewhere", reader, map[string]string{"requirement": "orders-read"}, "orders-read", ReasonOK},
		{"empty context extension is not set", "GET", "/open/x", reader, map[string]string{"requirement": ""}, "", ReasonOK},
		{"unknown named requirement: no fall-back", "GET", "/open/x", reader, map[string]string{"requirement": "nope"}, "", ReasonRequirementUnknown},
		{"dot segments resolved before matching", "GET", "/open/../orders/7", admin, nil, "orders-read", ReasonInsufficientScope},
		{"encoded dot segments resolved", "GET", "/open/%2e%2e/orders/7", admin, nil, "orders-read", ReasonInsufficientScope},
		{"merged slashes", "POST", "//admin//users", reader, nil, "admins", ReasonInsufficientScope},
		{"query ignored", "GET", "/open/x?next=/admin/", reader, nil, "", ReasonOK},
		{"encoded slash denied", "GET", "/open%2F..%2Fadmin/x", reader, nil, "", ReasonPathInvalid},
		{"encoded backslash denied", "GET", "/open/..%5Cadmin", reader, nil, "", ReasonPathInvalid},
		{"encoded NUL denied", "GET", "/open/x%00", reader, nil, "", ReasonPathInvalid},
		{"not origin-form denied", "GET", "*", reader, nil, "", ReasonPathInvalid},
		{"path not consulted when named", "GET", "*", reader, map[string]string{"requirement": "orders-read"}, "orders-read", ReasonOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Host: "api.acme.test", Method: tt.method, Path: tt.path, Headers: bearer(tt.tok), ContextExtensions: tt.ext}
			d := srv.Decide(context.Background(), r)
			if d.Reason != tt.want || d.Requirement != tt.wantReq {
				t.Fatalf("reason %s requirement %q, want %s %q", d.Reason, d.Requirement, tt.want, tt.wantReq)
			}
			checkDenialShape(t, &d, true)
		})
	}
}

func TestRequirement_Denials(t *testing.T) {
	srv, _ := reqFixture(t, reqConfig)
	ctx := context.Background()

	d := srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: "/orders/1", Headers: bearer(rs256(t, goodClaims(func(c jwt.MapClaims) { c["scope"] = "profile" })))})
	if d.Reason != ReasonInsufficientScope || d.HTTPStatus != 403 {
		t.Fatalf("%s %d, want insufficient_scope 403", d.Reason, d.HTTPStatus)
	}
	if want := `Bearer realm="acme", error="insufficient_scope", scope="orders:read"`; d.WWWAuthenticate != want {
		t.Errorf("WWW-Authenticate %s, want %s", d.WWWAuthenticate, want)
	}
	if d.ProviderID != "main" || d.Requirement != "orders-read" || len(d.Headers) != 0 || d.Claims != nil {
		t.Errorf("denial %+v", d)
	}

	// No scope matcher: the challenge names no scope.
	d = srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "POST", Path: "/admin/x", Headers: bearer(rs256(t, goodClaims()))})
	if want := `Bearer realm="acme", error="insufficient_scope"`; d.WWWAuthenticate != want {
		t.Errorf("WWW-Authenticate %s, want %s", d.WWWAuthenticate, want)
	}

	// A partner token where only main is accepted.
	tok := rs256(t, partnerClaims(func(c jwt.MapClaims) { c["groups"] = []any{"ops"} }))
	d = srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: "/orders/1?access_token=" + tok})
	if d.Reason != ReasonProviderNotAllowed || d.HTTPStatus != 401 || d.ProviderID != "partner" {
		t.Fatalf("%+v, want provider_not_allowed 401 from partner", d)
	}
	checkDenialShape(t, &d, true)
	// On the partners-only route only partner's sources are read: a main
	// token in the header does not hide the partner token in the cookie.
	d = srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: "/partners/x", Headers: map[string]string{
		"authorization": "Bearer " + rs256(t, goodClaims()), "cookie": "session=" + rs256(t, partnerClaims()),
	}})
	if !d.Allowed || d.ProviderID != "partner" {
		t.Errorf("partner cookie beside a main header on partners-only: %+v", d)
	}
	// And a main token alone on the partners-only route: judged, and
	// refused for its provider rather than taken for no token.
	d = srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: "/partners/x", Headers: bearer(rs256(t, goodClaims()))})
	if d.Reason != ReasonProviderNotAllowed {
		t.Errorf("main token alone on partners-only: %s", d.Reason)
	}
	// A main token where partner reads it too (the query is partner's, the
	// token's issuer main's): provider_not_allowed.
	d = srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: "/partners/x?access_token=" + rs256(t, goodClaims())})
	if d.Reason != ReasonTokenMissing {
		t.Errorf("main token in partner's query parameter on partners-only: %s", d.Reason)
	}
}

func TestRequirement_AllowMissing(t *testing.T) {
	srv, _ := reqFixture(t, reqConfig)
	ctx := context.Background()
	pub := func(h map[string]string) Decision {
		return srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: "/public/x", Headers: h})
	}

	d := pub(map[string]string{"x-auth-subject": "forged"})
	if !d.Allowed || !d.Anonymous || d.ProviderID != "" || d.Claims != nil || d.Requirement != "public" {
		t.Fatalf("no token on allow_missing: %+v", d)
	}
	if diff := cmp.Diff([]Header{{"x-tenant-id", "acme"}}, d.Headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	want := []string{"x-auth-groups", "x-auth-level", "x-auth-subject", "x-jwt-payload", "x-org-id", "x-partner-subject"}
	if diff := cmp.Diff(want, d.RemoveHeaders); diff != "" {
		t.Errorf("every configured claim header must be removed (-want +got):\n%s", diff)
	}

	d = pub(bearer(rs256(t, goodClaims())))
	if !d.Allowed || d.Anonymous || d.ProviderID != "main" {
		t.Errorf("valid token on allow_missing: %+v", d)
	}
	d = pub(bearer(rs256(t, goodClaims(func(c jwt.MapClaims) { c["exp"] = float64(testNow.Add(-time.Hour).Unix()) }))))
	if d.Allowed || d.Reason != ReasonTokenExpired {
		t.Errorf("an invalid token sent on allow_missing must be denied: %+v", d)
	}
	d = pub(map[string]string{"authorization": "Bearer not-a-token"})
	if d.Allowed || d.Reason != ReasonTokenMalformed {
		t.Errorf("garbage token on allow_missing: %+v", d)
	}
	// Without allow_missing, no token stays token_missing.
	d = srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: "/orders/1"})
	if d.Reason != ReasonTokenMissing {
		t.Errorf("no token on orders-read: %s", d.Reason)
	}
}

func TestRequirement_Shadow(t *testing.T) {
	srv, logs := reqFixture(t, reqConfig+"    mode: shadow\n")
	ctx := context.Background()

	// A valid token failing a matcher: allowed with its claim headers.
	tok := rs256(t, goodClaims(func(c jwt.MapClaims) { c["scope"] = "profile" }))
	d := srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: "/orders/1", RequestID: "shadow-1", Headers: bearer(tok)})
	if !d.Allowed || d.WouldDeny != ReasonInsufficientScope || d.Reason != ReasonOK || d.ProviderID != "main" {
		t.Fatalf("shadow insufficient_scope: %+v", d)
	}
	if !hasHeaderValue(d.Headers, "x-auth-subject", "user-1") {
		t.Errorf("valid token in shadow mode must keep its claim headers: %+v", d.Headers)
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"request_id":"shadow-1"`) {
			line = l
		}
	}
	for _, w := range []string{`"level":"INFO"`, `"msg":"would deny (shadow mode)"`, `"would_deny":"insufficient_scope"`, `"requirement":"orders-read"`} {
		if !strings.Contains(line, w) {
			t.Errorf("log line lacks %s: %s", w, line)
		}
	}
	if strings.Contains(logs.String(), tok[strings.LastIndexByte(tok, '.')+1:]) {
		t.Error("the token reached the log")
	}

	// An invalid token: allowed, but anonymously, without claim headers.
	forged := rs256(t, goodClaims(func(c jwt.MapClaims) { c["iss"] = "https://evil.test/" }))
	d = srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: "/orders/1", Headers: map[string]string{"authorization": "Bearer " + forged, "x-auth-subject": "forged"}})
	if !d.Allowed || d.WouldDeny != ReasonIssuerUnknown || !d.Anonymous || !hasString(d.RemoveHeaders, "x-auth-subject") || hasHeaderValue(d.Headers, "x-auth-subject", "forged") {
		t.Errorf("shadow invalid token: %+v", d)
	}
	// Selection denials are shadowed too.
	d = srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: "/a%2fb"})
	if !d.Allowed || d.WouldDeny != ReasonPathInvalid {
		t.Errorf("shadow path_invalid: %+v", d)
	}
	// An allow stays a plain allow.
	d = srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: "/orders/1", Headers: bearer(rs256(t, goodClaims()))})
	if !d.Allowed || d.WouldDeny != "" {
		t.Errorf("shadow allow: %+v", d)
	}
}

func TestUpstream_ClaimsTokenAndPayload(t *testing.T) {
	srv, _ := reqFixture(t, reqConfig)
	ctx := context.Background()

	// Dotted claim paths; arrays joined; numbers as JSON renders them;
	// payload_header is the verified payload.
	tok := rs256(t, goodClaims(func(c jwt.MapClaims) { c["groups"] = []any{"ops", "admins"}; c["level"] = 7 }))
	d := srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: "/open/x", Headers: bearer(tok)})
	if !d.Allowed {
		t.Fatalf("denied: %+v", d)
	}
	payload := strings.Split(tok, ".")[1]
	want := []Header{
		{"x-auth-groups", "ops,admins"}, {"x-auth-level", "7"}, {"x-auth-subject", "user-1"},
		{"x-jwt-payload", payload}, {"x-org-id", "org-9"}, {"x-tenant-id", "acme"},
	}
	if diff := cmp.Diff(want, d.Headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"x-partner-subject"}, d.RemoveHeaders); diff != "" {
		t.Errorf("remove (-want +got):\n%s", diff)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(d.Headers[3].Value); err != nil || !json.Valid(raw) {
		t.Errorf("payload header is not base64url JSON: %v", err)
	}
	if len(d.RemoveQueryParams) != 0 {
		t.Errorf("main forwards its token: %v", d.RemoveQueryParams)
	}

	// forward_token: false, per source the token was found in.
	ptok := rs256(t, partnerClaims())
	tests := []struct {
		name        string
		path        string
		headers     map[string]string
		wantCookie  string // "" means removed
		wantRemoved []string
		wantParams  []string
	}{
		{"query parameter", "/open/x?access_token=" + ptok + "&q=1", nil, "-", []string{"x-auth-groups", "x-auth-level", "x-auth-subject", "x-jwt-payload", "x-org-id"}, []string{"access_token"}},
		{"only cookie", "/open/x", map[string]string{"cookie": "session=" + ptok}, "", []string{"x-auth-groups", "x-auth-level", "x-auth-subject", "x-jwt-payload", "x-org-id", "cookie"}, nil},
		{"cookie among others", "/open/x", map[string]string{"cookie": "a=1; session=" + ptok + ";b=2"}, "a=1; b=2", []string{"x-auth-groups", "x-auth-level", "x-auth-subject", "x-jwt-payload", "x-org-id"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := srv.Decide(ctx, &Request{Host: "api.acme.test", Method: "GET", Path: tt.path, Headers: tt.headers})
			if !d.Allowed || d.ProviderID != "partner" {
				t.Fatalf("%+v", d)
			}
			if diff := cmp.Diff(tt.wantRemoved, d.RemoveHeaders); diff != "" {
				t.Errorf("remove (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantParams, d.RemoveQueryParams); diff != "" {
				t.Errorf("query parameters (-want +got):\n%s", diff)
			}
			if tt.wantCookie != "-" && tt.wantCookie != "" && !hasHeaderValue(d.Headers, "cookie", tt.wantCookie) {
				t.Errorf("cookie not rewritten to %q: %+v", tt.wantCookie, d.Headers)
			}
		})
	}
}

func hasHeaderValue(hs []Header, name, value string) bool {
	for _, h := range hs {
		if h.Name == name && h.Value == value {
			return true
		}
	}
	return false
}

func hasString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// BenchmarkMeets is the requirement check alone: three matchers over
// decoded claims. It must not allocate.
func BenchmarkMeets(b *testing.B) {
	set := testSet(b, strings.Replace(testConfig, "    requirements:\n", authztest.BenchRequirement, 1))
	acme, _ := set.Tenant("acme")
	p, _ := acme.Provider("main")
	req := acme.Requirements["bench"]
	claims := map[string]any(goodClaims(func(c jwt.MapClaims) { c["scope"] = "profile orders:read" }))
	b.ReportAllocs()
	for b.Loop() {
		if meets(req, p, claims) != ReasonOK {
			b.Fatal("not met")
		}
	}
}

func TestMeets_DoesNotAllocate(t *testing.T) {
	set := testSet(t, strings.Replace(testConfig, "    requirements:\n", authztest.BenchRequirement, 1))
	acme, _ := set.Tenant("acme")
	p, _ := acme.Provider("main")
	req := acme.Requirements["bench"]
	claims := map[string]any(goodClaims())
	if n := testing.AllocsPerRun(100, func() { meets(req, p, claims) }); n != 0 {
		t.Errorf("meets allocates %v times", n)
	}
}

// TestRequirement_NumbersFromARealToken: claims come out of the token as
// json.Number; equals on a number, and on a 64-bit ID float64 would round,
// matches exactly, and a string never equals a number.
func TestRequirement_NumbersFromARealToken(t *testing.T) {
	cfg := strings.Replace(reqConfig, "      public: {allow_missing: true}\n", `      public: {allow_missing: true}
      numbers:
        claims:
          - {claim: level, equals: 3}
          - {claim: org.uid, equals: 1234567890123456789}
`, 1)
	srv, _ := reqFixture(t, cfg)
	ext := map[string]string{"requirement": "numbers"}
	for _, tt := range []struct {
		name  string
		level any
		uid   any
		want  Reason
	}{
		{"exact", 3, int64(1234567890123456789), ReasonOK},
		{"ID off by one", 3, int64(1234567890123456788), ReasonInsufficientScope},
		{"ID float64 would round to", 3, float64(1234567890123456800), ReasonInsufficientScope},
		{"level as a string", "3", int64(1234567890123456789), ReasonInsufficientScope},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok := rs256(t, goodClaims(func(c jwt.MapClaims) {
				c["level"] = tt.level
				c["org"] = map[string]any{"uid": tt.uid}
			}))
			d := srv.Decide(context.Background(), &Request{Host: "api.acme.test", Path: "/", Headers: bearer(tok), ContextExtensions: ext})
			if d.Reason != tt.want {
				t.Errorf("reason %s, want %s", d.Reason, tt.want)
			}
		})
	}
}
