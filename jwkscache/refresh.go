package jwkscache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// startRefresh joins the refresh in flight or starts one. It returns nil
// once the provider is closed.
func (p *provider) startRefresh(t trigger) *call { return p.startRefreshFrom(nil, t) }

// startRefreshFrom is startRefresh for a lookup (ctx) that triggers the
// refresh, which a Tracer links to the refresh it starts.
func (p *provider) startRefreshFrom(lookup context.Context, t trigger) *call {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if p.inflight != nil {
		return p.inflight
	}
	c := newCall()
	p.traceRefresh(c, lookup, t)
	p.inflight = c
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.wg.Add(1)
	go p.run(c, t)
	return c
}

// refreshNow is Registry.Refresh: fetch even when fresh, wait for the outcome.
func (p *provider) refreshNow(ctx context.Context) error {
	c := p.startRefresh(triggerManual)
	if c == nil {
		return fmt.Errorf("jwkscache: %s/%s: provider closed", p.reg.TenantID, p.reg.ProviderID)
	}
	select {
	case <-c.finished():
		return c.outcome()
	case <-ctx.Done():
		return fmt.Errorf("jwkscache: refresh %s/%s: %w", p.reg.TenantID, p.reg.ProviderID, ctx.Err())
	}
}

// run performs one refresh with retries and publishes its outcome.
func (p *provider) run(c *call, t trigger) {
	defer p.wg.Done()
	start := p.deps.clock.Now()
	res, attempts, err := p.refresh(c, t)
	p.attempted.Store(true)
	end := p.deps.clock.Now()
	ev := RefreshEvent{TenantID: p.reg.TenantID, ProviderID: p.reg.ProviderID, HTTPStatus: res.status, Duration: end.Sub(start)}
	if err != nil {
		err = fmt.Errorf("jwkscache: fetch %s for %s/%s (%d attempts): %w", p.fetcher.display, p.reg.TenantID, p.reg.ProviderID, attempts, err)
		p.refreshErrors.Add(1)
		ev.Result, ev.Err = RefreshError, err
		if p.deps.logger != nil && p.ctx.Err() == nil {
			level := slog.LevelWarn
			if p.deps.quietFailures {
				level = slog.LevelDebug
			}
			p.deps.logger.Log(p.ctx, level, "jwkscache: refresh failed", "tenant", p.reg.TenantID, "provider", p.reg.ProviderID, "trigger", t.String(), "error", err)
		}
	} else {
		switch {
		case res.fleet != "":
			ev.Result = res.fleet
		case res.notModified:
			p.refreshNotMod.Add(1)
			ev.Result = RefreshNotModified
		default:
			p.refreshFetched.Add(1)
			ev.Result = RefreshFetched
		}
		// adopt refuses a set once the provider is closed (Unregister, Close,
		// or Register replacing it mid-fetch), so a first fetch that wins that
		// race leaves no snapshot behind.
		if s := p.snap.Load(); s != nil {
			ev.Keys, ev.ExpiresAt = len(s.keys), s.expiresAt
		}
	}
	p.lastRefreshNanos.Store(int64(ev.Duration))

	p.mu.Lock()
	if err == nil {
		p.consecutive, p.lastErr, p.lastRefresh = 0, nil, end
	} else {
		p.consecutive++
		p.lastErr = err
	}
	p.inflight = nil
	c.finish(err)
	p.mu.Unlock()

	// The next refresh is armed before the outcome is reported, so an
	// observer that saw the outcome also sees the timer (Status.NextRefresh).
	p.schedule(end)
	if c.traced != nil {
		c.traced(ev)
	}
	if p.deps.observer != nil {
		p.deps.observer.RefreshDone(ev)
	}
}

// fetchWithRetry runs up to 1 + max_retries attempts, waiting with backoff
// on the Clock between them. The policy's deadline is a budget for the
// attempts and the waits between them, not for the wait for a fetch slot:
// with 10,000 providers queued behind MaxConcurrentFetches slots, a provider
// that waited its turn must still get its attempts, or a healthy identity
// provider sees providers time out without trying and fetched again later.
// A successful attempt is published (snapshot swapped) before the lookups
// waiting on the first attempt are released (firstAttemptDone).
func (p *provider) fetchWithRetry(c *call) (fetchResult, int, error) {
	pol := p.reg.RetryPolicy
	clk := p.deps.clock
	var spent time.Duration // in attempts and backoff waits, on the Clock
	ctx := c.ctx            // p.ctx with the refresh's span
	b := newBackoff(pol)
	var errs []error
	for attempt := 0; ; attempt++ {
		res, took, err := p.attempt(ctx, min(pol.AttemptTimeout, pol.Deadline-spent))
		spent += took
		p.attempted.Store(true)
		if err == nil {
			c.firstAttemptDone()
			return res, attempt + 1, nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt+1, err))
		c.firstAttemptDone()
		if attempt >= pol.MaxRetries || p.ctx.Err() != nil {
			return res, attempt + 1, errors.Join(errs...)
		}
		wait := b.next(attempt)
		if spent+wait >= pol.Deadline {
			errs = append(errs, fmt.Errorf("retry deadline %s reached", pol.Deadline))
			return res, attempt + 1, errors.Join(errs...)
		}
		if !sleep(clk, wait, ctx.Done()) {
			errs = append(errs, ctx.Err())
			return res, attempt + 1, errors.Join(errs...)
		}
		spent += wait
	}
}

// attempt waits for a fetch slot (bounded only by ctx), then fetches once
// within timeout and, on success, swaps in the new snapshot. took is the
// time the attempt held its slot.
func (p *provider) attempt(ctx context.Context, timeout time.Duration) (fetchResult, time.Duration, error) {
	select {
	case p.deps.sem <- struct{}{}:
	case <-ctx.Done():
		return fetchResult{}, 0, ctx.Err()
	}
	defer func() { <-p.deps.sem }()
	start := p.deps.clock.Now()
	res, err := p.attemptOnce(ctx, timeout)
	return res, p.deps.clock.Now().Sub(start), err
}

// attemptOnce is one fetch holding a slot.
func (p *provider) attemptOnce(ctx context.Context, timeout time.Duration) (fetchResult, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	old := p.snap.Load()
	var etag, lastMod string
	var stored http.Header
	if old != nil {
		etag, lastMod, stored = old.etag, old.lastModified, old.cacheHeader
	}
	f, uri := p.fetcher, ""
	if p.meta != nil {
		var err error
		if uri, err = p.meta.jwksURI(actx, p.deps.clock.Now()); err != nil {
			return fetchResult{}, err
		}
		f = f.at(uri)
		if old == nil || old.from != uri {
			// A new jwks_uri: fetched in full, while the old set keeps
			// serving until the new one is adopted. (Validators of one
			// URL mean nothing to another.)
			etag, lastMod, stored = "", "", nil
		}
	}
	res, err := f.fetch(actx, p.deps.clock.Now(), etag, lastMod, stored)
	if err != nil {
		return res, err
	}
	now := p.deps.clock.Now()
	expires := now.Add(res.ttl)
	if res.notModified {
		if old == nil || old.from != uri {
			// Not asked conditionally: the set we hold is not this URL's.
			return res, errors.New("304 Not Modified without a cached set")
		}
		s := old.withExpiry(now, expires, p.reg.StaleWhileError, res.etag, res.lastModified, res.cacheHeader)
		s.source = SourceIdentityProvider // revalidated: a set adopted from Redis is now our own
		p.adopt(s)
		return res, nil
	}
	s, skipped, err := parseKeySet(res.body)
	p.reportSkipped(skipped)
	if err != nil {
		return res, err
	}
	s.fetchedAt = now
	s.setExpiry(now, expires, p.reg.StaleWhileError)
	s.etag, s.lastModified, s.cacheHeader, s.source = res.etag, res.lastModified, res.cacheHeader, SourceIdentityProvider
	s.from = uri
	if p.deps.coord == nil {
		// The document is kept only to share it with other replicas; alone,
		// the parsed keys are all a provider needs (it was a third of a
		// provider's memory).
		s.raw = nil
	}
	p.adopt(s)
	return res, nil
}

// adopt makes s the current set and arms the timers that age it. It is the
// seam for snapshots that come from elsewhere (Redis): they carry their own
// expires_at, and setExpiry has put them in the right phase already.
func (p *provider) adopt(s *keySet) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for _, t := range p.phaseTimers {
		if t != nil {
			t.Stop()
		}
	}
	now := p.deps.clock.Now()
	p.phaseTimers[0] = p.deps.clock.AfterFunc(s.expiresAt.Sub(now), func() { s.advance(phaseStale) })
	p.phaseTimers[1] = p.deps.clock.AfterFunc(s.staleUntil.Sub(now), func() {
		s.advance(phaseUnusable)
		p.deps.avail.note(p)
	})
	p.snap.Store(s)
	p.deps.avail.note(p)
}

func (p *provider) reportSkipped(skipped []skippedKey) {
	if len(skipped) == 0 {
		return
	}
	p.skippedKeys.Add(uint64(len(skipped)))
	if p.deps.logger == nil {
		return
	}
	// A document may hold thousands of bad keys and is fetched again every
	// cycle: the first few are logged one by one, the rest counted.
	for i, sk := range skipped {
		if i == maxSkippedLogged {
			p.deps.logger.Warn("jwkscache: more JWKs skipped", "tenant", p.reg.TenantID, "provider", p.reg.ProviderID,
				"count", len(skipped)-maxSkippedLogged)
			break
		}
		// The reason never contains key material (parseKey's and jwkset's
		// errors quote at most kty, use, alg and key_ops); kid is public.
		// Both are bounded: the document is the identity provider's.
		p.deps.logger.Warn("jwkscache: skipped JWK", "tenant", p.reg.TenantID, "provider", p.reg.ProviderID,
			"index", sk.index, "kid", shortKID(sk.kid), "reason", shortReason(sk.err.Error()))
	}
}

// maxSkippedLogged bounds the skipped keys logged one by one per refresh.
const maxSkippedLogged = 10

// shortReason cuts an error text to a log-friendly length.
func shortReason(s string) string {
	const limit = 256
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// schedule arms the timer for the next refresh: after a success at
// expires_at − refresh_early ± prefetch_jitter (never sooner than half the
// TTL, so a TTL shorter than refresh_early cannot become a refresh loop);
// after a failure with a growing delay capped by min_ttl. It runs even when
// no request arrives.
func (p *provider) schedule(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.inflight != nil {
		return
	}
	var d time.Duration
	if s := p.snap.Load(); s != nil && p.consecutive == 0 {
		ttl := s.expiresAt.Sub(now)
		d = max(ttl-p.reg.RefreshEarly, ttl/2) + jitter(p.reg.PrefetchJitter)
	} else {
		d = p.failureDelay(p.consecutive)
	}
	if p.meta != nil {
		if next := p.meta.next(); !next.IsZero() {
			// The metadata document is refreshed in the background too, so
			// that a moved jwks_uri is followed before the old set expires;
			// after failed fetches, on the same schedule as failed refreshes.
			d = min(d, next.Sub(now))
		}
	}
	d = max(d, time.Second)
	if p.timer != nil {
		p.timer.Stop()
	}
	p.nextRefresh = now.Add(d)
	p.timer = p.deps.clock.AfterFunc(d, func() { p.startRefresh(triggerScheduled) })
}

// failureDelay is the wait after the n-th failed refresh in a row (n ≥ 1):
// max_backoff·2^(n−1), at least 1s and at most min_ttl, ± prefetch_jitter.
// A discovering provider's metadata fetches that fail while its keys are
// refreshed back off on the same schedule.
func (p *provider) failureDelay(n int) time.Duration {
	d := p.reg.RetryPolicy.MaxBackoff
	for i := 1; i < n && d < p.reg.MinTTL; i++ {
		d *= 2
	}
	return max(min(max(d, time.Second), p.reg.MinTTL)+jitter(p.reg.PrefetchJitter), time.Second)
}

// jitter returns a uniform duration in [−j, +j].
func jitter(j time.Duration) time.Duration {
	if j <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(2*j)+1)) - j
}
