package grpcauthz

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/certbind"
	"github.com/extauthz/extauthz/internal/dpop"
)

// newSenderServer serves authztest.SenderConfig, remembering DPoP proofs in
// replay (nil: authz's default).
func newSenderServer(t testing.TB, replay dpop.ReplayCache) *Server {
	t.Helper()
	keys := authztest.SenderKeysFor(authztest.NewFakeKeys())
	return New(authz.New(authztest.Set(t, authztest.SenderConfig), keys, authz.Options{
		Now: func() time.Time { return authztest.Now }, Logger: slog.New(slog.DiscardHandler), DPoPReplay: replay,
	}))
}

// boundToken is an acme RS256 token whose cnf is cnf.
func boundToken(t testing.TB, cnf map[string]any) string {
	return authztest.RS256(t, authztest.AcmeClaims(func(c jwt.MapClaims) {
		c["cnf"] = cnf
		c["aud"] = authztest.SenderAudiences
	}))
}

// dpopCheckRequest is Envoy's CheckRequest for POST scheme://api.acme.test/orders?page=2
// with tok under the DPoP scheme, a proof (jti) and the peer certificate.
func dpopCheckRequest(t testing.TB, scheme, tok, jti, cert string) *authv3.CheckRequest {
	k := authztest.SenderKeys()
	req := checkRequest("api.acme.test", "/orders?page=2", map[string]string{
		"authorization": "DPoP " + tok,
		"dpop":          k.Client.Proof(t, "POST", "https://api.acme.test/orders", tok, jti),
	}, nil)
	req.Attributes.Request.Http.Method = "POST"
	req.Attributes.Request.Http.Scheme = scheme
	req.Attributes.Source = &authv3.AttributeContext_Peer{Certificate: cert}
	return req
}

// reasonOf is the reason of a CheckResponse.
func reasonOf(resp *authv3.CheckResponse) authz.Reason {
	if resp.GetOkResponse() != nil {
		return authz.ReasonOK
	}
	return authz.Reason(resp.GetStatus().GetMessage())
}

// TestCheck_EnvoyAttributesReachTheSenderChecks: the Envoy mapping fills
// the scheme (htu), the peer certificate and XFCC.
func TestCheck_EnvoyAttributesReachTheSenderChecks(t *testing.T) {
	k := authztest.SenderKeys()
	tok := boundToken(t, map[string]any{"jkt": k.Client.JKT, "x5t#S256": certbind.Thumbprint(k.Cert)})
	srv := newSenderServer(t, nil)
	for _, tc := range []struct {
		name         string
		scheme, cert string
		want         authz.Reason
	}{
		{"https with the certificate", "https", authztest.PeerCertificate(k.Cert), authz.ReasonOK},
		{"http", "http", authztest.PeerCertificate(k.Cert), authz.ReasonDPoPProofInvalid},
		{"no certificate", "https", "", authz.ReasonCertificateMissing},
		{"another certificate", "https", authztest.PeerCertificate(k.Cert2), authz.ReasonCertificateMismatch},
	} {
		resp, _ := srv.Check(context.Background(), dpopCheckRequest(t, tc.scheme, tok, tc.name, tc.cert))
		if got := reasonOf(resp); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	req := dpopCheckRequest(t, "https", tok, "x", "cert")
	req.Attributes.Request.Http.Headers["x-forwarded-client-cert"] = "Hash=ab"
	if r := ToRequest(req); r.ForwardedClientCert != "Hash=ab" || r.Scheme != "https" || r.PeerCertificate != "cert" {
		t.Errorf("ToRequest: XFCC %q scheme %q certificate %q", r.ForwardedClientCert, r.Scheme, r.PeerCertificate)
	}
}

// TestCheck_DPoPDenialsOverGRPC: the DPoP challenge and the 503 of a
// replay check that cannot answer reach Envoy.
func TestCheck_DPoPDenialsOverGRPC(t *testing.T) {
	k := authztest.SenderKeys()
	tok := boundToken(t, map[string]any{"jkt": k.Client.JKT})
	srv := newSenderServer(t, nil)
	req := dpopCheckRequest(t, "https", tok, "once", "")
	if resp, _ := srv.Check(context.Background(), req); resp.GetOkResponse() == nil {
		t.Fatalf("first use denied: %s", reasonOf(resp))
	}
	resp, _ := srv.Check(context.Background(), req)
	if c := codes.Code(resp.GetStatus().GetCode()); c != codes.Unauthenticated || reasonOf(resp) != authz.ReasonDPoPProofReplayed {
		t.Fatalf("replay: %v %s", c, reasonOf(resp))
	}
	var challenge string
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "www-authenticate" {
			challenge = h.GetHeader().GetValue()
		}
	}
	want := `DPoP realm="acme", error="invalid_dpop_proof", error_description="` + authz.ReasonDPoPProofReplayed.Description() + `", algs="ES256 EdDSA"`
	if challenge != want || resp.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Errorf("replay: HTTP %d, WWW-Authenticate %q, want %q", resp.GetDeniedResponse().GetStatus().GetCode(), challenge, want)
	}

	down := newSenderServer(t, downReplay{})
	resp, _ = down.Check(context.Background(), dpopCheckRequest(t, "https", tok, "down", ""))
	if c := codes.Code(resp.GetStatus().GetCode()); c != codes.Unavailable || reasonOf(resp) != authz.ReasonDPoPReplayUnavailable {
		t.Fatalf("replay cache down: %v %s, want UNAVAILABLE %s", c, reasonOf(resp), authz.ReasonDPoPReplayUnavailable)
	}
	if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 503 {
		t.Fatalf("replay cache down: HTTP %d, want 503", got)
	}
}

type downReplay struct{}

func (downReplay) Once(context.Context, string, time.Duration) (bool, error) {
	return false, errors.New("redis down")
}

// freshReplay accepts every proof: the benchmark sends one proof over and
// over, and measures the checks, not the replay cache (dpop's
// BenchmarkMemoryReplay_Once does).
type freshReplay struct{}

func (freshReplay) Once(context.Context, string, time.Duration) (bool, error) { return true, nil }

// BenchmarkCheck_DPoP measures an ES256 DPoP Check (token and proof: two
// signatures) beside the same kind of token's plain Bearer Check, in
// process.
func BenchmarkCheck_DPoP(b *testing.B) {
	k, sk := authztest.Keys(), authztest.SenderKeys()
	claims := authztest.AcmeClaims(func(c jwt.MapClaims) { c["aud"] = authztest.SenderAudiences })
	plain := authztest.Sign(b, jwt.SigningMethodES256, k.EC, "ec", claims, nil)
	claims["cnf"] = map[string]any{"jkt": sk.Client.JKT}
	bound := authztest.Sign(b, jwt.SigningMethodES256, k.EC, "ec", claims, nil)
	keys := authztest.NewFakeKeys()
	srv := New(authz.New(authztest.Set(b, `
tenants:
  - id: acme
    hosts: [api.acme.test]
    providers:
      - {id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/jwks.json", algorithms: [ES256]}
`), keys, authz.Options{Now: func() time.Time { return authztest.Now }, Logger: slog.New(slog.DiscardHandler), DPoPReplay: freshReplay{}}))
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"bearer", map[string]string{"authorization": "Bearer " + plain}},
		{"dpop", map[string]string{
			"authorization": "DPoP " + bound,
			"dpop":          sk.Client.Proof(b, "POST", "https://api.acme.test/orders", bound, "jti-1"),
		}},
	} {
		req := checkRequest("api.acme.test", "/orders?page=2", tc.headers, nil)
		req.Attributes.Request.Http.Method = "POST"
		req.Attributes.Request.Http.Scheme = "https"
		if resp, _ := srv.Check(context.Background(), req); resp.GetOkResponse() == nil {
			b.Fatalf("%s denied: %v", tc.name, resp.GetStatus())
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if resp, _ := srv.Check(context.Background(), req); resp.GetOkResponse() == nil {
					b.Fatal("denied")
				}
			}
		})
	}
}
