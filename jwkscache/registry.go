package jwkscache

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// providerKey identifies a provider; a struct of two strings is a map key
// that costs no allocation to look up.
type providerKey struct{ tenant, provider string }

// registryImpl is the state behind Registry.
type registryImpl struct {
	opts       Options
	deps       deps
	client     *http.Client
	transports *transports
	ctx        context.Context
	cancel     context.CancelFunc

	// providers is immutable once published; writers copy it under mu and
	// swap the pointer, so lookups read it without a lock.
	providers atomic.Pointer[map[providerKey]*provider]
	mu        sync.Mutex
	closed    bool
	bg        sync.WaitGroup // the coordinator subscription
}

// New returns a registry. It fails on invalid options (see Options.Validate).
func New(opts Options) (*Registry, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.DefaultRefreshEarly == 0 {
		opts.DefaultRefreshEarly = 30 * time.Second
	}
	if opts.DefaultStaleWhileError == 0 {
		opts.DefaultStaleWhileError = 60 * time.Second
	}
	if opts.MaxConcurrentFetches == 0 {
		opts.MaxConcurrentFetches = 16
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	opts.AllowedDomains = slices.Clone(opts.AllowedDomains)
	r := &Registry{impl: registryImpl{
		opts:       opts,
		client:     opts.HTTPClient,
		transports: newTransports(opts.HTTPClient.Transport, opts.MaxConcurrentFetches),
		deps: deps{
			clock:         opts.Clock,
			sem:           make(chan struct{}, opts.MaxConcurrentFetches),
			avail:         newAvailability(),
			observer:      opts.Observer,
			logger:        opts.Logger,
			quietFailures: opts.QuietRefreshFailures,
			tracer:        opts.Tracer,
		},
	}}
	if opts.Coordinator != nil {
		holder := opts.CoordinatorHolder
		if holder == "" {
			holder = defaultHolder()
		}
		r.impl.deps.coord = &coordination{c: opts.Coordinator, holder: holder, downUntil: new(atomic.Int64)}
		r.impl.deps.coord.meta, _ = opts.Coordinator.(MetadataCoordinator)
	}
	r.impl.ctx, r.impl.cancel = context.WithCancel(context.Background())
	empty := map[providerKey]*provider{}
	r.impl.providers.Store(&empty)
	if n, ok := opts.Coordinator.(Notifier); ok {
		r.impl.bg.Go(func() { r.impl.subscribe(n) })
	}
	return r, nil
}

// NewRegistration returns DefaultRegistration with the registry's default
// RefreshEarly and StaleWhileError.
func (r *Registry) NewRegistration(tenantID, providerID, jwksURL string) Registration {
	reg := DefaultRegistration(tenantID, providerID, jwksURL)
	reg.RefreshEarly = r.impl.opts.DefaultRefreshEarly
	reg.StaleWhileError = r.impl.opts.DefaultStaleWhileError
	return reg
}

// Register inserts or replaces a provider and starts its first fetch in the
// background (bounded by MaxConcurrentFetches). Registering a registration
// equal to the current one is a no-op that keeps the warm cache; any other
// change replaces the provider. The replacement starts from the old key set
// (keeping its expires_at) when it fetches the same URL under the same
// guards, and from nothing otherwise. ctx only bounds the call
// itself: the first fetch belongs to the registry, not to the caller.
func (r *Registry) Register(ctx context.Context, reg Registration) error {
	return r.RegisterAll(ctx, []Registration{reg})
}

// RegisterAll registers every registration as Register does, publishing
// them together: registering N providers costs O(N), where N calls to
// Register would copy the provider table N times. When one registration
// is invalid, none is registered and the error lists every problem. A
// later registration for the same (tenant, provider) wins.
func (r *Registry) RegisterAll(ctx context.Context, regs []Registration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("jwkscache: register: %w", err)
	}
	var errs []error
	for _, reg := range regs {
		if err := r.Validate(reg); err != nil {
			errs = append(errs, fmt.Errorf("jwkscache: register %s/%s: %w", reg.TenantID, reg.ProviderID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	im := &r.impl
	cur := *im.providers.Load()
	type pending struct {
		p      *provider
		shared warm
		warm   bool // needs no refresh yet
	}
	var todo []pending
	for _, reg := range regs {
		reg = cloneRegistration(reg)
		if old := cur[providerKey{reg.TenantID, reg.ProviderID}]; old != nil && sameRegistration(old.reg, reg) {
			continue
		}
		// A shared snapshot (Options.Coordinator) is read before the lock, since
		// it is a network call however bounded, and before the provider is
		// published, so a warm start is Ready from the first lookup on.
		p := im.newProvider(reg)
		todo = append(todo, pending{p: p, shared: p.warmLoad(ctx)})
	}
	if len(todo) == 0 {
		return nil
	}
	var retired []*provider
	im.mu.Lock()
	if im.closed {
		im.mu.Unlock()
		for _, t := range todo {
			t.p.close()
		}
		return errors.New("jwkscache: register: registry closed")
	}
	cur = *im.providers.Load()
	next := make(map[providerKey]*provider, len(cur)+len(todo))
	maps.Copy(next, cur)
	var started []pending
	now := im.deps.clock.Now()
	for _, t := range todo {
		p, reg := t.p, t.p.reg
		k := providerKey{reg.TenantID, reg.ProviderID}
		old := next[k]
		if old != nil && sameRegistration(old.reg, reg) {
			retired = append(retired, p)
			continue
		}
		if old != nil && sameSource(old.reg, reg) {
			// Same document under the same guards: the replacement serves
			// the old keys while its first fetch (conditional, so usually
			// a 304) runs. A request never waits for a fetch while a usable
			// set exists, not even across a reload that changed a timing
			// setting.
			if s := old.snap.Load(); s != nil {
				p.adopt(s.carried(now, reg.StaleWhileError))
			}
			if p.meta != nil {
				p.meta.carry(old.meta)
			}
		}
		t.warm = p.warmStart(t.shared)
		if old != nil {
			im.deps.avail.remove(old)
			retired = append(retired, old)
		}
		next[k] = p
		im.deps.avail.add(p)
		started = append(started, t)
	}
	im.providers.Store(&next)
	for _, t := range started {
		if next[providerKey{t.p.reg.TenantID, t.p.reg.ProviderID}] != t.p {
			continue // replaced later in this same batch
		}
		if t.warm {
			t.p.schedule(im.deps.clock.Now())
		} else {
			t.p.startRefresh(triggerFirst)
		}
	}
	im.mu.Unlock()
	for _, p := range retired {
		p.close()
	}
	return nil
}

func (im *registryImpl) newProvider(reg Registration) *provider {
	pins := decodePins(reg.PinnedSPKI)
	guard := redirectGuard(reg.MaxRedirects, reg.RequireHTTPS, reg.AllowedDomains, im.opts.AllowedDomains)
	client, closeIdle := im.transports.clientFor(im.client, guard, pins)
	display := reg.JWKSURL
	if u, err := url.Parse(reg.JWKSURL); err == nil {
		display = redactURL(u)
	}
	f := fetcher{
		url:      reg.JWKSURL,
		display:  display,
		client:   client,
		maxBytes: reg.MaxResponseBytes,
		minTTL:   reg.MinTTL,
		maxTTL:   reg.MaxTTL,
		pins:     pins,
	}
	p := newProvider(im.ctx, reg, im.deps, f, closeIdle)
	p.fingerprint = fingerprint(reg, im.opts.AllowedDomains)
	if reg.DiscoveryURL != "" {
		p.meta = &metadata{
			issuer:  reg.Issuer,
			fetcher: f.at(reg.DiscoveryURL),
			check:   fetchURLCheck(reg.RequireHTTPS, reg.AllowedDomains, im.opts.AllowedDomains),
		}
		p.meta.retryDelay = p.failureDelay
		p.fetcher.display = "the jwks_uri of " + p.meta.fetcher.display
	}
	return p
}

// Unregister removes a provider and stops its background work.
func (r *Registry) Unregister(tenantID, providerID string) bool {
	im := &r.impl
	k := providerKey{tenantID, providerID}
	im.mu.Lock()
	cur := *im.providers.Load()
	p := cur[k]
	if p == nil {
		im.mu.Unlock()
		return false
	}
	next := maps.Clone(cur)
	delete(next, k)
	im.providers.Store(&next)
	im.deps.avail.remove(p)
	im.mu.Unlock()
	p.close()
	return true
}

// Retain unregisters, in one step, every provider for which keep returns
// false, and returns how many it removed. A configuration reload uses it
// to drop the providers it no longer lists at O(N) cost.
func (r *Registry) Retain(keep func(tenantID, providerID string) bool) int {
	im := &r.impl
	im.mu.Lock()
	cur := *im.providers.Load()
	var gone []*provider
	next := make(map[providerKey]*provider, len(cur))
	for k, p := range cur {
		if keep(k.tenant, k.provider) {
			next[k] = p
			continue
		}
		gone = append(gone, p)
		im.deps.avail.remove(p)
	}
	if len(gone) > 0 {
		im.providers.Store(&next)
	}
	im.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range gone {
		wg.Go(p.close)
	}
	wg.Wait()
	return len(gone)
}

// Key returns the public key (*rsa.PublicKey, *ecdsa.PublicKey or
// ed25519.PublicKey) for a token's kid and alg. Warm, it takes no lock a
// refresh holds and allocates nothing. Cold, it waits (bounded by ctx) for
// the shared first fetch. An empty kid matches only when exactly one usable
// key fits alg.
//
// A lookup that was waiting on a provider when Register replaced it (or
// Unregister removed it) is answered by the replacement (or with
// ErrUnknownProvider), not with the closed provider's cancelled fetch: a
// configuration reload must not turn requests in flight into 503s.
func (r *Registry) Key(ctx context.Context, tenantID, providerID, kid, alg string) (crypto.PublicKey, error) {
	k := providerKey{tenantID, providerID}
	var prev *provider
	for {
		p := (*r.impl.providers.Load())[k]
		if p == nil {
			return nil, fmt.Errorf("%w: %s/%s", ErrUnknownProvider, tenantID, providerID)
		}
		pub, err := p.key(ctx, kid, alg)
		// The warm path returns here; only a failure looks further. A
		// provider is out of the map before it is closed, so the next
		// load sees its successor; p == prev guards against looping.
		if err == nil || p == prev || ctx.Err() != nil || p.ctx.Err() == nil {
			return pub, err
		}
		prev = p
	}
}

// Refresh fetches now, even when the set (and a discovering provider's
// metadata document) is fresh, and waits for the outcome. A refresh
// already in flight is joined rather than duplicated.
func (r *Registry) Refresh(ctx context.Context, tenantID, providerID string) error {
	p := (*r.impl.providers.Load())[providerKey{tenantID, providerID}]
	if p == nil {
		return fmt.Errorf("%w: %s/%s", ErrUnknownProvider, tenantID, providerID)
	}
	p.meta.expire()
	return p.refreshNow(ctx)
}

// Status reports one provider.
func (r *Registry) Status(tenantID, providerID string) (Status, bool) {
	p := (*r.impl.providers.Load())[providerKey{tenantID, providerID}]
	if p == nil {
		return Status{}, false
	}
	return p.status(), true
}

// Statuses reports every provider, sorted by tenant then provider.
func (r *Registry) Statuses() []Status {
	m := *r.impl.providers.Load()
	out := make([]Status, 0, len(m))
	for _, p := range m {
		out = append(out, p.status())
	}
	sortStatuses(out)
	return out
}

// Close stops every provider's background work and waits for it to end.
// Later lookups fail with ErrUnknownProvider; later registrations fail.
func (r *Registry) Close() error {
	im := &r.impl
	im.mu.Lock()
	if im.closed {
		im.mu.Unlock()
		return nil
	}
	im.closed = true
	cur := *im.providers.Load()
	empty := map[providerKey]*provider{}
	im.providers.Store(&empty)
	for _, p := range cur {
		im.deps.avail.remove(p)
	}
	im.mu.Unlock()
	im.cancel()
	var wg sync.WaitGroup
	for _, p := range cur {
		wg.Go(p.close)
	}
	wg.Wait()
	im.bg.Wait()
	im.transports.closeIdle()
	return nil
}

// cloneRegistration copies the slices, so a caller mutating its own
// registration afterwards cannot change a provider behind the cache's back.
func cloneRegistration(reg Registration) Registration {
	reg.AllowedDomains = slices.Clone(reg.AllowedDomains)
	reg.PinnedSPKI = slices.Clone(reg.PinnedSPKI)
	return reg
}

// sameSource reports whether keys fetched under registration a may serve
// registration b: the same URL, fetched under the same guards (HTTPS,
// allowlist, pins, redirect and size limits). The issuer does not matter
// here: the same document fetched again would hold the same keys; except
// for a discovered key set, whose metadata document must name the issuer.
func sameSource(a, b Registration) bool {
	return a.JWKSURL == b.JWKSURL && a.DiscoveryURL == b.DiscoveryURL && (a.DiscoveryURL == "" || a.Issuer == b.Issuer) &&
		a.RequireHTTPS == b.RequireHTTPS &&
		a.MaxResponseBytes == b.MaxResponseBytes && a.MaxRedirects == b.MaxRedirects &&
		slices.Equal(a.AllowedDomains, b.AllowedDomains) && slices.Equal(a.PinnedSPKI, b.PinnedSPKI)
}

// sameRegistration compares two registrations, treating nil and empty
// slices alike (a reloaded YAML file may produce either).
func sameRegistration(a, b Registration) bool {
	norm := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	a.AllowedDomains, b.AllowedDomains = norm(a.AllowedDomains), norm(b.AllowedDomains)
	a.PinnedSPKI, b.PinnedSPKI = norm(a.PinnedSPKI), norm(b.PinnedSPKI)
	return reflect.DeepEqual(a, b)
}
