package jwkscache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// SharedSnapshot is one provider's key set as a replica fetched it, shared
// with the other replicas through a Coordinator: the document as served,
// its validators (so whoever fetches next still revalidates, RFC 9110
// §13.1) and its own expiry. It is also what a Coordinator stores: the
// one snapshot type of the cache and its storage.
type SharedSnapshot struct {
	TenantID, ProviderID string
	JWKS                 []byte
	ETag, LastModified   string
	ExpiresAt            time.Time
	PersistedAt          time.Time // when the document was fetched or revalidated
	// Fingerprint is the trust fingerprint of the writer's registration
	// (see fingerprint). A replica adopts only a snapshot fetched under
	// settings whose fingerprint equals its own; the coordinator must
	// authenticate it together with the rest of the snapshot.
	Fingerprint string
	// JWKSURI is the discovered jwks_uri the JWKS was fetched from (a
	// registration with a DiscoveryURL; empty otherwise). A replica that
	// adopts the snapshot sends its validators only to that URL.
	JWKSURI string
}

// SharedMetadata is a discovering provider's metadata document (OpenID
// Connect Discovery, RFC 8414) as a replica fetched and verified it,
// shared through a MetadataCoordinator beside the provider's key set. It
// holds only what the cache trusts of the document, issuer and jwks_uri,
// with its validators and its own expiry. A replica adopting it checks it
// as it checks a fetched document: issuer equal to the configured one,
// jwks_uri through the guards of a configured jwks_url.
type SharedMetadata struct {
	TenantID, ProviderID string
	Issuer               string // as the document names it
	JWKSURI              string
	ETag, LastModified   string
	ExpiresAt            time.Time
	PersistedAt          time.Time // when the document was fetched or revalidated
	Fingerprint          string    // as SharedSnapshot.Fingerprint
}

// MetadataCoordinator is implemented by a Coordinator that also shares the
// metadata documents of discovering providers, so that one replica's
// fetch of a document serves the fleet. Without it, each replica fetches
// the documents itself. Both methods must return quickly, like the
// Coordinator's.
type MetadataCoordinator interface {
	// LoadMetadata returns the document of a provider, authenticated and
	// validated (the right tenant and provider), or an error wrapping
	// ErrNoSnapshot (a *SnapshotRejectedError for one not to be trusted).
	LoadMetadata(ctx context.Context, tenantID, providerID string) (SharedMetadata, error)
	// SaveMetadata stores a document for the others. It need not announce
	// it: the key set saved after it is announced.
	SaveMetadata(ctx context.Context, meta SharedMetadata) error
}

// ErrNoSnapshot is what Coordinator.Load returns (wrapped) when there is no
// usable snapshot: none stored, or an invalid one it ignored. Any other
// error means the coordinator itself failed, and the registry carries on
// alone.
var ErrNoSnapshot = errors.New("jwkscache: no shared snapshot")

// SnapshotRejectedError is a Coordinator.Load error for a snapshot that is
// stored but must not be trusted (a failed MAC, a malformed value). It
// matches ErrNoSnapshot, so the registry fetches for itself, and its
// Reason is counted in Status.SnapshotsRejected.
type SnapshotRejectedError struct {
	Reason string // short snake_case label, e.g. "bad_mac"
	Err    error
}

// Error implements error.
func (e *SnapshotRejectedError) Error() string {
	return fmt.Sprintf("jwkscache: shared snapshot rejected (%s): %v", e.Reason, e.Err)
}

// Unwrap makes errors.Is(err, ErrNoSnapshot) true and exposes the cause.
func (e *SnapshotRejectedError) Unwrap() []error { return []error{ErrNoSnapshot, e.Err} }

// The reasons the registry itself rejects a shared snapshot (besides those
// its Coordinator reports).
const (
	RejectFingerprint = "fingerprint_mismatch"  // fetched under other trust settings (jwks_url, issuer, pins...)
	RejectFuture      = "fetched_in_future"     // persisted_at later than now (beyond maxSnapshotSkew)
	RejectLifetime    = "lifetime_over_max_ttl" // expires_at beyond persisted_at + max_ttl, or before persisted_at
	RejectForeign     = "foreign"               // another tenant's or provider's
	RejectTooLarge    = "too_large"             // JWKS over max_response_bytes
	RejectInvalidJWKS = "invalid_jwks"          // the JWKS does not parse or holds no usable key
	// A shared metadata document whose issuer is not the configured one,
	// or whose jwks_uri fails the guards of a configured jwks_url.
	RejectIssuerMismatch = "issuer_mismatch"
	RejectJWKSURI        = "jwks_uri_refused"
)

// maxSnapshotSkew is how far in the future a snapshot's persisted_at may
// be: the clocks of two replicas differ a little, never by more.
const maxSnapshotSkew = 2 * time.Second

// Coordinator lets the replicas of a fleet behave like one cache: they
// share the key sets they fetch and agree, through a lease, which of them
// fetches. Every method must return quickly (bounded by the
// implementation): refreshes call them, lookups never do. extauthz
// implements it with Redis; a test can implement it in memory.
type Coordinator interface {
	// Load returns the snapshot of a provider, validated (at most maxBytes
	// of JWKS, the right tenant and provider), or an error wrapping
	// ErrNoSnapshot.
	Load(ctx context.Context, tenantID, providerID string, maxBytes int64) (SharedSnapshot, error)
	// Save stores a snapshot for the others and announces it.
	Save(ctx context.Context, snap SharedSnapshot) error
	// TryAcquire takes the provider's refresh lease for holder unless
	// someone holds it; the lease ends by itself after ttl.
	TryAcquire(ctx context.Context, tenantID, providerID, holder string, ttl time.Duration) (bool, error)
	// Release ends holder's lease early; it does nothing when another
	// replica holds it.
	Release(ctx context.Context, tenantID, providerID, holder string) error
	// TryCooldown starts the provider's fleet-wide unknown-kid cooldown
	// for holder unless it runs already; it ends by itself after ttl. When
	// it runs already, settled reports whether its holder has shared the
	// outcome of its refresh (SettleCooldown).
	TryCooldown(ctx context.Context, tenantID, providerID, holder string, ttl time.Duration) (ok, settled bool, err error)
	// SettleCooldown records that holder's unknown-kid refresh has been
	// shared (Save returned), until the cooldown ends; it does nothing
	// when another replica holds the cooldown.
	SettleCooldown(ctx context.Context, tenantID, providerID, holder string) error
}

// Notifier is implemented by a Coordinator that announces every snapshot
// saved by any replica. The registry subscribes once, and a replica
// waiting for another's fetch is woken by the announcement instead of
// finding the snapshot at its next poll. Announcements may be lost (Redis
// pub/sub is at most once): polling stays as the safety net.
type Notifier interface {
	// Subscribe calls fn for every announced snapshot until ctx is done.
	Subscribe(ctx context.Context, fn func(tenantID, providerID string)) error
}

// coordination is what a provider borrows from its registry to coordinate.
type coordination struct {
	c      Coordinator
	meta   MetadataCoordinator // c, when it shares metadata documents too; else nil
	holder string
	// downUntil (unix nanos) is set after a coordinator failure: until
	// then Register does not wait on it (the background refresh still
	// asks), so registering 10,000 providers against a Redis that does not
	// answer costs no 10,000 timeouts.
	downUntil *atomic.Int64
}

// coordinatorDownFor is how long a coordinator failure keeps Register from
// consulting it.
const coordinatorDownFor = 5 * time.Second

// sharedPoll is how often a replica waiting for another's fetch looks for
// its snapshot when no announcement (Notifier) woke it: the safety net for
// lost announcements and coordinators without them.
const sharedPoll = time.Second

// defaultHolder names this process in leases: the pid helps an operator
// find the holder, the random part keeps two hosts' pids apart.
func defaultHolder() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// leaseTTL is how long a refresh lease lasts: the whole retry sequence
// plus a margin. When the holder dies, another replica takes over after
// at most this long.
func (p *provider) leaseTTL() time.Duration { return p.reg.RetryPolicy.Deadline + time.Second }

// failed records the outcome of a coordinator call and reports whether it
// failed (as opposed to finding nothing).
func (co *coordination) failed(clk Clock, err error) bool {
	if err == nil || errors.Is(err, ErrNoSnapshot) {
		return false
	}
	co.downUntil.Store(clk.Now().Add(coordinatorDownFor).UnixNano())
	return true
}

// refresh is a refresh's fetch step: alone without a coordinator, or
// coordinated with the fleet. Coordinated, a replica first adopts a newer
// snapshot if another replica wrote one (done, unless that one is due
// too); otherwise the replica that gets the refresh lease fetches (a
// conditional request with the newest validators) and shares the result,
// while the others poll for it and adopt it. If nothing comes within the
// lease time (the holder died), they try the lease again; after two lease
// times without a snapshot they fetch alone. A coordinator failure at any
// step means fetching alone, exactly as without one.
func (p *provider) refresh(c *call, t trigger) (fetchResult, int, error) {
	co := p.deps.coord
	if co == nil {
		return p.fetchWithRetry(c)
	}
	if t == triggerManual {
		// A manual refresh fetches even while fresh; the others adopt it.
		return p.fetchAndShare(c, false)
	}
	// Another replica may have fetched since we did: its snapshot costs
	// the identity provider nothing, and its validators make our own
	// fetch, if still needed, a conditional one.
	adopted, metaAdopted := false, false
	looked := t != triggerFirst || !p.warmChecked
	if looked {
		var err error
		if adopted, metaAdopted, err = p.adoptShared(); err != nil {
			return p.fetchAndShare(c, false) // coordinator down: work alone
		}
	}
	if adopted {
		c.firstAttemptDone() // lookups waiting (cold, unknown kid) see it at once
	}
	if t == triggerUnknownKID {
		return p.unknownKID(c, adopted)
	}
	if (adopted || metaAdopted) && !p.due(p.deps.clock.Now()) {
		return fetchResult{fleet: RefreshShared}, 0, nil
	}
	for range 2 {
		ok, err := co.c.TryAcquire(p.ctx, p.reg.TenantID, p.reg.ProviderID, co.holder, p.leaseTTL())
		if co.failed(p.deps.clock, err) {
			return p.fetchAndShare(c, false)
		}
		if ok {
			// Another replica may have shared a set and released the lease
			// between our look above and our acquiring it: look again, now
			// that no one else can be fetching, before we fetch. (A first
			// refresh looked at Register, not here: it does not look twice.)
			if looked {
				if res, shared := p.sharedSinceLook(c); shared {
					return res, 0, nil
				}
			}
			return p.fetchAndShare(c, true)
		}
		// Another replica is fetching: wait for its snapshot, up to the
		// lease time, after which its lease has expired if it died. Only a
		// cold lookup (no set at all) waits with us; the others answer from
		// the current set at once, as they do while an attempt runs.
		if p.snap.Load() != nil {
			c.firstAttemptDone()
		}
		if res, got, err := p.waitShared(c, p.leaseTTL()); got || err != nil {
			return res, 0, err
		}
	}
	// Two lease times without a snapshot: fetch alone rather than stall.
	return p.fetchAndShare(c, false)
}

// sharedSinceLook is the look again of a replica that just took the
// refresh lease: when a snapshot newer than ours that is not due itself
// appeared, it is adopted and the lease released (shared). A coordinator
// failure counts as nothing shared: the caller fetches.
func (p *provider) sharedSinceLook(c *call) (fetchResult, bool) {
	co := p.deps.coord
	keys, meta, err := p.adoptShared()
	if err != nil || !(keys || meta) || p.due(p.deps.clock.Now()) {
		return fetchResult{}, false
	}
	c.firstAttemptDone()
	if err := co.c.Release(p.ctx, p.reg.TenantID, p.reg.ProviderID, co.holder); err != nil {
		co.failed(p.deps.clock, err)
	}
	return fetchResult{fleet: RefreshShared}, true
}

// unknownKID coordinates a refresh for an unknown kid (OpenID Connect Core
// 1.0 §10.1.1, key rotation). The cooldown is fleet-wide: the replica that
// starts it fetches, and until it ends the others only adopt snapshots, so
// a flood of random kids across the fleet costs the identity provider one
// request per cooldown whatever the number of replicas. The cooldown is
// not the refresh lease, so it never holds up the scheduled refreshes.
//
// A rotation reaches every replica at once: the replica that did not win
// the cooldown must not refuse the new kid while the winner is fetching
// it. So it waits for the winner's snapshot (woken by the coordinator's
// announcements, polling every sharedPoll, at most a lease time), and the
// lookups that triggered the refresh wait with it, each bounded by its own
// deadline (the Check's, limits.cold_wait): one that runs out answers
// ErrUnavailable, never ErrKeyNotFound. The winner marks the cooldown
// settled once its snapshot is saved (and announces that too); a replica
// that finds it settled has read that snapshot and stops waiting, even
// when the snapshot held nothing newer than its own set.
func (p *provider) unknownKID(c *call, adopted bool) (fetchResult, int, error) {
	co, clk := p.deps.coord, p.deps.clock
	end := clk.Now().Add(p.leaseTTL())
	for {
		// Taken before looking, so an announcement made while we look
		// (a snapshot saved, the cooldown settled) wakes the wait at once.
		announced := p.announced()
		ok, settled, err := co.c.TryCooldown(p.ctx, p.reg.TenantID, p.reg.ProviderID, co.holder, p.reg.UnknownKIDCooldown)
		switch {
		case co.failed(clk, err):
			return p.fetchAndShare(c, false)
		case ok: // ours (at first, or once the winner's ran out): fetch
			res, n, err := p.fetchAndShare(c, false)
			if err == nil {
				if err := co.c.SettleCooldown(p.ctx, p.reg.TenantID, p.reg.ProviderID, co.holder); err != nil {
					co.failed(clk, err)
				}
			}
			return res, n, err
		case adopted:
			return fetchResult{fleet: RefreshShared}, 0, nil
		}
		// Settled means its snapshot was saved before: this look finds it,
		// or we hold it already.
		got, _, err := p.adoptShared()
		switch {
		case err != nil:
			return fetchResult{fleet: RefreshDeferred}, 0, nil // Redis failed: answer from what we have
		case got:
			c.firstAttemptDone()
			return fetchResult{fleet: RefreshShared}, 0, nil
		case settled:
			return fetchResult{fleet: RefreshDeferred}, 0, nil
		}
		left := end.Sub(clk.Now())
		if left <= 0 {
			return fetchResult{fleet: RefreshDeferred}, 0, nil
		}
		if !sleepOrWake(clk, min(sharedPoll, left), announced, p.ctx.Done()) {
			return fetchResult{}, 0, p.ctx.Err()
		}
	}
}

// waitShared waits until a snapshot newer than ours appears (adopted:
// got), the wait ends, or the provider closes. It looks when the
// coordinator announces a snapshot of this provider and, failing that,
// every sharedPoll.
func (p *provider) waitShared(c *call, wait time.Duration) (fetchResult, bool, error) {
	clk := p.deps.clock
	end := clk.Now().Add(wait)
	for {
		// Taken before looking, so an announcement made while we look
		// wakes the next wait at once.
		announced := p.announced()
		adopted, meta, err := p.adoptShared()
		if err != nil {
			return fetchResult{}, false, nil // down: the caller tries the lease, fails, fetches alone
		}
		// A document alone (the holder saves it before the set) ends the
		// wait only when it leaves nothing due.
		if adopted || (meta && !p.due(clk.Now())) {
			c.firstAttemptDone()
			return fetchResult{fleet: RefreshShared}, true, nil
		}
		left := end.Sub(clk.Now())
		if left <= 0 {
			return fetchResult{}, false, nil
		}
		if !sleepOrWake(clk, min(sharedPoll, left), announced, p.ctx.Done()) {
			return fetchResult{}, false, p.ctx.Err()
		}
	}
}

// announced returns a channel closed at the next announcement of a
// snapshot of this provider.
func (p *provider) announced() <-chan struct{} { return *p.announce.Load() }

// announceShared wakes every waitShared of this provider.
func (p *provider) announceShared() {
	next := make(chan struct{})
	close(*p.announce.Swap(&next))
}

// subscribe feeds the coordinator's announcements to the providers, until
// the registry closes.
func (im *registryImpl) subscribe(n Notifier) {
	err := n.Subscribe(im.ctx, func(tenantID, providerID string) {
		if p := (*im.providers.Load())[providerKey{tenantID, providerID}]; p != nil {
			p.announceShared()
		}
	})
	if err != nil && im.ctx.Err() == nil && im.deps.logger != nil {
		im.deps.logger.Warn("jwkscache: snapshot announcements stopped; replicas waiting on another's fetch poll instead", "error", err)
	}
}

// fetchAndShare fetches from the identity provider (with retries) and, on
// success, shares the result; release ends our lease afterwards.
func (p *provider) fetchAndShare(c *call, release bool) (fetchResult, int, error) {
	res, n, err := p.fetchWithRetry(c)
	co := p.deps.coord
	if err == nil {
		p.share()
	}
	if release && err == nil {
		// A failed fetch keeps the lease until it expires, so a failing
		// identity provider gets one retry sequence per lease time from
		// the whole fleet, not one per replica.
		if err := co.c.Release(p.ctx, p.reg.TenantID, p.reg.ProviderID, co.holder); err != nil {
			co.failed(p.deps.clock, err)
		}
	}
	return res, n, err
}

// share saves the current set for the other replicas, after the metadata
// document this replica fetched for it (a discovering provider), so that a
// replica woken by the set's announcement finds both.
func (p *provider) share() {
	co := p.deps.coord
	if co == nil {
		return
	}
	if doc := p.meta.takeUnshared(p.deps.clock.Now()); doc != nil && co.meta != nil {
		err := co.meta.SaveMetadata(p.ctx, SharedMetadata{
			TenantID:     p.reg.TenantID,
			ProviderID:   p.reg.ProviderID,
			Issuer:       doc.issuer,
			JWKSURI:      doc.jwksURI,
			ETag:         doc.etag,
			LastModified: doc.lastModified,
			ExpiresAt:    doc.expiresAt,
			PersistedAt:  doc.fetchedAt,
			Fingerprint:  p.fingerprint,
		})
		p.shareFailed("metadata", err)
	}
	s := p.snap.Load()
	if s == nil || s.raw == nil {
		return
	}
	err := co.c.Save(p.ctx, SharedSnapshot{
		TenantID:     p.reg.TenantID,
		ProviderID:   p.reg.ProviderID,
		JWKS:         s.raw,
		ETag:         s.etag,
		LastModified: s.lastModified,
		ExpiresAt:    s.expiresAt,
		PersistedAt:  s.fetchedAt,
		Fingerprint:  p.fingerprint,
		JWKSURI:      s.from,
	})
	p.shareFailed("snapshot", err)
}

// shareFailed records the outcome of a Save and logs a failure.
func (p *provider) shareFailed(what string, err error) {
	if p.deps.coord.failed(p.deps.clock, err) && p.deps.logger != nil && p.ctx.Err() == nil {
		p.deps.logger.Warn("jwkscache: sharing "+what+" failed", "tenant", p.reg.TenantID, "provider", p.reg.ProviderID, "error", err)
	}
}

// adoptShared loads the shared snapshot and, for a discovering provider,
// the shared metadata document, and adopts each that is newer than ours:
// keys and meta say which. err is non-nil only when the coordinator
// failed.
func (p *provider) adoptShared() (keys, meta bool, err error) {
	doc, err := p.loadSharedMetadata(p.ctx)
	if err != nil {
		return false, false, err
	}
	meta = doc != nil && p.meta.adopt(doc)
	s, err := p.loadShared(p.ctx)
	if err != nil || s == nil {
		return false, meta, err
	}
	if cur := p.snap.Load(); cur != nil && !newer(s, cur) {
		return false, meta, nil
	}
	p.adopt(s)
	return true, meta, nil
}

// newer reports whether the shared set s is more recent than cur: fetched
// later, or at the same instant (a coarse clock) with another document.
func newer(s, cur *keySet) bool {
	return s.fetchedAt.After(cur.fetchedAt) || (s.fetchedAt.Equal(cur.fetchedAt) && !bytes.Equal(s.raw, cur.raw))
}

// sharedKind says which of a provider's shared snapshots a rejection is
// about: each is logged once per change of its own reason.
type sharedKind int

const (
	sharedKeys sharedKind = iota
	sharedMetadata
)

func (k sharedKind) String() string { return [...]string{"jwks", "metadata"}[k] }

// loadShared returns the shared snapshot as a key set, nil when there is
// none usable, or the coordinator's failure.
func (p *provider) loadShared(ctx context.Context) (*keySet, error) {
	co := p.deps.coord
	return loadChecked(p, sharedKeys, func() (SharedSnapshot, error) {
		return co.c.Load(ctx, p.reg.TenantID, p.reg.ProviderID, p.reg.MaxResponseBytes)
	}, p.fromShared)
}

// loadSharedMetadata returns the shared metadata document of a discovering
// provider, verified, nil when there is none usable (or the provider does
// not discover, or the coordinator shares no documents), or the
// coordinator's failure.
func (p *provider) loadSharedMetadata(ctx context.Context) (*metadataDoc, error) {
	co := p.deps.coord
	if p.meta == nil || co.meta == nil {
		return nil, nil
	}
	return loadChecked(p, sharedMetadata, func() (SharedMetadata, error) {
		return co.meta.LoadMetadata(ctx, p.reg.TenantID, p.reg.ProviderID)
	}, p.fromSharedMetadata)
}

// loadChecked loads a shared snapshot and checks it against the provider's
// registration: the value, nil when there is none usable, or the
// coordinator's failure. A snapshot that is there but must not be trusted
// is counted and logged (once per change of reason), and the caller goes
// on as if there were none: it fetches for itself.
func loadChecked[S, T any](p *provider, kind sharedKind, load func() (S, error), check func(S, time.Time) (*T, string, error)) (*T, error) {
	sn, err := load()
	if p.deps.coord.failed(p.deps.clock, err) {
		return nil, err
	}
	if err != nil {
		var rej *SnapshotRejectedError
		if errors.As(err, &rej) {
			p.rejectShared(kind, rej.Reason, rej.Err)
		}
		return nil, nil
	}
	v, reason, err := check(sn, p.deps.clock.Now())
	if err != nil {
		if reason != "" {
			p.rejectShared(kind, reason, err)
		}
		return nil, nil
	}
	p.rejectShared(kind, "", nil)
	return v, nil
}

// rejectShared counts a rejected snapshot and logs it when its reason is
// not the one logged last for its kind; an empty reason (a snapshot
// accepted) resets that, so the next rejection is logged again.
func (p *provider) rejectShared(kind sharedKind, reason string, err error) {
	p.mu.Lock()
	changed := reason != p.lastRejected[kind]
	p.lastRejected[kind] = reason
	if reason != "" {
		if p.rejected == nil {
			p.rejected = map[string]uint64{}
		}
		p.rejected[reason]++
	}
	p.mu.Unlock()
	if changed && reason != "" && p.deps.logger != nil {
		p.deps.logger.Warn("jwkscache: rejected shared snapshot, fetching for ourselves", "tenant", p.reg.TenantID, "provider", p.reg.ProviderID,
			"snapshot", kind.String(), "reason", reason, "error", err)
	}
}

// checkShared holds the checks of every shared snapshot against this
// provider's registration (the coordinator authenticated it and validated
// its form): its tenant and provider, its trust fingerprint, and times no
// replica could have written. A snapshot merely expired is no rejection
// (reason "").
func (p *provider) checkShared(tenantID, providerID, fp string, persistedAt, expiresAt, now time.Time) (string, error) {
	switch {
	case tenantID != p.reg.TenantID || providerID != p.reg.ProviderID:
		return RejectForeign, fmt.Errorf("snapshot of %s/%s", tenantID, providerID)
	case fp != p.fingerprint:
		// Written under other trust settings: after jwks_url changes (stop
		// trusting that identity provider) its keys must not come back.
		return RejectFingerprint, errors.New("snapshot fetched under other trust settings (jwks_url, discovery_url, issuer, pinned_spki, allowed_domains, require_https, max_response_bytes or max_redirects)")
	case persistedAt.After(now.Add(maxSnapshotSkew)):
		return RejectFuture, fmt.Errorf("snapshot persisted_at %s is in the future", persistedAt.Format(time.RFC3339))
	case expiresAt.Before(persistedAt):
		return RejectLifetime, errors.New("snapshot expires before it was persisted")
	case expiresAt.Sub(persistedAt) > p.reg.MaxTTL:
		return RejectLifetime, fmt.Errorf("snapshot lifetime %s exceeds max_ttl %s", expiresAt.Sub(persistedAt), p.reg.MaxTTL)
	case !expiresAt.After(now):
		return "", fmt.Errorf("snapshot expired at %s", expiresAt.Format(time.RFC3339))
	}
	return "", nil
}

// fromShared checks a snapshot against this provider's registration and
// builds its key set. The set keeps the snapshot's own expires_at:
// adopting it must not extend its life.
func (p *provider) fromShared(sn SharedSnapshot, now time.Time) (*keySet, string, error) {
	if reason, err := p.checkShared(sn.TenantID, sn.ProviderID, sn.Fingerprint, sn.PersistedAt, sn.ExpiresAt, now); err != nil {
		return nil, reason, err
	}
	if int64(len(sn.JWKS)) > p.reg.MaxResponseBytes {
		return nil, RejectTooLarge, fmt.Errorf("snapshot of %d bytes exceeds max_response_bytes %d", len(sn.JWKS), p.reg.MaxResponseBytes)
	}
	s, _, err := parseKeySet(sn.JWKS)
	if err != nil {
		return nil, RejectInvalidJWKS, err
	}
	s.fetchedAt = sn.PersistedAt
	s.setExpiry(now, sn.ExpiresAt, p.reg.StaleWhileError)
	s.etag, s.lastModified, s.raw, s.source = sn.ETag, sn.LastModified, sn.JWKS, SourceRedis
	// Only compared with the jwks_uri of a verified document, before its
	// validators are sent there.
	s.from = sn.JWKSURI
	return s, "", nil
}

// fromSharedMetadata checks a shared metadata document as fromShared a
// snapshot, and then as a fetched document is checked (metadata.verify):
// whoever writes to the coordinator must not choose the issuer or the
// jwks_uri. The document keeps its own expires_at.
func (p *provider) fromSharedMetadata(sm SharedMetadata, now time.Time) (*metadataDoc, string, error) {
	if reason, err := p.checkShared(sm.TenantID, sm.ProviderID, sm.Fingerprint, sm.PersistedAt, sm.ExpiresAt, now); err != nil {
		return nil, reason, err
	}
	doc := &metadataDoc{issuer: sm.Issuer, jwksURI: sm.JWKSURI, fetchedAt: sm.PersistedAt, expiresAt: sm.ExpiresAt,
		etag: sm.ETag, lastModified: sm.LastModified, source: SourceRedis}
	if reason, err := p.meta.verify(doc); err != nil {
		return nil, reason, fmt.Errorf("shared metadata: %w", err)
	}
	return doc, "", nil
}

// due reports whether the current set needs a refresh at now: its
// scheduled refresh time (as schedule computes it, less the jitter) has
// come, or a discovering provider's metadata document has expired.
func (p *provider) due(now time.Time) bool {
	if p.meta.due(now) {
		return true
	}
	s := p.snap.Load()
	if s == nil {
		return true
	}
	ttl := s.expiresAt.Sub(s.fetchedAt)
	early := min(p.reg.RefreshEarly, ttl/2)
	return !now.Before(s.expiresAt.Add(-early - p.reg.PrefetchJitter))
}

// warm is what warmLoad found: the shared key set and, for a discovering
// provider, the shared metadata document, each nil when none is usable.
type warm struct {
	keys *keySet
	meta *metadataDoc
}

// warmLoad is Register's look at the coordinator, before the provider is
// published: the shared snapshot as a key set and the shared metadata
// document. The first refresh then does not ask again. A coordinator
// failure never fails a registration; right after one, Register does not
// even wait for it.
func (p *provider) warmLoad(ctx context.Context) warm {
	co := p.deps.coord
	if co == nil || p.deps.clock.Now().UnixNano() < co.downUntil.Load() {
		return warm{}
	}
	doc, err := p.loadSharedMetadata(ctx)
	if err != nil {
		return warm{}
	}
	s, err := p.loadShared(ctx)
	if err != nil {
		return warm{}
	}
	p.warmChecked = true
	return warm{keys: s, meta: doc}
}

// warmStart adopts what warmLoad found, unless the provider holds newer
// (carried over from the provider it replaces): the provider is Ready
// without a request to the identity provider (Status Source "redis",
// SourceAt its persisted_at, ExpiresAt its own), and a discovering one
// knows its jwks_uri without fetching the metadata document. It reports
// whether nothing needs a refresh yet.
func (p *provider) warmStart(w warm) bool {
	if w.meta != nil {
		p.meta.adopt(w.meta)
	}
	s := w.keys
	if s == nil {
		return false
	}
	if cur := p.snap.Load(); cur != nil && !newer(s, cur) {
		return false
	}
	p.adopt(s)
	if p.deps.logger != nil {
		p.deps.logger.Info("jwkscache: warm start from shared snapshot", "tenant", p.reg.TenantID, "provider", p.reg.ProviderID,
			"persisted_at", s.fetchedAt, "expires_at", s.expiresAt)
	}
	return !p.due(p.deps.clock.Now())
}
