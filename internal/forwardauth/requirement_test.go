package forwardauth

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/logtest"
	"github.com/extauthz/extauthz/internal/tenants"
)

// TestRequest_RequirementFromAuthURL: the auth URL's ".../requirement/<name>"
// names the requirement, but only when the subrequest's path is the
// gateway's (the original target came in a forwarded header from a trusted
// peer).
func TestRequest_RequirementFromAuthURL(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		peer    string
		target  string
		headers []string
		want    map[string]string
	}{
		{"nginx location", Options{TrustedProxies: loopback}, "127.0.0.1:1", "/_extauthz/requirement/orders-admin",
			[]string{"X-Forwarded-Host: api.acme.test", "X-Original-URI: /admin/x", "X-Original-Method: POST"},
			map[string]string{"requirement": "orders-admin"}},
		{"Traefik address", Options{TrustedProxies: loopback}, "[::1]:1", "/requirement/public",
			[]string{"X-Forwarded-Host: api.acme.test", "X-Forwarded-Uri: /public/x"},
			map[string]string{"requirement": "public"}},
		{"query of the auth URL ignored", Options{TrustedProxies: loopback}, "127.0.0.1:1", "/requirement/public?x=1",
			[]string{"X-Forwarded-Uri: /public/x"},
			map[string]string{"requirement": "public"}},
		{"plain auth URL names none", Options{TrustedProxies: loopback}, "127.0.0.1:1", "/_extauthz",
			[]string{"X-Original-URI: /admin/x"}, nil},
		{"empty name", Options{TrustedProxies: loopback}, "127.0.0.1:1", "/requirement/",
			[]string{"X-Original-URI: /admin/x"}, nil},
		{"segment must be whole", Options{TrustedProxies: loopback}, "127.0.0.1:1", "/norequirement/public",
			[]string{"X-Original-URI: /admin/x"}, nil},
		{"Envoy http_service: the path is the client's", Options{PathPrefix: "/extauthz", TrustedProxies: loopback}, "192.0.2.1:1",
			"/extauthz/requirement/public", nil, nil},
		{"trusted peer without a forwarded target: the path is the client's", Options{TrustedProxies: loopback}, "127.0.0.1:1",
			"/requirement/public", nil, nil},
		{"untrusted peer: forwarded headers ignored, so is the path", Options{TrustedProxies: loopback}, "203.0.113.9:1",
			"/requirement/public", []string{"X-Original-URI: /admin/x"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{resp: authz.Decision{Allowed: true, HTTPStatus: 200}}
			tt.opts.Logger = debugLogger(&logtest.Buffer{})
			h, err := New(rec, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			h.ServeHTTP(httptest.NewRecorder(), subrequest(t, tt.peer, "GET", tt.target, "api.acme.test", tt.headers...))
			if diff := cmp.Diff(tt.want, rec.last().ContextExtensions); diff != "" {
				t.Errorf("ContextExtensions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServeHTTP_InsufficientScope: the real decision over HTTP, with the
// requirement named by the auth URL.
func TestServeHTTP_InsufficientScope(t *testing.T) {
	f := newFixture(t)
	cfg, err := tenants.Parse([]byte(testConfig + `    requirements:
      orders-admin: {claims: [{claim: scope, all_of: ["orders:admin"]}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	// The requirement belongs to globex in the YAML above (the last
	// tenant); move it to acme, whose keys are available.
	cfg.Tenants[0].Requirements, cfg.Tenants[1].Requirements = cfg.Tenants[1].Requirements, nil
	set, err := tenants.NewSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.authz.Update(set)
	h := f.handler(t, Options{TrustedProxies: loopback, Logger: slog.New(slog.DiscardHandler)})
	for _, tt := range []struct {
		scope  string
		status int
	}{{"orders:read", http.StatusForbidden}, {"orders:read orders:admin", http.StatusOK}} {
		tok := f.token(t, "https://idp.acme.test/", jwt.MapClaims{"scope": tt.scope})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, subrequest(t, "127.0.0.1:1", "GET", "/_extauthz/requirement/orders-admin", "127.0.0.1:9192",
			"X-Forwarded-Host: api.acme.test", "X-Original-URI: /admin/x", "Authorization: Bearer "+tok))
		if w.Code != tt.status {
			t.Fatalf("scope %q: status %d, want %d: %s", tt.scope, w.Code, tt.status, w.Body)
		}
		if tt.status != http.StatusForbidden {
			continue
		}
		if got, want := w.Header().Get("WWW-Authenticate"), `Bearer realm="acme", error="insufficient_scope", scope="orders:admin"`; got != want {
			t.Errorf("WWW-Authenticate %q, want %q", got, want)
		}
		if !strings.Contains(w.Body.String(), `"error":"insufficient_scope"`) {
			t.Errorf("body %s", w.Body)
		}
	}
}
