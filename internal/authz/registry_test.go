package authz

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/authz/authztest"
)

// realServer returns a Server whose keys come from a real jwkscache.Registry
// fetching from an httptest TLS identity provider, and that provider.
func realServer(t testing.TB, coldWait string) (*Server, *httptest.Server) {
	t.Helper()
	set, reg, idp := authztest.RealRegistry(t, coldWait)
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
		{"ES256", sign(t, jwt.SigningMethodES256, k.EC, "ec", acmeClaims(), nil), ReasonOK},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, k.Ed, "ed", acmeClaims(), nil), ReasonOK},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, k.RSA, "gone", acmeClaims(), nil), ReasonKeyNotFound},
		{"wrong key", sign(t, jwt.SigningMethodRS256, k.RSAOther, "rsa", acmeClaims(), nil), ReasonSignatureInvalid},
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
	// An identity provider down from the start: nothing cached, so the
	// answer is 503 jwks_unavailable, never a 401 blaming the client.
	set, reg, _ := authztest.RealRegistryDown(t, "300ms")
	srv := New(set, reg, Options{Now: func() time.Time { return testNow }, Logger: slog.New(slog.DiscardHandler)})
	d := srv.Decide(context.Background(), acmeRequest(rs256(t, acmeClaims())))
	if d.Reason != ReasonJWKSUnavailable || d.HTTPStatus != http.StatusServiceUnavailable {
		t.Fatalf("got %s/%d, want jwks_unavailable/503", d.Reason, d.HTTPStatus)
	}
}
