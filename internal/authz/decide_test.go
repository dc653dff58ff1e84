package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/jwkscache"
)

func TestDecide_ReasonCodes(t *testing.T) {
	k := keysOnce()
	hour := time.Hour
	at := func(d time.Duration) float64 { return float64(testNow.Add(d).Unix()) }
	set := func(name string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[name] = v } }
	del := func(name string) func(jwt.MapClaims) { return func(c jwt.MapClaims) { delete(c, name) } }

	tests := []struct {
		name    string
		req     func(t *testing.T) *Request
		keyErr  error // returned by the key source for acme/main
		want    Reason
		present bool // a token was presented (WWW-Authenticate error attributes)
	}{
		{"rs256 ok", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims()) }), nil, ReasonOK, true},
		{"es256 ok", tokReq(func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, k.EC, "ec", acmeClaims(), nil)
		}), nil, ReasonOK, true},
		{"eddsa ok", tokReq(func(t *testing.T) string {
			return sign(t, jwt.SigningMethodEdDSA, k.Ed, "ed", acmeClaims(), nil)
		}), nil, ReasonOK, true},
		{"aud as string ok", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("aud", "billing"))) }), nil, ReasonOK, true},
		{"aud any-of ok", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("aud", []any{"x", "billing"}))) }), nil, ReasonOK, true},
		{"expired within skew ok", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("exp", at(-30*time.Second)))) }), nil, ReasonOK, true},
		{"iat in future within skew ok", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("iat", at(30*time.Second)))) }), nil, ReasonOK, true},
		{"lowercase bearer ok", func(t *testing.T) *Request {
			r := acmeRequest("")
			r.Headers = map[string]string{"authorization": "bearer " + rs256(t, acmeClaims())}
			return r
		}, nil, ReasonOK, true},

		{"no header", func(t *testing.T) *Request { r := acmeRequest(""); r.Headers = nil; return r }, nil, ReasonTokenMissing, false},
		{"basic auth", func(t *testing.T) *Request {
			r := acmeRequest("")
			r.Headers = map[string]string{"authorization": "Basic dXNlcjpwYXNz"}
			return r
		}, nil, ReasonTokenMissing, false},
		{"empty bearer", func(t *testing.T) *Request {
			r := acmeRequest("")
			r.Headers = map[string]string{"authorization": "Bearer   "}
			return r
		}, nil, ReasonTokenMissing, false},

		{"two segments", tokReq(func(t *testing.T) string { s := rs256(t, acmeClaims()); return s[:strings.LastIndexByte(s, '.')] }), nil, ReasonTokenMalformed, true},
		{"four segments", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims()) + ".AAAA" }), nil, ReasonTokenMalformed, true},
		{"padded segment", tokReq(func(t *testing.T) string { return padFirst(rs256(t, acmeClaims())) }), nil, ReasonTokenMalformed, true},
		{"standard base64 alphabet", tokReq(func(t *testing.T) string {
			return strings.NewReplacer("-", "+", "_", "/").Replace(rs256(t, acmeClaims())) + "+/"
		}), nil, ReasonTokenMalformed, true},
		{"newline inside", tokReq(func(t *testing.T) string { s := rs256(t, acmeClaims()); return s[:10] + "\n" + s[10:] }), nil, ReasonTokenMalformed, true},
		{"empty header segment", tokReq(func(t *testing.T) string { s := rs256(t, acmeClaims()); return s[strings.IndexByte(s, '.'):] }), nil, ReasonTokenMalformed, true},
		{"header not json", tokReq(func(t *testing.T) string { return rawToken(t, `{"alg":`, mustJSON(t, acmeClaims())) }), nil, ReasonTokenMalformed, true},
		{"payload not json", tokReq(func(t *testing.T) string { return rawToken(t, `{"alg":"RS256","kid":"rsa"}`, `[1,2]`) }), nil, ReasonTokenMalformed, true},
		{"alg missing", tokReq(func(t *testing.T) string { return rawToken(t, `{"kid":"rsa"}`, mustJSON(t, acmeClaims())) }), nil, ReasonTokenMalformed, true},
		{"unknown crit", tokReq(func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, k.RSA, "rsa", acmeClaims(), map[string]any{"crit": []any{"exp-ext"}, "exp-ext": 1})
		}), nil, ReasonTokenMalformed, true},
		{"kid not a string", tokReq(func(t *testing.T) string { return rawToken(t, `{"alg":"RS256","kid":7}`, mustJSON(t, acmeClaims())) }), nil, ReasonTokenMalformed, true},
		{"exp as string", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("exp", "tomorrow"))) }), nil, ReasonTokenMalformed, true},
		{"aud as number", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("aud", 42))) }), nil, ReasonTokenMalformed, true},
		{"aud array with number", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("aud", []any{"orders", 1}))) }), nil, ReasonTokenMalformed, true},
		{"iss as number", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("iss", 1))) }), nil, ReasonTokenMalformed, true},
		{"sub as object", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("sub", map[string]any{}))) }), nil, ReasonTokenMalformed, true},
		{"nbf as bool", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("nbf", true))) }), nil, ReasonTokenMalformed, true},
		{"exp missing", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(del("exp"))) }), nil, ReasonTokenMalformed, true},

		{"too large", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("pad", strings.Repeat("x", 4096)))) }), nil, ReasonTokenTooLarge, true},

		{"alg none", tokReq(func(t *testing.T) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa", acmeClaims(), nil)
		}), nil, ReasonAlgorithmNotAllowed, true},
		{"alg HS256 with the public key as secret", tokReq(func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, []byte("secret"), "rsa", acmeClaims(), nil)
		}), nil, ReasonAlgorithmNotAllowed, true},
		{"alg RS384 not listed", tokReq(func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS384, k.RSA, "rsa", acmeClaims(), nil)
		}), nil, ReasonAlgorithmNotAllowed, true},
		{"alg unknown", tokReq(func(t *testing.T) string {
			return rawToken(t, `{"alg":"XX999","kid":"rsa"}`, mustJSON(t, acmeClaims()))
		}), nil, ReasonAlgorithmNotAllowed, true},

		{"unknown kid", tokReq(func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, k.RSA, "nope", acmeClaims(), nil) }), nil, ReasonKeyNotFound, true},
		{"jwk header never used", tokReq(func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, k.RSAOther, "", acmeClaims(), map[string]any{
				"jwk": map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB"},
				"jku": "https://evil.test/jwks.json", "x5u": "https://evil.test/cert",
			})
		}), nil, ReasonKeyNotFound, true},

		{"signed by another key", tokReq(func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, k.RSAOther, "rsa", acmeClaims(), nil)
		}), nil, ReasonSignatureInvalid, true},
		{"tampered payload", tokReq(func(t *testing.T) string {
			good := strings.Split(rs256(t, acmeClaims()), ".")
			evil := strings.Split(rs256(t, acmeClaims(set("sub", "admin"))), ".")
			return good[0] + "." + evil[1] + "." + good[2]
		}), nil, ReasonSignatureInvalid, true},
		{"empty signature", tokReq(func(t *testing.T) string { s := rs256(t, acmeClaims()); return s[:strings.LastIndexByte(s, '.')+1] }), nil, ReasonSignatureInvalid, true},
		{"ES256 token with kid of the RSA key", tokReq(func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, k.EC, "rsa", acmeClaims(), nil) }), nil, ReasonSignatureInvalid, true},

		{"expired", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("exp", at(-hour)))) }), nil, ReasonTokenExpired, true},
		{"expired beyond skew", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("exp", at(-61*time.Second)))) }), nil, ReasonTokenExpired, true},
		{"nbf in future", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("nbf", at(hour)))) }), nil, ReasonTokenNotYetValid, true},
		{"iat in future beyond skew", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("iat", at(2*time.Minute)))) }), nil, ReasonTokenNotYetValid, true},

		{"other issuer", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("iss", "https://evil.test/"))) }), nil, ReasonIssuerUnknown, true},
		{"issuer differs by case", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("iss", "https://IDP.acme.test/"))) }), nil, ReasonIssuerUnknown, true},
		{"no issuer", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(del("iss"))) }), nil, ReasonIssuerUnknown, true},
		{"key source: unknown provider", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims()) }), jwkscache.ErrUnknownProvider, ReasonIssuerUnknown, true},

		{"wrong audience", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("aud", "shipping"))) }), nil, ReasonAudienceMismatch, true},
		{"no audience", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(del("aud"))) }), nil, ReasonAudienceMismatch, true},

		{"unknown host", func(t *testing.T) *Request { r := acmeRequest(rs256(t, acmeClaims())); r.Host = "acme.test"; return r }, nil, ReasonTenantUnknown, true},

		{"keys unavailable", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims()) }), fmt.Errorf("wrapped: %w", jwkscache.ErrUnavailable), ReasonJWKSUnavailable, true},
		{"cold wait timed out", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims()) }), context.DeadlineExceeded, ReasonJWKSUnavailable, true},
		{"key source broken", tokReq(func(t *testing.T) string { return rs256(t, acmeClaims()) }), errors.New("boom"), ReasonJWKSUnavailable, true},

		{"requirement met", withExt(tokReq(func(t *testing.T) string { return rs256(t, acmeClaims(set("scope", "orders:read orders:write"))) }), "requirement", "orders-write"), nil, ReasonOK, true},
		{"requirement: claim missing", withExt(tokReq(func(t *testing.T) string { return rs256(t, acmeClaims()) }), "requirement", "orders-write"), nil, ReasonInsufficientScope, true},
		{"requirement: provider not accepted", withExt(func(t *testing.T) *Request {
			r := acmeRequest("")
			r.Headers = nil
			r.Path = "/?access_token=" + rs256(t, partnerClaims(set("scope", "orders:write")))
			return r
		}, "requirement", "orders-write"), nil, ReasonProviderNotAllowed, true},
		{"requirement unknown", withExt(tokReq(func(t *testing.T) string { return rs256(t, acmeClaims()) }), "requirement", "orders-admin"), nil, ReasonRequirementUnknown, true},
		{"path with an encoded slash", func(t *testing.T) *Request {
			return &Request{Host: "globex.test", Path: "/public%2F..%2Fadmin/x", Method: "GET"}
		}, nil, ReasonPathInvalid, false},
	}
	seen := map[Reason]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.keyErr != nil {
				f.keys.Fail("acme", "main", tt.keyErr)
				// Keep the cold wait short for the timeout case.
				f.srv = New(testSet(t, strings.Replace(testConfig, "max_header_value_bytes: 64", "max_header_value_bytes: 64, cold_wait: 10ms", 1)), f.keys, Options{Now: func() time.Time { return testNow }, Logger: slog.New(slog.DiscardHandler)})
			}
			r := tt.req(t)
			d := f.srv.Decide(context.Background(), r)
			if d.Reason != tt.want {
				t.Fatalf("Reason = %s, want %s (decision %+v)", d.Reason, tt.want, d)
			}
			seen[d.Reason] = true
			if d.Allowed != (tt.want == ReasonOK) || d.HTTPStatus != tt.want.HTTPStatus() {
				t.Errorf("Allowed=%v HTTPStatus=%d for %s", d.Allowed, d.HTTPStatus, tt.want)
			}
			checkDenialShape(t, &d, tt.present)
		})
	}
	for _, r := range Reasons {
		if !seen[r] && !senderReasonsCovered[r] {
			t.Errorf("reason %s has no test case", r)
		}
	}
}

// withExt sets one context extension on the request mk makes.
func withExt(mk func(t *testing.T) *Request, k, v string) func(t *testing.T) *Request {
	return func(t *testing.T) *Request {
		r := mk(t)
		r.ContextExtensions = map[string]string{k: v}
		return r
	}
}

// partnerClaims are valid acme/partner claims.
func partnerClaims(edit ...func(jwt.MapClaims)) jwt.MapClaims {
	c := acmeClaims(func(c jwt.MapClaims) { c["iss"] = "https://partner.test/"; delete(c, "aud") })
	for _, e := range edit {
		e(c)
	}
	return c
}

// tokReq wraps a token maker into an acme request.
func tokReq(mk func(t *testing.T) string) func(t *testing.T) *Request {
	return func(t *testing.T) *Request { return acmeRequest(mk(t)) }
}

// padFirst adds base64 padding to the header segment.
func padFirst(tok string) string {
	i := strings.IndexByte(tok, '.')
	h := tok[:i]
	for len(h)%4 != 0 {
		h += "="
	}
	if h == tok[:i] {
		h += "===="
	}
	return h + tok[i:]
}

// checkDenialShape verifies what every denial carries.
func checkDenialShape(t *testing.T, d *Decision, present bool) {
	t.Helper()
	if d.Allowed {
		if d.Body != nil || d.WWWAuthenticate != "" {
			t.Errorf("allow carries denial fields: %+v", d)
		}
		return
	}
	want := fmt.Sprintf(`{"error":%q,"error_description":%q}`, d.Reason, d.Description)
	if string(d.Body) != want {
		t.Errorf("Body = %s, want %s", d.Body, want)
	}
	if d.Description == "" {
		t.Error("empty description")
	}
	switch {
	case d.Reason == ReasonInsufficientScope:
		// RFC 6750 §3.1: 403 with the scope the route needs.
		if !strings.HasPrefix(d.WWWAuthenticate, `Bearer realm="`+d.TenantID+`", error="insufficient_scope"`) {
			t.Errorf("WWW-Authenticate = %s, want an insufficient_scope challenge", d.WWWAuthenticate)
		}
	case d.HTTPStatus == http.StatusUnauthorized:
		w := `Bearer realm="` + d.TenantID + `"`
		if present {
			w += `, error="invalid_token", error_description="` + d.Description + `"`
		}
		if d.WWWAuthenticate != w {
			t.Errorf("WWW-Authenticate = %s, want %s", d.WWWAuthenticate, w)
		}
	default:
		if d.WWWAuthenticate != "" {
			t.Errorf("%d carries WWW-Authenticate %q", d.HTTPStatus, d.WWWAuthenticate)
		}
	}
	if len(d.Headers) != 0 || d.Claims != nil {
		t.Errorf("denial carries claims or headers: %+v", d)
	}
}

func TestDecide_TenantSelection(t *testing.T) {
	k := keysOnce()
	acmeTok := func(t *testing.T) string { return rs256(t, acmeClaims()) }
	globexTok := func(t *testing.T) string {
		return sign(t, jwt.SigningMethodRS256, k.Globex, "globex", jwt.MapClaims{
			"iss": "https://idp.globex.test/", "sub": "g-1", "exp": float64(testNow.Add(time.Hour).Unix()),
		}, nil)
	}
	tests := []struct {
		name       string
		host       string
		ext        map[string]string
		hdr        map[string]string
		tok        func(t *testing.T) string
		wantReason Reason
		wantTenant string
	}{
		{"host exact", "api.acme.test", nil, nil, acmeTok, ReasonOK, "acme"},
		{"host wildcard with port and case", "Shop.ACME.test:8443", nil, nil, acmeTok, ReasonOK, "acme"},
		{"host of the other tenant", "globex.test", nil, nil, globexTok, ReasonOK, "globex"},
		{"context extension wins over host", "globex.test", map[string]string{"tenant": "acme"}, nil, acmeTok, ReasonOK, "acme"},
		{"unknown context extension: no fall-back to host", "api.acme.test", map[string]string{"tenant": "nope"}, nil, acmeTok, ReasonTenantUnknown, ""},
		{"context extension wins over tenant header", "unknown.test", map[string]string{"tenant": "acme"}, map[string]string{"x-tenant-id": "globex"}, acmeTok, ReasonOK, "acme"},
		{"tenant header wins over host", "globex.test", nil, map[string]string{"x-tenant-id": "acme"}, acmeTok, ReasonOK, "acme"},
		{"unknown tenant header: no fall-back to host", "api.acme.test", nil, map[string]string{"x-tenant-id": "nope"}, acmeTok, ReasonTenantUnknown, ""},
		{"empty tenant header falls back to host", "api.acme.test", nil, map[string]string{"x-tenant-id": ""}, acmeTok, ReasonOK, "acme"},
		{"wildcard never matches the apex", "acme.test", nil, nil, acmeTok, ReasonTenantUnknown, ""},
		{"cross-tenant: globex token on acme host", "api.acme.test", nil, nil, globexTok, ReasonIssuerUnknown, "acme"},
		{"cross-tenant: acme token on globex host", "globex.test", nil, nil, acmeTok, ReasonIssuerUnknown, "globex"},
		{"cross-tenant: acme token forced to globex by extension", "api.acme.test", map[string]string{"tenant": "globex"}, nil, acmeTok, ReasonIssuerUnknown, "globex"},
		{"provider extension selects provider", "api.acme.test", map[string]string{"provider": "main"}, nil, acmeTok, ReasonOK, "acme"},
		{"provider extension with other issuer", "api.acme.test", map[string]string{"provider": "partner"}, nil, acmeTok, ReasonTokenMissing, "acme"},
		{"unknown provider extension", "api.acme.test", map[string]string{"provider": "ghost"}, nil, acmeTok, ReasonIssuerUnknown, "acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			h := bearer(tt.tok(t))
			for k, v := range tt.hdr {
				h[k] = v
			}
			d := f.srv.Decide(context.Background(), &Request{Host: tt.host, Path: "/", Headers: h, ContextExtensions: tt.ext})
			if d.Reason != tt.wantReason || d.TenantID != tt.wantTenant {
				t.Errorf("got (%s, %q), want (%s, %q)", d.Reason, d.TenantID, tt.wantReason, tt.wantTenant)
			}
		})
	}
}

func TestDecide_ProviderExtensionIssuerMismatch(t *testing.T) {
	f := newFixture(t)
	// The partner provider reads the session cookie; an acme/main token
	// there must not pass, even though the key would verify it.
	r := &Request{Host: "api.acme.test", Path: "/", Headers: map[string]string{"cookie": "session=" + rs256(t, acmeClaims())},
		ContextExtensions: map[string]string{"provider": "partner"}}
	d := f.srv.Decide(context.Background(), r)
	if d.Reason != ReasonIssuerUnknown || d.ProviderID != "partner" {
		t.Errorf("got %s/%s, want issuer_unknown/partner", d.Reason, d.ProviderID)
	}
}

func TestDecide_TokenSources(t *testing.T) {
	partner := rs256(t, acmeClaims(func(c jwt.MapClaims) { c["iss"] = "https://partner.test/"; delete(c, "aud") }))
	main := rs256(t, acmeClaims())
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		want    Reason
		prov    string
	}{
		{"cookie", "/", map[string]string{"cookie": "a=b; session=" + partner + "; c=d"}, ReasonOK, "partner"},
		{"quoted cookie", "/", map[string]string{"cookie": `session="` + partner + `"`}, ReasonOK, "partner"},
		{"query parameter", "/x?a=1&access_token=" + partner + "&b=2", nil, ReasonOK, "partner"},
		{"header wins over cookie (first source with a token)", "/", map[string]string{"authorization": "Bearer " + main, "cookie": "session=" + partner}, ReasonOK, "main"},
		{"cookie of another name ignored", "/", map[string]string{"cookie": "sessionx=" + partner}, ReasonTokenMissing, ""},
		{"empty cookie skipped", "/?access_token=" + partner, map[string]string{"cookie": "session="}, ReasonOK, "partner"},
		{"fragment not part of the query", "/#access_token=" + partner, nil, ReasonTokenMissing, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			d := f.srv.Decide(context.Background(), &Request{Host: "api.acme.test", Path: tt.path, Headers: tt.headers})
			if d.Reason != tt.want || d.ProviderID != tt.prov {
				t.Errorf("got %s/%q, want %s/%q", d.Reason, d.ProviderID, tt.want, tt.prov)
			}
		})
	}
}

func TestDecide_ClaimHeaders(t *testing.T) {
	f := newFixture(t)
	tok := rs256(t, acmeClaims(func(c jwt.MapClaims) {
		c["email"] = "a@acme.test\r\nx-injected: 1"
		c["groups"] = []any{"admins", "dev"}
		c["level"] = 3
	}))
	r := acmeRequest(tok)
	r.Headers["x-auth-email"] = "forged@evil.test"
	r.Headers["x-partner-subject"] = "forged"
	d := f.srv.Decide(context.Background(), r)
	if !d.Allowed {
		t.Fatalf("denied: %+v", d)
	}
	want := []Header{
		{"x-auth-email", "a@acme.testx-injected: 1"},
		{"x-auth-groups", "admins,dev"},
		{"x-auth-level", "3"},
		{"x-auth-subject", "user-1"},
		{"x-tenant-id", "acme"}, // the fixture's tenant_header names the tenant decided
	}
	if diff := cmp.Diff(want, d.Headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	// Every mapped header the token did not fill is removed, including
	// another provider's (x-partner-subject) and another tenant's
	// (x-globex-org).
	if diff := cmp.Diff([]string{"x-auth-uid", "x-globex-org", "x-partner-subject"}, d.RemoveHeaders); diff != "" {
		t.Errorf("remove (-want +got):\n%s", diff)
	}
	if d.Claims["sub"] != "user-1" || d.TenantID != "acme" || d.ProviderID != "main" {
		t.Errorf("decision = %+v", d)
	}
}

func TestDecide_ForgedClaimHeaderRemovedWhenClaimAbsent(t *testing.T) {
	f := newFixture(t)
	tok := rs256(t, acmeClaims(func(c jwt.MapClaims) { delete(c, "email"); c["groups"] = nil }))
	r := acmeRequest(tok)
	r.Headers["x-auth-email"] = "forged@evil.test"
	d := f.srv.Decide(context.Background(), r)
	if !d.Allowed {
		t.Fatalf("denied: %+v", d)
	}
	want := []string{"x-auth-email", "x-auth-groups", "x-auth-level", "x-auth-uid", "x-globex-org", "x-partner-subject"}
	if diff := cmp.Diff(want, d.RemoveHeaders); diff != "" {
		t.Errorf("remove (-want +got):\n%s", diff)
	}
	for _, h := range d.Headers {
		if h.Name == "x-auth-email" {
			t.Errorf("x-auth-email set to %q", h.Value)
		}
	}
}

func TestClaimString(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{"plain", "plain"},
		{[]any{"a", "b"}, "a,b"},
		{[]any{"a,b", "c"}, `["a,b","c"]`},
		{[]any{"a", 1.0}, `["a",1]`},
		{[]any{}, ""},
		{1700000000.0, "1700000000"},
		{2.5, "2.5"},
		{true, "true"},
		{map[string]any{"k": "v"}, `{"k":"v"}`},
	}
	for _, tt := range tests {
		if got := claimString(tt.in); got != tt.want {
			t.Errorf("claimString(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"ok value", 64, "ok value"},
		{"a\r\nb\x00c\x7fd\te", 64, "abcde"},
		{"  spaced  ", 64, "spaced"},
		{"abcdef", 4, "abcd"},
		{"ééé", 5, "éé"},       // cut at a UTF-8 boundary (é is 2 bytes)
		{"a\xffb", 64, "ab"},   // invalid UTF-8 dropped
		{"x\u0085y", 64, "xy"}, // C1 control dropped
		{"日本語", 64, "日本語"},
	}
	for _, tt := range tests {
		if got := sanitize(tt.in, tt.max); got != tt.want {
			t.Errorf("sanitize(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
	long := strings.Repeat("x", 100)
	f := newFixture(t)
	d := f.srv.Decide(context.Background(), acmeRequest(rs256(t, acmeClaims(func(c jwt.MapClaims) { c["sub"] = long }))))
	for _, h := range d.Headers {
		if h.Name == "x-auth-subject" && len(h.Value) != 64 {
			t.Errorf("x-auth-subject is %d bytes, want the 64-byte limit", len(h.Value))
		}
	}
}

func TestDecide_LogsNeverTheToken(t *testing.T) {
	f := newFixture(t)
	tok := rs256(t, acmeClaims())
	for _, r := range []*Request{
		acmeRequest(tok),
		{Host: "api.acme.test", Path: "/p?access_token=" + tok + "&q=secret", RequestID: "req-2"},
		acmeRequest(tok + "x"),
	} {
		f.srv.Decide(context.Background(), r)
	}
	logs := f.logs.String()
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	for _, secret := range []string{tok, sig, tok[:strings.IndexByte(tok, '.')], "secret"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain token material %q:\n%s", secret[:10], logs)
		}
	}
	for _, want := range []string{`"level":"DEBUG","msg":"allowed"`, `"tenant":"acme"`, `"provider":"main"`, `"reason":"ok"`, `"request_id":"req-1"`, `"path":"/orders"`, `"latency":`,
		`"level":"INFO","msg":"denied"`, `"reason":"token_malformed"`, `"path":"/p"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

type recordingObserver struct{ reasons []Reason }

func (o *recordingObserver) CheckDone(d *Decision, elapsed time.Duration) {
	o.reasons = append(o.reasons, d.Reason)
}

func TestDecide_ObserverAndUpdate(t *testing.T) {
	obs := &recordingObserver{}
	keys := authztest.NewFakeKeys()
	srv := New(nil, keys, Options{Now: func() time.Time { return testNow }, Observer: obs, Logger: slog.New(slog.DiscardHandler)})
	r := acmeRequest(rs256(t, acmeClaims()))
	if d := srv.Decide(context.Background(), r); d.Reason != ReasonTenantUnknown {
		t.Errorf("without a set: %s, want tenant_unknown", d.Reason)
	}
	srv.Update(testSet(t, testConfig))
	if d := srv.Decide(context.Background(), r); d.Reason != ReasonOK {
		t.Errorf("after Update: %s, want ok", d.Reason)
	}
	// A reload that drops acme's host.
	srv.Update(testSet(t, strings.Replace(testConfig, `hosts: ["api.acme.test", "*.acme.test"]`, `hosts: ["new.acme.test"]`, 1)))
	if d := srv.Decide(context.Background(), r); d.Reason != ReasonTenantUnknown {
		t.Errorf("after second Update: %s, want tenant_unknown", d.Reason)
	}
	if diff := cmp.Diff([]Reason{ReasonTenantUnknown, ReasonOK, ReasonTenantUnknown}, obs.reasons); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
}

func TestDecide_ProviderOnlyAcceptsItsOwnSources(t *testing.T) {
	f := newFixture(t)
	// acme/main reads the Authorization header only; its token in the
	// partner's query parameter is refused.
	r := &Request{Host: "api.acme.test", Path: "/?access_token=" + rs256(t, acmeClaims())}
	d := f.srv.Decide(context.Background(), r)
	if d.Reason != ReasonTokenMissing || d.ProviderID != "main" {
		t.Errorf("got %s/%q, want token_missing/main", d.Reason, d.ProviderID)
	}
}

func TestDecide_ConcurrentWithUpdate(t *testing.T) {
	f := newFixture(t)
	f.srv.log = slog.New(slog.DiscardHandler)
	tok := rs256(t, acmeClaims())
	sets := []*tenants.Set{testSet(t, testConfig), testSet(t, testConfig)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			f.srv.Update(sets[i%2])
		}
	}()
	for range 200 {
		if d := f.srv.Decide(context.Background(), acmeRequest(tok)); d.Reason != ReasonOK {
			t.Fatalf("Reason = %s during reload", d.Reason)
		}
	}
	<-done
}

func TestDecide_WrongSourceNeverReachesTheKeySource(t *testing.T) {
	f := newFixture(t)
	f.srv.log = slog.New(slog.DiscardHandler)
	f.srv.Decide(context.Background(), &Request{Host: "api.acme.test", Path: "/?access_token=" + rs256(t, acmeClaims())})
	if f.keys.Hits() != 0 {
		t.Errorf("key source called %d times for a token in the wrong source", f.keys.Hits())
	}
}

func TestDecide_TenantHeaderNamesTheDecidedTenant(t *testing.T) {
	f := newFixture(t) // tenant_header: x-tenant-id
	tok := rs256(t, acmeClaims())
	for _, tc := range []struct {
		name string
		ext  map[string]string
		sent string // the x-tenant-id the client sent ("" = none)
	}{
		{"route says acme, client says globex", map[string]string{"tenant": "acme"}, "globex"},
		{"empty header, tenant from the host", nil, ""},
		{"header agrees", nil, "acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := acmeRequest(tok)
			r.ContextExtensions = tc.ext
			if tc.sent != "" {
				r.Headers["x-tenant-id"] = tc.sent
			}
			d := f.srv.Decide(context.Background(), r)
			if !d.Allowed || d.TenantID != "acme" {
				t.Fatalf("decision = %s for tenant %q, want an allow for acme", d.Reason, d.TenantID)
			}
			var got []string
			for _, h := range d.Headers {
				if h.Name == "x-tenant-id" {
					got = append(got, h.Value)
				}
			}
			if len(got) != 1 || got[0] != "acme" {
				t.Fatalf("x-tenant-id set to %q, want exactly acme (upstream must not see the client's %q)", got, tc.sent)
			}
			if !slices.IsSortedFunc(d.Headers, func(a, b Header) int { return strings.Compare(a.Name, b.Name) }) {
				t.Fatalf("headers not sorted: %v", d.Headers)
			}
		})
	}
}

// TestDecide_LogBoundsRequestValues: a request with a 1 MB path, method,
// request id and kid writes a log line of a few hundred bytes, each value
// cut with its length noted.
func TestDecide_LogBoundsRequestValues(t *testing.T) {
	const mb = 1 << 20
	huge := strings.Repeat("k", mb)
	f := newFixture(t)
	// A key source that quotes a whole (here 1 MB) kid in its error; the
	// token's own kid stays within max_token_bytes.
	f.keys.Fail("acme", "main", fmt.Errorf("%w: kid %q", jwkscache.ErrKeyNotFound, huge))
	tok := sign(t, jwt.SigningMethodRS256, keysOnce().RSA, strings.Repeat("k", 500), acmeClaims(), nil)
	r := &Request{
		Host:      "api.acme.test",
		Path:      "/" + strings.Repeat("p", mb) + "?q=1",
		Method:    strings.Repeat("M", mb),
		RequestID: strings.Repeat("r", mb),
		Headers:   bearer(tok),
	}
	if d := f.srv.Decide(context.Background(), r); d.Allowed {
		t.Fatal("allowed")
	}
	logs := f.logs.String()
	if len(logs) > 4<<10 {
		t.Fatalf("one decision wrote %d bytes of log, want at most 4 KiB", len(logs))
	}
	for _, want := range []string{`"path":"/ppp`, `...(1048577 bytes)"`, `"method":"MMM`, `...(1048576 bytes)"`, `"request_id":"rrr`, `"error":"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func TestClip(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{strings.Repeat("a", maxLogValue), strings.Repeat("a", maxLogValue)},
		{strings.Repeat("a", maxLogValue+1), strings.Repeat("a", maxLogValue) + "...(257 bytes)"},
		{strings.Repeat("a", maxLogValue-1) + "é", strings.Repeat("a", maxLogValue-1) + "...(257 bytes)"}, // never half a rune
	} {
		if got := clip(tt.in); got != tt.want {
			t.Errorf("clip(%d bytes) = %q, want %q", len(tt.in), got, tt.want)
		}
	}
}
