package jwkscache_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// testCert issues a certificate for key, signed by parent/parentKey (self-signed when nil).
func testCert(t *testing.T, cn string, key *ecdsa.PrivateKey, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if !isCA {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{cn}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRefresh_SPKIPinMustBeInVerifiedChain is the impostor attack on
// pinned_spki: a server with a publicly trusted certificate of its own
// appends the real identity provider's certificate to the chain it sends.
// The pin names the real certificate's key, which is among the peer's
// certificates but in no verified chain, so the fetch is refused during
// the handshake.
func TestRefresh_SPKIPinMustBeInVerifiedChain(t *testing.T) {
	caKey, impKey, realKey := newECKey(t), newECKey(t), newECKey(t)
	ca := testCert(t, "trusted root", caKey, true, nil, nil)
	real := testCert(t, "idp.example", realKey, false, ca, caKey)
	impostor := testCert(t, "127.0.0.1", impKey, false, ca, caKey)
	realPin := sha256.Sum256(real.RawSubjectPublicKeyInfo)
	caPin := sha256.Sum256(ca.RawSubjectPublicKeyInfo)

	k := newECKey(t)
	doc := jwksDoc(t, jwkJSON(t, &k.PublicKey, "k1", ""))
	var hits atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write(doc)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{
		Certificate: [][]byte{impostor.Raw, real.Raw}, // the real IdP's certificate appended
		PrivateKey:  impKey,
	}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}

	for _, tc := range []struct {
		name string
		pin  [32]byte
		ok   bool
	}{
		{"pin of a certificate the peer only sent", realPin, false},
		{"pin of the verified chain's root", caPin, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			reg, err := jwkscache.New(jwkscache.Options{HTTPClient: client})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = reg.Close() })
			r := reg.NewRegistration("acme", "main", srv.URL+"/jwks")
			r.RetryPolicy.MaxRetries = 0
			r.PinnedSPKI = []string{base64.StdEncoding.EncodeToString(tc.pin[:])}
			if err := reg.Register(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = reg.Key(ctx, "acme", "main", "k1", "ES256")
			if tc.ok {
				if err != nil {
					t.Fatalf("lookup: %v", err)
				}
				return
			}
			wantErr(t, err, jwkscache.ErrUnavailable)
			if !strings.Contains(err.Error(), "pinned_spki") {
				t.Fatalf("error %v does not mention pinned_spki", err)
			}
			if got := hits.Load(); got != 0 {
				t.Fatalf("the impostor got %d requests, want 0", got)
			}
		})
	}
}
