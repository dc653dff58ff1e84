// Package keytest makes the private keys tests sign tokens and proofs with:
// fresh ECDSA, Ed25519 and RSA keys, and one 2048-bit RSA key shared by a
// test binary, because RSA generation is slow (tens of milliseconds a key,
// more under -race).
//
// Generation reads crypto/rand, which does not fail; a failure anyway (an
// RSA size the platform refuses) is a broken test, so it panics rather than
// making every caller handle an error.
package keytest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"sync"
)

// P256 returns a new ECDSA key on P-256 (ES256).
func P256() *ecdsa.PrivateKey { return ec(elliptic.P256()) }

// P384 returns a new ECDSA key on P-384 (ES384).
func P384() *ecdsa.PrivateKey { return ec(elliptic.P384()) }

// P521 returns a new ECDSA key on P-521 (ES512).
func P521() *ecdsa.PrivateKey { return ec(elliptic.P521()) }

func ec(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic("keytest: " + err.Error())
	}
	return k
}

// Ed25519 returns a new Ed25519 private key (EdDSA).
func Ed25519() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("keytest: " + err.Error())
	}
	return k
}

// RSA returns a new RSA key of bits bits. A test that needs an RSA key but
// not a key of its own uses RSA2048.
func RSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic("keytest: " + err.Error())
	}
	return k
}

// RSA2048 returns a 2048-bit RSA key, the same one on every call in a test
// binary.
var RSA2048 = sync.OnceValue(func() *rsa.PrivateKey { return RSA(2048) })
