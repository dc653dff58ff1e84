package authz

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/authz/authztest"
)

// TestDecide_ClockSkewIsTheProviders: exp, nbf and iat are checked with the
// provider's own clock_skew (RFC 7519 §4.1.4–4.1.6 allow "some small
// leeway"), not the 60 s default: each is accepted just inside it and
// refused just outside.
func TestDecide_ClockSkewIsTheProviders(t *testing.T) {
	for _, skew := range []time.Duration{0, 5 * time.Second, 2 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			cfg := strings.Replace(testConfig, "algorithms: [RS256, ES256, EdDSA]",
				fmt.Sprintf("algorithms: [RS256, ES256, EdDSA]\n        clock_skew: %s", skew), 1)
			srv := New(testSet(t, cfg), authztest.NewFakeKeys(), Options{Now: func() time.Time { return testNow }})
			at := func(d time.Duration) float64 { return float64(testNow.Add(d).Unix()) }
			for _, tc := range []struct {
				claim  string
				offset time.Duration
				want   Reason
			}{
				{"exp", -skew + time.Second, ReasonOK}, // exp at now−skew+1s: valid for one more second
				{"exp", -skew, ReasonTokenExpired},
				{"exp", -skew - time.Second, ReasonTokenExpired},
				{"nbf", skew, ReasonOK},
				{"nbf", skew + time.Second, ReasonTokenNotYetValid},
				{"iat", skew, ReasonOK},
				{"iat", skew + time.Second, ReasonTokenNotYetValid},
			} {
				tok := rs256(t, acmeClaims(func(c jwt.MapClaims) { c[tc.claim] = at(tc.offset) }))
				if d := srv.Decide(context.Background(), acmeRequest(tok)); d.Reason != tc.want {
					t.Errorf("%s at now%+v with clock_skew %v: %s, want %s", tc.claim, tc.offset, skew, d.Reason, tc.want)
				}
			}
		})
	}
}
