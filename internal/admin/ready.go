package admin

import (
	"context"
	"math"
	"net/http"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// Readiness is the answer of /readyz.
type Readiness struct {
	Ready        bool `json:"ready"`
	ConfigLoaded bool `json:"config_loaded"`
	// ShuttingDown: Drain was called (SIGTERM); never ready again.
	ShuttingDown bool `json:"shutting_down"`
	// Providers is the number of registered providers, Available how many
	// of them can answer lookups (fresh or stale keys), Required how many
	// must (MinAvailableShare of Providers, rounded up).
	Providers int `json:"providers"`
	Available int `json:"available"`
	Required  int `json:"required"`
	// NotReady lists the providers without usable keys.
	NotReady []NotReadyProvider `json:"not_ready"`
}

// NotReadyProvider is a provider that cannot answer lookups.
type NotReadyProvider struct {
	TenantID   string     `json:"tenant_id"`
	ProviderID string     `json:"provider_id"`
	State      string     `json:"state"`
	Stale      bool       `json:"stale"`
	ErrorCount int        `json:"error_count"`
	LastError  *string    `json:"last_error"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

// Readiness computes the readiness report now: ready when a configuration
// is loaded, the service is not shutting down, and at least
// MinAvailableShare of the providers have usable keys. It reads the
// registry's running counts and lists only the providers that are not
// ready, so it costs nothing per usable provider.
func (h *Handler) Readiness() Readiness {
	r := h.readiness(h.opts.Registry.Availability())
	r.NotReady = []NotReadyProvider{}
	for _, st := range h.opts.Registry.UnusableStatuses() {
		if available(st) {
			continue // became usable since it was listed
		}
		v := newProviderStatus(st)
		r.NotReady = append(r.NotReady, NotReadyProvider{
			TenantID: v.TenantID, ProviderID: v.ProviderID, State: v.State, Stale: v.Stale,
			ErrorCount: v.ErrorCount, LastError: v.LastError, ExpiresAt: v.ExpiresAt,
		})
	}
	return r
}

// readiness is the report without its NotReady list.
func (h *Handler) readiness(a jwkscache.Availability) Readiness {
	r := Readiness{
		ConfigLoaded: h.opts.ConfigLoaded == nil || h.opts.ConfigLoaded(),
		ShuttingDown: h.draining.Load(),
		Providers:    a.Providers,
		Available:    a.Usable,
	}
	// The epsilon keeps 0.7 × 10 at 7, not 8, despite binary floats.
	r.Required = int(math.Ceil(h.opts.MinAvailableShare*float64(r.Providers) - 1e-9))
	r.Ready = r.ConfigLoaded && !r.ShuttingDown && r.Available >= r.Required
	return r
}

// Ready reports Readiness().Ready without listing anything: the service
// drives gRPC health from it after every refresh, so it costs the same
// whatever the number of providers.
func (h *Handler) Ready() bool { return h.readiness(h.opts.Registry.Availability()).Ready }

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
