package authztest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/keytest"
)

// SenderConfig has one tenant per sender_constraint mode (acme: the
// default if_bound, also reading a session cookie; strict: dpop; mtls;
// off), each with one provider "main" of AcmeClaims' issuer, trusting
// Keys().RSA (kid "rsa"; SenderKeysFor adds it), with the tenant's id as
// its audience: SenderAudiences passes every tenant.
const SenderConfig = `
dpop: {algorithms: [ES256, EdDSA], max_age: 30s}
tenants:
  - id: acme
    hosts: [api.acme.test]
    providers:
      - {id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/jwks.json", algorithms: [RS256], clock_skew: 5s, audiences: [acme],
         from_headers: [{name: authorization, value_prefix: "Bearer "}], from_cookies: [session]}
  - id: strict
    hosts: [dpop.test]
    sender_constraint: dpop
    providers:
      - {id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/jwks.json", algorithms: [RS256], clock_skew: 5s, audiences: [strict]}
  - id: mtls
    hosts: [mtls.test]
    providers:
      - {id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/jwks.json", algorithms: [RS256], clock_skew: 5s, audiences: [mtls], sender_constraint: mtls}
  - id: off
    hosts: [off.test]
    providers:
      - {id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/jwks.json", algorithms: [RS256], clock_skew: 5s, audiences: ["off"], sender_constraint: "off"}
`

// DPoPKey is a DPoP client's key pair, its public JWK and RFC 7638
// thumbprint (the cnf.jkt of tokens bound to it).
type DPoPKey struct {
	Key *ecdsa.PrivateKey
	JWK map[string]any
	JKT string
}

// SenderKeySet holds two DPoP clients' keys and two client certificates
// (DER).
type SenderKeySet struct {
	Client, Other *DPoPKey
	Cert, Cert2   []byte
}

// SenderKeys returns the sender-constraint keys, made once per test binary.
var SenderKeys = sync.OnceValue(func() *SenderKeySet {
	return &SenderKeySet{Client: newDPoPKey(), Other: newDPoPKey(), Cert: newCert("client"), Cert2: newCert("other")}
})

func newDPoPKey() *DPoPKey {
	key := keytest.P256()
	j, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{})
	if err != nil {
		panic(err)
	}
	jkt, err := dpop.Thumbprint(j.Marshal())
	if err != nil {
		panic(err)
	}
	raw, _ := json.Marshal(j.Marshal())
	k := &DPoPKey{Key: key, JKT: jkt}
	_ = json.Unmarshal(raw, &k.JWK)
	return k
}

func newCert(cn string) []byte {
	key := keytest.P256()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotAfter: Now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	return der
}

// Proof makes an ES256 DPoP proof (RFC 9449 §4.2) by k for (htm, htu) and
// the access token tok, issued at Now.
func (k *DPoPKey) Proof(t testing.TB, htm, htu, tok, jti string) string {
	t.Helper()
	return k.ProofAt(t, htm, htu, tok, jti, Now)
}

// ProofAt is Proof issued at iat: a real binary checks iat against its
// own clock.
func (k *DPoPKey) ProofAt(t testing.TB, htm, htu, tok, jti string, iat time.Time) string {
	t.Helper()
	p := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"jti": jti, "htm": htm, "htu": htu, "iat": iat.Unix(), "ath": dpop.AccessTokenHash(tok),
	})
	p.Header["typ"] = "dpop+jwt"
	p.Header["jwk"] = k.JWK
	s, err := p.SignedString(k.Key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// PeerCertificate encodes der as Envoy's attributes.source.certificate:
// URL-encoded PEM.
func PeerCertificate(der []byte) string {
	return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

// SenderKeysFor adds Keys().RSA as kid "rsa" of every SenderConfig tenant
// other than acme (which NewFakeKeys has).
func SenderKeysFor(f *FakeKeys) *FakeKeys {
	for _, tn := range []string{"strict", "mtls", "off"} {
		f.Add(tn, "main", "rsa", &Keys().RSA.PublicKey)
	}
	return f
}

// SenderAudiences is an aud claim every SenderConfig tenant accepts.
var SenderAudiences = []any{"acme", "strict", "mtls", "off"}
