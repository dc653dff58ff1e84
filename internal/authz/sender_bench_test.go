package authz

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
)

// freshReplay accepts every proof: the benchmark sends one proof over and
// over, and measures the checks, not the replay cache (dpop's
// BenchmarkMemoryReplay_Once does).
type freshReplay struct{}

func (freshReplay) Once(context.Context, string, time.Duration) (bool, error) { return true, nil }

// BenchmarkCheck_DPoP measures an ES256 DPoP Check (token and proof: two
// signatures) beside the same token's plain Bearer Check, in process.
func BenchmarkCheck_DPoP(b *testing.B) {
	k, sk := keysOnce(), senderKeys()
	jkt, _ := jktOf(b, sk.client)
	claims := acmeClaims(func(c jwt.MapClaims) { delete(c, "aud") })
	plain := sign(b, jwt.SigningMethodES256, k.ec, "ec", claims, nil)
	claims["cnf"] = map[string]any{"jkt": jkt}
	bound := sign(b, jwt.SigningMethodES256, k.ec, "ec", claims, nil)
	yaml := `
tenants:
  - id: acme
    hosts: [api.acme.test]
    providers:
      - {id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/jwks.json", algorithms: [ES256]}
`
	srv := newSenderServer(b, yaml, freshReplay{})
	srv.log = slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"bearer", map[string]string{"authorization": "Bearer " + plain}},
		{"dpop", map[string]string{
			"authorization": "DPoP " + bound,
			"dpop":          mintProof(b, sk.client, "POST", "https://api.acme.test/orders", bound, "jti-1"),
		}},
	} {
		req := checkRequest("api.acme.test", "/orders?page=2", tc.headers, nil)
		req.Attributes.Request.Http.Method = "POST"
		req.Attributes.Request.Http.Scheme = "https"
		if resp, _ := srv.Check(context.Background(), req); codes.Code(resp.GetStatus().GetCode()) != codes.OK {
			b.Fatalf("%s denied: %v", tc.name, resp.GetStatus())
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if resp, _ := srv.Check(context.Background(), req); resp.GetOkResponse() == nil {
					b.Fatal("denied")
				}
			}
		})
	}
}
