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
// is a Redis failure, and the registry works alone). It is also a
// jwkscache.Notifier and a jwkscache.MetadataCoordinator.
func (s *Store) Coordinator() jwkscache.Coordinator { return coordinator{s} }

// coordinator adapts Store to jwkscache.Coordinator, so that jwkscache
// needs no Redis client.
type coordinator struct{ s *Store }

var (
	_ jwkscache.Notifier            = coordinator{}
	_ jwkscache.MetadataCoordinator = coordinator{}
)

func (c coordinator) Load(ctx context.Context, tenantID, providerID string, maxBytes int64) (jwkscache.SharedSnapshot, error) {
	snap, err := c.s.Load(ctx, tenantID, providerID, maxBytes)
	return snap, cacheError(err)
}

// LoadMetadata implements jwkscache.MetadataCoordinator.
func (c coordinator) LoadMetadata(ctx context.Context, tenantID, providerID string) (jwkscache.SharedMetadata, error) {
	meta, err := c.s.LoadMetadata(ctx, tenantID, providerID)
	return meta, cacheError(err)
}

// SaveMetadata implements jwkscache.MetadataCoordinator.
func (c coordinator) SaveMetadata(ctx context.Context, meta jwkscache.SharedMetadata) error {
	return c.s.SaveMetadata(ctx, meta)
}

// cacheError translates a load's error to the cache's terms: an invalid
// value is a jwkscache.SnapshotRejectedError, none is
// jwkscache.ErrNoSnapshot, anything else a Redis failure.
func cacheError(err error) error {
	var invalid *InvalidSnapshotError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalid):
		return &jwkscache.SnapshotRejectedError{Reason: string(invalid.Reason), Err: err}
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: %w", jwkscache.ErrNoSnapshot, err)
	}
	return err
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
