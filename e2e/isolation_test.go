package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/extauthz/extauthz/internal/checkclient"
)

// secondAudience gives the last tenant of cfg (whose providers config()
// gives audiences [orders]) the audience aud instead.
func secondAudience(cfg, aud string) string {
	i := strings.LastIndex(cfg, "audiences: [orders]")
	return cfg[:i] + "audiences: [" + aud + "]" + cfg[i+len("audiences: [orders]"):]
}

// TestIsolation_SharedIssuerNeedsDisjointAudiences: two tenants trusting the
// same issuer are refused by -check and by a reload unless their audiences
// are disjoint; with disjoint audiences, a token minted for one tenant does
// not pass on the other.
func TestIsolation_SharedIssuerNeedsDisjointAudiences(t *testing.T) {
	acme := newIdP(t, "ES256")
	addr, ca := freeAddr(t), caFile(t, acme.srv)
	one := config(addr, ca, tenant{id: "acme", host: "api.acme.test", idp: acme})
	shared := config(addr, ca,
		tenant{id: "acme", host: "api.acme.test", idp: acme},
		tenant{id: "globex", host: "api.globex.test", idp: acme}, // same issuer, same audience
	)
	disjoint := secondAudience(shared, "invoices")

	path := filepath.Join(t.TempDir(), "shared.yaml")
	if err := os.WriteFile(path, []byte(shared), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "-config", path, "-check")
	if code == 0 || !strings.Contains(stderr, "tenants[1].providers[0].audiences") {
		t.Fatalf("-check accepted a shared issuer with a shared audience (exit %d):\n%s", code, stderr)
	}

	p := start(t, addr, one)
	acmeTok := acme.token(t, "alice", nil) // aud orders
	p.rewrite(shared)
	p.signal(syscall.SIGHUP)
	p.waitLog("config reload refused", 1)
	if res := p.check(checkclient.Request{Host: "api.globex.test", Token: acmeTok}); res.Reason != "tenant_unknown" {
		t.Fatalf("after a refused reload: %s, want tenant_unknown (globex never added)", res.Reason)
	}

	p.rewrite(disjoint)
	p.signal(syscall.SIGHUP)
	p.waitLog("config reloaded", 1)
	globexTok := acme.token(t, "gina", map[string]any{"aud": "invoices"})
	for _, tc := range []struct {
		host, tok, want string
	}{
		{"api.globex.test", acmeTok, "audience_mismatch"},
		{"api.acme.test", globexTok, "audience_mismatch"},
		{"api.globex.test", globexTok, "ok"},
		{"api.acme.test", acmeTok, "ok"},
	} {
		if res := p.check(checkclient.Request{Host: tc.host, Token: tc.tok}); res.Reason != tc.want {
			t.Errorf("%s: %s, want %s", tc.host, res.Reason, tc.want)
		}
	}
}

// TestIsolation_ClaimsReachTheUpstreamUnchanged: through the binary, a
// 64-bit integer claim reaches the claim header and dynamic metadata digit
// for digit, a header only another tenant maps is removed when forged, a
// time claim beyond int64 is token_malformed, a malformed :authority is
// tenant_unknown, and token_types is enforced.
func TestIsolation_ClaimsReachTheUpstreamUnchanged(t *testing.T) {
	acme, globex, ts := acmeAndGlobex(t)
	ts[1].extra = "        token_types: [at+jwt]\n"
	addr := freeAddr(t)
	cfg := config(addr, caFile(t, acme.srv), ts...)
	const mapping = "claims_to_headers: {sub: x-auth-subject, email: x-auth-email}"
	cfg = strings.Replace(cfg, mapping, "claims_to_headers: {sub: x-auth-subject, uid: x-auth-uid}", 1)
	cfg = strings.Replace(cfg, mapping, "claims_to_headers: {sub: x-auth-subject, org: x-globex-org}", 1)
	p := start(t, addr, cfg)

	const id = int64(1234567890123456789) // float64 would make it …800
	tok := acme.token(t, "alice", map[string]any{"uid": id})
	res := p.check(checkclient.Request{Host: "api.acme.test", Token: tok,
		Headers: map[string]string{"x-globex-org": "forged", "x-auth-uid": "forged"}})
	if !res.Allowed {
		t.Fatalf("denied: %s", res.Reason)
	}
	if v, _ := res.Header("x-auth-uid"); v != "1234567890123456789" {
		t.Errorf("x-auth-uid %q, want 1234567890123456789", v)
	}
	if !slices.Contains(res.Removed, "x-globex-org") {
		t.Errorf("globex's claim header not removed from an acme request: removed %v", res.Removed)
	}
	claims := res.Metadata.GetFields()["claims"].GetStructValue().GetFields()
	if got := claims["uid"].GetStringValue(); got != "1234567890123456789" {
		t.Errorf("metadata claims.uid = %v, want the string 1234567890123456789", claims["uid"])
	}

	for _, tc := range []struct {
		name string
		req  checkclient.Request
		want string
	}{
		{"exp beyond int64", checkclient.Request{Host: "api.acme.test", Token: acme.token(t, "alice", map[string]any{"exp": 1e19})}, "token_malformed"},
		{"userinfo in :authority", checkclient.Request{Host: "evil@api.acme.test", Token: tok}, "tenant_unknown"},
		{"bracketed name in :authority", checkclient.Request{Host: "[api.acme.test]", Token: tok}, "tenant_unknown"},
		{"typ JWT where token_types is [at+jwt]", checkclient.Request{Host: "api.globex.test", Token: globex.token(t, "gina", nil)}, "token_malformed"},
	} {
		if res := p.check(tc.req); res.Reason != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, res.Reason, tc.want)
		}
	}
}
