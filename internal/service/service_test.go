package service

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/logtest"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/extauthz/extauthz/internal/checkclient"
	"github.com/extauthz/extauthz/internal/demo"
	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
)

// fixture is a demo identity provider over real HTTPS and a config file
// that trusts it, with the gRPC listener on a free port.
type fixture struct {
	idp     *demo.Server
	caFile  string
	cfgPath string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, err := demo.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	dir := t.TempDir()
	f := &fixture{idp: srv, caFile: filepath.Join(dir, "ca.pem"), cfgPath: filepath.Join(dir, "config.yaml")}
	if err := os.WriteFile(f.caFile, srv.CA.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	f.write(t, "")
	return f
}

// write writes the demo configuration plus extra YAML appended to it.
func (f *fixture) write(t *testing.T, extra string) {
	t.Helper()
	cfg := demo.Config(demo.ConfigParams{
		GRPCAddr: "127.0.0.1:0",
		Issuer:   f.idp.IdP.Issuer(),
		JWKSURL:  f.idp.JWKSURL(),
		CAFile:   f.caFile,
	})
	if err := os.WriteFile(f.cfgPath, append(cfg, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// running is a Service in Run, with its signal channel and client.
type running struct {
	svc     *Service
	signals chan os.Signal
	done    chan struct{} // closed when Run returned; runErr is then set
	runErr  error
	logs    *logtest.Buffer
	authz   authv3.AuthorizationClient
	health  healthpb.HealthClient
}

func runService(t *testing.T, opts Options) *running {
	t.Helper()
	logs := &logtest.Buffer{}
	opts.LogOutput = logs
	svc, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{svc: svc, signals: make(chan os.Signal, 2), done: make(chan struct{}), logs: logs}
	go func() {
		r.runErr = svc.Run(context.Background(), r.signals)
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			r.signals <- syscall.SIGTERM
			r.signals <- syscall.SIGTERM
			<-r.done
		}
		if r.runErr != nil {
			t.Errorf("Run: %v", r.runErr)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	conn, err := checkclient.Dial(svc.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r.authz, r.health = authv3.NewAuthorizationClient(conn), healthpb.NewHealthClient(conn)
	return r
}

func (r *running) check(t *testing.T, host, token string) checkclient.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := checkclient.Check(ctx, r.authz, checkclient.Request{Host: host, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) token(t *testing.T) string {
	t.Helper()
	tok, err := f.idp.IdP.Mint("alice", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const extraTenant = `  - id: extra
    hosts: [api.extra.test]
    providers:
      - id: second
        issuer: %ISS%
        jwks_url: %JWKS%
        audiences: [extra-api]
        algorithms: [ES256]
`

// extraToken is a token of the demo identity provider for the extra tenant,
// which shares the demo tenant's issuer and so must have its own audience.
func (f *fixture) extraToken(t *testing.T) string {
	t.Helper()
	tok, err := f.idp.IdP.Mint("alice", time.Hour, map[string]any{"aud": "extra-api"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) extraTenant(settings string) string {
	s := strings.NewReplacer("%ISS%", f.idp.IdP.Issuer(), "%JWKS%", f.idp.JWKSURL()).Replace(extraTenant)
	return s + settings
}

func TestReload_AddsChangesAndRemovesProviders(t *testing.T) {
	f := newFixture(t)
	r := runService(t, Options{ConfigPath: f.cfgPath, DrainDelay: -1})
	tok := f.token(t)
	if res := r.check(t, demo.Host, tok); !res.Allowed {
		t.Fatalf("demo tenant: %s", res.Reason)
	}
	warm := f.idp.IdP.JWKSRequests()

	// Add a tenant: it serves, and the demo provider's cache stays warm.
	f.write(t, f.extraTenant(""))
	if err := r.svc.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	extraTok := f.extraToken(t)
	if res := r.check(t, "api.extra.test", extraTok); !res.Allowed {
		t.Fatalf("added tenant: %s", res.Reason)
	}
	if res := r.check(t, "api.extra.test", tok); res.Reason != "audience_mismatch" {
		t.Fatalf("demo tenant's token on the extra tenant (same issuer): %s, want audience_mismatch", res.Reason)
	}
	if res := r.check(t, demo.Host, tok); !res.Allowed {
		t.Fatalf("demo tenant after reload: %s", res.Reason)
	}
	if got := f.idp.IdP.JWKSRequests(); got != warm+1 { // only the new provider's first fetch
		t.Errorf("JWKS requests %d, want %d: the unchanged provider was refetched", got, warm+1)
	}
	if _, ok := r.svc.Registry().Status("extra", "second"); !ok {
		t.Error("added provider not registered")
	}

	// Change the provider's settings: it is registered anew, serving its
	// old keys while its first (background) fetch runs.
	f.write(t, f.extraTenant("        refresh_early: 45s\n"))
	if err := r.svc.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res := r.check(t, "api.extra.test", extraTok); !res.Allowed {
		t.Fatalf("changed tenant: %s", res.Reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hang, not a speed measurement
	defer cancel()
	if err := f.idp.IdP.WaitJWKSRequests(ctx, warm+2); err != nil {
		t.Fatalf("the changed provider's first fetch: %v", err)
	}
	if got := f.idp.IdP.JWKSRequests(); got != warm+2 {
		t.Fatalf("JWKS requests %d after a settings change, want %d", got, warm+2)
	}

	// Remove it: unknown again, and unregistered.
	f.write(t, "")
	if err := r.svc.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res := r.check(t, "api.extra.test", extraTok); res.Reason != "tenant_unknown" {
		t.Errorf("removed tenant: %s, want tenant_unknown", res.Reason)
	}
	if _, ok := r.svc.Registry().Status("extra", "second"); ok {
		t.Error("removed provider still registered")
	}
}

func TestReload_InvalidConfigRefusedAndLogged(t *testing.T) {
	f := newFixture(t)
	r := runService(t, Options{ConfigPath: f.cfgPath, DrainDelay: -1})
	tok := f.token(t)
	tests := []struct {
		name  string
		write func()
		want  string
	}{
		{"unknown key", func() { f.write(t, "    surprise: true\n") }, "surprise"},
		{"http jwks_url", func() {
			f.write(t, strings.Replace(f.extraTenant(""), "jwks_url: https://", "jwks_url: http://", 1))
		}, "tenants[1].providers[0].jwks_url"},
		{"file gone", func() { os.Remove(f.cfgPath) }, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.write()
			mark := len(r.logs.String())
			err := r.svc.Reload(context.Background())
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload: %v, want a ConfigError naming %q", err, tt.want)
			}
			// Only what this reload logged: earlier subtests logged
			// refusals too.
			if logged := r.logs.String()[mark:]; strings.Count(logged, "config reload refused") != 1 || !strings.Contains(logged, tt.want) {
				t.Errorf("this refusal not logged once with %q:\n%s", tt.want, logged)
			}
			if res := r.check(t, demo.Host, tok); !res.Allowed {
				t.Errorf("old config no longer serves: %s", res.Reason)
			}
		})
	}
}

func TestRun_SIGHUPReloads(t *testing.T) {
	f := newFixture(t)
	r := runService(t, Options{ConfigPath: f.cfgPath, DrainDelay: -1})
	f.write(t, f.extraTenant(""))
	r.signals <- syscall.SIGHUP
	if !r.logs.WaitCount("config reloaded", 1, 30*time.Second) {
		t.Fatal("SIGHUP did not reload")
	}
	if res := r.check(t, "api.extra.test", f.extraToken(t)); !res.Allowed {
		t.Errorf("tenant added by SIGHUP: %s", res.Reason)
	}
}

// waitHealth polls grpc.health.v1 (the whole server) until it reports want.
func (r *running) waitHealth(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	watchHealth(t, r.health, "", want)
}

// watchHealth waits, through the health service's Watch stream (which
// sends the status, then each change), until service reports want. The
// real-time bound only turns a hang into a failure.
func watchHealth(t *testing.T, hc healthpb.HealthClient, service string, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health watch: %v", err)
	}
	var last healthpb.HealthCheckResponse_ServingStatus
	for {
		st, err := w.Recv()
		if err != nil {
			t.Fatalf("health never %s (last %s): %v", want, last, err)
		}
		if last = st.GetStatus(); last == want {
			return
		}
	}
}

// TestHealth_FollowsReplicaReadiness: gRPC health is the replica's
// readiness. A tenant whose identity provider is down at start costs only
// that tenant (503 jwks_unavailable), never the replica's place in
// rotation, unless readiness.min_available_share opts into that.
func TestHealth_FollowsReplicaReadiness(t *testing.T) {
	// Ready: the first fetch succeeded, so health turns SERVING by itself.
	f := newFixture(t)
	r := runService(t, Options{ConfigPath: f.cfgPath, DrainDelay: -1})
	r.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	// Cold, with the identity provider gone: the failed first attempt ends
	// the start, the replica serves, and its Checks for this tenant say the
	// keys are unavailable rather than the token bad.
	down := newFixture(t)
	_ = down.idp.Close()
	rd := runService(t, Options{ConfigPath: down.cfgPath, DrainDelay: -1})
	rd.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	if res := rd.check(t, demo.Host, down.token(t)); res.Allowed || res.HTTPStatus != 503 || res.Reason != "jwks_unavailable" {
		t.Fatalf("Check with the identity provider down: %+v, want 503 jwks_unavailable", res)
	}

	// Opt-in: with min_available_share 1 a replica without keys stays out
	// of rotation.
	strict := newFixture(t)
	strict.write(t, "readiness: {min_available_share: 1}\n")
	_ = strict.idp.Close()
	rs := runService(t, Options{ConfigPath: strict.cfgPath, DrainDelay: -1})
	if !rs.logs.WaitCount("jwks refresh failing", 1, 30*time.Second) || !rs.logs.WaitCount("readiness changed", 1, 30*time.Second) {
		t.Fatalf("no failed refresh and readiness evaluation logged:\n%s", rs.logs.String())
	}
	if st, err := checkclient.Health(context.Background(), rs.health, ""); err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("min_available_share 1, cold and down: %v %v, want NOT_SERVING", st, err)
	}
	if strings.Contains(rs.logs.String(), "ready=true") {
		t.Errorf("a replica without keys reported ready under min_available_share 1:\n%s", rs.logs.String())
	}
}

func TestShutdown_HealthNotServingDuringDrainThenStops(t *testing.T) {
	f := newFixture(t)
	r := runService(t, Options{ConfigPath: f.cfgPath, DrainDelay: time.Hour})
	r.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	r.signals <- syscall.SIGTERM
	watchHealth(t, r.health, authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	select {
	case <-r.done:
		t.Fatalf("Run returned during the drain: %v", r.runErr)
	default:
	}
	if res := r.check(t, demo.Host, f.token(t)); !res.Allowed {
		t.Errorf("Check during the drain: %s", res.Reason)
	}
	r.signals <- syscall.SIGINT // cut the hour-long drain short
	<-r.done
	if r.runErr != nil {
		t.Fatalf("Run: %v", r.runErr)
	}
	if !strings.Contains(r.logs.String(), "drain cut short") {
		t.Error("the second signal did not cut the drain")
	}
}

func TestRun_ContextCancelStops(t *testing.T) {
	f := newFixture(t)
	svc, err := New(context.Background(), Options{ConfigPath: f.cfgPath, DrainDelay: -1, LogOutput: &logtest.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, nil) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestNew_InvalidConfigListsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(tenantstest.Config("log: {level: loud}\n", tenantstest.Tenant("acme", "[api.acme.test]",
		tenantstest.Provider("main", tenantstest.AcmeIssuer, "http://idp.acme.test/jwks.json", "retry_policy: {max_backoff: 1ms}")))), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"New":         func() error { _, err := New(context.Background(), Options{ConfigPath: path}); return err }(),
		"CheckConfig": CheckConfig(path),
	} {
		t.Run(name, func(t *testing.T) {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("%v, want a *ConfigError", err)
			}
			problems := strings.Join(Problems(err), "\n")
			for _, want := range []string{"log.level", "tenants[0].providers[0].jwks_url", "tenants[0].providers[0].retry_policy.max_backoff"} {
				if !strings.Contains(problems, want) {
					t.Errorf("problems lack %s:\n%s", want, problems)
				}
			}
		})
	}
}

func TestNew_BadLogFormatFlag(t *testing.T) {
	f := newFixture(t)
	if _, err := New(context.Background(), Options{ConfigPath: f.cfgPath, LogFormat: "xml"}); err == nil {
		t.Error("log format xml accepted")
	}
}

func TestHTTPClient_CAFile(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"not PEM": notPEM, "missing": filepath.Join(dir, "nope.pem")} {
		t.Run(name, func(t *testing.T) {
			if _, err := httpClient(path); err == nil || !strings.Contains(err.Error(), "jwks.ca_file") {
				t.Errorf("httpClient(%s): %v, want a jwks.ca_file error", name, err)
			}
		})
	}

	// The CA file is trusted in addition to, not instead of, the system roots.
	c, err := httpClient(f.caFile)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(f.idp.JWKSURL())
	if err != nil {
		t.Fatalf("the CA in ca_file is not trusted: %v", err)
	}
	resp.Body.Close()
	plain, err := httpClient("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Get(f.idp.JWKSURL()); err == nil {
		t.Error("the demo CA is trusted without ca_file")
	}

	// CheckConfig reports a ca_file that holds no certificate.
	f.caFile = notPEM
	f.write(t, "")
	if err := CheckConfig(f.cfgPath); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("CheckConfig with a non-PEM ca_file: %v", err)
	}
}

func TestProblems_FlattensJoinedErrors(t *testing.T) {
	err := &ConfigError{Err: errors.Join(errors.New("a"), errors.Join(errors.New("b"), errors.New("c")))}
	if got := strings.Join(Problems(err), ","); got != "a,b,c" {
		t.Errorf("Problems = %s, want a,b,c", got)
	}
	if Problems(nil) != nil {
		t.Error("Problems(nil) not nil")
	}
}

// listServices asks grpc.reflection for the server's services; ok is
// false when reflection is not served.
func listServices(t *testing.T, addr string) (services map[string]bool, ok bool) {
	t.Helper()
	conn, err := checkclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stream.CloseSend() }()
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if status.Code(err) == codes.Unimplemented {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	services = map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		services[s.GetName()] = true
	}
	return services, true
}

// TestNew_ReflectionOnlyWhenAsked: grpc.reflection is not served by
// default; the -reflection flag (Options.Reflection) or grpc.reflection in
// the configuration turn it on.
func TestNew_ReflectionOnlyWhenAsked(t *testing.T) {
	for _, tt := range []struct {
		name  string
		flag  bool
		extra string
		want  bool
	}{
		{"default", false, "", false},
		{"flag", true, "", true},
		{"config", false, "grpc: {reflection: true}\n", true},
		{"config off", false, "grpc: {reflection: false}\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.write(t, tt.extra)
			r := runService(t, Options{ConfigPath: f.cfgPath, DrainDelay: -1, Reflection: tt.flag})
			got, ok := listServices(t, r.svc.Addr().String())
			if ok != tt.want {
				t.Fatalf("reflection served: %v, want %v", ok, tt.want)
			}
			for _, want := range []string{"envoy.service.auth.v3.Authorization", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
				if ok && !got[want] {
					t.Errorf("reflection lists %v, missing %s", got, want)
				}
			}
		})
	}
}

func TestNew_ServesAuthorizationAndHealth(t *testing.T) {
	f := newFixture(t)
	r := runService(t, Options{ConfigPath: f.cfgPath, DrainDelay: -1})
	r.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	for _, name := range HealthServices {
		if st, err := checkclient.Health(context.Background(), r.health, name); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v %v", name, st, err)
		}
	}
	if res := r.check(t, demo.Host, f.token(t)); !res.Allowed {
		t.Errorf("Check with a valid token: %+v", res)
	}
}

// BenchmarkService_CheckOverGRPC measures one allowed Check through the
// whole service over loopback gRPC (client marshalling, HTTP/2, server,
// warm key cache, decision, response): the latency Envoy sees, minus the
// network. BenchmarkCheck in authz measures the decision alone.
func BenchmarkService_CheckOverGRPC(b *testing.B) {
	srv, err := demo.Start("127.0.0.1:0", "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	dir := b.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, srv.CA.PEM(), 0o600); err != nil {
		b.Fatal(err)
	}
	svc, err := New(context.Background(), Options{
		Config:     demo.Config(demo.ConfigParams{GRPCAddr: "127.0.0.1:0", Issuer: srv.IdP.Issuer(), JWKSURL: srv.JWKSURL(), CAFile: ca}),
		DrainDelay: -1,
		LogOutput:  &logtest.Buffer{},
	})
	if err != nil {
		b.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background(), sigs) }()
	b.Cleanup(func() {
		sigs <- syscall.SIGTERM
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	conn, err := checkclient.Dial(svc.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	client := authv3.NewAuthorizationClient(conn)
	tok, err := srv.IdP.Mint("alice", time.Hour, map[string]any{"email": "alice@demo.test"})
	if err != nil {
		b.Fatal(err)
	}
	req := checkclient.Request{Host: demo.Host, Path: "/orders", Token: tok}.CheckRequest()
	ctx := context.Background()
	if resp, err := client.Check(ctx, req); err != nil || resp.GetStatus().GetCode() != 0 {
		b.Fatalf("warm-up: %v %v", resp, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := client.Check(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
