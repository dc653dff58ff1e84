package tracing

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/extauthz/extauthz/internal/authz"
)

// Span and attribute names. Attributes of our own are under extauthz.;
// the HTTP ones follow OpenTelemetry's semantic conventions.
const (
	SpanCheck = "extauthz.check"

	AttrTenant     = attribute.Key("extauthz.tenant")
	AttrProvider   = attribute.Key("extauthz.provider")
	AttrDecision   = attribute.Key("extauthz.decision") // allow or deny
	AttrReason     = attribute.Key("extauthz.reason")
	AttrKID        = attribute.Key("extauthz.jwks.kid")
	AttrCached     = attribute.Key("extauthz.jwks.cached") // the key lookup waited for no fetch
	AttrStatusCode = attribute.Key("http.response.status_code")
	AttrMethod     = attribute.Key("http.request.method")
	// AttrRequirement names the route's requirement; AttrWouldDeny is, in
	// shadow mode, the reason enforce mode would have given.
	AttrRequirement = attribute.Key("extauthz.requirement")
	AttrWouldDeny   = attribute.Key("extauthz.would_deny")
)

// maxKIDAttr bounds the kid attribute: the kid is the client's.
const maxKIDAttr = 64

// checkState is one Check's span and what its key lookup did, found by
// WaitStarted through the context.
type checkState struct {
	span   trace.Span
	waited atomic.Bool
}

type checkKey struct{}

// StartCheck implements authz.Tracer. The span continues the caller's
// trace: the W3C or B3 headers of the gRPC metadata Envoy sends with the
// ext_authz call when that carries a valid trace context, else those among
// the request's own headers (inside the CheckRequest, or forward-auth's
// HTTP request).
func (t *Tracing) StartCheck(ctx context.Context, r *authz.Request) (context.Context, func(*authz.Decision)) {
	ctx = t.parent(ctx, r, ctx)
	ctx, span := t.tracer.Start(ctx, SpanCheck, trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		// Unsampled: the span context still flows (to the waits' spans and
		// to nothing else), but no attribute is worth building.
		return ctx, func(*authz.Decision) { span.End() }
	}
	st := &checkState{span: span}
	ctx = context.WithValue(ctx, checkKey{}, st)
	method := r.Method
	return ctx, func(d *authz.Decision) { st.end(d, method) }
}

func (st *checkState) end(d *authz.Decision, method string) {
	decision := "deny"
	if d.Allowed {
		decision = "allow"
	}
	attrs := []attribute.KeyValue{
		AttrTenant.String(d.TenantID),
		AttrProvider.String(d.ProviderID),
		AttrDecision.String(decision),
		AttrReason.String(string(d.Reason)),
		AttrStatusCode.Int(d.HTTPStatus),
	}
	if method != "" {
		attrs = append(attrs, AttrMethod.String(bounded(method, 16)))
	}
	if d.KeyID != "" {
		attrs = append(attrs, AttrKID.String(bounded(d.KeyID, maxKIDAttr)))
	}
	if d.Requirement != "" {
		attrs = append(attrs, AttrRequirement.String(d.Requirement)) // a configured name
	}
	if d.WouldDeny != "" {
		attrs = append(attrs, AttrWouldDeny.String(string(d.WouldDeny)))
	}
	switch {
	case st.waited.Load():
		attrs = append(attrs, AttrCached.Bool(false))
	case lookedUp(d.Reason):
		attrs = append(attrs, AttrCached.Bool(true))
	}
	st.span.SetAttributes(attrs...)
	if d.Reason == authz.ReasonJWKSUnavailable {
		// The identity provider's failure, not the client's: an error of
		// this service as far as the trace is concerned.
		st.span.SetStatus(codes.Error, string(d.Reason))
	}
	st.span.End()
}

// lookedUp reports whether a decision with reason r got as far as the key
// lookup.
func lookedUp(r authz.Reason) bool {
	switch r {
	case authz.ReasonOK, authz.ReasonKeyNotFound, authz.ReasonSignatureInvalid,
		authz.ReasonTokenExpired, authz.ReasonTokenNotYetValid, authz.ReasonAudienceMismatch,
		authz.ReasonProviderNotAllowed, authz.ReasonInsufficientScope:
		return true
	}
	return false
}

// parent returns ctx with the caller's span context: from the gRPC
// metadata of incoming when it has a valid one, else from the request
// headers, else ctx as it is.
func (t *Tracing) parent(ctx context.Context, r *authz.Request, incoming context.Context) context.Context {
	if md, ok := metadata.FromIncomingContext(incoming); ok {
		if p := t.prop.Extract(ctx, mdCarrier(md)); trace.SpanContextFromContext(p).IsRemote() {
			return p
		}
	}
	if len(r.Headers) == 0 {
		return ctx
	}
	// Header names are lowercase in a Request, as the propagators look
	// them up.
	return t.prop.Extract(ctx, propagation.MapCarrier(r.Headers))
}

// callerProp is Caller's propagator: stateless, shared.
var callerProp = Propagator()

// Caller returns the caller's span context as StartCheck finds it (gRPC
// metadata first, then the request headers), or an invalid one. The audit
// log uses it to name the caller's trace when tracing is off.
func Caller(ctx context.Context, r *authz.Request) trace.SpanContext {
	t := Tracing{prop: callerProp}
	return trace.SpanContextFromContext(t.parent(context.Background(), r, ctx))
}

// mdCarrier reads gRPC metadata (lowercase keys) for a propagator.
type mdCarrier metadata.MD

// Get implements propagation.TextMapCarrier.
func (c mdCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set implements propagation.TextMapCarrier.
func (c mdCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

// Keys implements propagation.TextMapCarrier.
func (c mdCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// bounded cuts s to n bytes.
func bounded(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
