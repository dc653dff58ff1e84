package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/extauthz/extauthz/internal/checkclient"
)

// TestCache_KeyRotationPickedUpWithinOneRequest: the identity provider
// rotates its key; the first token signed by the new key is allowed at once
// (the unknown kid triggers one refresh), and the removed key stops working.
func TestCache_KeyRotationPickedUpWithinOneRequest(t *testing.T) {
	acme, p := startAcme(t, "ES256")

	old := acme.token(t, "alice", nil)
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: old}); !res.Allowed {
		t.Fatalf("before rotation: %s", res.Reason)
	}
	before := acme.JWKSRequests()
	if _, err := acme.Rotate("RS256", false); err != nil {
		t.Fatal(err)
	}
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: acme.token(t, "alice", nil)}); !res.Allowed {
		t.Fatalf("first request with the rotated key: %s, want allowed", res.Reason)
	}
	if got := acme.JWKSRequests() - before; got != 1 {
		t.Errorf("rotation cost %d JWKS fetches, want 1", got)
	}
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: old}); res.Reason != "key_not_found" {
		t.Errorf("token of the removed key: %s, want key_not_found", res.Reason)
	}
}

// TestCache_IdentityProviderDownAfterWarmUpStillAllows: once keys are
// cached, an identity provider outage does not fail valid tokens, and no
// request waits on it.
func TestCache_IdentityProviderDownAfterWarmUpStillAllows(t *testing.T) {
	acme, p := startAcme(t, "EdDSA")
	tok := acme.token(t, "alice", nil)
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: tok}); !res.Allowed {
		t.Fatalf("warm-up: %s", res.Reason)
	}
	acme.down.Store(true)
	fetches := acme.JWKSRequests()
	for i := 0; i < 20; i++ {
		if res := p.check(checkclient.Request{Host: "api.acme.test", Token: tok}); !res.Allowed {
			t.Fatalf("request %d with the identity provider down: %s, want allowed from the cache", i, res.Reason)
		}
	}
	if got := acme.JWKSRequests(); got != fetches {
		t.Errorf("warm requests reached the identity provider %d times", got-fetches)
	}
}

// TestReload_SIGHUPAddsTenantAndKeepsWarmCaches: a reload that adds a
// tenant serves it, and the unchanged tenant's cache stays warm (its
// identity provider sees no new request).
func TestReload_SIGHUPAddsTenantAndKeepsWarmCaches(t *testing.T) {
	acme, globex := newIdP(t, "ES256"), newIdP(t, "ES256")
	addr, ca := freeAddr(t), caFile(t, acme.srv)
	p := start(t, addr, config(addr, ca, tenant{id: "acme", host: "api.acme.test", idp: acme}))

	acmeTok, globexTok := acme.token(t, "alice", nil), globex.token(t, "gina", nil)
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: acmeTok}); !res.Allowed {
		t.Fatalf("acme before reload: %s", res.Reason)
	}
	if res := p.check(checkclient.Request{Host: "api.globex.test", Token: globexTok}); res.Reason != "tenant_unknown" {
		t.Fatalf("globex before reload: %s, want tenant_unknown", res.Reason)
	}
	acmeFetches := acme.JWKSRequests()

	p.rewrite(config(addr, ca,
		tenant{id: "acme", host: "api.acme.test", idp: acme},
		tenant{id: "globex", host: "api.globex.test", idp: globex},
	))
	p.signal(syscall.SIGHUP)
	p.waitLog("config reloaded", 1)

	if res := p.check(checkclient.Request{Host: "api.globex.test", Token: globexTok}); !res.Allowed {
		t.Fatalf("globex after reload: %s", res.Reason)
	}
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: acmeTok}); !res.Allowed {
		t.Fatalf("acme after reload: %s", res.Reason)
	}
	if got := acme.JWKSRequests(); got != acmeFetches {
		t.Errorf("reload refetched the unchanged provider: %d JWKS requests, want %d (warm cache kept)", got, acmeFetches)
	}

	// Removing the tenant again takes effect too.
	p.rewrite(config(addr, ca, tenant{id: "acme", host: "api.acme.test", idp: acme}))
	p.signal(syscall.SIGHUP)
	p.waitLog("config reloaded", 2)
	if res := p.check(checkclient.Request{Host: "api.globex.test", Token: globexTok}); res.Reason != "tenant_unknown" {
		t.Errorf("globex after removal: %s, want tenant_unknown", res.Reason)
	}
}

// TestReload_InvalidConfigRefusedOldOneKeepsServing.
func TestReload_InvalidConfigRefusedOldOneKeepsServing(t *testing.T) {
	acme := newIdP(t, "ES256")
	addr, ca := freeAddr(t), caFile(t, acme.srv)
	p := start(t, addr, config(addr, ca, tenant{id: "acme", host: "api.acme.test", idp: acme}))
	tok := acme.token(t, "alice", nil)

	bad := strings.Replace(config(addr, ca, tenant{id: "acme", host: "api.acme.test", idp: acme}),
		"jwks_url: \"https://", "jwks_url: \"http://", 1)
	p.rewrite(bad + "unknown_key: 1\n")
	p.signal(syscall.SIGHUP)
	p.waitLog("config reload refused", 1)
	p.rewrite(bad)
	p.signal(syscall.SIGHUP)
	p.waitLog("config reload refused", 2)
	if out := p.stderr.String(); !strings.Contains(out, "tenants[0].providers[0].jwks_url") {
		t.Errorf("the refusal does not name the bad key's path:\n%s", out)
	}
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: tok}); !res.Allowed {
		t.Fatalf("after a refused reload: %s, want the old config serving", res.Reason)
	}
	p.waitHealth(healthpb.HealthCheckResponse_SERVING)
}

// TestShutdown_SIGTERMFlipsHealthThenDrainsAndExitsZero: health turns
// NOT_SERVING while the process still answers Checks (the drain), and the
// process then exits 0. A second SIGTERM ends a long drain early, so the
// test does not depend on how long anything takes.
func TestShutdown_SIGTERMFlipsHealthThenDrainsAndExitsZero(t *testing.T) {
	acme := newIdP(t, "ES256")
	addr := freeAddr(t)
	p := start(t, addr, config(addr, caFile(t, acme.srv), tenant{id: "acme", host: "api.acme.test", idp: acme}),
		"-drain-delay", "10m", "-stop-timeout", "30s")
	tok := acme.token(t, "alice", nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := healthpb.NewHealthClient(p.conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("initial health %v %v", st, err)
	}

	p.signal(syscall.SIGTERM)
	st, err := watch.Recv()
	if err != nil || st.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("after SIGTERM health %v %v, want NOT_SERVING", st, err)
	}
	select {
	case <-p.done:
		t.Fatal("exited before the drain")
	default:
	}
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: tok}); !res.Allowed {
		t.Errorf("during the drain: %s, want still answering", res.Reason)
	}
	cancel() // the watch stream would otherwise hold the graceful stop

	p.signal(syscall.SIGTERM) // cut the 10-minute drain short
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d, want 0\n%s", code, p.stderr.String())
	}
	out := p.stderr.String()
	for _, want := range []string{"shutting down", "draining", "stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestCheckFlag lists every problem of an invalid configuration
// (testdata/check-invalid.yaml) by path and exits non-zero; a valid
// configuration (the README's example) exits 0.
func TestCheckFlag(t *testing.T) {
	code, _, stderr := run(t, "-config", "testdata/check-invalid.yaml", "-check")
	if code == 0 {
		t.Fatalf("-check accepted an invalid config:\n%s", stderr)
	}
	for _, path := range []string{
		"tenants[0].providers[0].jwks_url",
		"tenants[0].providers[0].algorithms[0]",
		"tenants[1].id",
		"tenants[1].hosts[0]",
		"tenants[1].providers",
	} {
		if !strings.Contains(stderr, path) {
			t.Errorf("-check output lacks %s:\n%s", path, stderr)
		}
	}

	code, stdout, stderr := run(t, "-config", "../testdata/example.yaml", "-check")
	if code != 0 {
		t.Fatalf("-check refused testdata/example.yaml (exit %d):\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "configuration OK") {
		t.Errorf("stdout %q", stdout)
	}

	unknown := filepath.Join(t.TempDir(), "unknown.yaml")
	if err := os.WriteFile(unknown, []byte("listen: {grpc: \"127.0.0.1:9191\", grcp: x}\ntenants: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "-config", unknown, "-check"); code == 0 || !strings.Contains(stderr, "grcp") {
		t.Errorf("unknown key accepted (exit %d):\n%s", code, stderr)
	}
}

// TestServe_InvalidConfigExitsNonZero: the server refuses to start on an
// invalid configuration rather than serve a partial one.
func TestServe_InvalidConfigExitsNonZero(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("tenants: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "-config", path)
	if code == 0 || !strings.Contains(stderr, "tenants") {
		t.Errorf("exit %d, stderr %s", code, stderr)
	}
}

// TestDemo_PrintedCommandsShowAllowAndDeny runs `extauthz demo` and then
// the client commands it prints, checking their exit codes.
func TestDemo_PrintedCommandsShowAllowAndDeny(t *testing.T) {
	addr := freeAddr(t)
	p := startCmd(t, addr, "demo", "-grpc", addr)
	p.waitLog("Press Ctrl-C to stop.", 1)
	out := p.stderr.String()
	var allow, deny string
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "Allow"):
			allow = strings.TrimSpace(lines[i+1])
		case strings.HasPrefix(l, "Deny, expired"):
			deny = strings.TrimSpace(lines[i+1])
		}
	}
	if allow == "" || deny == "" {
		t.Fatalf("demo output lacks the commands:\n%s", out)
	}
	for _, c := range []struct {
		cmd        string
		code       int
		wantOutput string
	}{
		{allow, 0, "x-auth-subject: alice"},
		{deny, 1, "reason: token_expired"},
	} {
		args := strings.Fields(c.cmd)[1:] // replace the printed binary path by ours
		code, stdout, stderr := run(t, args...)
		if code != c.code || !strings.Contains(stdout, c.wantOutput) {
			t.Errorf("%s: exit %d, output %s%s; want exit %d and %q", args[0], code, stdout, stderr, c.code, c.wantOutput)
		}
	}
	if code, stdout, _ := run(t, "health", "-addr", addr); code != 0 || !strings.Contains(stdout, "SERVING") {
		t.Errorf("health: exit %d %s", code, stdout)
	}
	p.signal(syscall.SIGINT)
	if code := p.wait(); code != 0 {
		t.Errorf("demo exit %d", code)
	}
}

// TestHealthCommand_FailsWhenNothingListens: the Docker HEALTHCHECK fails
// rather than hang or pass when the server is gone.
func TestHealthCommand_FailsWhenNothingListens(t *testing.T) {
	code, _, _ := run(t, "health", "-addr", freeAddr(t), "-timeout", "2s")
	if code == 0 {
		t.Error("health exit 0 with nothing listening")
	}
}

// TestDemoIdP_ServesJWKSAndMintsTokens runs `extauthz demo-idp` and checks
// what a compose user does with it: trust the CA it writes, fetch a token
// from /token, and verify that token against its JWKS.
func TestDemoIdP_ServesJWKSAndMintsTokens(t *testing.T) {
	addr := freeAddr(t)
	caOut := filepath.Join(t.TempDir(), "ca.pem")
	p := spawn(t, "demo-idp", "-listen", addr, "-ca-out", caOut, "-hostname", "localhost")
	p.waitLog("token:", 1)
	_, port, _ := net.SplitHostPort(addr)
	base := "https://localhost:" + port
	if !strings.Contains(p.stderr.String(), "issuer: "+base+"/") {
		t.Fatalf("issuer not printed as %s/:\n%s", base, p.stderr.String())
	}

	pemBytes, err := os.ReadFile(caOut)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("-ca-out holds no certificate")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(url string) []byte {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
		}
		return b
	}
	tok := strings.TrimSpace(string(get(base + "/token?sub=alice&tenant=demo")))
	kf, err := keyfunc.NewJWKSetJSON(get(base + "/.well-known/jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.Parse(tok, kf.Keyfunc, jwt.WithIssuer(base+"/"), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("minted token does not verify against the JWKS: %v", err)
	}
	if sub, _ := parsed.Claims.GetSubject(); sub != "alice" {
		t.Errorf("sub %q", sub)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("demo-idp exit %d", code)
	}
}
