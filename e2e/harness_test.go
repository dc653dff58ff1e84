// Package e2e tests the real extauthz binary: built once, started with
// configurations that point at httptest.NewTLSServer identity providers
// (trusted through jwks.ca_file), and asked through go-control-plane's
// Authorization gRPC client, exactly as Envoy asks it.
package e2e

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/logtest"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/extauthz/extauthz/internal/checkclient"
	"github.com/extauthz/extauthz/internal/demo"
	"github.com/extauthz/extauthz/internal/porttest"
)

// waitFor bounds every poll: generous, since it only matters when a test
// is about to fail anyway.
const waitFor = 60 * time.Second

var binary string // path of the extauthz binary under test

// The version and revision the binary under test is stamped with.
const (
	e2eVersion  = "v0.0.0-e2e"
	e2eRevision = "e2e0123"
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "extauthz-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "extauthz")
	// Stamped as a release build is (Makefile, Dockerfile, scripts/release.sh).
	args := []string{"build", "-o", binary, "-ldflags", "-X github.com/extauthz/extauthz/internal/version.version=" + e2eVersion +
		" -X github.com/extauthz/extauthz/internal/version.revision=" + e2eRevision}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "../cmd/extauthz")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build: %v\n", err)
		return 1
	}
	return m.Run()
}

// idp is a demo identity provider behind httptest.NewTLSServer, with a
// switch that makes its JWKS endpoint fail (the provider "down").
type idp struct {
	*demo.IdP
	srv  *httptest.Server
	down atomic.Bool
}

func newIdP(t *testing.T, alg string) *idp {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	p, err := demo.NewIdP(demo.IdPOptions{
		Issuer:    "https://" + srv.Listener.Addr().String() + "/",
		Audience:  "orders",
		Algorithm: alg,
	})
	if err != nil {
		t.Fatal(err)
	}
	i := &idp{IdP: p, srv: srv}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		p.ServeHTTP(w, r)
	})
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return i
}

func (i *idp) jwksURL() string { return i.srv.URL + demo.JWKSPath }

// token mints a valid one-hour token for sub with extra claims.
func (i *idp) token(t *testing.T, sub string, extra map[string]any) string {
	t.Helper()
	tok, err := i.Mint(sub, time.Hour, extra)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// caFile writes the certificate every httptest TLS server uses, so the
// service trusts the test identity providers through jwks.ca_file.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tenant is one tenant of a generated configuration.
type tenant struct {
	id, host string
	idp      *idp
	extra    string // more provider YAML, indented for the provider block
}

// acmeAndGlobex starts two ES256 identity providers and returns them with
// the two tenants most tests serve: acme (api.acme.test) and globex
// (api.globex.test).
func acmeAndGlobex(t *testing.T) (acme, globex *idp, ts []tenant) {
	t.Helper()
	acme, globex = newIdP(t, "ES256"), newIdP(t, "ES256")
	return acme, globex, []tenant{
		{id: "acme", host: "api.acme.test", idp: acme},
		{id: "globex", host: "api.globex.test", idp: globex},
	}
}

// config renders a configuration for the given tenants: each with one
// provider "main" trusting its idp, claims sub and email mapped to headers.
func config(addr, ca string, ts ...tenant) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: {grpc: %q, admin: \"\"}\nlog: {level: debug}\njwks:\n  ca_file: %q\ntenants:\n", addr, ca)
	for _, t := range ts {
		fmt.Fprintf(&b, `  - id: %s
    hosts: [%q, "*.%s"]
    providers:
      - id: main
        issuer: %q
        jwks_url: %q
        audiences: [orders]
        algorithms: [ES256, RS256, EdDSA]
        clock_skew: 5s
        claims_to_headers: {sub: x-auth-subject, email: x-auth-email}
        retry_policy: {max_retries: 0, attempt_timeout: 2s, deadline: 2s}
%s`, t.id, t.host, t.host, t.idp.Issuer(), t.idp.jwksURL(), t.extra)
	}
	return b.String()
}

// freeAddr is porttest.FreeAddr, short for the many tests that start a
// binary on free ports.
func freeAddr(t *testing.T) string { t.Helper(); return porttest.FreeAddr(t) }

// startAcme starts extauthz on a free port with one tenant, acme (host
// api.acme.test), whose identity provider is new and signs with alg.
func startAcme(t *testing.T, alg string) (*idp, *proc) {
	t.Helper()
	acme := newIdP(t, alg)
	addr := freeAddr(t)
	return acme, start(t, addr, config(addr, caFile(t, acme.srv), tenant{id: "acme", host: "api.acme.test", idp: acme}))
}

// proc is a running extauthz.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string
	cfgPath string
	stderr  *logtest.Buffer
	done    chan struct{}
	waitErr error
	conn    *grpc.ClientConn
}

// start writes cfg to a file, starts the binary on it and waits until its
// gRPC health service answers SERVING.
func start(t *testing.T, addr, cfg string, flags ...string) *proc {
	t.Helper()
	p := launchConfig(t, addr, cfg, flags...)
	p.waitHealth(healthpb.HealthCheckResponse_SERVING)
	return p
}

// launchConfig starts the binary like start does, but returns as soon as
// the process runs, without waiting for it to be SERVING, for tests that
// watch readiness change from the start.
func launchConfig(t *testing.T, addr, cfg string, flags ...string) *proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "extauthz.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := launch(t, addr, append([]string{"-config", path}, flags...)...)
	p.cfgPath = path
	return p
}

// startCmd starts the binary with args and waits until its gRPC health
// service at addr answers SERVING.
func startCmd(t *testing.T, addr string, args ...string) *proc {
	t.Helper()
	p := launch(t, addr, args...)
	p.waitHealth(healthpb.HealthCheckResponse_SERVING)
	return p
}

// launch starts the binary with args and dials addr, without waiting for
// it to be SERVING; it kills the process at the end of the test.
func launch(t *testing.T, addr string, args ...string) *proc {
	t.Helper()
	p := spawn(t, args...)
	p.addr = addr
	conn, err := checkclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p.conn = conn
	return p
}

// spawn starts the binary with args, collecting its output, and kills it
// at the end of the test (showing the output when the test failed).
func spawn(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, stderr: &logtest.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("extauthz output:\n%s", p.stderr.String())
		}
	})
	return p
}

// waitHealth watches grpc.health.v1 (the whole server) until it reports
// want: the server sends each change of status on the stream, so the wait
// ends with the change itself. WaitForReady makes the watch wait for the
// process to listen instead of failing while it starts.
func (p *proc) waitHealth(want healthpb.HealthCheckResponse_ServingStatus) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	go func() {
		select {
		case <-p.done: // an exit ends the watch at once
			cancel()
		case <-ctx.Done():
		}
	}()
	w, err := healthpb.NewHealthClient(p.conn).Watch(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	last := "nothing"
	for err == nil {
		var st *healthpb.HealthCheckResponse
		if st, err = w.Recv(); err == nil {
			if last = st.GetStatus().String(); st.GetStatus() == want {
				return
			}
		}
	}
	select {
	case <-p.done:
		p.t.Fatalf("extauthz exited (%v) while waiting for %s:\n%s", p.waitErr, want, p.stderr.String())
	default:
	}
	p.t.Fatalf("health never %s (last: %s): %v", want, last, err)
}

// check sends one CheckRequest and fails the test on a transport error:
// every decision must be a CheckResponse.
func (p *proc) check(req checkclient.Request) checkclient.Result {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := checkclient.Check(ctx, authv3.NewAuthorizationClient(p.conn), req)
	if err != nil {
		p.t.Fatalf("Check(%+v): %v", req, err)
	}
	return res
}

// decisionCase is a Check request and the decision it must get.
type decisionCase struct {
	name   string
	req    checkclient.Request
	reason string
	status int        // HTTP status
	code   codes.Code // gRPC code
}

// verify fails the test unless res is tt's decision: allowed exactly
// when the reason is "ok".
func (tt decisionCase) verify(t *testing.T, res checkclient.Result) {
	t.Helper()
	if res.Reason != tt.reason || res.HTTPStatus != tt.status || res.Code != tt.code || res.Allowed != (tt.reason == "ok") {
		t.Fatalf("got reason=%s status=%d code=%s allowed=%v, want %s %d %s (body %s)",
			res.Reason, res.HTTPStatus, res.Code, res.Allowed, tt.reason, tt.status, tt.code, res.Body)
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// rewrite replaces the configuration file (for SIGHUP reloads).
func (p *proc) rewrite(cfg string) {
	p.t.Helper()
	tmp := p.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, p.cfgPath); err != nil { // atomic, as config management tools do
		p.t.Fatal(err)
	}
}

// waitLog waits, woken by each write of the process, until its output
// contains s n times.
func (p *proc) waitLog(s string, n int) {
	p.t.Helper()
	if !p.stderr.WaitCount(s, n, waitFor) {
		p.t.Fatalf("timed out waiting for log line %q ×%d", s, n)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(waitFor):
		p.t.Fatalf("extauthz did not exit within %s", waitFor)
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode()
	}
	if p.waitErr != nil {
		p.t.Fatal(p.waitErr)
	}
	return 0
}

// eventually polls cond every 10 ms until it holds, failing after waitFor.
// It is for what only another process knows and tells nobody (an admin
// endpoint's field, a metric's value, a file): cond names that one event,
// never a guess at how long something takes. What the process does say as
// it happens (a log line, a health status) is waited on with waitLog and
// waitHealth instead.
func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			for i, a := range args {
				if s, ok := a.(*string); ok {
					args[i] = *s
				}
			}
			t.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// run runs the binary to completion and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}
