// Package admin provides extauthz's admin HTTP API: Prometheus metrics,
// liveness and readiness probes, and the JWKS cache's per-provider status
// with a forced refresh. docs/admin-openapi.yaml describes every answer.
//
// The admin listener is for operators and the local kubelet or Docker
// health check only: it must not be exposed beyond them. It reveals the
// configured tenants and identity providers and can make extauthz fetch
// key sets on demand, so every request carries a bearer token (Options.Token)
// unless the service keeps the listener on loopback; forced refreshes of one
// provider are spaced by a minimum interval.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
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

// DefaultRefreshMinInterval is the least time between two forced
// refreshes of one provider when Options leave it unset.
const DefaultRefreshMinInterval = 30 * time.Second

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
	// Token, when not empty, is the bearer token (RFC 6750 §2.1) every
	// request must carry; others are answered 401.
	Token []byte
	// OpenProbes serves /healthz, /readyz and /metrics without the token.
	// The provider API always needs it.
	OpenProbes bool
	// RefreshMinInterval spaces forced refreshes of one provider (default
	// DefaultRefreshMinInterval); one sooner is answered 429 with
	// Retry-After, so no caller can make the API flood an identity provider.
	RefreshMinInterval time.Duration
	// Now is the clock of RefreshMinInterval and of the cold wait
	// (default time.Now).
	Now func() time.Time
}

// Handler is the admin API, an http.Handler. It is safe for concurrent use.
type Handler struct {
	opts      Options
	mux       *http.ServeMux
	draining  atomic.Bool
	tokenHash [sha256.Size]byte
	started   atomic.Bool // Readiness.Started latched

	refreshMu   sync.Mutex
	lastRefresh map[[2]string]time.Time // tenant, provider → last forced refresh
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
	if opts.RefreshMinInterval <= 0 {
		opts.RefreshMinInterval = DefaultRefreshMinInterval
	}
	h := &Handler{opts: opts, mux: http.NewServeMux(), lastRefresh: map[[2]string]time.Time{}}
	h.tokenHash = sha256.Sum256(opts.Token)
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
	if !h.authorized(r) {
		// RFC 6750 §3: a challenge naming the scheme; no error code when
		// the request carried no credentials at all.
		w.Header().Set("WWW-Authenticate", `Bearer realm="extauthz-admin"`)
		writeJSON(w, http.StatusUnauthorized, Error{Error: "unauthorized", Message: "this admin API needs a bearer token (admin.token_file)"})
		return
	}
	h.mux.ServeHTTP(w, r)
}

// openPaths are what Options.OpenProbes serves without the token.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// authorized reports whether r may be served: no token configured, an open
// probe, or the right bearer token. The comparison is of SHA-256 digests in
// constant time, so neither the token's content nor its length leaks
// through timing.
func (h *Handler) authorized(r *http.Request) bool {
	if len(h.opts.Token) == 0 {
		return true
	}
	if h.opts.OpenProbes && r.Method == http.MethodGet && openPaths[r.URL.Path] {
		return true
	}
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") { // RFC 6750 §2.1: the scheme is case-insensitive
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(cred)))
	return subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) == 1
}

// allowRefresh records a forced refresh of tenant/provider now, or returns
// how long the caller must wait for the next one.
func (h *Handler) allowRefresh(tenant, provider string) (wait time.Duration, ok bool) {
	h.refreshMu.Lock()
	defer h.refreshMu.Unlock()
	now := h.opts.Now()
	key := [2]string{tenant, provider}
	if last, seen := h.lastRefresh[key]; seen {
		if next := last.Add(h.opts.RefreshMinInterval); now.Before(next) {
			return next.Sub(now), false
		}
	}
	// Only known providers get here, so the map stays as small as the
	// configuration; entries of removed providers are dropped here too.
	for k, t := range h.lastRefresh {
		if now.Sub(t) >= h.opts.RefreshMinInterval {
			delete(h.lastRefresh, k)
		}
	}
	h.lastRefresh[key] = now
	return 0, true
}

// Drain marks the service as shutting down: from now on /readyz answers 503
// and Ready reports false, so load balancers move traffic away before the
// listeners close. It cannot be undone.
func (h *Handler) Drain() { h.draining.Store(true) }

// Error is the JSON body of every error answer.
type Error struct {
	// Error is a stable code: unauthorized, not_found, refresh_too_soon,
	// refresh_failed, refresh_timeout.
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
	if wait, ok := h.allowRefresh(tenant, provider); !ok {
		secs := int((wait + time.Second - 1) / time.Second) // RFC 9110 §10.2.3: whole seconds, rounded up
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeJSON(w, http.StatusTooManyRequests, Error{Error: "refresh_too_soon",
			Message: "this provider was refreshed less than " + h.opts.RefreshMinInterval.String() + " ago; retry in " + strconv.Itoa(secs) + "s"})
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
