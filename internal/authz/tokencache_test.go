package authz

import (
	"context"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/jwkscache"
)

// cachePair is two Servers over the same keys and clock: one with the
// verified-token cache, one without.
type cachePair struct {
	cached, uncached *Server
	keys             *authztest.FakeKeys
	now              time.Time
}

func newCachePair(t *testing.T, yaml string) *cachePair {
	t.Helper()
	cp := &cachePair{keys: authztest.NewFakeKeys(), now: testNow}
	clock := func() time.Time { return cp.now }
	quiet := slog.New(slog.DiscardHandler)
	cp.cached = New(testSet(t, yaml), cp.keys, Options{Now: clock, Logger: quiet})
	cp.uncached = New(testSet(t, noCache(yaml)), cp.keys, Options{Now: clock, Logger: quiet})
	t.Cleanup(cp.cached.Close)
	if cp.cached.tokens.Load() == nil || cp.uncached.tokens.Load() != nil {
		t.Fatal("the pair is not one cached and one uncached server")
	}
	return cp
}

// noCache turns the token cache off in a configuration.
func noCache(yaml string) string {
	return strings.Replace(yaml, "limits: {", "limits: {token_cache_entries: 0, ", 1)
}

func (cp *cachePair) update(t *testing.T, yaml string) {
	cp.cached.Update(testSet(t, yaml))
	cp.uncached.Update(testSet(t, noCache(yaml)))
}

// TestTokenCache_SameDecisionsAsUncached runs random sequences of Checks,
// key rotations, configuration reloads and clock moves against a cached
// and an uncached Server and requires the same decision every time.
func TestTokenCache_SameDecisionsAsUncached(t *testing.T) {
	k := authztest.Keys()
	exp := func(d time.Duration) func(jwt.MapClaims) {
		return func(c jwt.MapClaims) { c["exp"] = float64(testNow.Add(d).Unix()) }
	}
	tokens := []string{
		rs256(t, acmeClaims()),
		rs256(t, acmeClaims(exp(24*time.Hour))),
		rs256(t, acmeClaims(exp(2*time.Minute))),
		rs256(t, acmeClaims(exp(20*time.Minute), func(c jwt.MapClaims) { c["nbf"] = float64(testNow.Add(5 * time.Minute).Unix()) })),
		rs256(t, acmeClaims(func(c jwt.MapClaims) { c["aud"] = "billing" })),
		rs256(t, acmeClaims(func(c jwt.MapClaims) { c["iat"] = float64(testNow.Add(3 * time.Minute).Unix()) })),
		sign(t, jwt.SigningMethodES256, k.EC, "ec", acmeClaims(exp(3*time.Hour)), nil),
		sign(t, jwt.SigningMethodEdDSA, k.Ed, "ed", acmeClaims(exp(3*time.Hour)), nil),
		sign(t, jwt.SigningMethodRS256, k.RSA, "rsa", acmeClaims(exp(3*time.Hour), func(c jwt.MapClaims) { c["iss"] = "https://partner.test/"; c["aud"] = "partner-a" }), nil),
		sign(t, jwt.SigningMethodRS256, k.Globex, "globex", acmeClaims(exp(3*time.Hour), func(c jwt.MapClaims) { c["iss"] = "https://idp.globex.test/"; delete(c, "aud") }), nil),
	}
	requests := []func(tok string) *Request{
		func(tok string) *Request { return acmeRequest(tok) },
		func(tok string) *Request {
			return &Request{Host: "api.acme.test", Path: "/", Headers: map[string]string{"cookie": "session=" + tok}}
		},
		func(tok string) *Request { return &Request{Host: "api.acme.test", Path: "/?access_token=" + tok} },
		func(tok string) *Request {
			r := acmeRequest(tok)
			r.ContextExtensions = map[string]string{"provider": "partner"}
			return r
		},
		func(tok string) *Request { return &Request{Host: "globex.test", Path: "/", Headers: bearer(tok)} },
		// Routes with requirements: evaluated on every Check, cached or not.
		func(tok string) *Request {
			return &Request{Host: "globex.test", Path: "/admin/x", Headers: bearer(tok)}
		},
		func(tok string) *Request {
			return &Request{Host: "api.acme.test", Path: "/orders/1", Method: "POST", Headers: bearer(tok)}
		},
		func(tok string) *Request {
			r := acmeRequest(tok)
			r.ContextExtensions = map[string]string{"tenant": "globex"}
			return r
		},
	}
	// globex gets a provider with partner's issuer but other keys: a token
	// verified for acme/partner must not pass there.
	base := strings.Replace(testConfig, "        from_cookies: [session]", "        audiences: [partner-a]\n        from_cookies: [session]", 1)
	base = strings.Replace(base, "claims_to_headers: {sub: x-auth-subject, org: x-globex-org}\n", `claims_to_headers: {sub: x-auth-subject, org: x-globex-org}
      - id: partner
        issuer: https://partner.test/
        jwks_url: https://partner.globex.test/jwks.json
        audiences: [partner-g]
        algorithms: [ES256]
`, 1)
	configs := []string{
		base,
		strings.Replace(base, "audiences: [orders, billing]", "audiences: [billing]", 1),
		strings.Replace(base, "audiences: [orders, billing]", "audiences: [orders]\n        clock_skew: 5m", 1),
		strings.Replace(base, "algorithms: [RS256, ES256, EdDSA]", "algorithms: [ES256, EdDSA]", 1),
	}
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 16))
			cp := newCachePair(t, base)
			cp.keys.Add("globex", "partner", "rsa", &k.RSA.PublicKey) // the very key acme/partner uses
			hits, allowedHits := 0, 0
			for step := range 400 {
				var what string
				switch n := rng.IntN(100); {
				case n < 80:
					tok, req := rng.IntN(len(tokens)), rng.IntN(len(requests))
					what = fmt.Sprintf("check token %d request %d", tok, req)
					ctx := context.Background()
					got := cp.cached.Decide(ctx, requests[req](tokens[tok]))
					want := cp.uncached.Decide(ctx, requests[req](tokens[tok]))
					if got.Cache == CacheHit {
						hits++
						if got.Allowed {
							allowedHits++
						}
					}
					got.Cache, want.Cache = 0, 0
					got.ClaimsMemo = nil
					if diff := cmp.Diff(want, got); diff != "" {
						t.Fatalf("step %d (%s): cached decision differs (-uncached +cached):\n%s", step, what, diff)
					}
					continue
				case n < 85:
					// Rotation: the same key published anew (another object),
					// another key under the kid, or the provider's keys down.
					cp.keys.Fail("acme", "main", nil)
					switch rng.IntN(4) {
					case 0:
						cp.keys.Add("acme", "main", "rsa", &rsa.PublicKey{N: k.RSA.N, E: k.RSA.E})
					case 1:
						cp.keys.Add("acme", "main", "rsa", &k.RSAOther.PublicKey)
					case 2:
						cp.keys.Fail("acme", "main", jwkscache.ErrUnavailable)
					default:
						cp.keys.Add("acme", "main", "rsa", &k.RSA.PublicKey)
					}
				case n < 87:
					cp.update(t, configs[rng.IntN(len(configs))])
				default:
					// Mostly within a token's lifetime, sometimes past it.
					d := time.Duration(rng.Int64N(int64(time.Minute)))
					if rng.IntN(20) == 0 {
						d *= 20
					}
					cp.now = cp.now.Add(d)
				}
			}
			t.Logf("%d Checks answered from the cache, %d of them allowed", hits, allowedHits)
			if allowedHits == 0 {
				t.Fatal("no Check was allowed from the cache")
			}
		})
	}
}

func TestTokenCache_EntryNeverOutlivesExp(t *testing.T) {
	cp := newCachePair(t, testConfig)
	tc := cp.cached.tokens.Load()
	p, _ := cp.cached.Set().Tenants()[0].Provider("main")
	e := &tokenEntry{provider: p, until: testNow.Add(90 * time.Second)}
	var sum [32]byte
	tc.put(sum, e, testNow.Add(90*time.Second))
	if _, ok := tc.get(sum); ok {
		t.Fatal("an entry past exp + skew was stored")
	}
	start := time.Now()
	tc.put(sum, e, testNow)
	got, ok := tc.c.GetEntry(sum)
	if !ok {
		t.Fatal("a valid entry was not stored")
	}
	if ttl := time.Unix(0, got.ExpiresAtNano).Sub(start); ttl > 90*time.Second || ttl < 80*time.Second {
		t.Fatalf("entry expires in %v, want the 90s left until exp + skew", ttl)
	}
}

func TestTokenCache_SizeFromConfigAndOff(t *testing.T) {
	srv := New(testSet(t, strings.Replace(testConfig, "limits: {", "limits: {token_cache_entries: 7, ", 1)), authztest.NewFakeKeys(), Options{})
	t.Cleanup(srv.Close)
	if got := srv.tokens.Load().c.GetMaximum(); got != 7 {
		t.Fatalf("maximum = %d, want 7", got)
	}
	srv.Update(testSet(t, noCache(testConfig)))
	if srv.tokens.Load() != nil {
		t.Fatal("token_cache_entries: 0 left the cache on")
	}
}

// TestTokenCache_SharedHeadersStayTheTokens: a cached token's claim headers
// are shared by its allows; what one request adds to them (the payload
// header, the rewritten cookie of forward_token: false) must not reach the
// shared slices, so every Check, in any order of requests, gets what an
// uncached Check gets.
func TestTokenCache_SharedHeadersStayTheTokens(t *testing.T) {
	cfg := strings.Replace(testConfig, "        claims_to_headers: {sub: x-partner-subject}\n",
		"        claims_to_headers: {sub: x-partner-subject, email: x-partner-email, org: x-partner-org}\n        forward_token: false\n        payload_header: x-jwt-payload\n", 1)
	cp := newCachePair(t, cfg)
	// One claim header of three: the shared slices have room to spare.
	tok := rs256(t, acmeClaims(func(c jwt.MapClaims) { c["iss"] = "https://partner.test/"; delete(c, "aud"); delete(c, "email") }))
	requests := []*Request{
		{Host: "api.acme.test", Path: "/", Headers: map[string]string{"cookie": "a=1; session=" + tok + "; b=2"}},
		{Host: "api.acme.test", Path: "/", Headers: map[string]string{"cookie": "session=" + tok}},
		{Host: "api.acme.test", Path: "/?access_token=" + tok, Headers: map[string]string{}},
	}
	for round := range 3 {
		for i, r := range requests {
			got, want := cp.cached.Decide(t.Context(), r), cp.uncached.Decide(t.Context(), r)
			if !got.Allowed || (round > 0 && got.Cache != CacheHit) {
				t.Fatalf("round %d request %d: %s, cache %d", round, i, got.Reason, got.Cache)
			}
			got.Cache, want.Cache, got.ClaimsMemo = 0, 0, nil
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("round %d request %d: cached decision differs (-uncached +cached):\n%s", round, i, diff)
			}
		}
	}
}
