package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// Coordinator returns s as the jwkscache.Coordinator of a registry:
// snapshots, leases and their errors translated to the cache's terms (a
// missing or invalid snapshot is jwkscache.ErrNoSnapshot; anything else
// is a Redis failure, and the registry works alone).
func (s *Store) Coordinator() jwkscache.Coordinator { return coordinator{s} }

// coordinator adapts Store to jwkscache.Coordinator, so that jwkscache
// needs no Redis client.
type coordinator struct{ s *Store }

func (c coordinator) Load(ctx context.Context, tenantID, providerID string, maxBytes int64) (jwkscache.SharedSnapshot, error) {
	snap, err := c.s.Load(ctx, tenantID, providerID, maxBytes)
	var invalid *InvalidSnapshotError
	if errors.As(err, &invalid) {
		return jwkscache.SharedSnapshot{}, &jwkscache.SnapshotRejectedError{Reason: string(invalid.Reason), Err: err}
	}
	if errors.Is(err, ErrNotFound) {
		return jwkscache.SharedSnapshot{}, fmt.Errorf("%w: %w", jwkscache.ErrNoSnapshot, err)
	}
	if err != nil {
		return jwkscache.SharedSnapshot{}, err
	}
	return snap, nil
}

func (c coordinator) Save(ctx context.Context, snap jwkscache.SharedSnapshot) error {
	return c.s.Save(ctx, snap)
}

func (c coordinator) TryAcquire(ctx context.Context, tenantID, providerID, holder string, ttl time.Duration) (bool, error) {
	return c.s.TryAcquire(ctx, tenantID, providerID, holder, ttl)
}

func (c coordinator) TryCooldown(ctx context.Context, tenantID, providerID, holder string, ttl time.Duration) (bool, bool, error) {
	return c.s.TryCooldown(ctx, tenantID, providerID, holder, ttl)
}

func (c coordinator) SettleCooldown(ctx context.Context, tenantID, providerID, holder string) error {
	return c.s.SettleCooldown(ctx, tenantID, providerID, holder)
}

// Subscribe implements jwkscache.Notifier with the store's updates channel.
func (c coordinator) Subscribe(ctx context.Context, fn func(tenantID, providerID string)) error {
	return c.s.Subscribe(ctx, fn)
}

func (c coordinator) Release(ctx context.Context, tenantID, providerID, holder string) error {
	_, err := c.s.Release(ctx, tenantID, providerID, holder)
	return err
}
