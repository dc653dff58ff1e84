package jwkscache

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// maxNegative bounds the negative cache, so random kids cannot grow it
// without limit.
const maxNegative = 4096

// trigger says why a refresh runs.
type trigger int

const (
	triggerFirst trigger = iota
	triggerScheduled
	triggerUnknownKID
	triggerManual
)

func (t trigger) String() string {
	return [...]string{"first", "scheduled", "unknown_kid", "manual"}[t]
}

// deps are what a provider borrows from its registry.
type deps struct {
	clock    Clock
	sem      chan struct{}
	observer Observer
	logger   *slog.Logger // nil: no logs
	// quietFailures: Options.QuietRefreshFailures.
	quietFailures bool
	coord         *coordination // nil without Options.Coordinator
	tracer        Tracer        // nil without Options.Tracer
	avail         *availability
}

// provider is one (tenant, provider) pair: its registration, its current
// key set and the machinery that refreshes it.
type provider struct {
	reg          Registration
	deps         deps
	fetcher      fetcher
	meta         *metadata // nil unless the registration has a DiscoveryURL
	closeIdle    func()
	snap         atomic.Pointer[keySet]
	coolingUntil atomic.Int64 // unix nanos; unknown-kid refreshes wait until then

	// Counters; hits are derived (requests − misses) so a warm lookup
	// writes a single shared word.
	requests, misses, staleServes                atomic.Uint64
	refreshErrors, refreshFetched, refreshNotMod atomic.Uint64
	skippedKeys                                  atomic.Uint64
	lastRefreshNanos                             atomic.Int64
	// attempted: a fetch attempt (or a coordinated refresh) has finished,
	// successfully or not; Status.Attempted.
	attempted atomic.Bool

	ctx    context.Context // cancelled by close; bounds every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // refresh goroutines

	mu          sync.Mutex // never held across network I/O, never taken by a warm lookup
	closed      bool
	inflight    *call
	timer       Timer
	phaseTimers [2]Timer // age the current set: stale, then unusable
	nextRefresh time.Time
	lastRefresh time.Time
	consecutive int
	lastErr     error

	negMu    sync.Mutex
	negative map[string]time.Time // kid → known missing until

	// warmChecked: Register already asked the coordinator (warmLoad);
	// the first refresh does not ask again. Set before the provider runs.
	warmChecked bool
	// fingerprint is the registration's trust fingerprint (see fingerprint).
	fingerprint string
	// rejected counts shared snapshots not trusted, by reason; lastRejected
	// is the reason logged last, per sharedKind (under mu).
	rejected     map[string]uint64
	lastRejected [2]string
	// announce is closed (and replaced) when the coordinator announces a
	// snapshot of this provider (announceShared).
	announce atomic.Pointer[chan struct{}]
}

func newProvider(parent context.Context, reg Registration, d deps, f fetcher, closeIdle func()) *provider {
	p := &provider{reg: reg, deps: d, fetcher: f, closeIdle: closeIdle}
	p.ctx, p.cancel = context.WithCancel(parent)
	ch := make(chan struct{})
	p.announce.Store(&ch)
	return p
}

// key resolves kid and alg; see Registry.Key.
func (p *provider) key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	p.requests.Add(1)
	bit := algBit(alg)
	if bit == 0 {
		p.misses.Add(1)
		return nil, fmt.Errorf("%w: alg %q is not accepted for JWKS keys", ErrKeyNotFound, shortKID(alg))
	}
	s := p.snap.Load()
	if s == nil {
		var err error
		if s, err = p.waitFirst(ctx); err != nil {
			p.misses.Add(1)
			return nil, err
		}
	}
	phase := s.phase.Load()
	if phase == phaseUnusable {
		p.misses.Add(1)
		return nil, p.unavailable()
	}
	if k := s.find(kid, bit); k != nil {
		if phase == phaseStale {
			p.staleServes.Add(1)
		}
		return k.pub, nil
	}
	k, err := p.missing(ctx, s, p.deps.clock.Now(), kid, bit, alg)
	if err != nil {
		p.misses.Add(1)
	}
	return k, err
}

// waitFirst makes a cold lookup wait, bounded by ctx, for the shared first
// fetch. Without a fetch in flight it fails at once: the retry timer, not
// the caller, goes back to the network.
func (p *provider) waitFirst(ctx context.Context) (*keySet, error) {
	p.mu.Lock()
	c := p.inflight
	p.mu.Unlock()
	if c != nil {
		traced := p.traceWait(ctx, c, WaitCold, "")
		select {
		case <-c.finished():
		case <-ctx.Done():
			err := fmt.Errorf("%w: %s/%s: waiting for first fetch: %w", ErrUnavailable, p.reg.TenantID, p.reg.ProviderID, ctx.Err())
			endWait(traced, err)
			return nil, err
		}
		if s := p.snap.Load(); s != nil {
			endWait(traced, nil)
			return s, nil
		}
		err := p.unavailable()
		endWait(traced, err)
		return nil, err
	}
	if s := p.snap.Load(); s != nil {
		return s, nil
	}
	return nil, p.unavailable()
}

func (p *provider) unavailable() error {
	p.mu.Lock()
	last := p.lastErr
	p.mu.Unlock()
	if last != nil {
		return fmt.Errorf("%w: %s/%s: %w", ErrUnavailable, p.reg.TenantID, p.reg.ProviderID, last)
	}
	return fmt.Errorf("%w: %s/%s: no usable key set", ErrUnavailable, p.reg.TenantID, p.reg.ProviderID)
}

// missing handles a kid absent from a usable set. OpenID Connect Core 1.0
// §10.1.1: a signer rotates keys by publishing a new kid, so an unknown kid
// triggers one refresh, at most once per cooldown, so a flood of tokens with
// random kids cannot become a flood of requests to the identity provider.
// Inside the cooldown the answer is ErrKeyNotFound at once unless a refresh
// is in flight, which the lookup joins: a rotated kid met by many requests
// at once must not be refused while the refresh for it runs. A lookup
// waits (bounded by ctx) for the refresh's first attempt only, never for
// retries; when ctx ends first the keys were not available in time
// (ErrUnavailable, 503), which says nothing against the token.
func (p *provider) missing(ctx context.Context, s *keySet, now time.Time, kid string, bit algSet, alg string) (crypto.PublicKey, error) {
	if kid == "" || len(s.byKID[kid]) > 0 {
		// Present under another alg, or no kid at all: a refresh cannot help.
		return nil, fmt.Errorf("%w: no key with kid %q fits alg %q", ErrKeyNotFound, shortKID(kid), shortKID(alg))
	}
	if p.knownMissing(kid, now) {
		return nil, fmt.Errorf("%w: kid %q (negative cache)", ErrKeyNotFound, shortKID(kid))
	}
	var c *call
	until := p.coolingUntil.Load()
	if now.UnixNano() < until || !p.coolingUntil.CompareAndSwap(until, now.Add(p.reg.UnknownKIDCooldown).UnixNano()) {
		p.mu.Lock()
		c = p.inflight
		p.mu.Unlock()
		if c == nil {
			return nil, fmt.Errorf("%w: kid %q (refresh cooldown)", ErrKeyNotFound, shortKID(kid))
		}
	} else {
		c = p.startRefreshFrom(ctx, triggerUnknownKID)
	}
	var traced func(error)
	if c != nil {
		traced = p.traceWait(ctx, c, WaitUnknownKID, kid)
		select {
		case <-c.firstAttempt():
		case <-ctx.Done():
			err := fmt.Errorf("%w: %s/%s: kid %q: waiting for a refresh: %w", ErrUnavailable, p.reg.TenantID, p.reg.ProviderID, shortKID(kid), ctx.Err())
			endWait(traced, err)
			return nil, err
		}
	}
	k, err := p.afterUnknownKID(now, kid, bit)
	endWait(traced, err)
	return k, err
}

// afterUnknownKID looks kid up again once the refresh an unknown kid
// started has made its first attempt.
func (p *provider) afterUnknownKID(now time.Time, kid string, bit algSet) (crypto.PublicKey, error) {
	if s2 := p.snap.Load(); s2 != nil {
		now = p.deps.clock.Now()
		if phase := s2.phase.Load(); phase != phaseUnusable {
			if k := s2.find(kid, bit); k != nil {
				if phase == phaseStale {
					p.staleServes.Add(1)
				}
				return k.pub, nil
			}
		}
	}
	p.rememberMissing(kid, now)
	return nil, fmt.Errorf("%w: kid %q", ErrKeyNotFound, shortKID(kid))
}

// maxKIDInError bounds how much of a token's kid (or alg) an error quotes:
// the header is the client's, up to the token size limit, and errors end up
// in logs.
const maxKIDInError = 64

// shortKID returns kid, cut to maxKIDInError bytes with the full length noted.
func shortKID(kid string) string {
	if len(kid) <= maxKIDInError {
		return kid
	}
	return fmt.Sprintf("%s...(%d bytes)", kid[:maxKIDInError], len(kid))
}

func (p *provider) knownMissing(kid string, now time.Time) bool {
	if p.reg.NegativeCacheTTL <= 0 {
		return false
	}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	until, ok := p.negative[kid]
	if ok && !now.Before(until) {
		delete(p.negative, kid)
		return false
	}
	return ok
}

func (p *provider) rememberMissing(kid string, now time.Time) {
	if p.reg.NegativeCacheTTL <= 0 {
		return
	}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.negative == nil {
		p.negative = make(map[string]time.Time)
	}
	if len(p.negative) >= maxNegative {
		for k, until := range p.negative {
			if !now.Before(until) {
				delete(p.negative, k)
			}
		}
		if len(p.negative) >= maxNegative {
			return
		}
	}
	p.negative[kid] = now.Add(p.reg.NegativeCacheTTL)
}

// close stops the timer and any refresh, and waits for them.
func (p *provider) close() {
	p.mu.Lock()
	p.closed = true
	for _, t := range [...]Timer{p.timer, p.phaseTimers[0], p.phaseTimers[1]} {
		if t != nil {
			t.Stop()
		}
	}
	p.timer = nil
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	p.closeIdle()
}

// status reports the provider; see Registry.Status.
func (p *provider) status() Status {
	st := Status{TenantID: p.reg.TenantID, ProviderID: p.reg.ProviderID}
	p.mu.Lock()
	refreshing := p.inflight != nil
	st.LastRefresh, st.NextRefresh, st.ConsecutiveErrors = p.lastRefresh, p.nextRefresh, p.consecutive
	if p.lastErr != nil {
		st.LastError = p.lastErr.Error()
	}
	if len(p.rejected) > 0 {
		st.SnapshotsRejected = maps.Clone(p.rejected)
	}
	p.mu.Unlock()
	s := p.snap.Load()
	switch {
	case s == nil && refreshing:
		st.State = StateLoading
	case s == nil:
		st.State = StateEmpty
	case refreshing:
		st.State = StateRefreshing
	default:
		st.State = StateReady
	}
	if s != nil {
		st.Source, st.SourceAt, st.ExpiresAt = s.source, s.fetchedAt, s.expiresAt
		phase := s.phase.Load()
		st.Stale, st.Unusable = phase != phaseFresh, phase == phaseUnusable
		st.KeyIDs = append([]string(nil), s.kids...)
	}
	st.Attempted = s != nil || p.attempted.Load()
	misses := p.misses.Load()
	st.Requests = p.requests.Load()
	st.Hits = st.Requests - min(misses, st.Requests)
	st.StaleServes = p.staleServes.Load()
	if st.Requests > 0 {
		st.HitRate = float64(st.Hits) / float64(st.Requests)
		st.StaleServeRatio = float64(st.StaleServes) / float64(st.Requests)
	}
	st.RefreshErrors = p.refreshErrors.Load()
	st.RefreshFetched = p.refreshFetched.Load()
	st.RefreshNotModified = p.refreshNotMod.Load()
	st.LastRefreshDuration = time.Duration(p.lastRefreshNanos.Load())
	st.SkippedKeys = p.skippedKeys.Load()
	if p.meta != nil {
		p.meta.fill(&st)
	}
	return st
}
