package e2e

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/checkclient"
	"github.com/extauthz/extauthz/internal/demo"
)

// tamperPayload changes the token's sub while keeping its signature.
func tamperPayload(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	claims["sub"] = "mallory"
	raw, err = json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

func signWith(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mint(t *testing.T, p *demo.IdP, claims jwt.MapClaims) string {
	t.Helper()
	s, err := p.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCheck_EveryReasonCode sends real CheckRequests to the real binary and
// expects each documented reason code with its HTTP status, gRPC status,
// WWW-Authenticate challenge (RFC 6750 §3) and JSON body.
func TestCheck_EveryReasonCode(t *testing.T) {
	acme := newIdP(t, "ES256")
	globex := newIdP(t, "RS256")
	down := newIdP(t, "ES256")
	down.down.Store(true) // never reachable: cold and down
	addr := freeAddr(t)
	p := start(t, addr, config(addr, caFile(t, acme.srv),
		tenant{id: "acme", host: "api.acme.test", idp: acme},
		tenant{id: "globex", host: "api.globex.test", idp: globex},
		tenant{id: "down", host: "api.down.test", idp: down},
		// "down" stays cold; the replica is ready once its first fetch
		// attempt failed, so the harness's wait for SERVING ends.
	))

	// A second key under acme's issuer that acme never published.
	rogue, err := demo.NewIdP(demo.IdPOptions{Issuer: acme.Issuer(), Audience: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	valid := acme.token(t, "alice", map[string]any{"email": "alice@acme.test"})
	notYet := acme.Claims("alice", 2*time.Hour)
	notYet["nbf"] = time.Now().Add(time.Hour).Unix()
	wrongAud := acme.Claims("alice", time.Hour)
	wrongAud["aud"] = "billing"
	foreignIss := acme.Claims("alice", time.Hour)
	foreignIss["iss"] = "https://idp.evil.test/"
	expired, err := acme.Mint("alice", -time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	tokens := []string{valid}

	const acmeHost = "api.acme.test"
	tests := []decisionCase{
		{"ok", checkclient.Request{Host: acmeHost, Token: valid}, "ok", 200, codes.OK},
		{"ok on a wildcard host with a port", checkclient.Request{Host: "EU.Api.Acme.Test:8443", Token: valid}, "ok", 200, codes.OK},
		{"token_missing", checkclient.Request{Host: acmeHost}, "token_missing", 401, codes.Unauthenticated},
		{"token_malformed", checkclient.Request{Host: acmeHost, Token: "not-a-jwt"}, "token_malformed", 401, codes.Unauthenticated},
		{"token_malformed padded", checkclient.Request{Host: acmeHost, Token: strings.Replace(valid, ".", "==.", 1)}, "token_malformed", 401, codes.Unauthenticated},
		{"token_too_large", checkclient.Request{Host: acmeHost, Token: "eyJ" + strings.Repeat("A", 17<<10) + ".e30.sig"}, "token_too_large", 401, codes.Unauthenticated},
		{"algorithm_not_allowed HS256", checkclient.Request{Host: acmeHost, Token: signWith(t, jwt.SigningMethodHS256, []byte("secret"), acme.Claims("alice", time.Hour), acme.KeyID())}, "algorithm_not_allowed", 401, codes.Unauthenticated},
		{"algorithm_not_allowed none", checkclient.Request{Host: acmeHost, Token: signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, acme.Claims("alice", time.Hour), acme.KeyID())}, "algorithm_not_allowed", 401, codes.Unauthenticated},
		{"key_not_found", checkclient.Request{Host: acmeHost, Token: mint(t, rogue, rogue.Claims("alice", time.Hour))}, "key_not_found", 401, codes.Unauthenticated},
		{"signature_invalid", checkclient.Request{Host: acmeHost, Token: tamperPayload(t, valid)}, "signature_invalid", 401, codes.Unauthenticated},
		{"token_expired", checkclient.Request{Host: acmeHost, Token: expired}, "token_expired", 401, codes.Unauthenticated},
		{"token_not_yet_valid", checkclient.Request{Host: acmeHost, Token: mint(t, acme.IdP, notYet)}, "token_not_yet_valid", 401, codes.Unauthenticated},
		{"issuer_unknown", checkclient.Request{Host: acmeHost, Token: mint(t, acme.IdP, foreignIss)}, "issuer_unknown", 401, codes.Unauthenticated},
		{"audience_mismatch", checkclient.Request{Host: acmeHost, Token: mint(t, acme.IdP, wrongAud)}, "audience_mismatch", 401, codes.Unauthenticated},
		{"tenant_unknown host", checkclient.Request{Host: "api.unknown.test", Token: valid}, "tenant_unknown", 403, codes.PermissionDenied},
		{"tenant_unknown bare parent of a wildcard", checkclient.Request{Host: "acme.test", Token: valid}, "tenant_unknown", 403, codes.PermissionDenied},
		{"tenant_unknown context extension, no host fall-back", checkclient.Request{Host: acmeHost, Token: valid, ContextExtensions: map[string]string{"tenant": "nope"}}, "tenant_unknown", 403, codes.PermissionDenied},
		{"jwks_unavailable", checkclient.Request{Host: "api.down.test", Token: down.token(t, "alice", nil)}, "jwks_unavailable", 503, codes.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.req.Token != "" {
				tokens = append(tokens, tt.req.Token)
			}
			tt.req.ID = "req-" + tt.name
			res := p.check(tt.req)
			tt.verify(t, res)
			if res.Allowed {
				return
			}
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal([]byte(res.Body), &body); err != nil || body.Error != tt.reason || body.Description == "" {
				t.Errorf("body %q: want JSON with error %q and a description (%v)", res.Body, tt.reason, err)
			}
			if ct, _ := res.Header("content-type"); ct != "application/json" {
				t.Errorf("content-type %q", ct)
			}
			challenge, ok := res.Header("www-authenticate")
			switch {
			case tt.status != 401:
				if ok {
					t.Errorf("a %d carries WWW-Authenticate %q", tt.status, challenge)
				}
			case tt.req.Token == "":
				// RFC 6750 §3.1: no error code when the request had no token.
				if challenge != `Bearer realm="acme"` {
					t.Errorf("WWW-Authenticate %q, want Bearer realm=\"acme\"", challenge)
				}
			default:
				if !strings.HasPrefix(challenge, `Bearer realm="acme", error="invalid_token", error_description="`) {
					t.Errorf("WWW-Authenticate %q, want realm, invalid_token and a description", challenge)
				}
			}
		})
	}

	// Never a token in the logs, allowed or denied.
	p.waitLog(`"reason":"jwks_unavailable"`, 1)
	out := p.stderr.String()
	for _, tok := range tokens {
		if sig := tok[strings.LastIndexByte(tok, '.')+1:]; len(sig) >= 20 && strings.Contains(out, sig) {
			t.Errorf("the logs contain the signature of token %.20s...", tok)
		}
		if payload := strings.Split(tok, "."); len(payload) == 3 && len(payload[1]) >= 20 && strings.Contains(out, payload[1]) {
			t.Errorf("the logs contain the payload of token %.20s...", tok)
		}
	}
	for _, reason := range []string{"token_missing", "signature_invalid", "tenant_unknown", "jwks_unavailable"} {
		if !strings.Contains(out, `"reason":"`+reason+`"`) {
			t.Errorf("no JSON decision log line with reason %s", reason)
		}
	}
	if !strings.Contains(out, `"request_id":"req-token_expired"`) {
		t.Error("decision logs lack the x-request-id")
	}
}

// TestCheck_ClaimHeadersSetAndForgedOnesRemoved: a client's own claim
// headers never reach the upstream; the token's claims overwrite them, and
// mapped headers the token does not fill are removed.
func TestCheck_ClaimHeadersSetAndForgedOnesRemoved(t *testing.T) {
	acme, p := startAcme(t, "RS256")

	forged := map[string]string{"x-auth-subject": "admin", "x-auth-email": "admin@acme.test"}
	res := p.check(checkclient.Request{Host: "api.acme.test", Token: acme.token(t, "alice", nil), Headers: forged})
	if !res.Allowed {
		t.Fatalf("denied: %s", res.Reason)
	}
	if len(res.Headers) != 1 || res.Headers[0].Name != "x-auth-subject" || res.Headers[0].Value != "alice" ||
		res.Headers[0].Action != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
		t.Errorf("headers set %+v, want only x-auth-subject: alice with OVERWRITE_IF_EXISTS_OR_ADD", res.Headers)
	}
	if len(res.Removed) != 1 || res.Removed[0] != "x-auth-email" {
		t.Errorf("headers removed %v, want [x-auth-email]", res.Removed)
	}
	md := res.Metadata.GetFields()
	if md["tenant"].GetStringValue() != "acme" || md["provider"].GetStringValue() != "main" ||
		md["claims"].GetStructValue().GetFields()["sub"].GetStringValue() != "alice" {
		t.Errorf("dynamic metadata %v, want tenant acme, provider main, claims.sub alice", res.Metadata)
	}

	// With the email claim present, both are set and nothing is removed;
	// control characters never reach a header value.
	res = p.check(checkclient.Request{Host: "api.acme.test", Token: acme.token(t, "bob\r\nx-admin: 1", map[string]any{"email": "bob@acme.test"}), Headers: forged})
	if sub, _ := res.Header("x-auth-subject"); !res.Allowed || sub != "bobx-admin: 1" {
		t.Errorf("x-auth-subject %q (allowed %v), want control characters stripped", sub, res.Allowed)
	}
	if email, _ := res.Header("x-auth-email"); email != "bob@acme.test" || len(res.Removed) != 0 {
		t.Errorf("x-auth-email %q, removed %v", email, res.Removed)
	}
}

// TestCheck_CrossTenantTokensRefused: a token from tenant A's issuer never
// passes on tenant B, whichever way B is selected.
func TestCheck_CrossTenantTokensRefused(t *testing.T) {
	acme, globex, ts := acmeAndGlobex(t)
	addr := freeAddr(t)
	p := start(t, addr, config(addr, caFile(t, acme.srv), ts...))
	acmeTok, globexTok := acme.token(t, "alice", nil), globex.token(t, "gina", nil)
	tests := []struct {
		name string
		req  checkclient.Request
		want string
	}{
		{"own host", checkclient.Request{Host: "api.globex.test", Token: globexTok}, "ok"},
		{"other tenant's host", checkclient.Request{Host: "api.globex.test", Token: acmeTok}, "issuer_unknown"},
		{"other tenant's subdomain", checkclient.Request{Host: "x.api.acme.test", Token: globexTok}, "issuer_unknown"},
		{"other tenant by context extension", checkclient.Request{Host: "api.globex.test", Token: globexTok, ContextExtensions: map[string]string{"tenant": "acme"}}, "issuer_unknown"},
		{"other tenant's provider by context extension", checkclient.Request{Host: "api.acme.test", Token: globexTok, ContextExtensions: map[string]string{"provider": "main"}}, "issuer_unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if res := p.check(tt.req); res.Reason != tt.want {
				t.Errorf("reason %s (status %d), want %s", res.Reason, res.HTTPStatus, tt.want)
			}
		})
	}
}

// TestCheck_TenantHeaderSelectsTenantWithoutFallBack: with tenant_header
// configured, the header names the tenant (this is why README says it is
// only safe where the gateway sets or strips it); an unknown value is
// denied rather than falling back to the host; without it, the host rules.
func TestCheck_TenantHeaderSelectsTenantWithoutFallBack(t *testing.T) {
	acme, globex, ts := acmeAndGlobex(t)
	addr := freeAddr(t)
	cfg := config(addr, caFile(t, acme.srv), ts...)
	p := start(t, addr, strings.Replace(cfg, "log:", "tenant_header: x-tenant-id\nlog:", 1))
	acmeTok, globexTok := acme.token(t, "alice", nil), globex.token(t, "gina", nil)
	tests := []struct {
		name    string
		header  string
		token   string
		want    string
		wantTen string
	}{
		{"header names the other tenant", "globex", globexTok, "ok", "globex"},
		{"header tenant refuses the host tenant's token", "globex", acmeTok, "issuer_unknown", ""},
		{"unknown header value, no host fall-back", "nope", acmeTok, "tenant_unknown", ""},
		{"no header: the host decides", "", acmeTok, "ok", "acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := checkclient.Request{Host: "api.acme.test", Token: tt.token}
			if tt.header != "" {
				req.Headers = map[string]string{"x-tenant-id": tt.header}
			}
			res := p.check(req)
			if res.Reason != tt.want {
				t.Fatalf("reason %s, want %s", res.Reason, tt.want)
			}
			if got := res.Metadata.GetFields()["tenant"].GetStringValue(); tt.wantTen != "" && got != tt.wantTen {
				t.Errorf("tenant %q, want %q", got, tt.wantTen)
			}
		})
	}
}
