package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/extauthz/extauthz/internal/checkclient"
)

// adminConfig is config with the admin listener on adminAddr (loopback,
// so no token) and forced refreshes of one provider at least 1s apart.
func adminConfig(addr, adminAddr, ca string, ts ...tenant) string {
	cfg := config(addr, ca, ts...)
	return strings.Replace(cfg, `admin: ""`, fmt.Sprintf("admin: %q", adminAddr), 1) + "admin: {refresh_min_interval: 1s}\n"
}

// adminStartGlobexDown launches the binary with an admin listener (at
// base) and two tenants, acme and globex, while globex's identity provider
// is down; extra is appended to the config. It returns as soon as the
// process runs: these tests watch readiness change from the start.
func adminStartGlobexDown(t *testing.T, extra string, flags ...string) (p *proc, base string, acme, globex *idp) {
	t.Helper()
	acme, globex, ts := acmeAndGlobex(t)
	globex.down.Store(true)
	addr, adminAddr := freeAddr(t), freeAddr(t)
	p = launchConfig(t, addr, adminConfig(addr, adminAddr, caFile(t, acme.srv), ts...)+extra, flags...)
	return p, "http://" + adminAddr, acme, globex
}

// adminResponse is one answer of the admin listener.
type adminResponse struct {
	status int
	body   string
}

// adminDo sends one request to the admin listener; a connection error is
// status 0 (the listener is not up yet, or gone).
func adminDo(method, url string) adminResponse {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return adminResponse{body: err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return adminResponse{body: err.Error()}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return adminResponse{status: res.StatusCode, body: string(b)}
}

// adminReadiness is the part of /readyz these tests read.
type adminReadiness struct {
	Ready        bool `json:"ready"`
	ShuttingDown bool `json:"shutting_down"`
	Unavailable  []struct {
		TenantID   string `json:"tenant_id"`
		ProviderID string `json:"provider_id"`
	} `json:"unavailable"`
}

// adminWaitReadyz polls /readyz until it answers status, and returns its body.
func adminWaitReadyz(t *testing.T, p *proc, base string, status int) adminReadiness {
	t.Helper()
	var last adminResponse
	eventually(t, func() bool {
		select {
		case <-p.done:
			t.Fatalf("extauthz exited (%v)", p.waitErr)
		default:
		}
		last = adminDo(http.MethodGet, base+"/readyz")
		return last.status == status
	}, "/readyz %d (last: %s)", status, &last.body)
	var r adminReadiness
	if err := json.Unmarshal([]byte(last.body), &r); err != nil {
		t.Fatalf("/readyz body %q: %v", last.body, err)
	}
	return r
}

// adminProvider is the part of /v1/providers/{tenant}/main these tests read.
type adminProvider struct {
	Available  bool `json:"available"`
	ErrorCount int  `json:"error_count"`
}

// adminWaitProvider polls tenant's main provider status until cond holds
// (what names the event awaited).
func adminWaitProvider(t *testing.T, base, tenant, what string, cond func(adminProvider) bool) {
	t.Helper()
	var last adminResponse
	eventually(t, func() bool {
		last = adminDo(http.MethodGet, base+"/v1/providers/"+tenant+"/main")
		var st adminProvider
		return last.status == http.StatusOK && json.Unmarshal([]byte(last.body), &st) == nil && cond(st)
	}, "%s's provider: %s (last: %s)", tenant, what, &last.body)
}

// TestAdmin_ReadinessAndHealthFollowStartOutageAndSIGTERM starts the real
// binary while one identity provider is down: /healthz is 200 (alive), and
// once that provider's first fetch attempt failed /readyz is 200 naming it
// unavailable and gRPC health SERVING: the outage costs only its tenant
// (503 jwks_unavailable) while the other tenant is allowed. Once the
// identity provider is back and a forced refresh fetched its keys, it is
// available; a failing forced refresh is a 502 while the cached keys keep
// it available; SIGTERM turns the replica unready at once while Checks are
// still answered.
func TestAdmin_ReadinessAndHealthFollowStartOutageAndSIGTERM(t *testing.T) {
	p, base, acme, globex := adminStartGlobexDown(t, "", "-drain-delay", "10m", "-stop-timeout", "30s")

	// Start: alive, and ready once globex's first fetch attempt failed;
	// only globex is unavailable, and only its Checks are refused.
	eventually(t, func() bool { return adminDo(http.MethodGet, base+"/healthz").status == http.StatusOK }, "/healthz 200")
	adminWaitReadyz(t, p, base, http.StatusOK)
	// The replica is also started when limits.cold_wait passed first (a
	// loaded machine): wait for both first attempts themselves, acme's
	// keys in and globex's attempt failed, before reading the report.
	adminWaitProvider(t, base, "acme", "available", func(s adminProvider) bool { return s.Available })
	adminWaitProvider(t, base, "globex", "a failed attempt", func(s adminProvider) bool { return s.ErrorCount > 0 })
	r := adminWaitReadyz(t, p, base, http.StatusOK)
	if len(r.Unavailable) != 1 || r.Unavailable[0].TenantID != "globex" {
		t.Fatalf("unavailable = %+v, want globex alone", r.Unavailable)
	}
	p.waitHealth(healthpb.HealthCheckResponse_SERVING)
	if res := p.check(checkclient.Request{Host: "api.globex.test", Token: globex.token(t, "bob", nil)}); res.Allowed || res.HTTPStatus != http.StatusServiceUnavailable || res.Reason != "jwks_unavailable" {
		t.Fatalf("globex without keys: %d %s, want 503 jwks_unavailable", res.HTTPStatus, res.Reason)
	}
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: acme.token(t, "alice", nil)}); !res.Allowed {
		t.Fatalf("acme while globex is down: %s", res.Reason)
	}
	if m := adminDo(http.MethodGet, base+"/metrics"); !strings.Contains(m.body, `jwks_cache_provider_available{provider="main",tenant="globex"} 0`) ||
		!strings.Contains(m.body, `jwks_cache_provider_available{provider="main",tenant="acme"} 1`) {
		t.Errorf("/metrics lacks the availability gauges")
	}

	// The identity provider recovers; a forced refresh makes the service ready.
	globex.down.Store(false)
	if res := adminDo(http.MethodPost, base+"/v1/providers/globex/main/refresh"); res.status != http.StatusOK || !strings.Contains(res.body, `"state":"Ready"`) {
		t.Fatalf("forced refresh: %d %s", res.status, res.body)
	}
	if r := adminWaitReadyz(t, p, base, http.StatusOK); len(r.Unavailable) != 0 {
		t.Fatalf("unavailable after recovery = %+v, want none", r.Unavailable)
	}
	p.waitHealth(healthpb.HealthCheckResponse_SERVING)

	// The identity provider fails again: the forced refresh is a 502, and
	// the cached keys keep the service ready and the tokens allowed.
	// A refresh sooner than admin.refresh_min_interval is a 429.
	globex.down.Store(true)
	var res adminResponse
	eventually(t, func() bool {
		res = adminDo(http.MethodPost, base+"/v1/providers/globex/main/refresh")
		return res.status != http.StatusTooManyRequests
	}, "a forced refresh 1s after the last")
	if res.status != http.StatusBadGateway || !strings.Contains(res.body, `"refresh_failed"`) {
		t.Fatalf("forced refresh with the identity provider down: %d %s", res.status, res.body)
	}
	if res := p.check(checkclient.Request{Host: "api.globex.test", Token: globex.token(t, "bob", nil)}); !res.Allowed {
		t.Fatalf("globex with cached keys: %s", res.Reason)
	}
	adminWaitReadyz(t, p, base, http.StatusOK)
	p.waitHealth(healthpb.HealthCheckResponse_SERVING)

	// The decisions are counted.
	m := adminDo(http.MethodGet, base+"/metrics")
	for _, line := range []string{
		`extauthz_check_total{decision="allow",provider="main",reason="ok",tenant="globex"} 1` + "\n", // the whole value
		fmt.Sprintf(`extauthz_build_info{goversion=%q,revision=%q,version=%q} 1`, runtime.Version(), e2eRevision, e2eVersion),
	} {
		if !strings.Contains(m.body, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	// At least the failed first fetch and the failed forced refresh; the
	// retry timer may have added more.
	const failures = `jwks_cache_refresh_total{provider="main",result="error",tenant="globex"} `
	if _, rest, ok := strings.Cut(m.body, failures); !ok {
		t.Errorf("/metrics lacks %q", failures)
	} else if v, _, _ := strings.Cut(rest, "\n"); v == "0" || v == "1" || strings.Trim(v, "0123456789") != "" {
		t.Errorf("%s%s, want at least 2", failures, v)
	}

	// SIGTERM: unready at once, for good, while Checks are still answered.
	p.signal(syscall.SIGTERM)
	r = adminWaitReadyz(t, p, base, http.StatusServiceUnavailable)
	if !r.ShuttingDown {
		t.Errorf("/readyz after SIGTERM: %+v, want shutting_down", r)
	}
	p.waitHealth(healthpb.HealthCheckResponse_NOT_SERVING)
	if res := adminDo(http.MethodGet, base+"/healthz"); res.status != http.StatusOK {
		t.Errorf("/healthz during the drain: %d, want 200", res.status)
	}
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: acme.token(t, "alice", nil)}); !res.Allowed {
		t.Errorf("during the drain: %s, want still answering", res.Reason)
	}
	p.signal(syscall.SIGTERM) // cut the drain short
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// TestAdmin_MinReadyShare: readiness.min_available_share is opt-in; at 1,
// one provider of two down at start keeps the replica out of rotation.
func TestAdmin_MinReadyShare(t *testing.T) {
	p, base, _, _ := adminStartGlobexDown(t, "readiness: {min_available_share: 1}\n")
	var last adminResponse
	eventually(t, func() bool {
		last = adminDo(http.MethodGet, base+"/readyz")
		return strings.Contains(last.body, `"started":true`)
	}, "/readyz started (last: %s)", &last.body)
	var r adminReadiness
	if err := json.Unmarshal([]byte(last.body), &r); err != nil || last.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d %q (%v), want 503", last.status, last.body, err)
	}
	if len(r.Unavailable) != 1 || r.Unavailable[0].TenantID != "globex" {
		t.Errorf("unavailable = %+v, want globex", r.Unavailable)
	}
	p.waitHealth(healthpb.HealthCheckResponse_NOT_SERVING)
	if res := adminDo(http.MethodGet, base+"/v1/providers/globex/main"); res.status != http.StatusOK || !strings.Contains(res.body, `"available":false`) {
		t.Errorf("globex status: %d %s", res.status, res.body)
	}
	if res := adminDo(http.MethodGet, base+"/v1/providers/nope/main"); res.status != http.StatusNotFound {
		t.Errorf("unknown provider: %d %s", res.status, res.body)
	}
}

// TestAdmin_TokenOnTheRealBinary: -check refuses an admin listener beyond
// loopback without admin.token_file; with one, the binary serves the
// provider API only to the bearer token, and the probes only to it unless
// admin.open_probes.
func TestAdmin_TokenOnTheRealBinary(t *testing.T) {
	acme := newIdP(t, "ES256")
	addr := freeAddr(t)
	ca := caFile(t, acme.srv)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	exposed := strings.Replace(config(addr, ca, tenant{id: "acme", host: "api.acme.test", idp: acme}), `admin: ""`, `admin: "0.0.0.0:0"`, 1)
	if code, _, stderr := run(t, "-config", write("exposed.yaml", exposed), "-check"); code != 1 || !strings.Contains(stderr, `listen.admin: "0.0.0.0:0" is not a loopback address: set admin.token_file`) {
		t.Fatalf("-check of a non-loopback admin without a token: exit %d\n%s", code, stderr)
	}

	const token = "e2e-admin-token-0123456789abcdef"
	tokenFile := write("token", token+"\n")
	adminAddr := freeAddr(t)
	cfg := strings.Replace(config(addr, ca, tenant{id: "acme", host: "api.acme.test", idp: acme}), `admin: ""`, fmt.Sprintf("admin: %q", adminAddr), 1) +
		fmt.Sprintf("admin: {token_file: %q}\n", tokenFile)
	start(t, addr, cfg)
	base := "http://" + adminAddr
	get := func(path, auth string) int {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, tt := range []struct {
		path, auth string
		want       int
	}{
		{"/v1/providers", "", http.StatusUnauthorized},
		{"/v1/providers", "Bearer wrong-token-0123456789abcdef", http.StatusUnauthorized},
		{"/v1/providers", "Bearer " + token, http.StatusOK},
		{"/healthz", "", http.StatusUnauthorized}, // open_probes is off
		{"/healthz", "Bearer " + token, http.StatusOK},
	} {
		if got := get(tt.path, tt.auth); got != tt.want {
			t.Errorf("GET %s with %q: %d, want %d", tt.path, tt.auth, got, tt.want)
		}
	}
}
