package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/checkclient"
)

// requirementsYAML is acme's per-route authorization: provider lines first
// (the harness's provider block), then tenant keys at the tenant's indent.
const requirementsYAML = `        payload_header: x-jwt-payload
        forward_token: false
    requirements:
      orders-write:
        claims:
          - {claim: scope, all_of: ["orders:write"]}
          - {claim: groups, any_of: [admins, ops]}
          - {claim: org.tier, equals: gold}
      admins: {claims: [{claim: groups, any_of: [admins]}]}
      public: {allow_missing: true}
    routes:
      - {path_prefix: /admin/, methods: [POST, DELETE], requirement: admins}
      - {path_prefix: /public/, requirement: public}
`

// shadowYAML puts beta in shadow mode behind a requirement nobody meets yet.
const shadowYAML = `    requirements:
      admins: {claims: [{claim: groups, any_of: [admins]}]}
    default_requirement: admins
    mode: shadow
`

// TestRequirements_PerRoute runs the per-route requirements
// against the real binary over Envoy's ext_authz protocol.
func TestRequirements_PerRoute(t *testing.T) {
	acme := newIdP(t, "ES256")
	beta := newIdP(t, "ES256")
	addr, adminAddr := freeAddr(t), freeAddr(t)
	p := start(t, addr, adminConfig(addr, adminAddr, caFile(t, acme.srv),
		tenant{id: "acme", host: "api.acme.test", idp: acme, extra: requirementsYAML},
		tenant{id: "beta", host: "api.beta.test", idp: beta, extra: shadowYAML},
	))

	writer := acme.token(t, "alice", map[string]any{
		"scope": "orders:read orders:write", "groups": []string{"ops"}, "org": map[string]any{"tier": "gold"},
	})
	reader := acme.token(t, "bob", map[string]any{
		"scope": "orders:read", "groups": []string{"ops"}, "org": map[string]any{"tier": "gold"},
	})
	silver := acme.token(t, "carol", map[string]any{
		"scope": "orders:write", "groups": []string{"ops"}, "org": map[string]any{"tier": "silver"},
	})
	admin := acme.token(t, "dave", map[string]any{"groups": []string{"admins"}})
	named := func(name string) map[string]string { return map[string]string{"requirement": name} }

	tests := []decisionCase{
		{"context_extensions: requirement met", checkclient.Request{Host: "api.acme.test", Token: writer, ContextExtensions: named("orders-write")}, "ok", 200, codes.OK},
		{"context_extensions: scope missing", checkclient.Request{Host: "api.acme.test", Token: reader, ContextExtensions: named("orders-write")}, "insufficient_scope", 403, codes.PermissionDenied},
		{"context_extensions: nested claim differs", checkclient.Request{Host: "api.acme.test", Token: silver, ContextExtensions: named("orders-write")}, "insufficient_scope", 403, codes.PermissionDenied},
		{"context_extensions beat routes", checkclient.Request{Host: "api.acme.test", Path: "/public/x", Token: reader, ContextExtensions: named("orders-write")}, "insufficient_scope", 403, codes.PermissionDenied},
		{"context_extensions: unknown requirement, no fall-back", checkclient.Request{Host: "api.acme.test", Token: writer, ContextExtensions: named("orders-admin")}, "requirement_unknown", 403, codes.PermissionDenied},
		{"route by path and method", checkclient.Request{Host: "api.acme.test", Method: "POST", Path: "/admin/users", Token: writer}, "insufficient_scope", 403, codes.PermissionDenied},
		{"route method not listed", checkclient.Request{Host: "api.acme.test", Method: "GET", Path: "/admin/users", Token: writer}, "ok", 200, codes.OK},
		{"route met", checkclient.Request{Host: "api.acme.test", Method: "DELETE", Path: "/admin/users/7", Token: admin}, "ok", 200, codes.OK},
		{"route after dot segments", checkclient.Request{Host: "api.acme.test", Method: "POST", Path: "/public/%2e%2e/admin/users", Token: writer}, "insufficient_scope", 403, codes.PermissionDenied},
		{"encoded slash denied", checkclient.Request{Host: "api.acme.test", Method: "POST", Path: "/public/..%2Fadmin/users", Token: admin}, "path_invalid", 400, codes.InvalidArgument},
		{"allow_missing without a token", checkclient.Request{Host: "api.acme.test", Path: "/public/x", Headers: map[string]string{"x-auth-subject": "forged"}}, "ok", 200, codes.OK},
		{"allow_missing with a valid token", checkclient.Request{Host: "api.acme.test", Path: "/public/x", Token: reader}, "ok", 200, codes.OK},
		{"allow_missing with an invalid token", checkclient.Request{Host: "api.acme.test", Path: "/public/x", Token: tamperPayload(t, reader)}, "signature_invalid", 401, codes.Unauthenticated},
		{"no token off the public route", checkclient.Request{Host: "api.acme.test", Path: "/orders"}, "token_missing", 401, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.verify(t, p.check(tt.req))
		})
	}

	t.Run("insufficient_scope challenge (RFC 6750 §3.1)", func(t *testing.T) {
		res := p.check(checkclient.Request{Host: "api.acme.test", Token: reader, ContextExtensions: named("orders-write")})
		got, _ := res.Header("www-authenticate")
		if want := `Bearer realm="acme", error="insufficient_scope", scope="orders:write"`; got != want {
			t.Errorf("WWW-Authenticate %q, want %q", got, want)
		}
		if !strings.Contains(res.Body, `"error":"insufficient_scope"`) {
			t.Errorf("body %s", res.Body)
		}
	})

	t.Run("allow: claim headers, payload, token removed, metadata", func(t *testing.T) {
		res := p.check(checkclient.Request{Host: "api.acme.test", Token: writer, ContextExtensions: named("orders-write")})
		if v, _ := res.Header("x-auth-subject"); v != "alice" {
			t.Errorf("x-auth-subject %q", v)
		}
		if v, _ := res.Header("x-jwt-payload"); v != strings.Split(writer, ".")[1] {
			t.Errorf("x-jwt-payload %q, want the token's payload segment", v)
		}
		if !slices.Contains(res.Removed, "authorization") {
			t.Errorf("forward_token: false, but authorization is not removed: %v", res.Removed)
		}
		if md := res.Metadata.AsMap(); md["requirement"] != "orders-write" || md["anonymous"] != nil {
			t.Errorf("metadata %v", md)
		}
	})

	t.Run("allow_missing: anonymous, every claim header removed", func(t *testing.T) {
		res := p.check(checkclient.Request{Host: "api.acme.test", Path: "/public/x", Headers: map[string]string{"x-auth-subject": "forged"}})
		for _, h := range []string{"x-auth-email", "x-auth-subject", "x-jwt-payload"} {
			if !slices.Contains(res.Removed, h) {
				t.Errorf("%s not removed: %v", h, res.Removed)
			}
		}
		if v, ok := res.Header("x-auth-subject"); ok {
			t.Errorf("anonymous allow sets x-auth-subject %q", v)
		}
		if md := res.Metadata.AsMap(); md["anonymous"] != true || md["requirement"] != "public" {
			t.Errorf("metadata %v", md)
		}
	})

	t.Run("shadow mode: allowed, logged, counted, reported", func(t *testing.T) {
		res := p.check(checkclient.Request{Host: "api.beta.test", ID: "shadow-no-token"})
		if !res.Allowed || res.HTTPStatus != 200 {
			t.Fatalf("shadow mode denied: %s %d", res.Reason, res.HTTPStatus)
		}
		if md := res.Metadata.AsMap(); md["would_deny"] != "token_missing" || md["anonymous"] != true {
			t.Errorf("metadata %v", md)
		}
		tok := beta.token(t, "erin", map[string]any{"groups": []string{"ops"}})
		res = p.check(checkclient.Request{Host: "api.beta.test", Token: tok, ID: "shadow-scope"})
		if !res.Allowed {
			t.Fatalf("shadow mode denied: %s", res.Reason)
		}
		if v, _ := res.Header("x-auth-subject"); v != "erin" {
			t.Errorf("a valid token keeps its claim headers in shadow mode: x-auth-subject %q", v)
		}
		if md := res.Metadata.AsMap(); md["would_deny"] != "insufficient_scope" {
			t.Errorf("metadata %v", md)
		}
		p.waitLog(`"request_id":"shadow-scope"`, 1)
		var line string
		for _, l := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(l, `"request_id":"shadow-scope"`) {
				line = l
			}
		}
		for _, w := range []string{`"level":"INFO"`, `"msg":"would deny (shadow mode)"`, `"would_deny":"insufficient_scope"`, `"tenant":"beta"`} {
			if !strings.Contains(line, w) {
				t.Errorf("log line lacks %s: %s", w, line)
			}
		}
		if strings.Contains(p.stderr.String(), tok) {
			t.Error("the token reached the log")
		}
		m := adminDo(http.MethodGet, "http://"+adminAddr+"/metrics")
		for _, w := range []string{
			`extauthz_shadow_would_deny_total{provider="none",reason="token_missing",tenant="beta"} 1`,
			`extauthz_shadow_would_deny_total{provider="main",reason="insufficient_scope",tenant="beta"} 1`,
			`extauthz_check_total{decision="allow",provider="main",reason="ok",tenant="beta"} 1`,
		} {
			if !strings.Contains(m.body, w+"\n") { // the whole value: "} 1" is also a prefix of "} 12"
				t.Errorf("/metrics lacks %s", w)
			}
		}
	})
}

// TestNginx_RequirementPerLocation runs the documented nginx snippet, whose
// /admin/ location names the requirement "orders-admin" in its auth URL.
func TestNginx_RequirementPerLocation(t *testing.T) {
	acme := newIdP(t, "ES256")
	authAddr, _ := nginxStartExtauthz(t, "",
		tenant{id: "acme", host: "api.acme.test", idp: acme, extra: `    requirements:
      orders-admin: {claims: [{claim: groups, any_of: [admins]}]}
      public: {allow_missing: true}
`})
	echo := nginxStartEcho(t)
	base := nginxStart(t, authAddr, echo.srv.Listener.Addr().String())

	ops := acme.token(t, "bob", map[string]any{"groups": []string{"ops"}})
	admin := acme.token(t, "alice", map[string]any{"groups": []string{"admins"}})
	tests := []struct {
		name, path, tok string
		want            int
	}{
		{"plain location: any valid token", "/orders", ops, http.StatusOK},
		{"requirement location: not met", "/admin/users", ops, http.StatusForbidden},
		{"requirement location: met", "/admin/users", admin, http.StatusOK},
		{"requirement location: no token", "/admin/users", "", http.StatusUnauthorized},
		// The auth locations are internal: a client cannot ask for a
		// requirement of its choosing.
		{"client cannot call the auth URL", "/_extauthz/requirement/public", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.tok != "" {
				h["Authorization"] = "Bearer " + tt.tok
			}
			before := echo.hits.Load()
			r := nginxGet(t, base, "api.acme.test", tt.path, h)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
			if reached := echo.hits.Load() > before; reached != (tt.want == http.StatusOK) {
				t.Errorf("upstream reached: %v", reached)
			}
			if tt.want == http.StatusOK {
				if got := r.upstreamSaw(t).Get("X-Auth-Subject"); got == "" {
					t.Error("upstream saw no X-Auth-Subject")
				}
			}
		})
	}
}

// TestRequirements_CheckNamesEveryProblem: -check validates every part of
// the requirements and names the path of each problem.
func TestRequirements_CheckNamesEveryProblem(t *testing.T) {
	acme := newIdP(t, "ES256")
	cfg := config("127.0.0.1:9191", caFile(t, acme.srv), tenant{id: "acme", host: "api.acme.test", idp: acme, extra: `        payload_header: authorization
    requirements:
      orders-read:
        providers: [main, partners]
        claims:
          - {claim: scope, all_of: ['orders "read"']}
          - {claim: groups}
    routes:
      - {path_prefix: /admin/../x, methods: [post], requirement: orders-admin}
    default_requirement: nope
    mode: audit
`})
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "-config", path, "-check")
	if code == 0 {
		t.Fatal("-check accepted the config")
	}
	for _, p := range []string{
		"tenants[0].providers[0].payload_header",
		"tenants[0].requirements.orders-read.providers[1]",
		"tenants[0].requirements.orders-read.claims[0].all_of[0]",
		"tenants[0].requirements.orders-read.claims[1]",
		"tenants[0].routes[0].path_prefix",
		"tenants[0].routes[0].methods[0]",
		"tenants[0].routes[0].requirement",
		"tenants[0].default_requirement",
		"tenants[0].mode",
	} {
		if !strings.Contains(stderr, p+":") {
			t.Errorf("-check output lacks %s:\n%s", p, stderr)
		}
	}
}
