package e2e

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/certbind"
	"github.com/extauthz/extauthz/internal/checkclient"
)

// newProof is a fresh DPoP proof (new jti, issued now) by key for
// (htm, htu) and tok.
func newProof(t *testing.T, key *authztest.DPoPKey, htm, htu, tok string) string {
	t.Helper()
	return key.ProofAt(t, htm, htu, tok, rand.Text(), time.Now())
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
		req.Attributes.Source = &authv3.AttributeContext_Peer{Certificate: authztest.PeerCertificate(cert)}
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
	client, thief := authztest.SenderKeys().Client, authztest.SenderKeys().Other
	tok := f.acme.idp.token(t, "alice", map[string]any{"cnf": map[string]any{"jkt": client.JKT}})
	other := f.acme.idp.token(t, "bob", map[string]any{"cnf": map[string]any{"jkt": client.JKT}})

	proof := newProof(t, client, "POST", orders, tok)
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
		{"wrong method", "DPoP " + tok, newProof(t, client, "GET", orders, tok), "dpop_proof_invalid"},
		{"wrong URI", "DPoP " + tok, newProof(t, client, "POST", "https://api.acme.test/admin", tok), "dpop_proof_invalid"},
		{"wrong ath", "DPoP " + tok, newProof(t, client, "POST", orders, other), "dpop_proof_invalid"},
		{"wrong key", "DPoP " + tok, newProof(t, thief, "POST", orders, tok), "dpop_binding_mismatch"},
		{"no proof", "DPoP " + tok, "", "dpop_proof_missing"},
		{"presented as Bearer", "Bearer " + tok, newProof(t, client, "POST", orders, tok), "dpop_proof_missing"},
	} {
		wantReason(t, tc.name, senderCheck(t, b, tc.auth, tc.proof, nil), tc.want)
	}
	if res := senderCheck(t, b, "DPoP "+tok, newProof(t, client, "POST", orders, tok), nil); !res.Allowed {
		t.Fatalf("a fresh proof at the second replica: %s", res.Reason)
	}
}

// TestCertBound_RightCertificateAllowedOtherRefused: an RFC 8705 token is
// allowed over the certificate it is bound to, as Envoy sends it with
// include_peer_certificate, and refused with another or none.
func TestCertBound_RightCertificateAllowedOtherRefused(t *testing.T) {
	acme, p := startAcme(t, "ES256")
	cert, otherCert := authztest.SenderKeys().Cert, authztest.SenderKeys().Cert2
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
