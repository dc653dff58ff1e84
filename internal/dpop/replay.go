package dpop

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"
)

// ReplayCache remembers the proofs already accepted (RFC 9449 §11.1).
// Implementations must be safe for concurrent use.
type ReplayCache interface {
	// Once records key for ttl and reports whether it was not recorded
	// already: true exactly once per key within ttl, fleet-wide for a
	// shared cache. An error means nothing is known: the caller refuses.
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// ErrReplayFull is returned by MemoryReplay.Once when the cache holds its
// maximum of unexpired entries: forgetting one would let its proof be
// replayed, so the new proof is refused instead.
var ErrReplayFull = errors.New("dpop: replay cache full")

// MemoryReplay is one replica's ReplayCache: at most max unexpired keys,
// each dropped when its ttl has passed. It is safe for concurrent use.
type MemoryReplay struct {
	now func() time.Time
	max int

	mu      sync.Mutex
	expires map[string]time.Time
	order   expiryHeap // the keys of expires, soonest expiry first
}

// NewMemoryReplay returns a cache holding at most max keys, reading time
// from now (time.Now when nil).
func NewMemoryReplay(max int, now func() time.Time) *MemoryReplay {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplay{now: now, max: max, expires: map[string]time.Time{}}
}

// Once implements ReplayCache.
func (m *MemoryReplay) Once(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	// Drop what has expired: the heap makes this O(log n) per key dropped.
	for len(m.order) > 0 && !m.order[0].at.After(now) {
		e := heap.Pop(&m.order).(expiry)
		if m.expires[e.key].Equal(e.at) {
			delete(m.expires, e.key)
		}
	}
	if at, ok := m.expires[key]; ok && at.After(now) {
		return false, nil
	}
	if len(m.expires) >= m.max {
		return false, ErrReplayFull
	}
	at := now.Add(ttl)
	m.expires[key] = at
	heap.Push(&m.order, expiry{key: key, at: at})
	return true, nil
}

// Len returns the number of keys held.
func (m *MemoryReplay) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.expires)
}

type expiry struct {
	key string
	at  time.Time
}

type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// FallbackReplay asks Shared (a fleet-wide cache) and, when it fails, Local
// (this replica's) — but only when FallBack is set: by default a Shared
// failure is returned, so the proof is refused (fail closed), because a
// replica that checks alone cannot see a proof replayed to another one.
type FallbackReplay struct {
	Shared   ReplayCache
	Local    ReplayCache
	FallBack bool
	// OnFallback, when set, is called each time Local answers instead of
	// Shared (for a log line or a metric).
	OnFallback func(err error)
}

// Once implements ReplayCache.
func (f *FallbackReplay) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	fresh, err := f.Shared.Once(ctx, key, ttl)
	if err == nil || !f.FallBack || ctx.Err() != nil {
		return fresh, err
	}
	if f.OnFallback != nil {
		f.OnFallback(err)
	}
	return f.Local.Once(ctx, key, ttl)
}
