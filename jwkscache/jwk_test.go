package jwkscache

import (
	"encoding/json"
	"testing"

	"github.com/MicahParks/jwkset"
)

// JWKS documents built from keys, for the internal tests (the fuzzers'
// seeds) and, exported from this test file, the external ones.

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
