// Package authztest provides the test fixture shared by authz, its front
// ends (grpcauthz, forwardauth) and the packages that observe it (admin,
// metrics): a two-tenant configuration, its signing keys, a map-backed key
// source, token builders, a fresh ES256 key with its JWKS, and a real
// jwkscache.Registry fetching from an httptest TLS identity provider. It
// does not import authz, so authz's own in-package tests can use it.
package authztest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/keytest"
	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
	"github.com/extauthz/extauthz/jwkscache"
)

// Now is the fixed clock of every test that uses the fixture.
var Now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// Config has two tenants. acme (hosts api.acme.test and *.acme.test) has a
// provider "main" reading the Authorization header (RS256, ES256, EdDSA;
// audiences orders and billing) and a provider "partner" reading the
// session cookie and the access_token parameter; globex (globex.test) has
// one provider. Both tenants map claims to headers, some of them only
// in one tenant.
var Config = tenantstest.Config(`
tenant_header: x-tenant-id
limits: {max_token_bytes: 4096, max_header_value_bytes: 64}
`,
	tenantstest.Tenant("acme", `["api.acme.test", "*.acme.test"]`,
		tenantstest.Main(
			"audiences: [orders, billing]",
			"algorithms: [RS256, ES256, EdDSA]",
			"claims_to_headers: {sub: x-auth-subject, email: x-auth-email, groups: x-auth-groups, level: x-auth-level, uid: x-auth-uid}"),
		Partner()),
	tenantstest.Globex("main", "claims_to_headers: {sub: x-auth-subject, org: x-globex-org}"))

// BenchRequirement, inserted in a tenant's text where its requirements
// begin (or would), adds the three-matcher requirement "bench" and a route
// to it under /bench/: what the benchmarks of a Check with a requirement
// use.
const BenchRequirement = `    routes: [{path_prefix: /bench/, requirement: bench}]
    requirements:
      bench:
        claims:
          - {claim: scope, all_of: ["orders:read"]}
          - {claim: groups, any_of: [admins, ops]}
          - {claim: org.tier, equals: gold}
`

// Partner returns acme's provider "partner" of Config, with settings added:
// its tokens come in the session cookie or the access_token parameter.
func Partner(settings ...string) string {
	return tenantstest.Provider("partner", "https://partner.test/", "https://partner.test/jwks.json",
		append([]string{"from_cookies: [session]", "from_params: [access_token]", "claims_to_headers: {sub: x-partner-subject}"}, settings...)...)
}

// KeySet holds the fixture's private keys: RSA (kid "rsa"), EC (kid "ec")
// and Ed (kid "ed") are acme/main's; RSAOther is in no key set; Globex
// (kid "globex") is globex/main's.
type KeySet struct {
	RSA, RSAOther *rsa.PrivateKey
	EC            *ecdsa.PrivateKey
	Ed            ed25519.PrivateKey
	Globex        *rsa.PrivateKey
}

// Keys returns the fixture's keys, generated once per test binary (RSA
// generation is slow).
var Keys = sync.OnceValue(func() *KeySet {
	return &KeySet{RSA: keytest.RSA2048(), RSAOther: keytest.RSA(2048), EC: keytest.P256(), Ed: keytest.Ed25519(), Globex: keytest.RSA(2048)}
})

// FakeKeys is a key source (authz.KeySource) over a fixed map. An error in
// Errs for "tenant/provider" is returned instead of a key;
// context.DeadlineExceeded there waits for the lookup's context instead.
type FakeKeys struct {
	mu   sync.Mutex
	keys map[string]crypto.PublicKey // "tenant/provider/kid"
	errs map[string]error            // "tenant/provider"
	hits int
}

// NewFakeKeys returns a FakeKeys holding the public halves of Keys.
func NewFakeKeys() *FakeKeys {
	k := Keys()
	return &FakeKeys{
		keys: map[string]crypto.PublicKey{
			"acme/main/rsa":      &k.RSA.PublicKey,
			"acme/main/ec":       &k.EC.PublicKey,
			"acme/main/ed":       k.Ed.Public(),
			"acme/partner/rsa":   &k.RSA.PublicKey,
			"globex/main/globex": &k.Globex.PublicKey,
		},
		errs: map[string]error{},
	}
}

// Key implements authz.KeySource.
func (f *FakeKeys) Key(ctx context.Context, tenantID, providerID, kid, _ string) (crypto.PublicKey, error) {
	f.mu.Lock()
	f.hits++
	err := f.errs[tenantID+"/"+providerID]
	k, ok := f.keys[tenantID+"/"+providerID+"/"+kid]
	f.mu.Unlock()
	switch {
	case err == context.DeadlineExceeded:
		<-ctx.Done()
		return nil, ctx.Err()
	case err != nil:
		return nil, err
	case !ok:
		return nil, jwkscache.ErrKeyNotFound
	}
	return k, nil
}

// Fail makes every lookup for tenantID/providerID return err.
func (f *FakeKeys) Fail(tenantID, providerID string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[tenantID+"/"+providerID] = err
}

// Hits returns how many lookups were made.
func (f *FakeKeys) Hits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits
}

// Set parses and compiles a YAML configuration, failing t on any error.
func Set(t testing.TB, yaml string) *tenants.Set {
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

// AcmeClaims returns valid acme/main claims after applying edit.
func AcmeClaims(edit ...func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss":   "https://idp.acme.test/",
		"sub":   "user-1",
		"aud":   []any{"orders"},
		"exp":   float64(Now.Add(time.Hour).Unix()),
		"iat":   float64(Now.Add(-time.Minute).Unix()),
		"email": "a@acme.test",
	}
	for _, e := range edit {
		e(c)
	}
	return c
}

// Sign signs claims with method and key; hdr adds or overrides header
// parameters.
func Sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims, hdr map[string]any) string {
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

// RS256 signs claims with acme/main's RSA key.
func RS256(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return Sign(t, jwt.SigningMethodRS256, Keys().RSA, "rsa", claims, nil)
}

// RawToken builds a token from raw JSON header and payload texts, signed
// with RS256 by acme/main's key, so that parse checks are tested on tokens
// that are otherwise valid, and claims can hold what jwt.MapClaims would
// re-encode (64-bit integers, huge numbers).
func RawToken(t testing.TB, header, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sig, err := jwt.SigningMethodRS256.Sign(signing, Keys().RSA)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// JSON encodes v, failing t on error.
func JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Bearer returns request headers carrying tok in Authorization.
func Bearer(tok string) map[string]string {
	return map[string]string{"authorization": "Bearer " + tok}
}

// JWKS returns the JWKS document (RFC 7517) of acme/main's keys.
func JWKS(t testing.TB) []byte {
	t.Helper()
	k := Keys()
	b64 := base64.RawURLEncoding.EncodeToString
	ecPoint, err := k.EC.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	pt := ecPoint.Bytes() // 0x04 || X || Y
	doc := map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig", "n": b64(k.RSA.N.Bytes()), "e": b64(big.NewInt(int64(k.RSA.E)).Bytes())},
		{"kty": "EC", "kid": "ec", "alg": "ES256", "use": "sig", "crv": "P-256", "x": b64(pt[1:33]), "y": b64(pt[33:])},
		{"kty": "OKP", "kid": "ed", "alg": "EdDSA", "use": "sig", "crv": "Ed25519", "x": b64(k.Ed.Public().(ed25519.PublicKey))},
	}}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ES256JWKS returns a new P-256 key and the JWKS document (RFC 7517) that
// publishes its public half as kid, for ES256 (RFC 7518 section 3.4).
func ES256JWKS(t testing.TB, kid string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key := keytest.P256()
	jwk, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.AlgES256}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(map[string]any{"keys": []any{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	return key, doc
}

// RealRegistry starts an httptest TLS identity provider serving JWKS, a
// jwkscache.Registry fetching from it, and a one-tenant set (acme, host
// api.acme.test, provider main) with limits.cold_wait coldWait. Everything
// is closed by t.Cleanup.
func RealRegistry(t testing.TB, coldWait string) (*tenants.Set, *jwkscache.Registry, *httptest.Server) {
	t.Helper()
	doc := JWKS(t)
	return realRegistry(t, coldWait, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write(doc)
	})
}

// RealRegistryDown is RealRegistry with an identity provider that answers
// every request 503 from the start: the registry never has a key set. (An
// identity provider closed after RealRegistry returns may already have
// served the first fetch.)
func RealRegistryDown(t testing.TB, coldWait string) (*tenants.Set, *jwkscache.Registry, *httptest.Server) {
	t.Helper()
	return realRegistry(t, coldWait, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
}

func realRegistry(t testing.TB, coldWait string, handler http.HandlerFunc) (*tenants.Set, *jwkscache.Registry, *httptest.Server) {
	t.Helper()
	idp := httptest.NewTLSServer(handler)
	t.Cleanup(idp.Close)
	reg, err := jwkscache.New(jwkscache.Options{HTTPClient: idp.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	set, _ := Register(t, reg, tenantstest.Config("limits: {cold_wait: "+coldWait+"}\n",
		tenantstest.Tenant("acme", "["+tenantstest.AcmeHost+"]", tenantstest.Provider("main", tenantstest.AcmeIssuer, idp.URL+"/jwks.json",
			"audiences: [orders]",
			"algorithms: [RS256, ES256, EdDSA]",
			"claims_to_headers: {sub: x-auth-subject, email: x-auth-email}"))))
	return set, reg, idp
}

// Register parses yaml, validates it with reg's rules, registers each of
// its providers in reg and compiles it, as the service does at start,
// failing t on any error. It returns the Set and the number of providers
// registered (each will report a first refresh).
func Register(t testing.TB, reg *jwkscache.Registry, yaml string) (*tenants.Set, int) {
	t.Helper()
	cfg, err := tenants.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(reg.Validate); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	regs := cfg.Registrations()
	for _, r := range regs {
		if err := reg.Register(context.Background(), r); err != nil {
			t.Fatalf("Register: %v", err)
		}
	}
	set, err := tenants.NewSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return set, len(regs)
}

// Add makes key the one for kid of tenantID/providerID.
func (f *FakeKeys) Add(tenantID, providerID, kid string, key crypto.PublicKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[tenantID+"/"+providerID+"/"+kid] = key
}
