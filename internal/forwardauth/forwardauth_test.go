package forwardauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/grpcauthz"
	"github.com/extauthz/extauthz/internal/logtest"
	"github.com/extauthz/extauthz/internal/tenants"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/authz"
)

// TestRequest_GatewayConventions checks that each gateway's way of
// describing the original request is read into the same authz.Request.
func TestRequest_GatewayConventions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		peer    string
		method  string
		target  string
		host    string
		headers []string
		want    authz.Request
	}{
		{
			name:   "nginx auth_request",
			opts:   Options{TrustedProxies: loopback},
			peer:   "127.0.0.1:40000",
			method: "GET", target: "/_extauthz", host: "127.0.0.1:9192",
			headers: []string{
				"X-Forwarded-Host: api.acme.test",
				"X-Original-URI: /orders/7?access_token=abc",
				"X-Original-Method: POST",
				"Authorization: Bearer tok",
				"X-Request-Id: rid-1",
			},
			want: authz.Request{
				Host: "api.acme.test", Path: "/orders/7?access_token=abc", Method: "POST", RequestID: "rid-1", Scheme: "http",
				ClientAddress: "127.0.0.1",
				Headers: map[string]string{
					"x-forwarded-host": "api.acme.test", "x-original-uri": "/orders/7?access_token=abc",
					"x-original-method": "POST", "authorization": "Bearer tok", "x-request-id": "rid-1",
				},
			},
		},
		{
			name:   "Traefik forwardAuth from a configured CIDR",
			opts:   Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
			peer:   "10.3.2.1:51000",
			method: "GET", target: "/", host: "extauthz:9192",
			headers: []string{
				"X-Forwarded-Host: api.acme.test",
				"X-Forwarded-Uri: /orders?page=2",
				"X-Forwarded-Method: DELETE",
				"X-Forwarded-Proto: HTTPS",
				"X-Forwarded-For: 198.51.100.4",
				"X-Forwarded-Client-Cert: Hash=ab",
			},
			want: authz.Request{
				Host: "api.acme.test", Path: "/orders?page=2", Method: "DELETE", Scheme: "https", ForwardedClientCert: "Hash=ab",
				ClientAddress: "198.51.100.4", // the trusted proxy's X-Forwarded-For
				Headers: map[string]string{
					"x-forwarded-host": "api.acme.test", "x-forwarded-uri": "/orders?page=2",
					"x-forwarded-method": "DELETE", "x-forwarded-proto": "HTTPS", "x-forwarded-for": "198.51.100.4",
					"x-forwarded-client-cert": "Hash=ab",
				},
			},
		},
		{
			name:   "Caddy forward_auth keeps Host and adds X-Forwarded-*",
			opts:   Options{TrustedProxies: loopback},
			peer:   "[::1]:50000",
			method: "GET", target: "/", host: "api.acme.test",
			headers: []string{
				"X-Forwarded-Host: api.acme.test",
				"X-Forwarded-Uri: /cart",
				"X-Forwarded-Method: PUT",
				"Cookie: theme=dark",
				"Cookie: session=tok",
			},
			want: authz.Request{
				Host: "api.acme.test", Path: "/cart", Method: "PUT", Scheme: "http",
				ClientAddress: "::1",
				Headers: map[string]string{
					"x-forwarded-host": "api.acme.test", "x-forwarded-uri": "/cart",
					"x-forwarded-method": "PUT", "cookie": "theme=dark; session=tok",
				},
			},
		},
		{
			name:   "Envoy http_service with path_prefix, from any peer",
			opts:   Options{PathPrefix: "/extauthz"},
			peer:   "192.0.2.10:41000",
			method: "PATCH", target: "/extauthz/orders/7?access_token=abc", host: "api.acme.test",
			headers: []string{"Authorization: Bearer tok", "X-Request-Id: rid-2"},
			want: authz.Request{
				Host: "api.acme.test", Path: "/orders/7?access_token=abc", Method: "PATCH", RequestID: "rid-2", Scheme: "http",
				ClientAddress: "192.0.2.10",
				Headers:       map[string]string{"authorization": "Bearer tok", "x-request-id": "rid-2"},
			},
		},
		{
			name:   "Envoy http_service without prefix",
			peer:   "192.0.2.10:41000",
			method: "POST", target: "/orders", host: "api.acme.test:8443",
			want: authz.Request{Host: "api.acme.test:8443", Path: "/orders", Method: "POST", Scheme: "http", Headers: map[string]string{}, ClientAddress: "192.0.2.10"},
		},
		{
			name:   "X-Forwarded-Uri beats X-Original-URI; X-Forwarded-Method beats X-Original-Method",
			opts:   Options{TrustedProxies: loopback},
			peer:   "127.0.0.1:1",
			method: "GET", target: "/", host: "api.acme.test",
			headers: []string{
				"X-Forwarded-Uri: /from-forwarded", "X-Original-URI: /from-original",
				"X-Forwarded-Method: DELETE", "X-Original-Method: POST",
			},
			want: authz.Request{
				Host: "api.acme.test", Path: "/from-forwarded", Method: "DELETE", Scheme: "http",
				ClientAddress: "127.0.0.1",
				Headers: map[string]string{
					"x-forwarded-uri": "/from-forwarded", "x-original-uri": "/from-original",
					"x-forwarded-method": "DELETE", "x-original-method": "POST",
				},
			},
		},
		{
			name:   "untrusted peer: every forwarded header ignored and hidden from authz",
			peer:   "203.0.113.7:1234",
			method: "GET", target: "/real?x=1", host: "api.acme.test",
			headers: []string{
				"X-Forwarded-Host: globex.test", "X-Original-URI: /fake", "X-Forwarded-Uri: /fake",
				"X-Forwarded-Method: DELETE", "X-Original-Method: DELETE", "X-Forwarded-Proto: https",
				"X-Forwarded-For: 1.2.3.4", "Forwarded: host=globex.test", "Authorization: Bearer tok",
				"X-Forwarded-Client-Cert: Hash=ab",
			},
			want: authz.Request{
				Host: "api.acme.test", Path: "/real?x=1", Method: "GET", Scheme: "http",
				ClientAddress: "203.0.113.7", // the peer: an untrusted X-Forwarded-For is ignored
				Headers:       map[string]string{"authorization": "Bearer tok"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{resp: authz.Decision{Allowed: true, HTTPStatus: 200}}
			tt.opts.Logger = debugLogger(&logtest.Buffer{})
			h, err := New(rec, tt.opts)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, subrequest(t, tt.peer, tt.method, tt.target, tt.host, tt.headers...))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", w.Code)
			}
			if diff := cmp.Diff(&tt.want, rec.last()); diff != "" {
				t.Errorf("authz.Request (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServeHTTP_TrustRule: only configured CIDRs, loopback included only
// when listed, may choose the tenant with X-Forwarded-Host.
func TestServeHTTP_TrustRule(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "https://idp.acme.test/", nil)
	tenNet := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	mapped := []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}
	tests := []struct {
		name       string
		trusted    []netip.Prefix
		peer       string
		wantStatus int
	}{
		{"listed loopback v4 picks the tenant", loopback, "127.0.0.1:5000", 200},
		{"listed loopback v6 picks the tenant", loopback, "[::1]:5000", 200},
		{"IPv4-mapped listed loopback picks the tenant", loopback, "[::ffff:127.0.0.1]:5000", 200},
		{"loopback not listed cannot", tenNet, "127.0.0.1:5000", 403},
		{"empty list: nobody can", []netip.Prefix{}, "127.0.0.1:5000", 403},
		{"sidecar address outside the listed loopback cannot", loopback, "127.0.0.6:5000", 403},
		{"configured CIDR picks the tenant", tenNet, "10.9.8.7:5000", 200},
		{"CIDR written IPv4-mapped", mapped, "10.9.8.7:5000", 200},
		{"all of IPv4 written IPv4-mapped (/96)", []netip.Prefix{netip.MustParsePrefix("::ffff:0.0.0.0/96")}, "10.9.8.7:5000", 200},
		{"private address not configured cannot", nil, "10.9.8.7:5000", 403},
		{"public peer cannot", tenNet, "203.0.113.7:5000", 403},
		{"peer outside the CIDR cannot", tenNet, "11.0.0.1:5000", 403},
		{"listed peer without a port picks the tenant", loopback, "127.0.0.1", 200},
		{"unparseable peer cannot", loopback, "@", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := f.handler(t, Options{TrustedProxies: tt.trusted})
			w := httptest.NewRecorder()
			// Host names no tenant; only a believed X-Forwarded-Host finds acme.
			h.ServeHTTP(w, subrequest(t, tt.peer, "GET", "/", "unknown.test",
				"X-Forwarded-Host: "+acmeHost, "Authorization: Bearer "+tok))
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantStatus == 403 {
				assertReason(t, w, authz.ReasonTenantUnknown)
			}
		})
	}
}

// loopback is the default forward_auth.trusted_proxies, parsed.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}

// TestProxies_SidecarPeerIsNotTrustedByDefault: behind an Istio sidecar
// every caller, the client included, arrives from 127.0.0.6. With the
// default trusted_proxies (a config without the key) such a peer cannot
// choose its tenant with X-Forwarded-Host, while a gateway on 127.0.0.1
// (nginx beside extauthz) still can.
func TestProxies_SidecarPeerIsNotTrustedByDefault(t *testing.T) {
	cfg, err := tenants.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := cfg.ForwardAuth.Prefixes()
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	h := f.handler(t, Options{TrustedProxies: trusted})
	tok := f.token(t, "https://idp.acme.test/", nil)
	for _, tc := range []struct {
		peer string
		want int
	}{
		{"127.0.0.6:41000", http.StatusForbidden}, // Istio's inbound passthrough source
		{"127.0.0.2:41000", http.StatusForbidden},
		{"[::ffff:127.0.0.6]:41000", http.StatusForbidden},
		{"127.0.0.1:41000", http.StatusOK},
		{"[::1]:41000", http.StatusOK},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, subrequest(t, tc.peer, "GET", "/", "unknown.test",
			"X-Forwarded-Host: "+acmeHost, "Authorization: Bearer "+tok))
		if w.Code != tc.want {
			t.Errorf("peer %s: status %d, want %d", tc.peer, w.Code, tc.want)
		}
	}
}

// TestTenantIsolation_ForwardedHostMustBeAHostName: a trusted gateway that
// passes on a client's X-Forwarded-Host with userinfo, a path or a
// bracketed name gets tenant_unknown, not the tenant a lookup of a part of
// it would find.
func TestTenantIsolation_ForwardedHostMustBeAHostName(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, Options{})
	tok := f.token(t, "https://idp.acme.test/", nil)
	for _, fh := range []string{"evil@" + acmeHost, acmeHost + "/x", "[" + acmeHost + "]", acmeHost + ":x"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, subrequest(t, "127.0.0.1:1", "GET", "/", "unknown.test",
			"X-Forwarded-Host: "+fh, "Authorization: Bearer "+tok))
		if w.Code != http.StatusForbidden {
			t.Errorf("X-Forwarded-Host %q: status %d, want 403", fh, w.Code)
			continue
		}
		assertReason(t, w, authz.ReasonTenantUnknown)
	}
}

// TestServeHTTP_UntrustedPeerCannotMoveTheTenant: an untrusted client that
// reaches the listener directly is judged by its own Host, whatever
// X-Forwarded-Host it sends.
func TestServeHTTP_UntrustedPeerCannotMoveTheTenant(t *testing.T) {
	f := newFixture(t)
	logs := &logtest.Buffer{}
	h := f.handler(t, Options{Logger: debugLogger(logs)})
	tok := f.token(t, "https://idp.acme.test/", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, subrequest(t, "203.0.113.7:1234", "GET", "/", globexHost,
		"X-Forwarded-Host: "+acmeHost, "X-Forwarded-Uri: /?access_token="+tok))
	// Judged as globex (its realm), and the token in the ignored
	// X-Forwarded-Uri was not looked at.
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", w.Code)
	}
	assertReason(t, w, authz.ReasonTokenMissing)
	if got, want := w.Header().Get("WWW-Authenticate"), `Bearer realm="globex"`; got != want {
		t.Errorf("WWW-Authenticate %q, want %q", got, want)
	}
	out := logs.String()
	for _, want := range []string{"forwarded headers ignored", "203.0.113.7:1234", hForwardedHost, hForwardedURI} {
		if !strings.Contains(out, want) {
			t.Errorf("debug log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, tok) || strings.Contains(out, "access_token") {
		t.Errorf("debug log carries the forwarded URI or token:\n%s", out)
	}
}

// TestServeHTTP_AmbiguousForwardedHostFailsClosed: a proxy that appends to
// X-Forwarded-Host instead of overwriting it lets the client's value
// through; which entry is the proxy's cannot be known, so none is used.
func TestServeHTTP_AmbiguousForwardedHostFailsClosed(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "https://idp.acme.test/", nil)
	tests := []struct {
		name    string
		headers []string
	}{
		{"comma list", []string{"X-Forwarded-Host: " + acmeHost + ", " + globexHost}},
		{"two field lines", []string{"X-Forwarded-Host: " + acmeHost, "X-Forwarded-Host: " + globexHost}},
		{"empty value", []string{"X-Forwarded-Host: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := f.handler(t, Options{})
			w := httptest.NewRecorder()
			hdrs := append([]string{"Authorization: Bearer " + tok}, tt.headers...)
			// Host is a real tenant: the ambiguity must not fall back to it.
			h.ServeHTTP(w, subrequest(t, "127.0.0.1:1", "GET", "/", acmeHost, hdrs...))
			if w.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403", w.Code)
			}
			assertReason(t, w, authz.ReasonTenantUnknown)

			rec := &recorder{resp: authz.Decision{Allowed: true}}
			hr, err := New(rec, Options{TrustedProxies: loopback})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			hr.ServeHTTP(httptest.NewRecorder(), subrequest(t, "127.0.0.1:1", "GET", "/", acmeHost, hdrs...))
			if got := rec.last().Host; got != "" {
				t.Errorf("host %q, want empty (no tenant)", got)
			}
		})
	}
}

// TestOwnTarget_PathPrefix: Envoy's http_service sends path_prefix followed
// by the original target; only a whole prefix is stripped.
func TestOwnTarget_PathPrefix(t *testing.T) {
	tests := []struct {
		prefix, target, want string
	}{
		{"/extauthz", "/extauthz/orders/7?a=1", "/orders/7?a=1"},
		{"/extauthz/", "/extauthz/orders", "/orders"},
		{"/extauthz", "/extauthz", "/"},
		{"/extauthz", "/extauthz?access_token=x", "/?access_token=x"},
		{"/extauthz", "/extauthzfoo/bar", "/extauthzfoo/bar"},
		{"/extauthz", "/other/path", "/other/path"},
		{"", "/orders?a=%2F", "/orders?a=%2F"},
		{"/a/b", "/a/b/c%20d", "/c%20d"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix+" "+tt.target, func(t *testing.T) {
			rec := &recorder{resp: authz.Decision{Allowed: true}}
			h, err := New(rec, Options{PathPrefix: tt.prefix})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			h.ServeHTTP(httptest.NewRecorder(), subrequest(t, "192.0.2.1:1", "GET", tt.target, acmeHost))
			if got := rec.last().Path; got != tt.want {
				t.Errorf("path %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNew_RefusesBadOptions(t *testing.T) {
	rec := &recorder{}
	tests := []struct {
		name string
		d    Decider
		opts Options
		want string
	}{
		{"no decider", nil, Options{}, "no decider"},
		{"relative prefix", rec, Options{PathPrefix: "extauthz"}, `path prefix "extauthz" must start with /`},
		{"zero prefix", rec, Options{TrustedProxies: []netip.Prefix{{}}}, "trusted proxy 0 is not a valid prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.d, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestServeHTTP_SameAnswersAsGRPC sends the same original requests through
// the HTTP listener (as Envoy's http_service would) and through the gRPC
// Check, and requires the same status, WWW-Authenticate, body, reason and
// header instructions: one decision function, two encodings.
func TestServeHTTP_SameAnswersAsGRPC(t *testing.T) {
	f := newFixture(t)
	acme := f.token(t, "https://idp.acme.test/", nil)
	acmeEmail := f.token(t, "https://idp.acme.test/", jwt.MapClaims{"email": "alice@acme.test"})
	globex := f.token(t, "https://idp.globex.test/", nil)
	tests := []struct {
		name       string
		host       string
		headers    map[string]string
		wantStatus int
	}{
		{"allow, email claim missing", acmeHost, map[string]string{"authorization": "Bearer " + acme, "x-auth-email": "forged@evil.test"}, 200},
		{"allow, every claim header filled", acmeHost, map[string]string{"authorization": "Bearer " + acmeEmail}, 200},
		{"no token", acmeHost, nil, 401},
		{"malformed token", acmeHost, map[string]string{"authorization": "Bearer not.a.jwt!"}, 401},
		{"token of another issuer", acmeHost, map[string]string{"authorization": "Bearer " + globex}, 401},
		{"unknown host", "nobody.test", map[string]string{"authorization": "Bearer " + acme}, 403},
		{"identity provider down", globexHost, map[string]string{"authorization": "Bearer " + globex}, 503},
	}
	h := f.handler(t, Options{PathPrefix: "/extauthz"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			for k, v := range tt.headers {
				lines = append(lines, k+": "+v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, subrequest(t, "192.0.2.1:1", "GET", "/extauthz/orders", tt.host, lines...))
			if w.Code != tt.wantStatus {
				t.Fatalf("HTTP status %d, want %d (body %s)", w.Code, tt.wantStatus, w.Body)
			}
			resp, err := grpcauthz.New(f.authz).Check(t.Context(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Host: tt.host, Path: "/orders", Method: "GET", Headers: tt.headers,
				}},
			}})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if ok := resp.GetOkResponse(); ok != nil {
				if w.Body.Len() != 0 {
					t.Errorf("allow has a body: %q", w.Body)
				}
				if diff := cmp.Diff(grpcHeaders(ok.GetHeaders()), httpHeaders(w.Header(), ok.GetHeaders())); diff != "" {
					t.Errorf("claim headers (-grpc +http):\n%s", diff)
				}
				if got, want := w.Header().Get(HeadersToRemove), strings.Join(ok.GetHeadersToRemove(), ", "); got != want {
					t.Errorf("%s %q, gRPC headers_to_remove %q", HeadersToRemove, got, want)
				}
				return
			}
			denied := resp.GetDeniedResponse()
			if int(denied.GetStatus().GetCode()) != w.Code {
				t.Errorf("HTTP status %d, gRPC denied status %d", w.Code, denied.GetStatus().GetCode())
			}
			if w.Body.String() != denied.GetBody() {
				t.Errorf("body %q, gRPC body %q", w.Body, denied.GetBody())
			}
			want := grpcHeaders(denied.GetHeaders())
			got := map[string]string{"content-type": w.Header().Get("Content-Type")}
			if v := w.Header().Get("WWW-Authenticate"); v != "" {
				got["www-authenticate"] = v
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("denial headers (-grpc +http):\n%s", diff)
			}
			if got, want := reasonOf(t, w), resp.GetStatus().GetMessage(); string(got) != want {
				t.Errorf("reason %q, gRPC %q", got, want)
			}
		})
	}
}

// TestServeHTTP_ClaimHeadersAndForgedOnes: the allow answer carries only
// what the token filled, never a client's value, and names the unfilled
// claim headers for Envoy to remove.
func TestServeHTTP_ClaimHeadersAndForgedOnes(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, Options{})
	tests := []struct {
		name       string
		claims     jwt.MapClaims
		wantSet    map[string]string
		wantRemove string
	}{
		{"sub only", nil, map[string]string{"X-Auth-Subject": "alice"}, "x-auth-email"},
		{"sub and email", jwt.MapClaims{"email": "alice@acme.test"},
			map[string]string{"X-Auth-Subject": "alice", "X-Auth-Email": "alice@acme.test"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := f.token(t, "https://idp.acme.test/", tt.claims)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, subrequest(t, "127.0.0.1:1", "GET", "/auth", "127.0.0.1:9192",
				"X-Forwarded-Host: "+acmeHost, "X-Original-URI: /orders",
				"Authorization: Bearer "+tok,
				"X-Auth-Subject: mallory", "X-Auth-Email: forged@evil.test"))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200 (body %s)", w.Code, w.Body)
			}
			for _, name := range []string{"X-Auth-Subject", "X-Auth-Email"} {
				if got := w.Header().Values(name); len(got) > 1 || (len(got) == 1 && got[0] != tt.wantSet[name]) ||
					(len(got) == 0 && tt.wantSet[name] != "") {
					t.Errorf("%s = %q, want %q", name, got, tt.wantSet[name])
				}
			}
			if got := w.Header().Get(HeadersToRemove); got != tt.wantRemove {
				t.Errorf("%s %q, want %q", HeadersToRemove, got, tt.wantRemove)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
		})
	}
}

// TestServeHTTP_TokenSourcesOfTheOriginalRequest: the token is found where
// the tenant's config says, in the original request as the gateway
// describes it.
func TestServeHTTP_TokenSourcesOfTheOriginalRequest(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, Options{PathPrefix: "/extauthz"})
	tok := f.token(t, "https://idp.acme.test/", nil)
	tests := []struct {
		name    string
		peer    string
		target  string
		host    string
		headers []string
	}{
		{"query of X-Forwarded-Uri (Traefik)", "127.0.0.1:1", "/", "extauthz",
			[]string{"X-Forwarded-Host: " + acmeHost, "X-Forwarded-Uri: /orders?access_token=" + tok}},
		{"query of X-Original-URI (nginx)", "127.0.0.1:1", "/auth", "extauthz",
			[]string{"X-Forwarded-Host: " + acmeHost, "X-Original-URI: /orders?a=1&access_token=" + tok}},
		{"query of the prefixed path (Envoy)", "192.0.2.1:1", "/extauthz/orders?access_token=" + tok, acmeHost, nil},
		{"cookie (Caddy)", "[::1]:1", "/", acmeHost,
			[]string{"X-Forwarded-Uri: /orders", "Cookie: theme=dark; session=" + tok}},
		{"authorization, scheme in lowercase", "192.0.2.1:1", "/extauthz/orders", acmeHost,
			[]string{"Authorization: bearer " + tok}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, subrequest(t, tt.peer, "GET", tt.target, tt.host, tt.headers...))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200 (body %s)", w.Code, w.Body)
			}
			if got := w.Header().Get("X-Auth-Subject"); got != "alice" {
				t.Errorf("X-Auth-Subject %q, want alice", got)
			}
		})
	}
}

// TestServeHTTP_DenialIsNeverA2xx: a Decider that denies with a status a
// gateway would read as success still denies.
func TestServeHTTP_DenialIsNeverA2xx(t *testing.T) {
	for _, tc := range []struct{ status, want int }{
		{0, 403}, {200, 403}, {204, 403}, {302, 403}, {399, 403}, {600, 403},
		{400, 400}, {401, 401}, {503, 503}, {599, 599}, // a 4xx or 5xx is kept
	} {
		rec := &recorder{resp: authz.Decision{HTTPStatus: tc.status, Body: []byte(`{}`)}}
		h, err := New(rec, Options{})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, subrequest(t, "127.0.0.1:1", "GET", "/", acmeHost))
		if w.Code != tc.want {
			t.Errorf("denial with status %d answered %d, want %d", tc.status, w.Code, tc.want)
		}
	}
}

// TestServeHTTP_AllowWithoutRemovals: an allow that removes no header sends
// no empty removal list.
func TestServeHTTP_AllowWithoutRemovals(t *testing.T) {
	h, err := New(&recorder{resp: authz.Decision{Allowed: true}}, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, subrequest(t, "127.0.0.1:1", "GET", "/", acmeHost))
	if w.Code != http.StatusOK || len(w.Header().Values(HeadersToRemove)) != 0 {
		t.Errorf("status %d, %s %q", w.Code, HeadersToRemove, w.Header().Values(HeadersToRemove))
	}
}

// TestServeHTTP_DenialBody: the JSON body and content type of a denial.
func TestServeHTTP_DenialBody(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, Options{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, subrequest(t, "192.0.2.1:1", "GET", "/", globexHost, "Authorization: Bearer "+f.token(t, "https://idp.globex.test/", nil)))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", w.Code)
	}
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if got := w.Header().Get("WWW-Authenticate"); got != "" {
		t.Errorf("503 carries WWW-Authenticate %q", got)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if body.Error != string(authz.ReasonJWKSUnavailable) || body.Description == "" {
		t.Errorf("body %+v", body)
	}
}

func assertReason(t *testing.T, w *httptest.ResponseRecorder, want authz.Reason) {
	t.Helper()
	if got := reasonOf(t, w); got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
}

func reasonOf(t *testing.T, w *httptest.ResponseRecorder) authz.Reason {
	t.Helper()
	var body struct {
		Error authz.Reason `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("denial body %q is not JSON: %v", w.Body, err)
	}
	return body.Error
}

func grpcHeaders(opts []*corev3.HeaderValueOption) map[string]string {
	m := map[string]string{}
	for _, o := range opts {
		m[strings.ToLower(o.GetHeader().GetKey())] = o.GetHeader().GetValue()
	}
	return m
}

// httpHeaders returns, lowercased, the response headers that are named by
// the gRPC answer or look like claim headers (x-auth-*).
func httpHeaders(h http.Header, named []*corev3.HeaderValueOption) map[string]string {
	m := map[string]string{}
	for k := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-auth-") {
			m[lk] = h.Get(k)
		}
	}
	for _, o := range named {
		if v := h.Get(o.GetHeader().GetKey()); v != "" {
			m[strings.ToLower(o.GetHeader().GetKey())] = v
		}
	}
	return m
}

// TestServeHTTP_BodyClosesTheConnection: a subrequest with a body (a length
// or a transfer coding) is answered with Connection: close, so the body is
// never waited for; one without keeps its connection.
func TestServeHTTP_BodyClosesTheConnection(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, Options{})
	for _, tc := range []struct {
		name      string
		length    int64
		te        []string
		wantClose bool
	}{
		{"no body", 0, nil, false},
		{"a length", 5, nil, true},
		{"chunked", -1, []string{"chunked"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := subrequest(t, "127.0.0.1:5000", "GET", "/", acmeHost)
			r.ContentLength, r.TransferEncoding = tc.length, tc.te
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got := w.Header().Get("Connection") == "close"; got != tc.wantClose {
				t.Errorf("Connection %q, want close: %t", w.Header().Get("Connection"), tc.wantClose)
			}
		})
	}
}
