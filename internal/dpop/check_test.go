package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/keytest"
	"github.com/extauthz/extauthz/jwkscache/clocktest"
)

var testNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// testKeySet is a test's signing keys: two P-256 keys, an Ed25519 key,
// and the RSA key the test binary shares (RSA generation is slow).
type testKeySet struct {
	ec, ec2 *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	rsa     *rsa.PrivateKey
}

func testKeys() testKeySet {
	return testKeySet{ec: keytest.P256(), ec2: keytest.P256(), ed: keytest.Ed25519(), rsa: keytest.RSA2048()}
}

// publicJWK returns the JWK of key's public half and its thumbprint.
func publicJWK(t testing.TB, key crypto.Signer) (map[string]any, string) {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(j.Marshal())
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	tp, err := Thumbprint(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return m, tp
}

// proof is a proof under construction: edit its fields, then sign.
type proof struct {
	method jwt.SigningMethod
	key    crypto.Signer
	header map[string]any
	claims jwt.MapClaims
}

const testToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"

func newProof(t testing.TB, key crypto.Signer, method jwt.SigningMethod) *proof {
	jwk, _ := publicJWK(t, key)
	return &proof{
		method: method,
		key:    key,
		header: map[string]any{"typ": "dpop+jwt", "jwk": jwk},
		claims: jwt.MapClaims{
			"jti": "e1j3V_bKic8-LAEB",
			"htm": "POST",
			"htu": "https://api.acme.test/orders",
			"iat": testNow.Unix(),
			"ath": AccessTokenHash(testToken),
		},
	}
}

func (p *proof) sign(t testing.TB) string {
	t.Helper()
	tok := jwt.NewWithClaims(p.method, p.claims)
	for k, v := range p.header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(p.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testPolicy = &Policy{Algorithms: []string{"ES256", "EdDSA", "RS256", "PS256"}, MaxAge: time.Minute, ClockSkew: 5 * time.Second}

func request(proofJWT, jkt string) *Request {
	return &Request{
		Proof:       proofJWT,
		Method:      "POST",
		URI:         "https://api.acme.test/orders?page=2",
		AccessToken: testToken,
		JKT:         jkt,
	}
}

func TestCheck_ValidProofsOfEveryKeyType(t *testing.T) {
	k := testKeys()
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		method jwt.SigningMethod
	}{
		{"ES256", k.ec, jwt.SigningMethodES256},
		{"EdDSA", k.ed, jwt.SigningMethodEdDSA},
		{"RS256", k.rsa, jwt.SigningMethodRS256},
		{"PS256", k.rsa, jwt.SigningMethodPS256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker(NewMemoryReplay(10, func() time.Time { return testNow }), func() time.Time { return testNow })
			_, jkt := publicJWK(t, tc.key)
			if err := c.Check(context.Background(), testPolicy, request(newProof(t, tc.key, tc.method).sign(t), jkt)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCheck_EveryRuleRefuses(t *testing.T) {
	k := testKeys()
	_, jkt := publicJWK(t, k.ec)
	_, otherJKT := publicJWK(t, k.ec2)
	privateJWK, _ := publicJWK(t, k.ec)
	privateJWK["d"] = "AAAA"
	for _, tc := range []struct {
		name string
		edit func(p *proof, r *Request)
		want error
	}{
		{"typ missing", func(p *proof, r *Request) { delete(p.header, "typ") }, ErrInvalidProof},
		{"typ jwt", func(p *proof, r *Request) { p.header["typ"] = "JWT" }, ErrInvalidProof},
		{"alg not in the allowlist", func(p *proof, r *Request) {
			p.method, p.key = jwt.SigningMethodES384, keytest.P384()
			p.header["jwk"], _ = publicJWK(t, p.key)
		}, ErrInvalidProof},
		{"unknown crit", func(p *proof, r *Request) { p.header["crit"] = []any{"x"}; p.header["x"] = 1 }, ErrInvalidProof},
		{"jwk missing", func(p *proof, r *Request) { delete(p.header, "jwk") }, ErrInvalidProof},
		{"jwk not an object", func(p *proof, r *Request) { p.header["jwk"] = "key" }, ErrInvalidProof},
		{"jwk with private member", func(p *proof, r *Request) { p.header["jwk"] = privateJWK }, ErrInvalidProof},
		{"signed by another key than jwk", func(p *proof, r *Request) { p.key = k.ec2 }, ErrInvalidProof},
		{"jti missing", func(p *proof, r *Request) { delete(p.claims, "jti") }, ErrInvalidProof},
		{"jti not a string", func(p *proof, r *Request) { p.claims["jti"] = 7 }, ErrInvalidProof},
		{"htm other method", func(p *proof, r *Request) { p.claims["htm"] = "GET" }, ErrInvalidProof},
		{"htm lower case", func(p *proof, r *Request) { p.claims["htm"] = "post" }, ErrInvalidProof},
		{"htu other path", func(p *proof, r *Request) { p.claims["htu"] = "https://api.acme.test/admin" }, ErrInvalidProof},
		{"htu other host", func(p *proof, r *Request) { p.claims["htu"] = "https://evil.test/orders" }, ErrInvalidProof},
		{"htu other scheme", func(p *proof, r *Request) { p.claims["htu"] = "http://api.acme.test/orders" }, ErrInvalidProof},
		{"htu other port", func(p *proof, r *Request) { p.claims["htu"] = "https://api.acme.test:8443/orders" }, ErrInvalidProof},
		{"htu missing", func(p *proof, r *Request) { delete(p.claims, "htu") }, ErrInvalidProof},
		{"iat missing", func(p *proof, r *Request) { delete(p.claims, "iat") }, ErrInvalidProof},
		{"iat a string", func(p *proof, r *Request) { p.claims["iat"] = "now" }, ErrInvalidProof},
		{"iat too old", func(p *proof, r *Request) { p.claims["iat"] = testNow.Add(-66 * time.Second).Unix() }, ErrInvalidProof},
		{"iat in the future", func(p *proof, r *Request) { p.claims["iat"] = testNow.Add(6 * time.Second).Unix() }, ErrInvalidProof},
		{"ath missing", func(p *proof, r *Request) { delete(p.claims, "ath") }, ErrInvalidProof},
		{"ath of another token", func(p *proof, r *Request) { p.claims["ath"] = AccessTokenHash(testToken + "x") }, ErrInvalidProof},
		{"two DPoP headers", func(p *proof, r *Request) { r.Proof += "," + r.Proof }, ErrInvalidProof},
		{"too large", func(p *proof, r *Request) { p.claims["pad"] = strings.Repeat("a", MaxProofBytes) }, ErrInvalidProof},
		{"not a JWT", func(p *proof, r *Request) { r.Proof = "not-a-jwt" }, ErrInvalidProof},
		{"token bound to another key", func(p *proof, r *Request) { r.JKT = otherJKT }, ErrBindingMismatch},
		{"token not bound", func(p *proof, r *Request) { r.JKT = "" }, ErrBindingMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			replay := NewMemoryReplay(10, func() time.Time { return testNow })
			c := NewChecker(replay, func() time.Time { return testNow })
			p := newProof(t, k.ec, jwt.SigningMethodES256)
			// The edit changes p, or r, whose Proof "SIGNED" stands for p
			// once signed.
			r := request("SIGNED", jkt)
			tc.edit(p, r)
			r.Proof = strings.ReplaceAll(r.Proof, "SIGNED", p.sign(t))
			err := c.Check(context.Background(), testPolicy, r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if replay.Len() != 0 {
				t.Error("a refused proof was recorded in the replay cache")
			}
		})
	}
}

func TestCheck_IATWindowEdgesAccepted(t *testing.T) {
	k := testKeys()
	_, jkt := publicJWK(t, k.ec)
	for _, iat := range []time.Time{testNow.Add(-65 * time.Second), testNow.Add(5 * time.Second)} {
		c := NewChecker(NewMemoryReplay(10, nil), func() time.Time { return testNow })
		p := newProof(t, k.ec, jwt.SigningMethodES256)
		p.claims["iat"] = iat.Unix()
		if err := c.Check(context.Background(), testPolicy, request(p.sign(t), jkt)); err != nil {
			t.Errorf("iat %s: %v", iat, err)
		}
	}
}

func TestCheck_HTUComparedNormalised(t *testing.T) {
	k := testKeys()
	_, jkt := publicJWK(t, k.ec)
	c := NewChecker(NewMemoryReplay(10, nil), func() time.Time { return testNow })
	p := newProof(t, k.ec, jwt.SigningMethodES256)
	p.claims["htu"] = "HTTPS://API.ACME.TEST:443/./orders#x"
	if err := c.Check(context.Background(), testPolicy, request(p.sign(t), jkt)); err != nil {
		t.Fatal(err)
	}
}

func TestCheck_ReplayRefusedUntilTheWindowEnds(t *testing.T) {
	k := testKeys()
	_, jkt := publicJWK(t, k.ec)
	clock := clocktest.New(testNow)
	c := NewChecker(NewMemoryReplay(10, clock.Now), clock.Now)
	p := newProof(t, k.ec, jwt.SigningMethodES256)
	r := request(p.sign(t), jkt)
	if err := c.Check(context.Background(), testPolicy, r); err != nil {
		t.Fatal(err)
	}
	clock.Advance(testPolicy.MaxAge + testPolicy.ClockSkew) // the last moment iat is accepted
	if err := c.Check(context.Background(), testPolicy, r); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: err %v, want ErrReplayed", err)
	}
	// The same jti with another key is another proof (the cache is keyed by
	// key and jti).
	p2 := newProof(t, k.ec2, jwt.SigningMethodES256)
	_, jkt2 := publicJWK(t, k.ec2)
	p2.claims["iat"] = clock.Now().Unix()
	if err := c.Check(context.Background(), testPolicy, request(p2.sign(t), jkt2)); err != nil {
		t.Fatalf("same jti, other key: %v", err)
	}
}

type failingReplay struct{ err error }

func (f failingReplay) Once(context.Context, string, time.Duration) (bool, error) {
	return false, f.err
}

func TestCheck_ReplayCacheErrorRefuses(t *testing.T) {
	k := testKeys()
	_, jkt := publicJWK(t, k.ec)
	c := NewChecker(failingReplay{errors.New("redis down")}, func() time.Time { return testNow })
	err := c.Check(context.Background(), testPolicy, request(newProof(t, k.ec, jwt.SigningMethodES256).sign(t), jkt))
	if !errors.Is(err, ErrReplayUnavailable) {
		t.Fatalf("err %v, want ErrReplayUnavailable", err)
	}
}
