package jwkscache

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/extauthz/extauthz/internal/keytest"
)

// fuzzSeedDocs returns real JWKS documents: every supported key type, with
// and without alg/use/key_ops, private material, x5c and x5u members, and
// keys that must be refused (oct, RSA-1024, X25519, a point off the curve).
func fuzzSeedDocs(f *testing.F) [][]byte {
	f.Helper()
	rsaKey, rsaSmall := keytest.RSA2048(), keytest.RSA(1024)
	p256, p384, p521 := keytest.P256(), keytest.P384(), keytest.P521()
	edPub := keytest.Ed25519().Public().(ed25519.PublicKey)

	jwk := func(key any, kid string, alg jwkset.ALG, private bool) json.RawMessage {
		return MarshalJWK(f, key, kid, alg, private)
	}
	with := func(raw json.RawMessage, member string, value any) json.RawMessage {
		return SetJWKMember(f, raw, member, value)
	}
	doc := func(keys ...json.RawMessage) []byte { return MarshalJWKS(f, keys...) }
	// A self-signed certificate for x5c.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4e9, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p256.PublicKey, p256)
	if err != nil {
		f.Fatal(err)
	}

	return [][]byte{
		doc(jwk(&rsaKey.PublicKey, "rsa", "", false), jwk(&p256.PublicKey, "p256", "", false), jwk(edPub, "ed", "", false)),
		doc(jwk(&rsaKey.PublicKey, "rsa-rs256", jwkset.AlgRS256, false), jwk(&p384.PublicKey, "p384", jwkset.AlgES384, false),
			jwk(&p521.PublicKey, "p521", jwkset.AlgES512, false)),
		doc(jwk(rsaKey, "rsa-private", "", true), jwk(p256, "ec-private", "", true)),
		doc(with(jwk(&p256.PublicKey, "x5u", "", false), "x5u", "https://attacker.test/cert.pem")),
		doc(with(jwk(&p256.PublicKey, "x5c", "", false), "x5c", []string{base64.StdEncoding.EncodeToString(der)})),
		doc(with(jwk(&p256.PublicKey, "enc", "", false), "use", "enc"), with(jwk(&p384.PublicKey, "sign", "", false), "key_ops", []string{"sign"})),
		doc(jwk(&rsaSmall.PublicKey, "rsa-1024", "", false), jwk(&p256.PublicKey, "good", "", false)),
		doc(json.RawMessage(`{"kty":"oct","kid":"hmac","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}`)),
		doc(json.RawMessage(`{"kty":"OKP","crv":"X25519","kid":"x25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}`)),
		doc(json.RawMessage(`{"kty":"EC","crv":"P-256","kid":"off-curve","x":"AAAA","y":"AAAA"}`)),
		doc(json.RawMessage(`{"kty":"RSA","kid":"e0","n":"AQAB","e":"AA"}`)),
		doc(json.RawMessage(`{"kty":"EC","kid":5}`), json.RawMessage(`"not an object"`), json.RawMessage(`null`)),
		doc(with(jwk(&rsaKey.PublicKey, "ps", jwkset.AlgPS384, false), "use", "sig"),
			with(jwk(&rsaKey.PublicKey, "ops", "", false), "key_ops", []string{"verify", "sign"}),
			with(jwk(&p256.PublicKey, "wrong-alg", "", false), "alg", "ES384"),
			with(jwk(edPub, "hs", "", false), "alg", "HS256")),
		[]byte(`{"keys":[]}`),
		[]byte(`{"keys":null}`),
		[]byte(`{}`),
		[]byte(`[]`),
		[]byte(``),
		[]byte(`{"keys":[{"kty":"RSA","n":"","e":""}]}`),
	}
}

// FuzzParseKeySet feeds JWKS documents to parseKeySet, the function that
// turns a fetched body into the immutable key set. Whatever the input, it
// must not panic; when it accepts a document, every key in the set must be
// a supported public key (RSA ≥ 2048 bits, ECDSA on P-256/384/521 with the
// matching alg, Ed25519) whose alg bits fit its type, and the kid index must
// describe exactly the keys of the set.
func FuzzParseKeySet(f *testing.F) {
	for _, d := range fuzzSeedDocs(f) {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, skipped, err := parseKeySet(raw)
		for _, sk := range skipped {
			if sk.err == nil {
				t.Fatalf("skipped key %d has no reason", sk.index)
			}
		}
		checkKeptAndSkipped(t, raw, s, skipped)
		if err != nil {
			if s != nil {
				t.Fatalf("error %v with a non-nil set", err)
			}
			return
		}
		if len(s.keys) == 0 {
			t.Fatal("accepted a document without a usable key")
		}
		indexed := 0
		for kid, ks := range s.byKID {
			for _, k := range ks {
				if k.kid != kid {
					t.Fatalf("key %q indexed under %q", k.kid, kid)
				}
				if !slices.Contains(s.keys, k) {
					t.Fatalf("indexed key %q is not in the set", kid)
				}
			}
			indexed += len(ks)
			if _, found := slices.BinarySearch(s.kids, kid); !found {
				t.Fatalf("kid %q missing from the sorted kid list", kid)
			}
		}
		if indexed != len(s.keys) || len(s.kids) != len(s.byKID) || !slices.IsSorted(s.kids) {
			t.Fatalf("index: %d indexed, %d keys, %d kids, %d index entries", indexed, len(s.keys), len(s.kids), len(s.byKID))
		}
		for _, k := range s.keys {
			checkVerifyKey(t, k)
		}
	})
}

// checkKeptAndSkipped checks parseKeySet's result against the document:
// every JWK is either kept (in document order) or skipped with its index,
// never both; a refused kind (symmetric, X25519, a use other than sig,
// key_ops without verify) is never kept; and a kept key with an alg member
// fits exactly that algorithm.
func checkKeptAndSkipped(t *testing.T, raw []byte, s *keySet, skipped []skippedKey) {
	t.Helper()
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(raw, &doc) != nil || doc.Keys == nil {
		if s != nil || len(skipped) != 0 {
			t.Fatalf("no JWKS document, yet %d skipped and set %v", len(skipped), s != nil)
		}
		return
	}
	var kept []*verifyKey
	if s != nil {
		kept = s.keys
	}
	if len(kept)+len(skipped) != len(doc.Keys) {
		t.Fatalf("%d kept + %d skipped != %d keys in the document", len(kept), len(skipped), len(doc.Keys))
	}
	isSkipped := make([]bool, len(doc.Keys))
	for _, sk := range skipped {
		if sk.index < 0 || sk.index >= len(doc.Keys) || isSkipped[sk.index] {
			t.Fatalf("skipped index %d out of range or repeated", sk.index)
		}
		isSkipped[sk.index] = true
	}
	next := 0
	for i, rawKey := range doc.Keys {
		if isSkipped[i] {
			continue
		}
		k := kept[next]
		next++
		var m jwkset.JWKMarshal
		if err := json.Unmarshal(rawKey, &m); err != nil {
			t.Fatalf("key %d kept but not a JWK object: %v", i, err)
		}
		if k.kid != m.KID {
			t.Fatalf("key %d kept as kid %q, document says %q", i, k.kid, m.KID)
		}
		switch {
		case m.KTY == jwkset.KtyOct:
			t.Fatalf("key %d: symmetric key kept", i)
		case m.CRV == jwkset.CrvX25519:
			t.Fatalf("key %d: X25519 key kept", i)
		case m.USE != "" && m.USE != jwkset.UseSig:
			t.Fatalf("key %d: key with use %q kept", i, m.USE)
		case len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify):
			t.Fatalf("key %d: key_ops %v without verify kept", i, m.KEYOPS)
		}
		if m.ALG != "" && k.algs != algBit(string(m.ALG)) {
			t.Fatalf("key %d: alg %q, yet the key fits %b", i, m.ALG, k.algs)
		}
	}
}

// checkVerifyKey fails unless k is a supported public key whose alg bits fit it.
func checkVerifyKey(t *testing.T, k *verifyKey) {
	t.Helper()
	var fits algSet
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		if pub.N == nil || pub.N.BitLen() < minRSABits || pub.N.BitLen() > maxRSABits || pub.E < 2 {
			t.Fatalf("kid %q: unusable RSA key accepted", k.kid)
		}
		fits = algsRSA
	case *ecdsa.PublicKey:
		var ok bool
		if fits, ok = curveAlgs[pub.Curve]; !ok {
			t.Fatalf("kid %q: ECDSA key on an unsupported curve accepted", k.kid)
		}
		if _, err := pub.ECDH(); err != nil {
			t.Fatalf("kid %q: ECDSA point not on its curve accepted: %v", k.kid, err)
		}
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			t.Fatalf("kid %q: Ed25519 key of %d bytes accepted", k.kid, len(pub))
		}
		fits = algEdDSA
	default:
		t.Fatalf("kid %q: key of type %T accepted", k.kid, k.pub)
	}
	if _, private := k.pub.(interface{ Public() crypto.PublicKey }); private {
		t.Fatalf("kid %q: private key accepted", k.kid)
	}
	if k.algs == 0 || k.algs&^fits != 0 {
		t.Fatalf("kid %q: alg bits %b do not fit %T (%b)", k.kid, k.algs, k.pub, fits)
	}
}
