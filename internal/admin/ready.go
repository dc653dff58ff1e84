package admin

import (
	"context"
	"math"
	"net/http"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// Readiness is the answer of /readyz. Readiness is the replica's,
// availability a provider's: a provider without usable keys costs only its
// own tenant (its Checks answer 503 jwks_unavailable) and is listed in
// Unavailable, while the replica stays ready for every other tenant.
type Readiness struct {
	Ready        bool `json:"ready"`
	ConfigLoaded bool `json:"config_loaded"`
	// ShuttingDown: Drain was called (SIGTERM); never ready again.
	ShuttingDown bool `json:"shutting_down"`
	// Started: every provider has finished its first fetch attempt
	// (successfully or not), or limits.cold_wait has passed since the
	// replica started. Once true it stays true: a provider added by a reload
	// never takes a serving replica out of rotation.
	Started bool `json:"started"`
	// Pending is the number of providers whose first fetch attempt is still
	// running (0 once Started).
	Pending int `json:"pending"`
	// Providers is the number of registered providers, Available how many
	// of them can answer lookups (fresh or stale keys), Required how many
	// must: 0 unless readiness.min_available_share (opt-in) asks for a
	// share of Providers, rounded up.
	Providers int `json:"providers"`
	Available int `json:"available"`
	Required  int `json:"required"`
	// Unavailable lists the providers without usable keys.
	Unavailable []UnavailableProvider `json:"unavailable"`
}

// UnavailableProvider is a provider that cannot answer lookups.
type UnavailableProvider struct {
	TenantID   string     `json:"tenant_id"`
	ProviderID string     `json:"provider_id"`
	State      string     `json:"state"`
	Stale      bool       `json:"stale"`
	ErrorCount int        `json:"error_count"`
	LastError  *string    `json:"last_error"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

// Readiness computes the readiness report now: ready when a configuration
// is loaded, the service is not shutting down, the replica has started (see
// Readiness.Started) and, only when MinAvailableShare is set, at least that
// share of the providers have usable keys.
func (h *Handler) Readiness() Readiness {
	r := Readiness{
		ConfigLoaded: h.opts.ConfigLoaded == nil || h.opts.ConfigLoaded(),
		ShuttingDown: h.draining.Load(),
		Unavailable:  []UnavailableProvider{},
	}
	for _, st := range h.opts.Registry.Statuses() {
		r.Providers++
		if !st.Attempted {
			r.Pending++
		}
		if available(st) {
			r.Available++
			continue
		}
		v := newProviderStatus(st)
		r.Unavailable = append(r.Unavailable, UnavailableProvider{
			TenantID: v.TenantID, ProviderID: v.ProviderID, State: v.State, Stale: v.Stale,
			ErrorCount: v.ErrorCount, LastError: v.LastError, ExpiresAt: v.ExpiresAt,
		})
	}
	r.Started = h.started.Load()
	if !r.Started && r.ConfigLoaded && (r.Pending == 0 || h.opts.Now().Sub(h.opts.StartedAt) >= h.opts.ColdWait) {
		h.started.Store(true)
		r.Started = true
	}
	if r.Started {
		r.Pending = 0
	}
	// The epsilon keeps 0.7 × 10 at 7, not 8, despite binary floats.
	r.Required = int(math.Ceil(h.opts.MinAvailableShare*float64(r.Providers) - 1e-9))
	r.Ready = r.ConfigLoaded && !r.ShuttingDown && r.Started && r.Available >= r.Required
	return r
}

// Ready reports Readiness().Ready; the service drives gRPC health from it.
func (h *Handler) Ready() bool { return h.Readiness().Ready }

// readyz answers 200 or 503 as Readiness says; the body names the
// unavailable providers either way.
func (h *Handler) readyz(w http.ResponseWriter, _ *http.Request) {
	r := h.Readiness()
	status := http.StatusOK
	if !r.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, r)
}

// Watch calls set with ready()'s value at once, and again whenever the value
// differs from the last one set, checked on every tick and every nudge,
// until ctx ends. The service uses it to make grpc.health.v1 follow
// readiness: ticks from a time.Ticker (readiness also changes with the clock
// alone, when stale keys run out), nudges from a Nudge after each refresh
// (so a first fetch turns the service ready at once). Either may be nil.
func Watch(ctx context.Context, ticks <-chan time.Time, nudges <-chan struct{}, ready func() bool, set func(bool)) {
	last := ready()
	set(last)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		case <-nudges:
		}
		if now := ready(); now != last {
			last = now
			set(now)
		}
	}
}

// Nudge is a jwkscache.Observer that wakes Watch after every refresh. It
// never blocks: nudges that arrive while one is pending merge into it.
type Nudge chan struct{}

// NewNudge returns a Nudge.
func NewNudge() Nudge { return make(Nudge, 1) }

// RefreshDone implements jwkscache.Observer.
func (n Nudge) RefreshDone(jwkscache.RefreshEvent) {
	select {
	case n <- struct{}{}:
	default:
	}
}
