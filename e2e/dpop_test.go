package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/certbind"
	"github.com/extauthz/extauthz/internal/checkclient"
	"github.com/extauthz/extauthz/internal/dpop"
)

// dpopClient is a DPoP client: its key pair and the JWK it proves with.
type dpopClient struct {
	key *ecdsa.PrivateKey
	jwk map[string]any
	jkt string
}

func newDPoPClient(t *testing.T) *dpopClient {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	j, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := dpop.Thumbprint(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(j.Marshal())
	c := &dpopClient{key: key, jkt: jkt}
	_ = json.Unmarshal(raw, &c.jwk)
	return c
}

// proof is a fresh proof (new jti) of c for (htm, htu) and tok.
func (c *dpopClient) proof(t *testing.T, htm, htu, tok string) string {
	t.Helper()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	p := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": htm, "htu": htu, "iat": time.Now().Unix(), "ath": dpop.AccessTokenHash(tok),
	})
	p.Header["typ"] = "dpop+jwt"
	p.Header["jwk"] = c.jwk
	s, err := p.SignedString(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// senderCheck sends a POST https://api.acme.test/orders?page=2 CheckRequest
// with the given authorization, DPoP proof and peer certificate (DER).
func senderCheck(t *testing.T, p *proc, authorization, proof string, cert []byte) checkclient.Result {
	t.Helper()
	req := checkclient.Request{
		Host: "api.acme.test", Path: "/orders?page=2", Method: "POST",
		Headers: map[string]string{"authorization": authorization},
	}.CheckRequest()
	if proof != "" {
		req.Attributes.Request.Http.Headers["dpop"] = proof
	}
	if cert != nil {
		req.Attributes.Source = &authv3.AttributeContext_Peer{
			Certificate: url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}))),
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(p.conn).Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return checkclient.Interpret(resp)
}

func wantReason(t *testing.T, what string, res checkclient.Result, reason string) {
	t.Helper()
	if res.Reason != reason {
		t.Fatalf("%s: reason %q (HTTP %d), want %q", what, res.Reason, res.HTTPStatus, reason)
	}
}

const orders = "https://api.acme.test/orders"

// TestDPoP_FleetAllowsProvenTokensAndRefusesReplays runs two replicas
// sharing one Redis: a proof accepted by one is refused by the other, and
// each broken proof is refused with its reason and RFC 9449's challenge.
func TestDPoP_FleetAllowsProvenTokensAndRefusesReplays(t *testing.T) {
	f := redisNewFleet(t)
	a, b := f.start(""), f.start("")
	client, thief := newDPoPClient(t), newDPoPClient(t)
	tok := f.acme.idp.token(t, "alice", map[string]any{"cnf": map[string]any{"jkt": client.jkt}})
	other := f.acme.idp.token(t, "bob", map[string]any{"cnf": map[string]any{"jkt": client.jkt}})

	proof := client.proof(t, "POST", orders, tok)
	res := senderCheck(t, a, "DPoP "+tok, proof, nil)
	if !res.Allowed {
		t.Fatalf("proven DPoP request denied: %s", res.Reason)
	}
	res = senderCheck(t, b, "DPoP "+tok, proof, nil)
	wantReason(t, "the same proof at another replica", res, "dpop_proof_replayed")
	var challenge string
	for _, h := range res.Headers {
		if h.Name == "www-authenticate" {
			challenge = h.Value
		}
	}
	if res.HTTPStatus != 401 || !strings.HasPrefix(challenge, `DPoP realm="acme", error="invalid_dpop_proof"`) || !strings.Contains(challenge, `algs="ES256 EdDSA RS256 PS256"`) {
		t.Errorf("replay: HTTP %d, WWW-Authenticate %q", res.HTTPStatus, challenge)
	}

	for _, tc := range []struct {
		name, auth, proof, want string
	}{
		{"wrong method", "DPoP " + tok, client.proof(t, "GET", orders, tok), "dpop_proof_invalid"},
		{"wrong URI", "DPoP " + tok, client.proof(t, "POST", "https://api.acme.test/admin", tok), "dpop_proof_invalid"},
		{"wrong ath", "DPoP " + tok, client.proof(t, "POST", orders, other), "dpop_proof_invalid"},
		{"wrong key", "DPoP " + tok, thief.proof(t, "POST", orders, tok), "dpop_binding_mismatch"},
		{"no proof", "DPoP " + tok, "", "dpop_proof_missing"},
		{"presented as Bearer", "Bearer " + tok, client.proof(t, "POST", orders, tok), "dpop_proof_missing"},
	} {
		wantReason(t, tc.name, senderCheck(t, b, tc.auth, tc.proof, nil), tc.want)
	}
	if res := senderCheck(t, b, "DPoP "+tok, client.proof(t, "POST", orders, tok), nil); !res.Allowed {
		t.Fatalf("a fresh proof at the second replica: %s", res.Reason)
	}
}

func selfSigned(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), crypto.Signer(key))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestCertBound_RightCertificateAllowedOtherRefused: an RFC 8705 token is
// allowed over the certificate it is bound to, as Envoy sends it with
// include_peer_certificate, and refused with another or none.
func TestCertBound_RightCertificateAllowedOtherRefused(t *testing.T) {
	acme, p := startAcme(t, "ES256")
	cert, otherCert := selfSigned(t, "client"), selfSigned(t, "client")
	tok := acme.token(t, "alice", map[string]any{"cnf": map[string]any{"x5t#S256": certbind.Thumbprint(cert)}})

	if res := senderCheck(t, p, "Bearer "+tok, "", cert); !res.Allowed {
		t.Fatalf("bound certificate: denied %s", res.Reason)
	}
	wantReason(t, "another certificate", senderCheck(t, p, "Bearer "+tok, "", otherCert), "certificate_mismatch")
	res := senderCheck(t, p, "Bearer "+tok, "", nil)
	wantReason(t, "no certificate", res, "certificate_missing")
	if res.HTTPStatus != 401 {
		t.Errorf("no certificate: HTTP %d, want 401", res.HTTPStatus)
	}
}
