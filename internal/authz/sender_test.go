package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/certbind"
	"github.com/extauthz/extauthz/internal/dpop"
)

const senderConfig = authztest.SenderConfig

func newSenderServer(t testing.TB, yaml string, replay dpop.ReplayCache) *Server {
	t.Helper()
	keys := authztest.SenderKeysFor(authztest.NewFakeKeys())
	return New(testSet(t, yaml), keys, Options{Now: func() time.Time { return testNow }, Logger: slog.New(slog.DiscardHandler), DPoPReplay: replay})
}

func cnf(m map[string]any) func(jwt.MapClaims) {
	return func(c jwt.MapClaims) {
		if m != nil {
			c["cnf"] = m
		}
		c["aud"] = authztest.SenderAudiences
	}
}

// dpopRequest is a POST to https://host/orders with tok under the DPoP
// scheme and a proof made by key.
func dpopRequest(t testing.TB, host, tok string, key *authztest.DPoPKey) *Request {
	return &Request{
		Host: host, Path: "/orders?page=2", Method: "POST", Scheme: "https",
		Headers: map[string]string{
			"authorization": "DPoP " + tok,
			"dpop":          key.Proof(t, "POST", "https://"+host+"/orders", tok, "jti-1"),
		},
	}
}

var pemURL = authztest.PeerCertificate

// senderCases are the sender-constraint rules, each with the reason it
// gives; TestDecide_SenderConstraints runs them and
// TestDecide_ReasonCodes counts their reasons as covered.
func senderCases(t *testing.T) []senderCase {
	k := authztest.SenderKeys()
	jkt := k.Client.JKT
	x5t := certbind.Thumbprint(k.Cert)
	dpopTok := rs256(t, acmeClaims(cnf(map[string]any{"jkt": jkt})))
	certTok := rs256(t, acmeClaims(cnf(map[string]any{"x5t#S256": x5t})))
	bothTok := rs256(t, acmeClaims(cnf(map[string]any{"jkt": jkt, "x5t#S256": x5t})))
	plainTok := rs256(t, acmeClaims(cnf(nil)))
	edit := func(r *Request, f func(r *Request)) *Request { f(r); return r }
	return []senderCase{
		{"bearer token as Bearer", acmeRequestFor("api.acme.test", plainTok), ReasonOK},
		{"DPoP-bound token with a valid proof", dpopRequest(t, "api.acme.test", dpopTok, k.Client), ReasonOK},
		{"DPoP scheme case-insensitive", edit(dpopRequest(t, "api.acme.test", dpopTok, k.Client), func(r *Request) { r.Headers["authorization"] = "dpop " + dpopTok }), ReasonOK},
		{"default port and host case", edit(dpopRequest(t, "API.acme.test:443", dpopTok, k.Client), func(r *Request) {}), ReasonOK},
		{"dpop mode, DPoP-bound token", dpopRequest(t, "dpop.test", dpopTok, k.Client), ReasonOK},
		{"off mode ignores cnf", acmeRequestFor("off.test", dpopTok), ReasonOK},

		{"DPoP-bound token as Bearer", edit(dpopRequest(t, "api.acme.test", dpopTok, k.Client), func(r *Request) { r.Headers["authorization"] = "Bearer " + dpopTok }), ReasonDPoPProofMissing},
		{"DPoP-bound token from a cookie", &Request{Host: "api.acme.test", Path: "/", Method: "GET", Headers: map[string]string{"cookie": "session=" + dpopTok}}, ReasonDPoPProofMissing},
		{"no DPoP header", edit(dpopRequest(t, "api.acme.test", dpopTok, k.Client), func(r *Request) { delete(r.Headers, "dpop") }), ReasonDPoPProofMissing},
		{"empty DPoP header", edit(dpopRequest(t, "api.acme.test", dpopTok, k.Client), func(r *Request) { r.Headers["dpop"] = "" }), ReasonDPoPProofMissing},
		{"two DPoP headers", edit(dpopRequest(t, "api.acme.test", dpopTok, k.Client), func(r *Request) { r.Headers["dpop"] += "," + r.Headers["dpop"] }), ReasonDPoPProofInvalid},
		{"wrong method", edit(dpopRequest(t, "api.acme.test", dpopTok, k.Client), func(r *Request) { r.Method = "DELETE" }), ReasonDPoPProofInvalid},
		{"wrong path", edit(dpopRequest(t, "api.acme.test", dpopTok, k.Client), func(r *Request) { r.Path = "/admin" }), ReasonDPoPProofInvalid},
		{"wrong scheme", edit(dpopRequest(t, "api.acme.test", dpopTok, k.Client), func(r *Request) { r.Scheme = "http" }), ReasonDPoPProofInvalid},
		{"unknown scheme", edit(dpopRequest(t, "api.acme.test", dpopTok, k.Client), func(r *Request) { r.Scheme = "" }), ReasonDPoPProofInvalid},
		{"proof for another token", edit(dpopRequest(t, "api.acme.test", dpopTok, k.Client), func(r *Request) {
			r.Headers["dpop"] = k.Client.Proof(t, "POST", "https://api.acme.test/orders", plainTok, "jti-1")
		}), ReasonDPoPProofInvalid},
		{"proof by another key", dpopRequest(t, "api.acme.test", dpopTok, k.Other), ReasonDPoPBindingMismatch},
		{"bearer token under the DPoP scheme", dpopRequest(t, "api.acme.test", plainTok, k.Client), ReasonDPoPBindingMismatch},
		{"dpop mode, bearer token", acmeRequestFor("dpop.test", plainTok), ReasonDPoPBindingMismatch},
		{"cnf not an object", acmeRequestFor("api.acme.test", rs256(t, acmeClaims(func(c jwt.MapClaims) { c["cnf"] = "x"; c["aud"] = "acme" }))), ReasonTokenMalformed},
		{"cnf.jkt not a string", acmeRequestFor("api.acme.test", rs256(t, acmeClaims(cnf(map[string]any{"jkt": 1})))), ReasonTokenMalformed},

		{"certificate-bound token with its certificate", edit(acmeRequestFor("api.acme.test", certTok), func(r *Request) { r.PeerCertificate = pemURL(k.Cert) }), ReasonOK},
		{"mtls mode with its certificate", edit(acmeRequestFor("mtls.test", certTok), func(r *Request) { r.PeerCertificate = pemURL(k.Cert) }), ReasonOK},
		{"certificate-bound token without a certificate", acmeRequestFor("api.acme.test", certTok), ReasonCertificateMissing},
		{"certificate-bound token with another certificate", edit(acmeRequestFor("api.acme.test", certTok), func(r *Request) { r.PeerCertificate = pemURL(k.Cert2) }), ReasonCertificateMismatch},
		{"garbage certificate", edit(acmeRequestFor("api.acme.test", certTok), func(r *Request) { r.PeerCertificate = "garbage" }), ReasonCertificateMismatch},
		{"mtls mode, bearer token", edit(acmeRequestFor("mtls.test", plainTok), func(r *Request) { r.PeerCertificate = pemURL(k.Cert) }), ReasonCertificateMismatch},
		{"XFCC not trusted by default", edit(acmeRequestFor("api.acme.test", certTok), func(r *Request) { r.ForwardedClientCert = xfcc(k.Cert) }), ReasonCertificateMissing},
		{"both bindings, right key, wrong certificate", edit(dpopRequest(t, "api.acme.test", bothTok, k.Client), func(r *Request) { r.PeerCertificate = pemURL(k.Cert2) }), ReasonCertificateMismatch},
		{"both bindings proven", edit(dpopRequest(t, "api.acme.test", bothTok, k.Client), func(r *Request) { r.PeerCertificate = pemURL(k.Cert) }), ReasonOK},
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
	k := authztest.SenderKeys()
	jkt := k.Client.JKT
	tok := rs256(t, acmeClaims(cnf(map[string]any{"jkt": jkt})))
	srv := newSenderServer(t, senderConfig, nil)
	r := dpopRequest(t, "api.acme.test", tok, k.Client)
	if d := srv.Decide(context.Background(), r); !d.Allowed {
		t.Fatalf("first use: %s", d.Reason)
	}
	d := srv.Decide(context.Background(), r)
	if d.Reason != ReasonDPoPProofReplayed {
		t.Fatalf("replay: %s, want %s", d.Reason, ReasonDPoPProofReplayed)
	}
	checkSenderDenial(t, &d)
	// A new proof (new jti) for the same token is fine.
	r.Headers["dpop"] = k.Client.Proof(t, "POST", "https://api.acme.test/orders", tok, "jti-2")
	if d := srv.Decide(context.Background(), r); !d.Allowed {
		t.Fatalf("fresh proof: %s", d.Reason)
	}
}

func TestDecide_DPoPOnlySource(t *testing.T) {
	k := authztest.SenderKeys()
	jkt := k.Client.JKT
	tok := rs256(t, acmeClaims(cnf(map[string]any{"jkt": jkt})))
	srv := newSenderServer(t, strings.Replace(senderConfig, `value_prefix: "Bearer "`, `value_prefix: "DPoP "`, 1), nil)
	if d := srv.Decide(context.Background(), dpopRequest(t, "api.acme.test", tok, k.Client)); !d.Allowed {
		t.Fatalf("DPoP-prefixed source: %s", d.Reason)
	}
}

func TestDecide_TrustedXFCC(t *testing.T) {
	k := authztest.SenderKeys()
	certTok := rs256(t, acmeClaims(cnf(map[string]any{"x5t#S256": certbind.Thumbprint(k.Cert)})))
	srv := newSenderServer(t, "trust_forwarded_client_cert: true\n"+senderConfig, nil)
	for _, tc := range []struct {
		name, xfcc, peer string
		want             Reason
	}{
		{"closest hop's hash", `Hash=` + strings.Repeat("00", 32) + "," + xfcc(k.Cert), "", ReasonOK},
		{"another certificate", xfcc(k.Cert2), "", ReasonCertificateMismatch},
		{"none", "", "", ReasonCertificateMissing},
		{"the peer certificate wins", xfcc(k.Cert), pemURL(k.Cert2), ReasonCertificateMismatch},
	} {
		r := acmeRequestFor("api.acme.test", certTok)
		r.ForwardedClientCert, r.PeerCertificate = tc.xfcc, tc.peer
		if d := srv.Decide(context.Background(), r); d.Reason != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, d.Reason, tc.want)
		}
	}
}

// TestDecide_ShadowReportsSenderFailures: a shadow tenant allows a
// DPoP-bound token sent as Bearer, reporting what enforce mode would say.
func TestDecide_ShadowReportsSenderFailures(t *testing.T) {
	k := authztest.SenderKeys()
	tok := rs256(t, acmeClaims(cnf(map[string]any{"jkt": k.Client.JKT})))
	srv := newSenderServer(t, strings.Replace(senderConfig, "  - id: acme\n", "  - id: acme\n    mode: shadow\n", 1), nil)
	d := srv.Decide(context.Background(), acmeRequestFor("api.acme.test", tok))
	if !d.Allowed || d.WouldDeny != ReasonDPoPProofMissing {
		t.Fatalf("Allowed %v, WouldDeny %q; want an allow that would deny %s", d.Allowed, d.WouldDeny, ReasonDPoPProofMissing)
	}
}
