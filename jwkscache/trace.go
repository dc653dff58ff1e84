package jwkscache

import "context"

// Tracer, optional (Options.Tracer), sees where the cache does work a
// request may wait on, so a caller can record it as trace spans without
// this package depending on a tracing library (the service maps it to
// OpenTelemetry). Its methods run on the lookup and refresh paths and must
// not block.
type Tracer interface {
	// RefreshStarted is called as a refresh begins. ctx is the registry's
	// (cancelled on Close); the returned context must be derived from it:
	// the refresh's fetches run with it. lookup is the context of the
	// lookup whose unknown kid started the refresh, nil for every other
	// trigger. done is called once with the refresh's outcome.
	RefreshStarted(ctx, lookup context.Context, r TracedRefresh) (refresh context.Context, done func(RefreshEvent))
	// WaitStarted is called as a lookup (ctx) begins to wait for the
	// refresh that runs with the context refresh (RefreshStarted's). done
	// is called once when the wait ends, with the lookup's error (nil when
	// it found a key set to answer from).
	WaitStarted(ctx, refresh context.Context, w TracedWait) (done func(error))
}

// TracedRefresh describes a refresh to a Tracer.
type TracedRefresh struct {
	TenantID, ProviderID string
	Trigger              string // "first", "scheduled", "unknown_kid", "manual"
}

// WaitKind says what a lookup waits for.
type WaitKind string

// The waits of a lookup.
const (
	// WaitCold is a lookup waiting for a provider's first key set.
	WaitCold WaitKind = "cold"
	// WaitUnknownKID is a lookup waiting for the refresh its unknown kid
	// started (OpenID Connect Core 1.0 §10.1.1).
	WaitUnknownKID WaitKind = "unknown_kid"
)

// TracedWait describes a lookup's wait to a Tracer.
type TracedWait struct {
	TenantID, ProviderID string
	Kind                 WaitKind
	// KID is the token's kid, as the client sent it: the Tracer bounds it.
	KID string
}

// traceRefresh asks the tracer, if any, for c's context; the caller holds
// p.mu (the tracer does not block).
func (p *provider) traceRefresh(c *call, lookup context.Context, t trigger) {
	c.ctx = p.ctx
	if p.deps.tracer == nil {
		return
	}
	c.ctx, c.traced = p.deps.tracer.RefreshStarted(p.ctx, lookup, TracedRefresh{
		TenantID: p.reg.TenantID, ProviderID: p.reg.ProviderID, Trigger: t.String(),
	})
}

// traceWait tells the tracer, if any, that a lookup waits for c, and
// returns what ends the wait.
func (p *provider) traceWait(ctx context.Context, c *call, kind WaitKind, kid string) func(error) {
	if p.deps.tracer == nil {
		return nil
	}
	return p.deps.tracer.WaitStarted(ctx, c.ctx, TracedWait{
		TenantID: p.reg.TenantID, ProviderID: p.reg.ProviderID, Kind: kind, KID: kid,
	})
}

// endWait calls done (from traceWait) if there is one.
func endWait(done func(error), err error) {
	if done != nil {
		done(err)
	}
}
