package jwkscache

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"sync"
	"testing"

	"github.com/MicahParks/jwkset"
)

// Keys of every kind and the JWKS documents built from them, for the
// internal tests (the fuzzers' seeds) and, exported from this test file,
// the external ones.

// KeyKinds holds one key of each kind a JWKS may carry.
type KeyKinds struct {
	RSA              *rsa.PrivateKey // 2048 bits
	RSA1024          *rsa.PrivateKey // under the minimum: refused
	P256, P384, P521 *ecdsa.PrivateKey
	Ed25519          ed25519.PublicKey
}

// rsaKeys are generated once per test binary: RSA generation is slow.
var rsaKeys = sync.OnceValues(func() ([2]*rsa.PrivateKey, error) {
	big, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return [2]*rsa.PrivateKey{}, err
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	return [2]*rsa.PrivateKey{big, small}, err
})

// NewKeyKinds returns fresh ECDSA and Ed25519 keys, and the RSA keys every
// test of the binary shares.
func NewKeyKinds(t testing.TB) KeyKinds {
	t.Helper()
	rk, err := rsaKeys()
	if err != nil {
		t.Fatal(err)
	}
	k := KeyKinds{RSA: rk[0], RSA1024: rk[1]}
	for _, c := range []struct {
		key   **ecdsa.PrivateKey
		curve elliptic.Curve
	}{{&k.P256, elliptic.P256()}, {&k.P384, elliptic.P384()}, {&k.P521, elliptic.P521()}} {
		if *c.key, err = ecdsa.GenerateKey(c.curve, rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	if k.Ed25519, _, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	return k
}

// MarshalJWK marshals key as a JWK with kid and alg (either may be empty),
// with its private members when private is set.
func MarshalJWK(t testing.TB, key any, kid string, alg jwkset.ALG, private bool) json.RawMessage {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg},
		Marshal:  jwkset.JWKMarshalOptions{Private: private},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SetJWKMember returns the JWK raw with member set to value.
func SetJWKMember(t testing.TB, raw json.RawMessage, member string, value any) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m[member] = value
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// MarshalJWKS builds a JWKS document from JWKs.
func MarshalJWKS(t testing.TB, keys ...json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(map[string][]json.RawMessage{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
