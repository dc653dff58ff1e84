package jwkscache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
	"github.com/extauthz/extauthz/jwkscache/clocktest"
)

// memCoordinator is an in-memory jwkscache.Coordinator and Notifier that
// the registries of a test fleet share, as replicas share Redis: one
// snapshot per provider, the refresh leases and the unknown-kid cooldowns,
// all timed by the fleet's fake clock. It exercises the registry's fleet
// logic through the seam alone, without a Redis server. While down is set
// every call fails, as calls to an unreachable Redis do.
type memCoordinator struct {
	clk  *clocktest.Clock
	down atomic.Bool

	mu        sync.Mutex
	snaps     map[memKey]jwkscache.SharedSnapshot
	metas     map[memKey]jwkscache.SharedMetadata
	leases    map[memKey]memClaim
	cooldowns map[memKey]memClaim
	subs      map[int]func(tenantID, providerID string)
	nextSub   int
	saves     int
}

type memKey struct{ tenant, provider string }

// memClaim is a lease or a cooldown: who holds it, until when, and (for a
// cooldown) whether its holder has shared its refresh.
type memClaim struct {
	holder  string
	until   time.Time
	settled bool
}

var errCoordinatorDown = errors.New("memCoordinator: down")

func newMemCoordinator(clk *clocktest.Clock) *memCoordinator {
	return &memCoordinator{
		clk:       clk,
		snaps:     map[memKey]jwkscache.SharedSnapshot{},
		metas:     map[memKey]jwkscache.SharedMetadata{},
		leases:    map[memKey]memClaim{},
		cooldowns: map[memKey]memClaim{},
		subs:      map[int]func(string, string){},
	}
}

// put stores a snapshot directly, as another (possibly misconfigured)
// replica would, without announcing it.
func (m *memCoordinator) put(s jwkscache.SharedSnapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.snaps[memKey{s.TenantID, s.ProviderID}] = s
}

// stored returns the snapshot held for acme/main.
func (m *memCoordinator) stored() (jwkscache.SharedSnapshot, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.snaps[memKey{"acme", "main"}]
	return s, ok
}

func (m *memCoordinator) Load(_ context.Context, tenantID, providerID string, maxBytes int64) (jwkscache.SharedSnapshot, error) {
	if m.down.Load() {
		return jwkscache.SharedSnapshot{}, errCoordinatorDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.snaps[memKey{tenantID, providerID}]
	if !ok || !s.ExpiresAt.After(m.clk.Now()) {
		return jwkscache.SharedSnapshot{}, fmt.Errorf("%w: %s/%s", jwkscache.ErrNoSnapshot, tenantID, providerID)
	}
	if int64(len(s.JWKS)) > maxBytes {
		return jwkscache.SharedSnapshot{}, &jwkscache.SnapshotRejectedError{Reason: "too_large", Err: errors.New("JWKS over maxBytes")}
	}
	s.JWKS = slices.Clone(s.JWKS)
	return s, nil
}

func (m *memCoordinator) Save(_ context.Context, s jwkscache.SharedSnapshot) error {
	if m.down.Load() {
		return errCoordinatorDown
	}
	s.JWKS = slices.Clone(s.JWKS)
	m.mu.Lock()
	m.snaps[memKey{s.TenantID, s.ProviderID}] = s
	m.saves++
	m.mu.Unlock()
	m.announce(s.TenantID, s.ProviderID)
	return nil
}

func (m *memCoordinator) TryAcquire(_ context.Context, tenantID, providerID, holder string, ttl time.Duration) (bool, error) {
	if m.down.Load() {
		return false, errCoordinatorDown
	}
	return m.claim(m.leases, memKey{tenantID, providerID}, holder, ttl), nil
}

func (m *memCoordinator) Release(_ context.Context, tenantID, providerID, holder string) error {
	if m.down.Load() {
		return errCoordinatorDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.leases[memKey{tenantID, providerID}]; ok && c.holder == holder {
		delete(m.leases, memKey{tenantID, providerID})
	}
	return nil
}

func (m *memCoordinator) TryCooldown(_ context.Context, tenantID, providerID, holder string, ttl time.Duration) (bool, bool, error) {
	if m.down.Load() {
		return false, false, errCoordinatorDown
	}
	k := memKey{tenantID, providerID}
	if m.claim(m.cooldowns, k, holder, ttl) {
		return true, false, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return false, m.cooldowns[k].settled, nil
}

func (m *memCoordinator) SettleCooldown(_ context.Context, tenantID, providerID, holder string) error {
	if m.down.Load() {
		return errCoordinatorDown
	}
	k := memKey{tenantID, providerID}
	m.mu.Lock()
	c, ok := m.cooldowns[k]
	if ok && c.holder == holder {
		c.settled = true
		m.cooldowns[k] = c
	}
	m.mu.Unlock()
	if ok && c.holder == holder {
		m.announce(tenantID, providerID)
	}
	return nil
}

// LoadMetadata implements jwkscache.MetadataCoordinator.
func (m *memCoordinator) LoadMetadata(_ context.Context, tenantID, providerID string) (jwkscache.SharedMetadata, error) {
	if m.down.Load() {
		return jwkscache.SharedMetadata{}, errCoordinatorDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.metas[memKey{tenantID, providerID}]
	if !ok || !s.ExpiresAt.After(m.clk.Now()) {
		return jwkscache.SharedMetadata{}, fmt.Errorf("%w: metadata of %s/%s", jwkscache.ErrNoSnapshot, tenantID, providerID)
	}
	return s, nil
}

// SaveMetadata implements jwkscache.MetadataCoordinator.
func (m *memCoordinator) SaveMetadata(_ context.Context, s jwkscache.SharedMetadata) error {
	if m.down.Load() {
		return errCoordinatorDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.metas[memKey{s.TenantID, s.ProviderID}] = s
	return nil
}

// claim takes the lease or cooldown k for holder unless another holds it
// and it has not run out.
func (m *memCoordinator) claim(claims map[memKey]memClaim, k memKey, holder string, ttl time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	if c, ok := claims[k]; ok && c.until.After(now) {
		return false
	}
	claims[k] = memClaim{holder: holder, until: now.Add(ttl)}
	return true
}

// Subscribe implements jwkscache.Notifier.
func (m *memCoordinator) Subscribe(ctx context.Context, fn func(tenantID, providerID string)) error {
	m.mu.Lock()
	id := m.nextSub
	m.nextSub++
	m.subs[id] = fn
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	delete(m.subs, id)
	m.mu.Unlock()
	return nil
}

func (m *memCoordinator) announce(tenantID, providerID string) {
	m.mu.Lock()
	subs := make([]func(string, string), 0, len(m.subs))
	for _, fn := range m.subs {
		subs = append(subs, fn)
	}
	m.mu.Unlock()
	for _, fn := range subs {
		fn(tenantID, providerID)
	}
}
