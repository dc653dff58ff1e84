package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/extauthz/extauthz/jwkscache"
)

// Span and attribute names of the cache's work.
const (
	SpanRefresh = "jwks.refresh"
	SpanWait    = "jwks.wait"

	AttrTrigger    = attribute.Key("extauthz.jwks.trigger")     // first, scheduled, unknown_kid, manual
	AttrResult     = attribute.Key("extauthz.jwks.result")      // fetched, not_modified, error, shared, deferred
	AttrKeys       = attribute.Key("extauthz.jwks.keys")        // keys in the set after the refresh
	AttrWaitKind   = attribute.Key("extauthz.jwks.wait")        // cold or unknown_kid
	AttrWaitResult = attribute.Key("extauthz.jwks.wait_ok")     // the wait ended with a key set to answer from
	AttrFetchCode  = attribute.Key("http.response.status_code") // the identity provider's last answer
)

var _ jwkscache.Tracer = (*Tracing)(nil)

// RefreshStarted implements jwkscache.Tracer: a refresh is a trace of its
// own (it serves every later Check, not only the one that may have started
// it), linked to the Check whose unknown kid started it.
func (t *Tracing) RefreshStarted(ctx, lookup context.Context, r jwkscache.TracedRefresh) (context.Context, func(jwkscache.RefreshEvent)) {
	opts := []trace.SpanStartOption{
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(AttrTenant.String(r.TenantID), AttrProvider.String(r.ProviderID), AttrTrigger.String(r.Trigger)),
	}
	if lookup != nil {
		if sc := trace.SpanContextFromContext(lookup); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	ctx, span := t.tracer.Start(ctx, SpanRefresh, opts...)
	return ctx, func(ev jwkscache.RefreshEvent) {
		span.SetAttributes(AttrResult.String(string(ev.Result)), AttrKeys.Int(ev.Keys))
		if ev.HTTPStatus != 0 {
			span.SetAttributes(AttrFetchCode.Int(ev.HTTPStatus))
		}
		if ev.Err != nil {
			// The error names the redacted JWKS URL and the causes; never a key.
			span.SetStatus(codes.Error, ev.Err.Error())
		}
		span.End()
	}
}

// WaitStarted implements jwkscache.Tracer: the wait is a child of the
// lookup's Check span, linked to the refresh it waits for.
func (t *Tracing) WaitStarted(ctx, refresh context.Context, w jwkscache.TracedWait) func(error) {
	if st, ok := ctx.Value(checkKey{}).(*checkState); ok {
		st.waited.Store(true)
	}
	opts := []trace.SpanStartOption{
		trace.WithAttributes(AttrTenant.String(w.TenantID), AttrProvider.String(w.ProviderID), AttrWaitKind.String(string(w.Kind))),
	}
	if w.KID != "" {
		opts = append(opts, trace.WithAttributes(AttrKID.String(bounded(w.KID, maxKIDAttr))))
	}
	if sc := trace.SpanContextFromContext(refresh); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	_, span := t.tracer.Start(ctx, SpanWait, opts...)
	return func(err error) {
		span.SetAttributes(AttrWaitResult.Bool(err == nil))
		span.End()
	}
}
