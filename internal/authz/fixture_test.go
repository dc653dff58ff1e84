package authz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/jwkscache"
)

// testNow is the fixed clock of every test.
var testNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

const testConfig = `
tenant_header: x-tenant-id
limits: {max_token_bytes: 4096, max_header_value_bytes: 64}
tenants:
  - id: acme
    hosts: ["api.acme.test", "*.acme.test"]
    providers:
      - id: main
        issuer: https://idp.acme.test/
        jwks_url: https://idp.acme.test/jwks.json
        audiences: [orders, billing]
        algorithms: [RS256, ES256, EdDSA]
        claims_to_headers: {sub: x-auth-subject, email: x-auth-email, groups: x-auth-groups, level: x-auth-level}
      - id: partner
        issuer: https://partner.test/
        jwks_url: https://partner.test/jwks.json
        from_cookies: [session]
        from_params: [access_token]
        claims_to_headers: {sub: x-partner-subject}
    requirements:
      orders-write:
        providers: [main]
        claims: [{claim: scope, all_of: ["orders:write"]}]
  - id: globex
    hosts: ["globex.test"]
    providers:
      - id: main
        issuer: https://idp.globex.test/
        jwks_url: https://idp.globex.test/jwks.json
        claims_to_headers: {sub: x-auth-subject}
    routes: [{path_prefix: /admin/, requirement: admins}]
    requirements:
      admins: {claims: [{claim: groups, any_of: [admins]}]}
`

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	rsa, rsaOther *rsa.PrivateKey
	ec            *ecdsa.PrivateKey
	ed            ed25519.PrivateKey
	globex        *rsa.PrivateKey
}

var keysOnce = sync.OnceValue(func() *testKeys {
	gen := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &testKeys{rsa: gen(), rsaOther: gen(), ec: ec, ed: ed, globex: gen()}
})

// fakeKeys is a KeySource over a fixed map; err, when set for a provider,
// is returned instead.
type fakeKeys struct {
	mu   sync.Mutex
	keys map[string]crypto.PublicKey // "tenant/provider/kid"
	errs map[string]error            // "tenant/provider"
	hits int
}

func (f *fakeKeys) Key(ctx context.Context, tenantID, providerID, kid, alg string) (crypto.PublicKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hits++
	if err := f.errs[tenantID+"/"+providerID]; err != nil {
		if err == context.DeadlineExceeded {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, err
	}
	k, ok := f.keys[tenantID+"/"+providerID+"/"+kid]
	if !ok {
		return nil, jwkscache.ErrKeyNotFound
	}
	return k, nil
}

func newFakeKeys() *fakeKeys {
	k := keysOnce()
	return &fakeKeys{
		keys: map[string]crypto.PublicKey{
			"acme/main/rsa":      &k.rsa.PublicKey,
			"acme/main/ec":       &k.ec.PublicKey,
			"acme/main/ed":       k.ed.Public(),
			"acme/partner/rsa":   &k.rsa.PublicKey,
			"globex/main/globex": &k.globex.PublicKey,
		},
		errs: map[string]error{},
	}
}

func testSet(t testing.TB, yaml string) *tenants.Set {
	t.Helper()
	c, err := tenants.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	s, err := tenants.NewSet(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type fixture struct {
	srv  *Server
	keys *fakeKeys
	logs *strings.Builder
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{keys: newFakeKeys(), logs: &strings.Builder{}}
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.srv = New(testSet(t, testConfig), f.keys, Options{Now: func() time.Time { return testNow }, Logger: log})
	return f
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// claims returns valid acme/main claims; edit returns a modified copy.
func acmeClaims(edit ...func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss":   "https://idp.acme.test/",
		"sub":   "user-1",
		"aud":   []any{"orders"},
		"exp":   float64(testNow.Add(time.Hour).Unix()),
		"iat":   float64(testNow.Add(-time.Minute).Unix()),
		"email": "a@acme.test",
	}
	for _, e := range edit {
		e(c)
	}
	return c
}

// sign signs claims with method and key; hdr adds or overrides headers.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	for k, v := range hdr {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func rs256(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodRS256, keysOnce().rsa, "rsa", claims, nil)
}

// rawToken builds a token from raw JSON header and payload, signed with
// RS256 by the acme key, so shape checks are tested on otherwise valid tokens.
func rawToken(t testing.TB, header, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sig, err := jwt.SigningMethodRS256.Sign(signing, keysOnce().rsa)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func bearer(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }

func acmeRequest(tok string) *Request {
	return &Request{Host: "api.acme.test", Path: "/orders?x=1", Method: "GET", RequestID: "req-1", Headers: bearer(tok)}
}
