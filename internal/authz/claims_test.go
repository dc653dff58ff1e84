package authz

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
)

func TestReasons_EveryReasonHasAnAnswer(t *testing.T) {
	for _, r := range Reasons {
		a, ok := answers[r]
		if !ok {
			t.Errorf("reason %s is not in the answer table", r)
			continue
		}
		if (r == ReasonOK) != (a.status == http.StatusOK) || (r == ReasonOK) != (a.code == codes.OK) {
			t.Errorf("%s: status %d, gRPC %v: only ok may allow", r, a.status, a.code)
		}
		if r != ReasonOK && a.description == "" {
			t.Errorf("%s has no description", r)
		}
		if (a.status == http.StatusUnauthorized) != (a.bearerError != "") {
			t.Errorf("%s: a 401 and only a 401 carries an RFC 6750 error code (status %d, %q)", r, a.status, a.bearerError)
		}
	}
	if len(answers) != len(Reasons) {
		t.Errorf("answer table has %d reasons, Reasons %d", len(answers), len(Reasons))
	}
	if got := Reason("made_up").HTTPStatus(); got != http.StatusForbidden {
		t.Errorf("unknown reason answers %d, want 403", got)
	}
}

// Tenant isolation: a client of one tenant must not be able to hand the
// shared upstream a header another tenant's claims_to_headers fills.
func TestTenantIsolation_ForgedHeaderOfAnotherTenantRemoved(t *testing.T) {
	f := newFixture(t)
	k := keysOnce()
	tok := sign(t, jwt.SigningMethodRS256, k.Globex, "globex", jwt.MapClaims{
		"iss": "https://idp.globex.test/", "sub": "g-1", "exp": float64(testNow.Add(time.Hour).Unix()),
	}, nil)
	r := &Request{Host: "globex.test", Path: "/", Headers: bearer(tok)}
	r.Headers["x-auth-email"] = "admin@acme.test" // only acme maps a claim to it
	r.Headers["x-globex-org"] = "forged"          // globex maps org, absent from the token
	d := f.srv.Decide(context.Background(), r)
	if !d.Allowed || d.TenantID != "globex" {
		t.Fatalf("decision %s for %q, want an allow for globex", d.Reason, d.TenantID)
	}
	for _, h := range []string{"x-auth-email", "x-auth-groups", "x-globex-org", "x-partner-subject"} {
		found := false
		for _, rm := range d.RemoveHeaders {
			found = found || rm == h
		}
		if !found {
			t.Errorf("%s not removed (remove %v)", h, d.RemoveHeaders)
		}
	}
}

// Claims that reach the upstream: 64-bit integers arrive digit for digit.
func TestClaims_64BitIntegersReachHeadersDigitForDigit(t *testing.T) {
	f := newFixture(t)
	exp := testNow.Add(time.Hour).Unix()
	tok := rawToken(t, `{"alg":"RS256","kid":"rsa","typ":"JWT"}`,
		`{"iss":"https://idp.acme.test/","aud":"orders","exp":`+itoa(exp)+`,"sub":"u","uid":1234567890123456789,"level":-9223372036854775808,"groups":[9007199254740993,"a"]}`)
	d := f.srv.Decide(context.Background(), acmeRequest(tok))
	if !d.Allowed {
		t.Fatalf("denied: %s (%s)", d.Reason, d.Description)
	}
	want := map[string]string{
		"x-auth-uid":    "1234567890123456789",
		"x-auth-level":  "-9223372036854775808",
		"x-auth-groups": `[9007199254740993,"a"]`,
	}
	for _, h := range d.Headers {
		if w, ok := want[h.Name]; ok {
			if h.Value != w {
				t.Errorf("%s = %q, want %q", h.Name, h.Value, w)
			}
			delete(want, h.Name)
		}
	}
	if len(want) != 0 {
		t.Errorf("headers not set: %v", want)
	}
}

func TestClaims_TimeBeyondInt64IsMalformed(t *testing.T) {
	f := newFixture(t)
	f.srv.log = slog.New(slog.DiscardHandler)
	ok := itoa(testNow.Add(time.Hour).Unix())
	tests := []struct {
		name, claims string
		want         Reason
	}{
		{"exp in 2100", `"exp":4102444800`, ReasonOK},
		{"exp as a fraction", `"exp":` + ok + `.5`, ReasonOK},
		{"exp beyond int64", `"exp":1e19`, ReasonTokenMalformed},
		{"exp at int64 max", `"exp":9223372036854775807`, ReasonTokenMalformed},
		{"exp beyond time.Time", `"exp":9223372000000000000`, ReasonTokenMalformed},
		{"exp beyond float64", `"exp":1e999`, ReasonTokenMalformed},
		{"exp below int64", `"exp":-1e19`, ReasonTokenMalformed},
		{"nbf beyond int64", `"exp":` + ok + `,"nbf":-99999999999999999999`, ReasonTokenMalformed},
		{"iat beyond int64", `"exp":` + ok + `,"iat":18446744073709551616`, ReasonTokenMalformed},
		{"exp far but representable", `"exp":4611686018427387904`, ReasonOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := rawToken(t, `{"alg":"RS256","kid":"rsa"}`, `{"iss":"https://idp.acme.test/","aud":"orders",`+tt.claims+`}`)
			if d := f.srv.Decide(context.Background(), acmeRequest(tok)); d.Reason != tt.want {
				t.Errorf("Reason = %s, want %s", d.Reason, tt.want)
			}
		})
	}
}

func TestClaims_TokenTypes(t *testing.T) {
	set := authztest.Set(t, tenantstest.Config("",
		tenantstest.Acme("audiences: [orders]", "token_types: [at+jwt]"),
		tenantstest.Tenant("other", "[other.test]", tenantstest.Main("audiences: [other]"))))
	keys := authztest.NewFakeKeys()
	keys.Add("other", "main", "rsa", &keysOnce().RSA.PublicKey)
	srv := New(set, keys, Options{Now: func() time.Time { return testNow }, Logger: slog.New(slog.DiscardHandler)})
	claims := mustJSON(t, acmeClaims(func(c jwt.MapClaims) { c["aud"] = []any{"orders", "other"} }))
	tests := []struct {
		name, host, header string
		want               Reason
	}{
		{"at+jwt", "api.acme.test", `{"alg":"RS256","kid":"rsa","typ":"at+jwt"}`, ReasonOK},
		{"application/AT+JWT", "api.acme.test", `{"alg":"RS256","kid":"rsa","typ":"application/AT+JWT"}`, ReasonOK},
		{"JWT (an ID token)", "api.acme.test", `{"alg":"RS256","kid":"rsa","typ":"JWT"}`, ReasonTokenMalformed},
		{"typ absent", "api.acme.test", `{"alg":"RS256","kid":"rsa"}`, ReasonTokenMalformed},
		{"typ not a string", "api.acme.test", `{"alg":"RS256","kid":"rsa","typ":1}`, ReasonTokenMalformed},
		{"no token_types: any typ", "other.test", `{"alg":"RS256","kid":"rsa","typ":"JWT"}`, ReasonOK},
		{"no token_types: typ absent", "other.test", `{"alg":"RS256","kid":"rsa"}`, ReasonOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Host: tt.host, Path: "/", Headers: bearer(rawToken(t, tt.header, claims))}
			if d := srv.Decide(context.Background(), r); d.Reason != tt.want {
				t.Errorf("Reason = %s (%s), want %s", d.Reason, d.Description, tt.want)
			}
		})
	}
}

// Tenant isolation: an authority that is not host[:port] of a host name or
// IP literal is tenant_unknown before any lookup, even when a part of it
// names a tenant.
func TestTenantIsolation_MalformedAuthorityIsTenantUnknown(t *testing.T) {
	f := newFixture(t)
	tok := rs256(t, acmeClaims())
	for _, host := range []string{
		"user@api.acme.test", "api.acme.test/x", "api.acme.test\x00", "[api.acme.test]:443",
		"shöp.acme.test", "api.acme.test:443:1", "x_y.acme.test",
	} {
		r := acmeRequest(tok)
		r.Host = host
		if d := f.srv.Decide(context.Background(), r); d.Reason != ReasonTenantUnknown {
			t.Errorf("host %q: %s for tenant %q, want tenant_unknown", host, d.Reason, d.TenantID)
		}
	}
	if n := f.keys.Hits(); n != 0 {
		t.Errorf("key source asked %d times", n)
	}
	if d := f.srv.Decide(context.Background(), acmeRequest(tok)); !d.Allowed {
		t.Fatalf("well-formed host: %s", d.Reason)
	}
}
