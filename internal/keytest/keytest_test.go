package keytest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"testing"
)

// TestKeys_OfTheirKindAndFresh: each generator returns a key of its curve
// or size, a new one on every call, except RSA2048, which is shared.
func TestKeys_OfTheirKindAndFresh(t *testing.T) {
	checkEC(t, P256, elliptic.P256())
	checkEC(t, P384, elliptic.P384())
	checkEC(t, P521, elliptic.P521())
	if a, b := Ed25519(), Ed25519(); len(a) != ed25519.PrivateKeySize || a.Equal(b) {
		t.Error("Ed25519: wrong size or the same key twice")
	}
	if k := RSA(1024); k.N.BitLen() != 1024 {
		t.Errorf("RSA(1024): %d bits", k.N.BitLen())
	}
	if k := RSA2048(); k.N.BitLen() != 2048 || !k.Equal(RSA2048()) {
		t.Error("RSA2048: not 2048 bits, or not shared")
	}
}

func checkEC(t *testing.T, gen func() *ecdsa.PrivateKey, curve elliptic.Curve) {
	t.Helper()
	a, b := gen(), gen()
	if a.Curve != curve || b.Curve != curve {
		t.Errorf("%s: key on %s", curve.Params().Name, a.Curve.Params().Name)
	}
	if a.Equal(b) {
		t.Errorf("%s: the same key twice", curve.Params().Name)
	}
}
