package grpcauthz

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/authz/authztest"
)

// BenchmarkCheck measures one ext_authz Check, in process (no network), with
// a warm key source: the fake map-backed one and the real jwkscache.Registry
// after its first fetch from an httptest TLS identity provider.
func BenchmarkCheck(b *testing.B) {
	k := authztest.Keys()
	discard := authz.Options{Now: func() time.Time { return authztest.Now }, Logger: slog.New(slog.DiscardHandler)}
	fake := New(authz.New(authztest.Set(b, authztest.Config), authztest.NewFakeKeys(), discard))
	set, reg, _ := authztest.RealRegistry(b, "5s")
	real := New(authz.New(set, reg, discard))
	algs := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"RS256", jwt.SigningMethodRS256, k.RSA, "rsa"},
		{"ES256", jwt.SigningMethodES256, k.EC, "ec"},
		{"EdDSA", jwt.SigningMethodEdDSA, k.Ed, "ed"},
	}
	sources := []struct {
		name string
		srv  *Server
	}{{"fake", fake}, {"registry", real}}
	for _, a := range algs {
		tok := authztest.Sign(b, a.method, a.key, a.kid, authztest.AcmeClaims(), nil)
		for _, src := range sources {
			req := checkRequest("api.acme.test", "/orders", map[string]string{
				"authorization": "Bearer " + tok, "x-request-id": "r1", "user-agent": "bench",
			}, nil)
			ctx := context.Background()
			// Warm the source (the registry's first fetch) outside the timer.
			if resp, _ := src.srv.Check(ctx, req); codes.Code(resp.GetStatus().GetCode()) != codes.OK {
				b.Fatalf("warm-up denied: %v", resp.GetStatus())
			}
			b.Run(a.name+"/"+src.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					resp, _ := src.srv.Check(ctx, req)
					if resp.GetOkResponse() == nil {
						b.Fatal("denied")
					}
				}
			})
		}
	}
	// A cheap denial for comparison: what a flood of garbage tokens costs.
	b.Run("deny-malformed", func(b *testing.B) {
		req := checkRequest("api.acme.test", "/", authztest.Bearer("not-a-token"), nil)
		b.ReportAllocs()
		for b.Loop() {
			fake.Check(context.Background(), req)
		}
	})
}
