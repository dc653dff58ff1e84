// Package admin provides extauthz's admin HTTP API: Prometheus metrics,
// liveness and readiness probes, and the JWKS cache's per-provider status
// with a forced refresh. docs/admin-openapi.yaml describes every answer.
//
// The admin listener is for operators and the local kubelet or Docker
// health check only: it must not be exposed beyond them. It reveals the
// configured tenants and identity providers and lets anyone who reaches it
// make extauthz fetch key sets on demand; it binds to loopback by default.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// Registry is what the admin API needs from the key cache.
// *jwkscache.Registry satisfies it.
type Registry interface {
	Statuses() []jwkscache.Status
	Status(tenantID, providerID string) (jwkscache.Status, bool)
	Refresh(ctx context.Context, tenantID, providerID string) error
}

// DefaultRefreshTimeout bounds a forced refresh: longer than the retry
// policy's default deadline (8 s), so a refresh ends on its own terms.
const DefaultRefreshTimeout = 15 * time.Second

// Options configure a Handler.
type Options struct {
	// Registry is the key cache; required.
	Registry Registry
	// Metrics serves GET /metrics (metrics.Metrics.Handler); nil: no /metrics.
	Metrics http.Handler
	// MinAvailableShare, when above 0, is the share of providers, at most
	// 1, that must have usable keys (fresh or stale) for /readyz to answer
	// 200. 0 (the default) means no share is required: one tenant's
	// identity provider outage costs only that tenant.
	MinAvailableShare float64
	// ColdWait bounds how long the replica waits, from StartedAt, for every
	// provider's first fetch attempt before it reports ready anyway
	// (limits.cold_wait). 0 means it does not wait.
	ColdWait time.Duration
	// StartedAt is when the replica started (default: when New ran).
	StartedAt time.Time
	// Now is the clock of the cold wait (default time.Now).
	Now func() time.Time
	// ConfigLoaded reports whether a configuration is loaded; nil means it
	// is (a Handler is usually built after the configuration).
	ConfigLoaded func() bool
	// Config reports the configuration in effect for GET /v1/config; nil:
	// no such endpoint.
	Config func() ConfigStatus
	// RefreshTimeout bounds POST .../refresh (default DefaultRefreshTimeout).
	RefreshTimeout time.Duration
	// Logger records forced refreshes (default: discard).
	Logger *slog.Logger
}

// Handler is the admin API, an http.Handler. It is safe for concurrent use.
type Handler struct {
	opts     Options
	mux      *http.ServeMux
	draining atomic.Bool
	started  atomic.Bool // Readiness.Started latched
}

// New returns the admin API over opts.Registry.
func New(opts Options) *Handler {
	if opts.MinAvailableShare < 0 || opts.MinAvailableShare > 1 {
		opts.MinAvailableShare = 1 // unreachable from a validated config; closed
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StartedAt.IsZero() {
		opts.StartedAt = opts.Now()
	}
	if opts.RefreshTimeout <= 0 {
		opts.RefreshTimeout = DefaultRefreshTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opts: opts, mux: http.NewServeMux()}
	if opts.Metrics != nil {
		h.mux.Handle("GET /metrics", opts.Metrics)
	}
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	if opts.Config != nil {
		h.mux.HandleFunc("GET /v1/config", h.config)
	}
	h.mux.HandleFunc("GET /v1/providers", h.listProviders)
	h.mux.HandleFunc("GET /v1/providers/{tenant}/{provider}", h.getProvider)
	h.mux.HandleFunc("POST /v1/providers/{tenant}/{provider}/refresh", h.refreshProvider)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// Drain marks the service as shutting down: from now on /readyz answers 503
// and Ready reports false, so load balancers move traffic away before the
// listeners close. It cannot be undone.
func (h *Handler) Drain() { h.draining.Store(true) }

// Error is the JSON body of every error answer.
type Error struct {
	// Error is a stable code: not_found, refresh_failed, refresh_timeout.
	Error string `json:"error"`
	// Message says what went wrong, for people.
	Message string `json:"message"`
	// Status is the provider's status after a failed refresh.
	Status *ProviderStatus `json:"status,omitempty"`
}

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	// Alive means this goroutine ran: the process serves HTTP. Readiness,
	// not liveness, depends on the identity providers, so an outage there
	// never gets the process restarted.
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
	}{"ok"})
}

func (h *Handler) listProviders(w http.ResponseWriter, _ *http.Request) {
	sts := h.opts.Registry.Statuses()
	out := struct {
		Providers []ProviderStatus `json:"providers"`
	}{Providers: make([]ProviderStatus, 0, len(sts))}
	for _, st := range sts {
		out.Providers = append(out.Providers, newProviderStatus(st))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getProvider(w http.ResponseWriter, r *http.Request) {
	tenant, provider := r.PathValue("tenant"), r.PathValue("provider")
	st, ok := h.opts.Registry.Status(tenant, provider)
	if !ok {
		writeNotFound(w, tenant, provider)
		return
	}
	writeJSON(w, http.StatusOK, newProviderStatus(st))
}

func (h *Handler) refreshProvider(w http.ResponseWriter, r *http.Request) {
	tenant, provider := r.PathValue("tenant"), r.PathValue("provider")
	if _, ok := h.opts.Registry.Status(tenant, provider); !ok {
		writeNotFound(w, tenant, provider)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.RefreshTimeout)
	defer cancel()
	err := h.opts.Registry.Refresh(ctx, tenant, provider)
	st, ok := h.opts.Registry.Status(tenant, provider)
	if !ok || errors.Is(err, jwkscache.ErrUnknownProvider) {
		writeNotFound(w, tenant, provider) // removed by a reload meanwhile
		return
	}
	view := newProviderStatus(st)
	switch {
	case err == nil:
		h.opts.Logger.Info("forced refresh", "tenant", tenant, "provider", provider, "keys", len(st.KeyIDs))
		writeJSON(w, http.StatusOK, view)
	case ctx.Err() != nil:
		// The refresh goes on in the background; only this request stopped
		// waiting for it.
		h.opts.Logger.Warn("forced refresh still running", "tenant", tenant, "provider", provider, "timeout", h.opts.RefreshTimeout.String())
		writeJSON(w, http.StatusServiceUnavailable, Error{Error: "refresh_timeout", Message: "the refresh did not finish in " + h.opts.RefreshTimeout.String() + "; it goes on in the background", Status: &view})
	default:
		h.opts.Logger.Warn("forced refresh failed", "tenant", tenant, "provider", provider, "error", err.Error())
		// 502: the upstream identity provider failed, not this service.
		writeJSON(w, http.StatusBadGateway, Error{Error: "refresh_failed", Message: err.Error(), Status: &view})
	}
}

func writeNotFound(w http.ResponseWriter, tenant, provider string) {
	// The ids are echoed as JSON strings, never as HTML, and only to the
	// operator who sent them.
	writeJSON(w, http.StatusNotFound, Error{Error: "not_found", Message: "no provider " + tenant + "/" + provider})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // only our own types get here; all marshal
		http.Error(w, `{"error":"internal","message":"encoding failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
