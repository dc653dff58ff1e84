package service

import (
	"fmt"
	"log/slog"

	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/jwkscache"
)

// openRedis opens the store of jwks.redis (nil when it is not set). It
// does not connect: a Redis that is down at start only means the replica
// works alone until it answers (see redisstore).
func openRedis(cfg *tenants.Config, log *slog.Logger) (*redisstore.Store, error) {
	r := cfg.JWKS.Redis
	if r == nil {
		return nil, nil
	}
	log = log.With("component", "redis")
	u, err := r.ResolveURL()
	if err != nil {
		return nil, err
	}
	keys, err := redisstore.ReadHMACKeys(r.HMACKeyFile)
	if err != nil {
		return nil, fmt.Errorf("jwks.redis.hmac_key_file: %w", err)
	}
	store, err := redisstore.Open(u, r.Namespace, redisstore.Options{Logger: log, HMACKeys: keys})
	if err != nil {
		return nil, fmt.Errorf("jwks.redis: %w", err)
	}
	// go-redis logs every failed dial; the store logs each change of Redis
	// health once, so the client's own lines go to debug.
	redisstore.SetClientLogger(log)
	return store, nil
}

// coordinator returns the registry's Coordinator for store (nil without).
func coordinator(store *redisstore.Store) jwkscache.Coordinator {
	if store == nil {
		return nil
	}
	return store.Coordinator()
}

// closeRegistry stops the cache, then closes the Redis store it used, then
// writes the last audit records and exports the last spans.
func (s *Service) closeRegistry() error {
	err := s.registry.Close()
	if s.redis != nil {
		_ = s.redis.Close()
	}
	s.stopObserving()
	return err
}

// dpopReplay returns the memory of accepted DPoP proofs: fleet-wide in
// store's Redis when jwks.redis is set, with dpop_replay.on_redis_error
// deciding whether a Redis failure refuses the proof (deny, the default) or
// falls back to this replica's own bounded cache (per_replica); without
// Redis, the replica's own cache.
func dpopReplay(cfg *tenants.Config, store *redisstore.Store) dpop.ReplayCache {
	local := dpop.NewMemoryReplay(cfg.DPoPReplay.MaxEntries, nil)
	if store == nil {
		return local
	}
	return &dpop.FallbackReplay{Shared: store, Local: local, FallBack: cfg.DPoPReplay.FallBack()}
}
