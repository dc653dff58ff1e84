package checkclient_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/checkclient"
	"github.com/extauthz/extauthz/internal/demo"
	"github.com/extauthz/extauthz/internal/grpcauthz"
	"github.com/extauthz/extauthz/internal/service"
)

func TestRequest_CheckRequestLooksLikeEnvoys(t *testing.T) {
	req := checkclient.Request{
		Host:              "api.acme.test",
		Headers:           map[string]string{"X-Custom": "1"},
		Token:             "abc.def.ghi",
		ContextExtensions: map[string]string{"tenant": "acme"},
		ID:                "r1",
	}.CheckRequest()
	h := req.GetAttributes().GetRequest().GetHttp()
	want := map[string]string{
		":authority": "api.acme.test", ":path": "/", ":method": "GET",
		"x-custom": "1", "authorization": "Bearer abc.def.ghi", "x-request-id": "r1",
	}
	if diff := cmp.Diff(want, h.GetHeaders()); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if h.GetHost() != "api.acme.test" || h.GetPath() != "/" || h.GetMethod() != "GET" || h.GetId() != "r1" {
		t.Errorf("http attributes %v", h)
	}
	if req.GetAttributes().GetContextExtensions()["tenant"] != "acme" {
		t.Errorf("context extensions %v", req.GetAttributes().GetContextExtensions())
	}
	// Round trip through authz's own mapping: what we send is what it reads.
	r := grpcauthz.ToRequest(req)
	if r.Host != "api.acme.test" || r.RequestID != "r1" || r.Headers["authorization"] != "Bearer abc.def.ghi" {
		t.Errorf("authz reads %+v", r)
	}
}

func TestInterpret(t *testing.T) {
	tests := []struct {
		name string
		d    authz.Decision
		want checkclient.Result
	}{
		{
			name: "allow",
			d: authz.Decision{Allowed: true, HTTPStatus: 200, Reason: authz.ReasonOK, TenantID: "acme", ProviderID: "main",
				Headers: []authz.Header{{Name: "x-auth-subject", Value: "alice"}}, RemoveHeaders: []string{"x-auth-email"}},
			want: checkclient.Result{Allowed: true, Code: codes.OK, HTTPStatus: 200, Reason: "ok",
				Headers: []checkclient.Header{{Name: "x-auth-subject", Value: "alice", Action: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}},
				Removed: []string{"x-auth-email"}},
		},
		{
			name: "deny 401",
			d: authz.Decision{HTTPStatus: 401, Reason: authz.ReasonTokenExpired, WWWAuthenticate: `Bearer realm="acme"`,
				Body: []byte(`{"error":"token_expired"}`)},
			want: checkclient.Result{Code: codes.Unauthenticated, Message: "token_expired", HTTPStatus: 401, Reason: "token_expired",
				Body: `{"error":"token_expired"}`,
				Headers: []checkclient.Header{
					{Name: "content-type", Value: "application/json", Action: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
					{Name: "www-authenticate", Value: `Bearer realm="acme"`, Action: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
				}},
		},
		{
			name: "deny 503",
			d:    authz.Decision{HTTPStatus: 503, Reason: authz.ReasonJWKSUnavailable, Body: []byte(`{}`)},
			want: checkclient.Result{Code: codes.Unavailable, Message: "jwks_unavailable", HTTPStatus: 503, Reason: "jwks_unavailable", Body: `{}`,
				Headers: []checkclient.Header{{Name: "content-type", Value: "application/json", Action: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkclient.Interpret(grpcauthz.ToResponse(&tt.d))
			got.Metadata = nil // compared below for the allow case
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestResult_Print(t *testing.T) {
	var b bytes.Buffer
	d := authz.Decision{Allowed: true, HTTPStatus: 200, Reason: authz.ReasonOK, TenantID: "acme", ProviderID: "main",
		Headers: []authz.Header{{Name: "x-auth-subject", Value: "alice"}}, RemoveHeaders: []string{"x-b", "x-a"}}
	if err := checkclient.Interpret(grpcauthz.ToResponse(&d)).Print(&b); err != nil {
		t.Fatal(err)
	}
	want := "decision: ALLOW\nhttp_status: 200\ngrpc_status: OK\nreason: ok\n" +
		"set_header: x-auth-subject: alice (OVERWRITE_IF_EXISTS_OR_ADD)\nremove_header: x-a\nremove_header: x-b\n" +
		`dynamic_metadata: {"provider":"main", "tenant":"acme"}` + "\n"
	// protojson's spacing is deliberately unstable; compare without spaces.
	if strings.ReplaceAll(b.String(), " ", "") != strings.ReplaceAll(want, " ", "") {
		t.Errorf("Print:\n%s\nwant:\n%s", b.String(), want)
	}
}

// startService runs the real service on the demo configuration.
func startService(t *testing.T) (addr string, idp *demo.Server) {
	t.Helper()
	idp, err := demo.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, idp.CA.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(context.Background(), service.Options{
		Config:     demo.Config(demo.ConfigParams{GRPCAddr: "127.0.0.1:0", Issuer: idp.IdP.Issuer(), JWKSURL: idp.JWKSURL(), CAFile: ca}),
		DrainDelay: -1,
		LogOutput:  io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background(), sigs) }()
	t.Cleanup(func() {
		sigs <- syscall.SIGTERM
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	// Health follows readiness: wait until the first fetch made it SERVING.
	conn, err := checkclient.Dial(svc.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := checkclient.Health(context.Background(), hc, "")
		if err == nil && st == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service never SERVING: %v %v", st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return svc.Addr().String(), idp
}

func TestClientCommand_ExitCodes(t *testing.T) {
	addr, idp := startService(t)
	valid, err := idp.IdP.Mint("alice", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := idp.IdP.Mint("alice", -time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"allow", []string{"-addr", addr, "-host", demo.Host, "-token", valid, "-H", "X-Auth-Email: forged"}, checkclient.ExitAllow, "remove_header: x-auth-email"},
		{"deny", []string{"-addr", addr, "-host", demo.Host, "-token", expired}, checkclient.ExitDeny, "reason: token_expired"},
		{"deny by context extension", []string{"-addr", addr, "-host", demo.Host, "-token", valid, "-ext", "tenant=other"}, checkclient.ExitDeny, "http_status: 403"},
		{"no host", []string{"-addr", addr}, checkclient.ExitError, ""},
		{"bad header flag", []string{"-addr", addr, "-host", demo.Host, "-H", "nocolon"}, checkclient.ExitError, ""},
		{"bad ext flag", []string{"-addr", addr, "-host", demo.Host, "-ext", "novalue"}, checkclient.ExitError, ""},
		{"stray argument", []string{"-addr", addr, "-host", demo.Host, "extra"}, checkclient.ExitError, ""},
		{"nothing listening", []string{"-addr", freeAddr(t), "-host", demo.Host, "-timeout", "2s"}, checkclient.ExitError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := checkclient.ClientCommand(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.out) {
				t.Errorf("exit %d, output %q (stderr %q); want exit %d with %q", code, stdout.String(), stderr.String(), tt.code, tt.out)
			}
		})
	}
}

func TestHealthCommand(t *testing.T) {
	addr, _ := startService(t)
	var stdout, stderr bytes.Buffer
	if code := checkclient.HealthCommand(context.Background(), []string{"-addr", addr}, &stdout, &stderr); code != 0 || strings.TrimSpace(stdout.String()) != "SERVING" {
		t.Errorf("exit %d, %q %q", code, stdout.String(), stderr.String())
	}
	if code := checkclient.HealthCommand(context.Background(), []string{"-addr", addr, "-service", "no.such.Service"}, &stdout, &stderr); code == 0 {
		t.Error("exit 0 for an unknown service")
	}
	if code := checkclient.HealthCommand(context.Background(), []string{"-addr", freeAddr(t), "-timeout", "2s"}, &stdout, &stderr); code == 0 {
		t.Error("exit 0 with nothing listening")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
