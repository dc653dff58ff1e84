package authz

import (
	"context"
	"crypto"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/tenants"
)

// KeySource finds the public key that verifies a token. *jwkscache.Registry
// satisfies it. Errors are told apart with errors.Is: jwkscache.ErrKeyNotFound,
// jwkscache.ErrUnavailable, jwkscache.ErrUnknownProvider.
type KeySource interface {
	Key(ctx context.Context, tenantID, providerID, kid, alg string) (crypto.PublicKey, error)
}

// Observer is told about every decision (metrics). It must not block or
// keep d.
type Observer interface {
	CheckDone(d *Decision, elapsed time.Duration)
}

// Request is a gateway-neutral authorization request.
type Request struct {
	Host   string // Host or :authority, as received
	Path   string // request target, query included (query parameters may carry the token); logs drop the query
	Method string
	// RequestID is the x-request-id, for logs.
	RequestID string
	// Headers are the request headers with lowercase names.
	Headers map[string]string
	// ContextExtensions are Envoy's per-route values ("tenant", "provider",
	// "requirement").
	ContextExtensions map[string]string
	// ClientAddress is the downstream client's address as the gateway gives
	// it (Envoy's source address; forward-auth's trusted X-Forwarded-For or
	// peer), for the audit log.
	ClientAddress string
	// Scheme is the request's URI scheme ("https"): Envoy's
	// attributes.request.http.scheme, or a trusted proxy's
	// X-Forwarded-Proto. A DPoP proof's htu is checked against
	// Scheme://Host/Path; empty matches no proof.
	Scheme string
	// PeerCertificate is the client certificate of a mutual-TLS
	// connection as Envoy sends it (attributes.source.certificate,
	// URL-encoded PEM); "" without one.
	PeerCertificate string
	// ForwardedClientCert is an x-forwarded-client-cert header the front
	// end may pass on; it is believed only with trust_forwarded_client_cert.
	ForwardedClientCert string
}

// Header is one header to set on the upstream request.
type Header struct {
	Name  string
	Value string
}

// Decision is the answer to a Request.
type Decision struct {
	Allowed     bool
	HTTPStatus  int
	Reason      Reason
	Description string
	TenantID    string
	ProviderID  string
	// Headers are the claim headers to set, overwriting client values.
	// Read-only: they may be shared with other decisions for the same
	// token.
	Headers []Header
	// RemoveHeaders are claim headers the token did not fill, and the
	// token's header under forward_token: false, to remove. Read-only, as
	// Headers.
	RemoveHeaders []string
	// RemoveQueryParams are query parameters to remove (a token found in
	// one under forward_token: false).
	RemoveQueryParams []string
	// Requirement names the requirement the request was held to ("" for
	// the baseline: any valid token of the tenant's providers).
	Requirement string
	// Anonymous is an allow without a valid token: allow_missing, or a
	// shadow-mode denial.
	Anonymous bool
	// WouldDeny is, in shadow mode, the reason the request would have been
	// denied; the decision itself is an allow.
	WouldDeny Reason
	// Claims are the verified token's claims (allow only), as encoding/json
	// decodes them with UseNumber: numbers are json.Number, exact.
	// Read-only: a token repeated shares them through the cache.
	Claims map[string]any
	// MetadataClaims selects the Claims a front end exposes as metadata
	// (the provider's metadata_claims; the zero value selects all).
	MetadataClaims tenants.ClaimNames
	// IssuerValues is, for a provider with an issuer_template, the
	// placeholder's name and the value the token's iss matched (e.g.
	// {"tid": "..."}); nil for a fixed issuer (allow only).
	IssuerValues map[string]string
	// ClaimsMemo, when set, is shared by every Decision whose Claims come
	// from the same verified-token cache entry: a front end keeps its
	// rendering of Claims there (the gRPC one, its dynamic metadata) so a
	// repeated token does not pay for it again. Claims are read-only.
	ClaimsMemo *Memo
	// Cache says whether the token's verification came from the
	// verified-token cache (limits.token_cache_entries).
	Cache CacheResult
	// WWWAuthenticate is the challenge of a 401 (RFC 6750 §3).
	WWWAuthenticate string
	// Body is the JSON body of a denial.
	Body []byte
	// KeyID is the token's kid, as the client sent it, cut to 128 bytes
	// (for traces); empty when the token was not parsed that far.
	KeyID string
}

// Options are a Server's optional parts.
type Options struct {
	Now      func() time.Time // default time.Now
	Logger   *slog.Logger     // default slog.Default()
	Observer Observer         // optional
	Tracer   Tracer           // optional: a span per decision
	Recorder Recorder         // optional: the audit log
	// DenialLogLimit bounds denial log lines per reason code and second
	// (DefaultDenialLogLimit when 0, no bound when negative). Lines over it
	// are counted and reported by the next line of that reason.
	DenialLogLimit int
	// DPoPReplay remembers accepted DPoP proofs (default: this replica's
	// own cache of tenants.DefaultDPoPReplayEntries).
	DPoPReplay dpop.ReplayCache
	// TokenCacheObserver, optional, is told about evictions from the
	// verified-token cache.
	TokenCacheObserver TokenCacheObserver
}

// Server makes authorization decisions. It is safe for concurrent use; its
// tenant set is swapped atomically by Update.
type Server struct {
	keys      KeySource
	now       func() time.Time
	log       *slog.Logger
	observer  Observer
	tracer    Tracer
	recorder  Recorder
	denialLog *logLimiter // nil: no limit
	dpop      *dpop.Checker
	state     atomic.Pointer[state]
	// tokens is the verified-token cache; nil when
	// limits.token_cache_entries is 0.
	tokens   atomic.Pointer[tokenCache]
	tokenObs TokenCacheObserver
	tokensMu sync.Mutex // serialises changes to tokens
	closed   bool       // under tokensMu
}

// state is one tenant set.
type state struct {
	set *tenants.Set
}

// New returns a Server answering from set (nil: every request is
// tenant_unknown until Update) with keys from keys.
func New(set *tenants.Set, keys KeySource, opts Options) *Server {
	s := &Server{
		keys:     keys,
		now:      opts.Now,
		log:      opts.Logger,
		observer: opts.Observer,
		tokenObs: opts.TokenCacheObserver,
		tracer:   opts.Tracer,
		recorder: opts.Recorder,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.denialLog = newLogLimiter(opts.DenialLogLimit, s.now)
	if s.log == nil {
		s.log = slog.Default()
	}
	replay := opts.DPoPReplay
	if replay == nil {
		replay = dpop.NewMemoryReplay(tenants.DefaultDPoPReplayEntries, s.now)
	}
	s.dpop = dpop.NewChecker(replay, s.now)
	s.Update(set)
	return s
}

// Update swaps in a new tenant set; requests already running finish with the
// old one.
func (s *Server) Update(set *tenants.Set) {
	s.state.Store(&state{set: set})
	s.updateTokenCache(set)
}

// Close stops the verified-token cache's background clean-up. The Server
// keeps answering (without the cache) afterwards.
func (s *Server) Close() {
	s.tokensMu.Lock()
	defer s.tokensMu.Unlock()
	if tc := s.tokens.Swap(nil); tc != nil {
		tc.c.StopAllGoroutines()
	}
	s.closed = true
}

// updateTokenCache sizes the verified-token cache for set, creating or
// dropping it, and empties it: entries are tied to the state that verified
// them, so none of them can be used under the new one.
func (s *Server) updateTokenCache(set *tenants.Set) {
	s.tokensMu.Lock()
	defer s.tokensMu.Unlock()
	size := 0
	if set != nil && set.Limits().TokenCacheEntries != nil && !s.closed {
		size = *set.Limits().TokenCacheEntries
	}
	cur := s.tokens.Load()
	switch {
	case size == 0:
		s.tokens.Store(nil)
	case cur == nil:
		s.tokens.Store(newTokenCache(size, s.tokenObs))
	default:
		cur.resize(size)
		cur.c.InvalidateAll()
	}
}

// Set returns the current tenant set (nil if none).
func (s *Server) Set() *tenants.Set { return s.state.Load().set }

// Decide makes the decision for r. It never fails: every outcome, including
// an identity provider outage, is a Decision.
func (s *Server) Decide(ctx context.Context, r *Request) Decision {
	start := time.Now()
	if r == nil {
		r = &Request{}
	}
	var end func(*Decision)
	if s.tracer != nil {
		ctx, end = s.startCheck(ctx, r)
	}
	d, err := s.decide(ctx, r)
	elapsed := time.Since(start)
	s.logDecision(ctx, r, &d, err, elapsed)
	if s.observer != nil {
		// The observer gets a copy, so that only the copy escapes to the
		// heap: without an observer, d stays on the stack.
		od := d
		s.observer.CheckDone(&od, elapsed)
	}
	if end != nil || s.recorder != nil {
		s.finishCheck(ctx, r, d, end)
	}
	return d
}

// decide runs the decision steps of the package doc in order. The error is
// the internal cause of a denial, for the log only.
func (s *Server) decide(ctx context.Context, r *Request) (Decision, error) {
	st := s.state.Load()
	t := resolveTenant(st.set, r)
	if t == nil {
		return deny(ReasonTenantUnknown, "", "", false), nil
	}
	d, err := s.decideTenant(ctx, st, t, r)
	if t.Shadow && !d.Allowed {
		d = shadow(st, t, d)
	}
	return d, err
}

// decideTenant runs the remaining decision steps of the package doc for
// tenant t, as if t were in enforce mode. The error is the internal cause
// of a denial, for the log only.
func (s *Server) decideTenant(ctx context.Context, st *state, t *tenants.Rules, r *Request) (Decision, error) {
	req, reason, err := selectRequirement(t, r)
	if reason != ReasonOK {
		return deny(reason, t.ID, "", false), err
	}
	route, err := routeProvider(t, r)
	if err != nil {
		return denyFor(req, ReasonIssuerUnknown, t.ID, "", hasAnyToken(t.Sources, r)), err
	}
	raw, src := findToken(requirementSources(t, route, req), r)
	if raw == "" && route == nil && req != nil && req.Sources != nil {
		// No token of an accepted provider: one of another provider is
		// still judged (and refused as provider_not_allowed), never
		// mistaken for no token at all.
		raw, src = findToken(t.Sources, r)
	}
	if raw == "" {
		if req != nil && req.AllowMissing {
			d := allowWithoutToken(st, t)
			d.Requirement = req.Name
			return d, nil
		}
		return denyFor(req, ReasonTokenMissing, t.ID, providerID(route), false), nil
	}
	limits := st.set.Limits()
	if len(raw) > limits.MaxTokenBytes {
		return denyFor(req, ReasonTokenTooLarge, t.ID, providerID(route), true), nil
	}
	var kid string
	var entry *tokenEntry
	p, claims, match, cached, err := s.verify(ctx, st, t, route, raw, src, &kid, &entry)
	if err != nil {
		rf := asRefusal(err)
		// token_missing here means "not in a source of its provider".
		d := denyFor(req, rf.reason, t.ID, providerID(p), rf.reason != ReasonTokenMissing)
		d.KeyID = boundKeyID(kid)
		d.Cache = cached
		return d, rf.cause
	}
	// Everything below depends on the request, not only on the token, so
	// it runs on every Check, answered from the token cache or not.
	if reason, err := s.checkSender(ctx, st, r, p, claims, raw, src); reason != ReasonOK {
		d := denySender(reason, t.ID, p)
		d.Requirement = requirementName(req)
		d.Cache = cached
		return d, err
	}
	var wouldDeny Reason
	if req != nil {
		if reason := meets(req, p, claims); reason != ReasonOK {
			if !t.Shadow {
				d := denyRequirement(reason, t, p, req)
				d.Cache = cached
				return d, nil
			}
			// Shadow mode: the token is valid, so its claim headers go
			// upstream; the denial is reported, not enforced.
			wouldDeny = reason
		}
	}
	d := allow(st.set, t, p, claims, entry)
	if match.Claim != "" {
		d.IssuerValues = map[string]string{match.Claim: match.Value}
	}
	d.KeyID = boundKeyID(kid)
	d.Requirement = requirementName(req)
	d.WouldDeny = wouldDeny
	d.Cache = cached
	if entry != nil {
		d.ClaimsMemo = &entry.memo
	}
	upstreamToken(&d, p, src, raw, r)
	return d, nil
}

// allow builds the allow for a token p verified: its claim headers, the
// removal of every other claim header, and the tenant header; from the
// token's cache entry, when it has one, after the first time.
func allow(set *tenants.Set, t *tenants.Rules, p *tenants.ProviderRules, claims map[string]any, e *tokenEntry) Decision {
	d := Decision{
		Allowed:        true,
		HTTPStatus:     ReasonOK.HTTPStatus(),
		Reason:         ReasonOK,
		TenantID:       t.ID,
		ProviderID:     p.ID,
		Claims:         claims,
		MetadataClaims: p.MetadataClaims,
	}
	if e == nil {
		d.Headers, d.RemoveHeaders = allowHeaders(set, t, p, claims)
		return d
	}
	e.headersOnce.Do(func() {
		// Shared by every allow of this token: clipped, so that a change
		// (upstreamToken's) copies instead of writing into them.
		hs, rm := allowHeaders(set, t, p, claims)
		e.headers, e.remove = slices.Clip(hs), slices.Clip(rm)
	})
	d.Headers, d.RemoveHeaders = e.headers, e.remove
	return d
}

// allowHeaders returns the claim headers to set, with the tenant header,
// and those to remove. An entry in the verified-token cache keeps them:
// they depend only on the token, its provider and the tenant set the
// provider belongs to (p's tenant is t).
func allowHeaders(set *tenants.Set, t *tenants.Rules, p *tenants.ProviderRules, claims map[string]any) (hs []Header, remove []string) {
	hs, remove = claimHeaders(set.ClaimHeaders(), p, claims, set.Limits().MaxHeaderValueBytes)
	if h := set.TenantHeader(); h != "" {
		// The upstream reads the tenant from this header: it must name the
		// tenant this decision was made for, not what the client sent
		// (context_extensions and the host take precedence over an empty
		// header, or over any header when set by the route).
		hs = withHeader(hs, Header{Name: h, Value: t.ID})
	}
	return hs, remove
}

// denyFor is deny for a request held to req.
func denyFor(req *tenants.RequirementRules, reason Reason, tenantID, providerID string, tokenPresent bool) Decision {
	d := deny(reason, tenantID, providerID, tokenPresent)
	d.Requirement = requirementName(req)
	return d
}

// withHeader inserts h into hs, which is sorted by name, keeping the order.
// h's name is never a claim header (tenants.Config.Validate refuses that).
func withHeader(hs []Header, h Header) []Header {
	i := 0
	for i < len(hs) && hs[i].Name < h.Name {
		i++
	}
	return slices.Insert(hs, i, h)
}

// resolveTenant applies the tenant rules of the package doc.
func resolveTenant(set *tenants.Set, r *Request) *tenants.Rules {
	if set == nil {
		return nil
	}
	if id, ok := r.ContextExtensions["tenant"]; ok && id != "" {
		t, _ := set.Tenant(id)
		return t
	}
	if h := set.TenantHeader(); h != "" {
		if id := r.Headers[h]; id != "" {
			t, _ := set.Tenant(id)
			return t
		}
	}
	t, _ := set.TenantForHost(r.Host)
	return t
}

// deny builds a denial. tokenPresent adds RFC 6750 §3's error attributes.
func deny(reason Reason, tenantID, providerID string, tokenPresent bool) Decision {
	desc := reason.Description()
	d := Decision{
		HTTPStatus:  reason.HTTPStatus(),
		Reason:      reason,
		Description: desc,
		TenantID:    tenantID,
		ProviderID:  providerID,
	}
	if d.HTTPStatus == http.StatusUnauthorized {
		// RFC 6750 §3: the realm names the protection space (the tenant);
		// the error code only when a token was presented (§3.1: a request
		// lacking credentials gets no error code).
		var b strings.Builder
		b.WriteString(`Bearer realm="`)
		b.WriteString(tenantID) // tenant ids are [A-Za-z0-9-]: no quoting needed
		b.WriteString(`"`)
		if code := reason.BearerError(); tokenPresent && code != "" {
			b.WriteString(`, error="`)
			b.WriteString(code)
			b.WriteString(`", error_description="`)
			b.WriteString(desc) // fixed texts without '"' or '\'
			b.WriteString(`"`)
		}
		d.WWWAuthenticate = b.String()
	}
	d.Body, _ = json.Marshal(struct {
		Error       Reason `json:"error"`
		Description string `json:"error_description"`
	}{reason, desc})
	return d
}
