package grpcauthz

import (
	"context"
	"log/slog"
	"strings"
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
	// Uncached unless named "cached": every Check verifies the token in
	// full; "cached" repeats the token, as clients do, and hits the
	// verified-token cache.
	uncached := authztest.Set(b, strings.Replace(authztest.Config, "limits: {", "limits: {token_cache_entries: 0, ", 1))
	fake := New(authz.New(uncached, authztest.NewFakeKeys(), discard))
	set, reg, _ := authztest.RealRegistry(b, "5s")
	real := New(authz.New(uncached, reg, discard))
	cachedAuthz := authz.New(set, reg, discard)
	b.Cleanup(cachedAuthz.Close)
	cached := New(cachedAuthz)
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
	}{{"fake", fake}, {"registry", real}, {"registry-cached", cached}}
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
	// The same Check held to a requirement of three claim matchers (all_of
	// on a space-delimited scope, any_of on an array, equals on a nested
	// claim), named by context_extensions and chosen by a route on the
	// normalised path: the matchers should be noise next to the signature.
	reqAuthz := authz.New(authztest.Set(b, strings.Replace(authztest.Config, "  - id: globex\n", authztest.BenchRequirement+"  - id: globex\n", 1)), authztest.NewFakeKeys(), discard)
	reqSrv := New(reqAuthz)
	for _, a := range algs {
		tok := authztest.Sign(b, a.method, a.key, a.kid, authztest.AcmeClaims(func(c jwt.MapClaims) {
			c["scope"] = "orders:read orders:write"
			c["groups"] = []any{"ops"}
			c["org"] = map[string]any{"tier": "gold"}
		}), nil)
		for _, via := range []struct {
			name, path string
			ext        map[string]string
		}{
			{"none", "/orders", nil}, // the same token and claims, baseline requirement
			{"context_extensions", "/orders", map[string]string{"requirement": "bench"}},
			{"route", "/bench/orders?x=1", nil},
		} {
			req := checkRequest("api.acme.test", via.path, map[string]string{
				"authorization": "Bearer " + tok, "x-request-id": "r1", "user-agent": "bench",
			}, via.ext)
			ctx := context.Background()
			if resp, _ := reqSrv.Check(ctx, req); resp.GetOkResponse() == nil {
				b.Fatalf("warm-up denied: %v", resp.GetStatus())
			}
			if md := reqAuthz.Decide(ctx, ToRequest(req)); (md.Requirement == "bench") != (via.ext != nil || via.name == "route") {
				b.Fatalf("requirement %q for %s", md.Requirement, via.name)
			}
			b.Run(a.name+"/fake/requirement-3-matchers/"+via.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					resp, _ := reqSrv.Check(ctx, req)
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
