package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/demo"
	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
	"github.com/extauthz/extauthz/jwkscache"
)

// The caller's trace, as Envoy would send it.
const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerParent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// fixture is a real authz.Server over a real jwkscache.Registry fetching
// from a demo identity provider behind httptest.NewTLSServer, traced into
// an in-memory exporter.
type fixture struct {
	idp     *demo.IdP
	set     *tenants.Set
	authz   *authz.Server
	reg     *jwkscache.Registry
	exp     *tracetest.InMemoryExporter
	started chan string   // names of the spans started
	ended   chan string   // names of the spans ended (sampled ones only)
	ratio   float64       // the sampler's ratio for new traces
	gate    chan struct{} // when not nil, JWKS requests wait until it is closed
	tp      *sdktrace.TracerProvider
}

// startNotifier tells channels the name of every span started and ended,
// so a test waits on the event instead of sleeping.
type startNotifier struct{ ch, ended chan string }

func (n startNotifier) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	select {
	case n.ch <- s.Name():
	default:
	}
}
func (n startNotifier) OnEnd(s sdktrace.ReadOnlySpan) {
	select {
	case n.ended <- s.Name():
	default:
	}
}
func (startNotifier) Shutdown(context.Context) error   { return nil }
func (startNotifier) ForceFlush(context.Context) error { return nil }

func newFixture(t testing.TB, ratio float64, gated bool) *fixture {
	t.Helper()
	f := &fixture{exp: tracetest.NewInMemoryExporter(), started: make(chan string, 64), ended: make(chan string, 64), ratio: ratio}
	if gated {
		f.gate = make(chan struct{})
	}
	srv := httptest.NewUnstartedServer(nil)
	idp, err := demo.NewIdP(demo.IdPOptions{Issuer: "https://" + srv.Listener.Addr().String() + "/", Audience: "orders", Algorithm: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	f.idp = idp
	gate := f.gate
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gate != nil {
			<-gate
		}
		idp.ServeHTTP(w, r)
	})
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(f.open) // before srv.Close: a gated request must end

	f.tp = sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(f.exp),
		// After the exporter: a span's end is told once it is exported.
		sdktrace.WithSpanProcessor(startNotifier{f.started, f.ended}),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	tr := New(f.tp)
	f.reg, err = jwkscache.New(jwkscache.Options{HTTPClient: srv.Client(), Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.reg.Close() })
	set, _ := authztest.Register(t, f.reg, tenantstest.Config("", tenantstest.Tenant("acme", "[api.acme.test]",
		tenantstest.Provider("main", idp.Issuer(), srv.URL+demo.JWKSPath,
			"audiences: [orders]", "algorithms: [ES256]", "unknown_kid_cooldown: 1s"))))
	f.set = set
	f.authz = authz.New(set, f.reg, authz.Options{Tracer: tr, Logger: slog.New(slog.DiscardHandler)})
	return f
}

// open lets gated JWKS requests through (once).
func (f *fixture) open() {
	if f.gate != nil {
		select {
		case <-f.gate:
		default:
			close(f.gate)
		}
	}
}

// waitStarted waits until a span named name has started.
func (f *fixture) waitStarted(t *testing.T, name string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n := <-f.started:
			if n == name {
				return
			}
		case <-timeout:
			t.Fatalf("no %s span started", name)
		}
	}
}

func (f *fixture) token(t testing.TB) string {
	t.Helper()
	tok, err := f.idp.Mint("alice", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// warm makes one decision so the first fetch is done, and forgets its spans
// once the first refresh's has ended too (it ends after the lookups it
// served were let go).
func (f *fixture) warm(t testing.TB) {
	t.Helper()
	if d := f.decide(context.Background(), f.token(t), nil); !d.Allowed {
		t.Fatalf("warm-up denied: %s", d.Reason)
	}
	timeout := time.After(10 * time.Second)
	// At ratio 0 the refresh (a new trace) is not sampled: nothing to wait for.
	for done := f.ratio == 0; !done; {
		select {
		case n := <-f.ended:
			done = n == SpanRefresh
		case <-timeout:
			t.Fatal("the first refresh's span never ended")
		}
	}
	f.exp.Reset()
}

func (f *fixture) decide(ctx context.Context, tok string, headers map[string]string) authz.Decision {
	h := map[string]string{"x-request-id": "r1"}
	if tok != "" {
		h["authorization"] = "Bearer " + tok
	}
	for k, v := range headers {
		h[k] = v
	}
	return f.authz.Decide(ctx, &authz.Request{Host: "api.acme.test", Path: "/orders?access_token=" + tok, Method: "GET", Headers: h})
}

// spans returns the ended spans by name (one each, or the test fails).
func (f *fixture) spans(t *testing.T) map[string]tracetest.SpanStub {
	t.Helper()
	out := map[string]tracetest.SpanStub{}
	for _, s := range f.exp.GetSpans() {
		if prev, dup := out[s.Name]; dup {
			t.Fatalf("two %s spans: %v and %v", s.Name, prev.Attributes, s.Attributes)
		}
		out[s.Name] = s
	}
	return out
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestCheckSpan_ContinuesCallersTrace(t *testing.T) {
	const otherTrace = "0af7651916cd43dd8448eb211c80319c"
	otherParent := "00-" + otherTrace + "-b7ad6b7169203331-01"
	b3Trace := "80f198ee56343ba864fe8b2a57d3eff7"
	tests := []struct {
		name      string
		md        metadata.MD // gRPC metadata of the ext_authz call
		headers   map[string]string
		wantTrace string // "" means a new trace
	}{
		{"traceparent in gRPC metadata wins over the request's", metadata.Pairs("traceparent", callerParent), map[string]string{"traceparent": otherParent}, callerTrace},
		{"request headers when the metadata has none", metadata.Pairs("user-agent", "envoy"), map[string]string{"traceparent": otherParent, "tracestate": "vendor=x"}, otherTrace},
		{"B3 multiple headers", nil, map[string]string{"x-b3-traceid": b3Trace, "x-b3-spanid": "e457b5a2e4d86bd1", "x-b3-sampled": "1"}, b3Trace},
		{"B3 single header in gRPC metadata", metadata.Pairs("b3", b3Trace+"-e457b5a2e4d86bd1-1"), nil, b3Trace},
		{"no trace context starts a trace", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 1, false)
			f.warm(t)
			ctx := context.Background()
			if tt.md != nil {
				ctx = metadata.NewIncomingContext(ctx, tt.md)
			}
			if d := f.decide(ctx, f.token(t), tt.headers); !d.Allowed {
				t.Fatalf("denied: %s", d.Reason)
			}
			s, ok := f.spans(t)[SpanCheck]
			if !ok {
				t.Fatal("no check span")
			}
			if s.SpanKind != trace.SpanKindServer {
				t.Errorf("kind %v, want server", s.SpanKind)
			}
			got := s.SpanContext.TraceID().String()
			switch {
			case tt.wantTrace == "" && (s.Parent.IsValid() || got == callerTrace || got == otherTrace):
				t.Errorf("trace %s with parent %v, want a new root", got, s.Parent)
			case tt.wantTrace != "" && (got != tt.wantTrace || !s.Parent.IsRemote()):
				t.Errorf("trace %s (remote parent %v), want the caller's %s", got, s.Parent.IsRemote(), tt.wantTrace)
			}
			if tt.name == "request headers when the metadata has none" && s.Parent.TraceState().Get("vendor") != "x" {
				t.Errorf("tracestate %q not carried", s.Parent.TraceState().String())
			}
		})
	}
}

func TestCheckSpan_CallerSamplingFollowed(t *testing.T) {
	f := newFixture(t, 1, false)
	f.warm(t)
	unsampled := "00-" + callerTrace + "-" + callerSpan + "-00"
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", unsampled))
	if d := f.decide(ctx, f.token(t), nil); !d.Allowed {
		t.Fatalf("denied: %s", d.Reason)
	}
	if n := len(f.exp.GetSpans()); n != 0 {
		t.Errorf("%d spans recorded for a caller that did not sample", n)
	}
	// sample_ratio 0 records no new trace either, but follows a sampled caller.
	f0 := newFixture(t, 0, false)
	f0.warm(t)
	f0.decide(context.Background(), f0.token(t), nil)
	if n := len(f0.exp.GetSpans()); n != 0 {
		t.Errorf("sample_ratio 0: %d spans recorded", n)
	}
	f0.decide(metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", callerParent)), f0.token(t), nil)
	if _, ok := f0.spans(t)[SpanCheck]; !ok {
		t.Error("sample_ratio 0: a sampled caller's Check not recorded")
	}
}

func TestCheckSpan_Attributes(t *testing.T) {
	f := newFixture(t, 1, false)
	f.warm(t)
	tok := f.token(t)
	other, err := f.idp.Mint("bob", -time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tok  string
		want map[attribute.Key]attribute.Value
	}{
		{"allow", tok, map[attribute.Key]attribute.Value{
			AttrTenant: attribute.StringValue("acme"), AttrProvider: attribute.StringValue("main"),
			AttrDecision: attribute.StringValue("allow"), AttrReason: attribute.StringValue("ok"),
			AttrStatusCode: attribute.IntValue(200), AttrKID: attribute.StringValue(f.idp.KeyID()),
			AttrCached: attribute.BoolValue(true), AttrMethod: attribute.StringValue("GET"),
		}},
		{"expired", other, map[attribute.Key]attribute.Value{
			AttrTenant: attribute.StringValue("acme"), AttrProvider: attribute.StringValue("main"),
			AttrDecision: attribute.StringValue("deny"), AttrReason: attribute.StringValue("token_expired"),
			AttrStatusCode: attribute.IntValue(401), AttrKID: attribute.StringValue(f.idp.KeyID()),
			AttrCached: attribute.BoolValue(true), AttrMethod: attribute.StringValue("GET"),
		}},
		{"no token", "", map[attribute.Key]attribute.Value{
			AttrTenant: attribute.StringValue("acme"), AttrProvider: attribute.StringValue(""),
			AttrDecision: attribute.StringValue("deny"), AttrReason: attribute.StringValue("token_missing"),
			AttrStatusCode: attribute.IntValue(401), AttrMethod: attribute.StringValue("GET"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.exp.Reset()
			f.decide(context.Background(), tt.tok, nil)
			s := f.spans(t)[SpanCheck]
			got := attrs(s)
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k].Emit(), v.Emit())
				}
			}
			for k := range got {
				if _, ok := tt.want[k]; !ok {
					t.Errorf("unexpected attribute %s", k)
				}
			}
			for k, v := range got {
				if tt.tok != "" && containsTokenPart(v.Emit(), tt.tok) {
					t.Errorf("attribute %s carries part of the token", k)
				}
			}
		})
	}
}

// containsTokenPart reports whether s holds the token's payload or
// signature.
func containsTokenPart(s, tok string) bool {
	parts := strings.Split(tok, ".")
	return strings.Contains(s, parts[1]) || strings.Contains(s, parts[2])
}

func TestCheckSpan_LongKIDBounded(t *testing.T) {
	f := newFixture(t, 1, false)
	f.warm(t)
	// A token whose kid is long and unknown: the refresh cannot help, the
	// attribute must not carry the whole of it.
	kid := strings.Repeat("k", 4000)
	d := f.authz.Decide(context.Background(), &authz.Request{Host: "api.acme.test", Headers: map[string]string{
		"authorization": "Bearer " + forgeKID(t, f, kid),
	}})
	if d.Allowed {
		t.Fatal("allowed a forged token")
	}
	for _, s := range f.exp.GetSpans() {
		if v, ok := attrs(s)[AttrKID]; ok && len(v.AsString()) > maxKIDAttr {
			t.Errorf("%s: kid attribute of %d bytes", s.Name, len(v.AsString()))
		}
	}
}

// forgeKID re-signs a token of the idp's with kid in its header (the
// idp's key, so it is well formed; the kid matches no published key).
func forgeKID(t *testing.T, f *fixture, kid string) string {
	t.Helper()
	claims := f.idp.Claims("alice", time.Hour)
	claims["aud"] = "orders"
	tok, err := f.idp.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	// Replace the header with one naming kid (the signature then fails,
	// but only after the key lookup, which is what is traced).
	parts := strings.Split(tok, ".")
	hdr := fmt.Sprintf(`{"alg":"ES256","typ":"JWT","kid":%q}`, kid)
	return b64(hdr) + "." + parts[1] + "." + parts[2]
}

func TestColdWait_ChildSpanLinkedToTheFirstFetch(t *testing.T) {
	f := newFixture(t, 1, true) // the first fetch hangs until f.open
	tok := f.token(t)
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", callerParent))
	done := make(chan authz.Decision, 1)
	go func() { done <- f.decide(ctx, tok, nil) }()
	f.waitStarted(t, SpanWait)
	f.open()
	if d := <-done; !d.Allowed {
		t.Fatalf("denied: %s", d.Reason)
	}
	f.reg.Close() // the refresh has ended: its span is exported
	spans := f.spans(t)
	check, wait, refresh := spans[SpanCheck], spans[SpanWait], spans[SpanRefresh]
	if wait.Parent.SpanID() != check.SpanContext.SpanID() || wait.SpanContext.TraceID().String() != callerTrace {
		t.Errorf("wait span's parent %s, want the check span %s in the caller's trace", wait.Parent.SpanID(), check.SpanContext.SpanID())
	}
	if got := attrs(wait)[AttrWaitKind].AsString(); got != string(jwkscache.WaitCold) {
		t.Errorf("wait kind %q, want cold", got)
	}
	if !attrs(wait)[AttrWaitResult].AsBool() {
		t.Error("wait_ok false for a wait that got keys")
	}
	if refresh.Parent.IsValid() || refresh.SpanContext.TraceID() == check.SpanContext.TraceID() {
		t.Error("the first fetch is not a trace of its own")
	}
	if len(wait.Links) != 1 || wait.Links[0].SpanContext.SpanID() != refresh.SpanContext.SpanID() {
		t.Errorf("wait links %v, want the refresh span %s", wait.Links, refresh.SpanContext.SpanID())
	}
	want := map[attribute.Key]attribute.Value{
		AttrTenant: attribute.StringValue("acme"), AttrProvider: attribute.StringValue("main"),
		AttrTrigger: attribute.StringValue("first"), AttrResult: attribute.StringValue("fetched"),
		AttrKeys: attribute.IntValue(1), AttrFetchCode: attribute.IntValue(200),
	}
	got := attrs(refresh)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("refresh %s = %v, want %v", k, got[k].Emit(), v.Emit())
		}
	}
	if got := attrs(check)[AttrCached]; got != attribute.BoolValue(false) {
		t.Errorf("check cached = %v, want false after a cold wait", got.Emit())
	}
}

func TestUnknownKID_WaitAndRefreshLinked(t *testing.T) {
	f := newFixture(t, 1, false)
	f.warm(t)
	kid, err := f.idp.Rotate("ES256", true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", callerParent))
	if d := f.decide(ctx, f.token(t), nil); !d.Allowed {
		t.Fatalf("denied: %s", d.Reason)
	}
	f.reg.Close()
	spans := f.spans(t)
	check, wait, refresh := spans[SpanCheck], spans[SpanWait], spans[SpanRefresh]
	if wait.Parent.SpanID() != check.SpanContext.SpanID() {
		t.Errorf("wait span's parent %s, want the check span %s", wait.Parent.SpanID(), check.SpanContext.SpanID())
	}
	wa := attrs(wait)
	if wa[AttrWaitKind].AsString() != string(jwkscache.WaitUnknownKID) || wa[AttrKID].AsString() != kid {
		t.Errorf("wait attributes %v, want kind unknown_kid and kid %s", wait.Attributes, kid)
	}
	if len(wait.Links) != 1 || wait.Links[0].SpanContext.SpanID() != refresh.SpanContext.SpanID() {
		t.Errorf("wait links %v, want the refresh span", wait.Links)
	}
	if refresh.Parent.IsValid() || refresh.SpanContext.TraceID().String() == callerTrace {
		t.Error("the unknown-kid refresh is not a trace of its own")
	}
	if len(refresh.Links) != 1 || refresh.Links[0].SpanContext.SpanID() != check.SpanContext.SpanID() {
		t.Errorf("refresh links %v, want the check span that started it", refresh.Links)
	}
	if got := attrs(refresh)[AttrTrigger].AsString(); got != "unknown_kid" {
		t.Errorf("refresh trigger %q, want unknown_kid", got)
	}
	if got := attrs(check)[AttrKID].AsString(); got != kid {
		t.Errorf("check kid %q, want %q", got, kid)
	}
}

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"two headers and a comment", "# collector credentials\nAuthorization: Bearer s3cret\n\nx-tenant:  ops \n",
			map[string]string{"authorization": "Bearer s3cret", "x-tenant": "ops"}, ""},
		{"no colon", "Authorization Bearer s3cret\n", nil, "line 1"},
		{"bad name", "bad name: v\n", nil, "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHeaders([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error %v, want one naming %q and not the value", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
