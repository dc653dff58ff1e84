package authz

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/jwkscache"
)

// jwksDocument is the JWKS (RFC 7517) of the acme test keys.
func jwksDocument(t testing.TB) []byte {
	t.Helper()
	k := keysOnce()
	b64 := base64.RawURLEncoding.EncodeToString
	ecPoint, err := k.ec.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	pt := ecPoint.Bytes() // 0x04 || X || Y
	doc := map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig", "n": b64(k.rsa.N.Bytes()), "e": b64(big.NewInt(int64(k.rsa.E)).Bytes())},
		{"kty": "EC", "kid": "ec", "alg": "ES256", "use": "sig", "crv": "P-256", "x": b64(pt[1:33]), "y": b64(pt[33:])},
		{"kty": "OKP", "kid": "ed", "alg": "EdDSA", "use": "sig", "crv": "Ed25519", "x": b64(k.ed.Public().(ed25519.PublicKey))},
	}}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// realServer returns a Server whose keys come from a real jwkscache.Registry
// fetching from an httptest TLS identity provider, and that provider.
func realServer(t testing.TB, coldWait string) (*Server, *httptest.Server) {
	t.Helper()
	doc := jwksDocument(t)
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write(doc)
	}))
	t.Cleanup(idp.Close)
	cfg, err := tenants.Parse([]byte(fmt.Sprintf(`
limits: {cold_wait: %s}
tenants:
  - id: acme
    hosts: ["api.acme.test"]
    providers:
      - id: main
        issuer: https://idp.acme.test/
        jwks_url: %s/jwks.json
        audiences: [orders]
        algorithms: [RS256, ES256, EdDSA]
        claims_to_headers: {sub: x-auth-subject, email: x-auth-email}
`, coldWait, idp.URL)))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := jwkscache.New(jwkscache.Options{HTTPClient: idp.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	if err := cfg.Validate(reg.Validate); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for _, r := range cfg.Registrations() {
		if err := reg.Register(context.Background(), r); err != nil {
			t.Fatalf("Register: %v", err)
		}
	}
	set, err := tenants.NewSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return New(set, reg, Options{Now: func() time.Time { return testNow }, Logger: slog.New(slog.DiscardHandler)}), idp
}

func TestDecide_RealRegistry(t *testing.T) {
	srv, _ := realServer(t, "5s")
	k := keysOnce()
	tests := []struct {
		name string
		tok  string
		want Reason
	}{
		{"RS256", rs256(t, acmeClaims()), ReasonOK},
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec, "ec", acmeClaims(), nil), ReasonOK},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, k.ed, "ed", acmeClaims(), nil), ReasonOK},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, k.rsa, "gone", acmeClaims(), nil), ReasonKeyNotFound},
		{"wrong key", sign(t, jwt.SigningMethodRS256, k.rsaOther, "rsa", acmeClaims(), nil), ReasonSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := srv.Decide(context.Background(), acmeRequest(tt.tok))
			if d.Reason != tt.want {
				t.Fatalf("Reason = %s (%s), want %s", d.Reason, d.Description, tt.want)
			}
		})
	}
}

func TestDecide_RealRegistryColdAndDown(t *testing.T) {
	// A listener that is closed before the first fetch: nothing cached, so
	// the answer is 503 jwks_unavailable, never a 401 blaming the client.
	srv, idp := realServer(t, "300ms")
	idp.Close()
	d := srv.Decide(context.Background(), acmeRequest(rs256(t, acmeClaims())))
	if d.Reason != ReasonJWKSUnavailable || d.HTTPStatus != http.StatusServiceUnavailable {
		t.Fatalf("got %s/%d, want jwks_unavailable/503", d.Reason, d.HTTPStatus)
	}
}
