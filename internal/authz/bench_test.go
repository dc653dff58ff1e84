package authz

import (
	"context"
	"log/slog"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
)

// BenchmarkCheck measures one ext_authz Check, in process (no network), with
// a warm key source: the fake map-backed one and the real jwkscache.Registry
// after its first fetch from an httptest TLS identity provider.
func BenchmarkCheck(b *testing.B) {
	k := keysOnce()
	fx := newFixture(b)
	fx.srv.log = slog.New(slog.DiscardHandler) // production logs allows at Debug, off by default
	real, _ := realServer(b, "5s")
	algs := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"RS256", jwt.SigningMethodRS256, k.rsa, "rsa"},
		{"ES256", jwt.SigningMethodES256, k.ec, "ec"},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed, "ed"},
	}
	sources := []struct {
		name string
		srv  *Server
	}{{"fake", fx.srv}, {"registry", real}}
	for _, a := range algs {
		tok := sign(b, a.method, a.key, a.kid, acmeClaims(), nil)
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
		req := checkRequest("api.acme.test", "/", bearer("not-a-token"), nil)
		b.ReportAllocs()
		for b.Loop() {
			fx.srv.Check(context.Background(), req)
		}
	})
}
