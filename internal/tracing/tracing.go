// Package tracing records extauthz's work as OpenTelemetry traces: one span
// per decision that continues the caller's trace (authz.Tracer), spans for
// the JWKS cache's refreshes and for a lookup's waits on them
// (jwkscache.Tracer), and, through go-redis's hook, Redis commands. Spans
// are exported over OTLP (gRPC or HTTP) as the tracing block of the
// configuration says; without that block nothing here runs.
//
// Spans carry tenant and provider ids, the decision, the reason code, the
// HTTP status and the token's kid (bounded); never a token, a signature or
// a claim value.
package tracing

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/extauthz/extauthz/internal/tenants"
)

// instrumentation names the tracer (the instrumentation scope).
const instrumentation = "github.com/extauthz/extauthz"

// Tracing is the tracer of one service. It implements authz.Tracer and
// jwkscache.Tracer, and is safe for concurrent use.
type Tracing struct {
	provider trace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	shutdown func(context.Context) error
}

// New returns a Tracing that records with tp (tests pass an SDK provider
// with an in-memory exporter). Shutdown does not stop tp.
func New(tp trace.TracerProvider) *Tracing {
	return &Tracing{
		provider: tp,
		tracer:   tp.Tracer(instrumentation),
		prop:     Propagator(),
		shutdown: func(context.Context) error { return nil },
	}
}

// Propagator extracts (and injects) a caller's trace context: B3, single
// and multiple headers (which Envoy's Zipkin tracer and many Istio meshes
// send), then W3C Trace Context (traceparent, tracestate), which wins when
// both are present.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(b3.New(), propagation.TraceContext{})
}

// Start builds the OTLP exporter and SDK tracer provider cfg describes:
// batched export to cfg.Endpoint over cfg.Protocol, new traces sampled at
// cfg.SampleRatio, a caller's sampling decision followed (parent-based).
// The exporter connects lazily: a collector that is down does not stop the
// service, its spans are dropped. version is the service.version resource
// attribute.
func Start(ctx context.Context, cfg tenants.Tracing, version string) (*Tracing, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("tracing: no endpoint")
	}
	headers, err := readHeaders(cfg.HeadersFile)
	if err != nil {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	switch cfg.Protocol {
	case "http":
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(cfg.Endpoint), otlptracehttp.WithHeaders(headers)}
		if cfg.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	default:
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint), otlptracegrpc.WithHeaders(headers)}
		if cfg.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	ratio := 1.0
	if cfg.SampleRatio != nil {
		ratio = *cfg.SampleRatio
	}
	name := cfg.ServiceName
	if name == "" {
		name = tenants.DefaultTracingServiceName
	}
	tp := newSDKProvider(sdktrace.WithBatcher(exp), ratio, name, version)
	t := New(tp)
	t.shutdown = tp.Shutdown
	return t, nil
}

// TracerProvider returns the provider spans are recorded with (for
// go-redis's hook).
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.provider }

// Shutdown exports the spans still buffered (bounded by ctx) and stops the
// exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// newSDKProvider is the SDK provider of Start, exporting through export:
// new traces sampled at ratio, a caller's decision followed.
func newSDKProvider(export sdktrace.TracerProviderOption, ratio float64, name, version string) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(
		export,
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", name),
			attribute.String("service.version", version),
		)),
	)
}
