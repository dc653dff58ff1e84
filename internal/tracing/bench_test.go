package tracing

import (
	"context"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/metadata"

	"github.com/extauthz/extauthz/internal/authz"
)

// BenchmarkCheckTracing measures one warm decision (real jwkscache
// registry, ES256) with tracing off, on but not sampled (sample_ratio 0,
// no caller trace), and on and sampled: sample_ratio 1 with the SDK's batch
// processor (spans dropped by a no-op exporter), with and without a
// caller's traceparent in the gRPC metadata.
func BenchmarkCheckTracing(b *testing.B) {
	f := newFixture(b, 1, false)
	tok, err := f.idp.Mint("alice", 3600e9, nil)
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	batched := func(ratio float64) *Tracing {
		tp := newSDKProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()), ratio, "bench", "bench")
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		return New(tp)
	}
	withCaller := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", callerParent))
	cases := []struct {
		name   string
		tracer authz.Tracer
		ctx    context.Context
	}{
		{"off", nil, context.Background()},
		{"on-unsampled", batched(0), context.Background()},
		{"on-sampled", batched(1), context.Background()},
		{"on-sampled-caller-traceparent", batched(1), withCaller},
	}
	for _, c := range cases {
		srv := authz.New(f.set, f.reg, authz.Options{Logger: quiet, Tracer: c.tracer})
		req := &authz.Request{Host: "api.acme.test", Path: "/orders", Method: "GET", RequestID: "r1",
			Headers: map[string]string{"authorization": "Bearer " + tok, "x-request-id": "r1"}}
		if d := srv.Decide(c.ctx, req); !d.Allowed {
			b.Fatalf("%s: warm-up denied: %s", c.name, d.Reason)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := srv.Decide(c.ctx, req); !d.Allowed {
					b.Fatal("denied")
				}
			}
		})
	}
}

// BenchmarkStartCheck isolates what tracing adds to a decision (the
// signature check dominates BenchmarkCheckTracing's times): extracting the
// caller's context, starting and ending the Check span.
func BenchmarkStartCheck(b *testing.B) {
	d := &authz.Decision{Allowed: true, HTTPStatus: 200, Reason: authz.ReasonOK, TenantID: "acme", ProviderID: "main", KeyID: "k1"}
	req := &authz.Request{Method: "GET", Headers: map[string]string{"authorization": "Bearer x", "x-request-id": "r1"}}
	withCaller := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", callerParent))
	for _, c := range []struct {
		name  string
		ratio float64
		ctx   context.Context
	}{
		{"unsampled", 0, context.Background()},
		{"sampled", 1, context.Background()},
		{"sampled-caller-traceparent", 1, withCaller},
	} {
		tp := newSDKProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()), c.ratio, "bench", "bench")
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		tr := New(tp)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, end := tr.StartCheck(c.ctx, req)
				end(d)
			}
		})
	}
}
