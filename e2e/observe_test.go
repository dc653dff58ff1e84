package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/extauthz/extauthz/internal/checkclient"
)

// otlpReceiver is an OTLP/gRPC trace collector: the real wire format, spans
// kept with their resource's service.name.
type otlpReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []receivedSpan
}

type receivedSpan struct {
	service string
	span    *tracepb.Span
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := attrString(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, receivedSpan{service, s})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) received() []receivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedSpan(nil), r.spans...)
}

func startReceiver(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	r := &otlpReceiver{}
	collectortrace.RegisterTraceServiceServer(srv, r)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return r, lis.Addr().String()
}

func attrString(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

func attrInt(kvs []*commonpb.KeyValue, key string) int64 {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue().GetIntValue()
		}
	}
	return -1
}

// auditLine is what the test reads of an audit record.
type auditLine struct {
	Tenant, Provider, Decision, Reason, Sub, Iss, Path, Host, Method string
	Status                                                           int
	RequestID                                                        string `json:"request_id"`
	TraceID                                                          string `json:"trace_id"`
	ClientAddress                                                    string `json:"client_address"`
}

func readAudit(t *testing.T, path string) []auditLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// TestObserve_TracesToOTLPAndAuditLog runs the binary with tracing to an
// OTLP/gRPC receiver and the audit log on, sends Checks carrying a caller's
// trace (in the gRPC metadata, as Envoy does, and in the request headers),
// rotates the audit file with SIGHUP, and stops with SIGTERM, which exports
// the last spans.
func TestObserve_TracesToOTLPAndAuditLog(t *testing.T) {
	recv, endpoint := startReceiver(t)
	acme := newIdP(t, "ES256")
	addr := freeAddr(t)
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	cfg := config(addr, caFile(t, acme.srv), tenant{id: "acme", host: "api.acme.test", idp: acme}) +
		fmt.Sprintf("tracing: {endpoint: %q, protocol: grpc, insecure: true, service_name: extauthz-e2e, sample_ratio: 0}\n", endpoint) +
		fmt.Sprintf("audit: {path: %q, allow_sample_ratio: 1}\n", auditPath)
	p := start(t, addr, cfg, "-drain-delay", "0")
	client := authv3.NewAuthorizationClient(p.conn)

	const (
		callerTrace   = "4bf92f3577b34da6a3ce929d0e0e4736"
		callerSpan    = "00f067aa0ba902b7"
		headerTrace   = "0af7651916cd43dd8448eb211c80319c"
		headerSpan    = "b7ad6b7169203331"
		unsampledTrce = "11111111111111111111111111111111"
	)
	check := func(md metadata.MD, req checkclient.Request) checkclient.Result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if md != nil {
			ctx = metadata.NewOutgoingContext(ctx, md)
		}
		cr := req.CheckRequest()
		cr.Attributes.Source = &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "203.0.113.9", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51000}},
		}}}
		resp, err := client.Check(ctx, cr)
		if err != nil {
			t.Fatal(err)
		}
		return checkclient.Interpret(resp)
	}
	tok := acme.token(t, "alice", nil)
	// Envoy's ext_authz call carries its span in the gRPC metadata.
	if r := check(metadata.Pairs("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01"),
		checkclient.Request{Host: "api.acme.test", Path: "/orders?x=1", Token: tok, ID: "req-allow"}); !r.Allowed {
		t.Fatalf("allow denied: %+v", r)
	}
	// Without it, the traceparent among the request's headers.
	if r := check(nil, checkclient.Request{Host: "api.acme.test", Path: "/orders", Token: tamperPayload(t, tok), ID: "req-deny",
		Headers: map[string]string{"traceparent": "00-" + headerTrace + "-" + headerSpan + "-01"}}); r.Allowed {
		t.Fatalf("tampered token allowed: %+v", r)
	}
	// An unsampled caller, and no caller at sample_ratio 0: no span.
	check(metadata.Pairs("traceparent", "00-"+unsampledTrce+"-"+callerSpan+"-00"), checkclient.Request{Host: "api.acme.test", Token: tok})
	check(nil, checkclient.Request{Host: "api.acme.test", Token: tok, ID: "req-untraced"})

	// Log rotation: move the file away, SIGHUP, and the next record goes
	// to a new file at the configured path.
	rotated := auditPath + ".1"
	if err := os.Rename(auditPath, rotated); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	p.waitLog("audit log reopened", 1)
	if r := check(nil, checkclient.Request{Host: "api.acme.test", Token: tok, ID: "req-after-rotation"}); !r.Allowed {
		t.Fatalf("allow denied after SIGHUP: %+v", r)
	}

	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// Traces: exported on shutdown at the latest.
	checks := map[string]*tracepb.Span{}
	var refreshes int
	for _, rs := range recv.received() {
		if rs.service != "extauthz-e2e" {
			t.Errorf("span %s from service %q", rs.span.GetName(), rs.service)
		}
		switch rs.span.GetName() {
		case "extauthz.check":
			checks[hex.EncodeToString(rs.span.GetTraceId())] = rs.span
		case "jwks.refresh":
			refreshes++
		}
	}
	if len(checks) != 2 {
		t.Fatalf("%d check spans exported (%v), want the two of sampled callers", len(checks), checks)
	}
	for _, tc := range []struct {
		trace, parent, reason string
		status                int64
	}{
		{callerTrace, callerSpan, "ok", 200},
		{headerTrace, headerSpan, "signature_invalid", 401},
	} {
		s := checks[tc.trace]
		if s == nil {
			t.Errorf("no check span in the caller's trace %s", tc.trace)
			continue
		}
		if got := hex.EncodeToString(s.GetParentSpanId()); got != tc.parent {
			t.Errorf("trace %s: parent span %s, want the caller's %s", tc.trace, got, tc.parent)
		}
		if s.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
			t.Errorf("trace %s: kind %v, want server", tc.trace, s.GetKind())
		}
		a := s.GetAttributes()
		if attrString(a, "extauthz.tenant") != "acme" || attrString(a, "extauthz.provider") != "main" ||
			attrString(a, "extauthz.reason") != tc.reason || attrInt(a, "http.response.status_code") != tc.status ||
			attrString(a, "extauthz.jwks.kid") != acme.KeyID() {
			t.Errorf("trace %s: attributes %v", tc.trace, a)
		}
	}
	if refreshes != 0 {
		// sample_ratio 0: the background refresh (a new trace) is not sampled.
		t.Errorf("%d refresh spans exported at sample_ratio 0", refreshes)
	}

	// Audit: every decision before the rotation in the old file (allows at
	// ratio 1 too), the last one in the new file.
	old := readAudit(t, rotated)
	if len(old) != 4 {
		t.Fatalf("%d records before the rotation, want 4: %+v", len(old), old)
	}
	if a := old[0]; a.Decision != "allow" || a.Tenant != "acme" || a.Provider != "main" || a.Sub != "alice" ||
		a.Iss != acme.Issuer() || a.RequestID != "req-allow" || a.TraceID != callerTrace || a.Path != "/orders" ||
		a.Host != "api.acme.test" || a.Method != "GET" || a.ClientAddress != "203.0.113.9" || a.Status != 200 {
		t.Errorf("allow record %+v", a)
	}
	if a := old[1]; a.Decision != "deny" || a.Reason != "signature_invalid" || a.Status != 401 || a.Sub != "" || a.TraceID != headerTrace {
		t.Errorf("deny record %+v", a)
	}
	cur := readAudit(t, auditPath)
	if len(cur) != 1 || cur[0].RequestID != "req-after-rotation" {
		t.Errorf("records after the rotation %+v, want req-after-rotation alone", cur)
	}
	for _, path := range []string{rotated, auditPath} {
		data, _ := os.ReadFile(path)
		if bytes.Contains(data, []byte(tok[len(tok)-20:])) {
			t.Errorf("%s holds the token's signature", path)
		}
	}
}
