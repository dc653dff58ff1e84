package authz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/certbind"
	"github.com/extauthz/extauthz/internal/dpop"
)

// senderConfig has one tenant per sender_constraint mode, each with one
// provider "main" trusting the acme keys.
const senderConfig = `
dpop: {algorithms: [ES256, EdDSA], max_age: 30s}
tenants:
  - id: acme
    hosts: [api.acme.test]
    providers:
      - {id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/jwks.json", algorithms: [RS256], clock_skew: 5s,
         from_headers: [{name: authorization, value_prefix: "Bearer "}], from_cookies: [session]}
  - id: strict
    hosts: [dpop.test]
    sender_constraint: dpop
    providers:
      - {id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/jwks.json", algorithms: [RS256], clock_skew: 5s}
  - id: mtls
    hosts: [mtls.test]
    providers:
      - {id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/jwks.json", algorithms: [RS256], clock_skew: 5s, sender_constraint: mtls}
  - id: off
    hosts: [off.test]
    providers:
      - {id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/jwks.json", algorithms: [RS256], clock_skew: 5s, sender_constraint: "off"}
`

// senderKeys are the client's proof keys and certificates.
var senderKeys = sync.OnceValue(func() (k struct {
	client, other *ecdsa.PrivateKey
	cert, cert2   []byte // DER
}) {
	k.client, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k.other, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mk := func(cn string) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotAfter: testNow.Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.client.Public(), k.client)
		if err != nil {
			panic(err)
		}
		return der
	}
	k.cert, k.cert2 = mk("client"), mk("other")
	return k
})

func newSenderServer(t testing.TB, yaml string, replay dpop.ReplayCache) *Server {
	t.Helper()
	keys := newFakeKeys()
	for _, tn := range []string{"strict", "mtls", "off"} {
		keys.keys[tn+"/main/rsa"] = keys.keys["acme/main/rsa"]
	}
	return New(testSet(t, yaml), keys, Options{Now: func() time.Time { return testNow }, Logger: slog.New(slog.DiscardHandler), DPoPReplay: replay})
}

// jktOf is the RFC 7638 thumbprint of key's public JWK.
func jktOf(t testing.TB, key crypto.Signer) (string, map[string]any) {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tp, err := dpop.Thumbprint(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(j.Marshal())
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return tp, m
}

// mintProof makes a DPoP proof for (htm, htu) and tok with key.
func mintProof(t testing.TB, key *ecdsa.PrivateKey, htm, htu, tok, jti string) string {
	t.Helper()
	_, jwk := jktOf(t, key)
	p := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"jti": jti, "htm": htm, "htu": htu, "iat": testNow.Unix(), "ath": dpop.AccessTokenHash(tok),
	})
	p.Header["typ"] = "dpop+jwt"
	p.Header["jwk"] = jwk
	s, err := p.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func cnf(m map[string]any) func(jwt.MapClaims) {
	return func(c jwt.MapClaims) {
		if m != nil {
			c["cnf"] = m
		}
		delete(c, "aud")
	}
}

// dpopRequest is a POST to https://host/orders with tok under the DPoP
// scheme and a proof made by key.
func dpopRequest(t testing.TB, host, tok string, key *ecdsa.PrivateKey) *Request {
	return &Request{
		Host: host, Path: "/orders?page=2", Method: "POST", Scheme: "https",
		Headers: map[string]string{
			"authorization": "DPoP " + tok,
			"dpop":          mintProof(t, key, "POST", "https://"+host+"/orders", tok, "jti-1"),
		},
	}
}

func pemURL(der []byte) string {
	return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

// senderCases are the sender-constraint rules, each with the reason it
// gives; TestDecide_SenderConstraints runs them and
// TestDecide_ReasonCodes counts their reasons as covered.
func senderCases(t *testing.T) []senderCase {
	k := senderKeys()
	jkt, _ := jktOf(t, k.client)
	x5t := certbind.Thumbprint(k.cert)
	dpopTok := rs256(t, acmeClaims(cnf(map[string]any{"jkt": jkt})))
	certTok := rs256(t, acmeClaims(cnf(map[string]any{"x5t#S256": x5t})))
	bothTok := rs256(t, acmeClaims(cnf(map[string]any{"jkt": jkt, "x5t#S256": x5t})))
	plainTok := rs256(t, acmeClaims(cnf(nil)))
	edit := func(r *Request, f func(r *Request)) *Request { f(r); return r }
	return []senderCase{
		{"bearer token as Bearer", acmeRequestFor("api.acme.test", plainTok), ReasonOK},
		{"DPoP-bound token with a valid proof", dpopRequest(t, "api.acme.test", dpopTok, k.client), ReasonOK},
		{"DPoP scheme case-insensitive", edit(dpopRequest(t, "api.acme.test", dpopTok, k.client), func(r *Request) { r.Headers["authorization"] = "dpop " + dpopTok }), ReasonOK},
		{"default port and host case", edit(dpopRequest(t, "API.acme.test:443", dpopTok, k.client), func(r *Request) {}), ReasonOK},
		{"dpop mode, DPoP-bound token", dpopRequest(t, "dpop.test", dpopTok, k.client), ReasonOK},
		{"off mode ignores cnf", acmeRequestFor("off.test", dpopTok), ReasonOK},

		{"DPoP-bound token as Bearer", edit(dpopRequest(t, "api.acme.test", dpopTok, k.client), func(r *Request) { r.Headers["authorization"] = "Bearer " + dpopTok }), ReasonDPoPProofMissing},
		{"DPoP-bound token from a cookie", &Request{Host: "api.acme.test", Path: "/", Method: "GET", Headers: map[string]string{"cookie": "session=" + dpopTok}}, ReasonDPoPProofMissing},
		{"no DPoP header", edit(dpopRequest(t, "api.acme.test", dpopTok, k.client), func(r *Request) { delete(r.Headers, "dpop") }), ReasonDPoPProofMissing},
		{"empty DPoP header", edit(dpopRequest(t, "api.acme.test", dpopTok, k.client), func(r *Request) { r.Headers["dpop"] = "" }), ReasonDPoPProofMissing},
		{"two DPoP headers", edit(dpopRequest(t, "api.acme.test", dpopTok, k.client), func(r *Request) { r.Headers["dpop"] += "," + r.Headers["dpop"] }), ReasonDPoPProofInvalid},
		{"wrong method", edit(dpopRequest(t, "api.acme.test", dpopTok, k.client), func(r *Request) { r.Method = "DELETE" }), ReasonDPoPProofInvalid},
		{"wrong path", edit(dpopRequest(t, "api.acme.test", dpopTok, k.client), func(r *Request) { r.Path = "/admin" }), ReasonDPoPProofInvalid},
		{"wrong scheme", edit(dpopRequest(t, "api.acme.test", dpopTok, k.client), func(r *Request) { r.Scheme = "http" }), ReasonDPoPProofInvalid},
		{"unknown scheme", edit(dpopRequest(t, "api.acme.test", dpopTok, k.client), func(r *Request) { r.Scheme = "" }), ReasonDPoPProofInvalid},
		{"proof for another token", edit(dpopRequest(t, "api.acme.test", dpopTok, k.client), func(r *Request) {
			r.Headers["dpop"] = mintProof(t, k.client, "POST", "https://api.acme.test/orders", plainTok, "jti-1")
		}), ReasonDPoPProofInvalid},
		{"proof by another key", dpopRequest(t, "api.acme.test", dpopTok, k.other), ReasonDPoPBindingMismatch},
		{"bearer token under the DPoP scheme", dpopRequest(t, "api.acme.test", plainTok, k.client), ReasonDPoPBindingMismatch},
		{"dpop mode, bearer token", acmeRequestFor("dpop.test", plainTok), ReasonDPoPBindingMismatch},
		{"cnf not an object", acmeRequestFor("api.acme.test", rs256(t, acmeClaims(func(c jwt.MapClaims) { c["cnf"] = "x"; delete(c, "aud") }))), ReasonTokenMalformed},
		{"cnf.jkt not a string", acmeRequestFor("api.acme.test", rs256(t, acmeClaims(cnf(map[string]any{"jkt": 1})))), ReasonTokenMalformed},

		{"certificate-bound token with its certificate", edit(acmeRequestFor("api.acme.test", certTok), func(r *Request) { r.PeerCertificate = pemURL(k.cert) }), ReasonOK},
		{"mtls mode with its certificate", edit(acmeRequestFor("mtls.test", certTok), func(r *Request) { r.PeerCertificate = pemURL(k.cert) }), ReasonOK},
		{"certificate-bound token without a certificate", acmeRequestFor("api.acme.test", certTok), ReasonCertificateMissing},
		{"certificate-bound token with another certificate", edit(acmeRequestFor("api.acme.test", certTok), func(r *Request) { r.PeerCertificate = pemURL(k.cert2) }), ReasonCertificateMismatch},
		{"garbage certificate", edit(acmeRequestFor("api.acme.test", certTok), func(r *Request) { r.PeerCertificate = "garbage" }), ReasonCertificateMismatch},
		{"mtls mode, bearer token", edit(acmeRequestFor("mtls.test", plainTok), func(r *Request) { r.PeerCertificate = pemURL(k.cert) }), ReasonCertificateMismatch},
		{"XFCC not trusted by default", edit(acmeRequestFor("api.acme.test", certTok), func(r *Request) { r.ForwardedClientCert = xfcc(k.cert) }), ReasonCertificateMissing},
		{"both bindings, right key, wrong certificate", edit(dpopRequest(t, "api.acme.test", bothTok, k.client), func(r *Request) { r.PeerCertificate = pemURL(k.cert2) }), ReasonCertificateMismatch},
		{"both bindings proven", edit(dpopRequest(t, "api.acme.test", bothTok, k.client), func(r *Request) { r.PeerCertificate = pemURL(k.cert) }), ReasonOK},
	}
}

type senderCase struct {
	name string
	req  *Request
	want Reason
}

func acmeRequestFor(host, tok string) *Request {
	r := acmeRequest(tok)
	r.Host = host
	return r
}

func xfcc(der []byte) string {
	sum := sha256.Sum256(der)
	return `By=spiffe://gw;Hash=` + hex.EncodeToString(sum[:]) + `;Subject="CN=client"`
}

// senderReasonsCovered are the reasons senderCases and the tests below
// cover, for TestDecide_ReasonCodes.
var senderReasonsCovered = map[Reason]bool{
	ReasonDPoPProofMissing: true, ReasonDPoPProofInvalid: true, ReasonDPoPProofReplayed: true,
	ReasonDPoPBindingMismatch: true, ReasonDPoPReplayUnavailable: true,
	ReasonCertificateMissing: true, ReasonCertificateMismatch: true,
}

func TestDecide_SenderConstraints(t *testing.T) {
	seen := map[Reason]bool{}
	for _, tc := range senderCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSenderServer(t, senderConfig, nil)
			d := srv.Decide(context.Background(), tc.req)
			if d.Reason != tc.want {
				t.Fatalf("Reason = %s, want %s", d.Reason, tc.want)
			}
			seen[d.Reason] = true
			checkSenderDenial(t, &d)
		})
	}
	for r := range senderReasonsCovered {
		if !seen[r] && r != ReasonDPoPProofReplayed && r != ReasonDPoPReplayUnavailable {
			t.Errorf("reason %s has no case", r)
		}
	}
}

// checkSenderDenial checks the challenge: RFC 9449 §7.1 for DPoP reasons,
// RFC 6750 §3 invalid_token for the others.
func checkSenderDenial(t *testing.T, d *Decision) {
	t.Helper()
	switch {
	case d.Allowed:
	case d.Reason.isDPoP():
		want := `DPoP realm="` + d.TenantID + `", error="invalid_dpop_proof", error_description="` + d.Description + `", algs="ES256 EdDSA"`
		if d.WWWAuthenticate != want || d.HTTPStatus != 401 {
			t.Errorf("%d WWW-Authenticate = %s, want %s", d.HTTPStatus, d.WWWAuthenticate, want)
		}
	default:
		checkDenialShape(t, d, true)
	}
}

func TestDecide_DPoPReplayRefused(t *testing.T) {
	k := senderKeys()
	jkt, _ := jktOf(t, k.client)
	tok := rs256(t, acmeClaims(cnf(map[string]any{"jkt": jkt})))
	srv := newSenderServer(t, senderConfig, nil)
	r := dpopRequest(t, "api.acme.test", tok, k.client)
	if d := srv.Decide(context.Background(), r); !d.Allowed {
		t.Fatalf("first use: %s", d.Reason)
	}
	d := srv.Decide(context.Background(), r)
	if d.Reason != ReasonDPoPProofReplayed {
		t.Fatalf("replay: %s, want %s", d.Reason, ReasonDPoPProofReplayed)
	}
	checkSenderDenial(t, &d)
	// A new proof (new jti) for the same token is fine.
	r.Headers["dpop"] = mintProof(t, k.client, "POST", "https://api.acme.test/orders", tok, "jti-2")
	if d := srv.Decide(context.Background(), r); !d.Allowed {
		t.Fatalf("fresh proof: %s", d.Reason)
	}
}

type downReplay struct{}

func (downReplay) Once(context.Context, string, time.Duration) (bool, error) {
	return false, errors.New("redis down")
}

func TestCheck_DPoPReplayUnavailableIs503(t *testing.T) {
	k := senderKeys()
	jkt, _ := jktOf(t, k.client)
	tok := rs256(t, acmeClaims(cnf(map[string]any{"jkt": jkt})))
	srv := newSenderServer(t, senderConfig, downReplay{})
	r := dpopRequest(t, "api.acme.test", tok, k.client)
	req := checkRequest("api.acme.test", "/orders", r.Headers, nil)
	req.Attributes.Request.Http.Method = "POST"
	req.Attributes.Request.Http.Scheme = "https"
	resp, _ := srv.Check(context.Background(), req)
	if c := codes.Code(resp.GetStatus().GetCode()); c != codes.Unavailable || resp.GetStatus().GetMessage() != string(ReasonDPoPReplayUnavailable) {
		t.Fatalf("status %v %q, want UNAVAILABLE %s", c, resp.GetStatus().GetMessage(), ReasonDPoPReplayUnavailable)
	}
	if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 503 {
		t.Fatalf("HTTP %d, want 503", got)
	}
}

// TestDecide_DPoPOnlySource: a provider that reads only "DPoP " tokens.
func TestDecide_DPoPOnlySource(t *testing.T) {
	k := senderKeys()
	jkt, _ := jktOf(t, k.client)
	tok := rs256(t, acmeClaims(cnf(map[string]any{"jkt": jkt})))
	srv := newSenderServer(t, strings.Replace(senderConfig, `value_prefix: "Bearer "`, `value_prefix: "DPoP "`, 1), nil)
	if d := srv.Decide(context.Background(), dpopRequest(t, "api.acme.test", tok, k.client)); !d.Allowed {
		t.Fatalf("DPoP-prefixed source: %s", d.Reason)
	}
}

func TestDecide_TrustedXFCC(t *testing.T) {
	k := senderKeys()
	certTok := rs256(t, acmeClaims(cnf(map[string]any{"x5t#S256": certbind.Thumbprint(k.cert)})))
	srv := newSenderServer(t, "trust_forwarded_client_cert: true\n"+senderConfig, nil)
	for _, tc := range []struct {
		name, xfcc, peer string
		want             Reason
	}{
		{"closest hop's hash", `Hash=` + strings.Repeat("00", 32) + "," + xfcc(k.cert), "", ReasonOK},
		{"another certificate", xfcc(k.cert2), "", ReasonCertificateMismatch},
		{"none", "", "", ReasonCertificateMissing},
		{"the peer certificate wins", xfcc(k.cert), pemURL(k.cert2), ReasonCertificateMismatch},
	} {
		r := acmeRequestFor("api.acme.test", certTok)
		r.ForwardedClientCert, r.PeerCertificate = tc.xfcc, tc.peer
		if d := srv.Decide(context.Background(), r); d.Reason != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, d.Reason, tc.want)
		}
	}
}

// TestCheck_EnvoyAttributesReachTheSenderChecks: the Envoy mapping fills
// the scheme (htu), the peer certificate and XFCC.
func TestCheck_EnvoyAttributesReachTheSenderChecks(t *testing.T) {
	k := senderKeys()
	jkt, _ := jktOf(t, k.client)
	tok := rs256(t, acmeClaims(cnf(map[string]any{"jkt": jkt, "x5t#S256": certbind.Thumbprint(k.cert)})))
	srv := newSenderServer(t, senderConfig, nil)
	mk := func(scheme, cert, jti string) *authv3.CheckRequest {
		req := checkRequest("api.acme.test", "/orders?page=2", map[string]string{
			"authorization": "DPoP " + tok,
			"dpop":          mintProof(t, k.client, "POST", "https://api.acme.test/orders", tok, jti),
		}, nil)
		req.Attributes.Request.Http.Method = "POST"
		req.Attributes.Request.Http.Scheme = scheme
		req.Attributes.Source = &authv3.AttributeContext_Peer{Certificate: cert}
		return req
	}
	for _, tc := range []struct {
		name         string
		scheme, cert string
		want         Reason
	}{
		{"https with the certificate", "https", pemURL(k.cert), ReasonOK},
		{"http", "http", pemURL(k.cert), ReasonDPoPProofInvalid},
		{"no certificate", "https", "", ReasonCertificateMissing},
	} {
		resp, _ := srv.Check(context.Background(), mk(tc.scheme, tc.cert, tc.name))
		got := Reason(resp.GetStatus().GetMessage())
		if resp.GetOkResponse() != nil {
			got = ReasonOK
		}
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	r := RequestFromEnvoy(func() *authv3.CheckRequest {
		req := mk("https", "", "x")
		req.Attributes.Request.Http.Headers["x-forwarded-client-cert"] = "Hash=ab"
		return req
	}())
	if r.ForwardedClientCert != "Hash=ab" || r.Scheme != "https" {
		t.Errorf("RequestFromEnvoy: XFCC %q scheme %q", r.ForwardedClientCert, r.Scheme)
	}
}
