package service

import (
	"fmt"
	"log/slog"

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
	store, err := redisstore.Open(u, r.Namespace, redisstore.Options{Logger: log})
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

// closeRegistry stops the cache, then closes the Redis store it used.
func (s *Service) closeRegistry() error {
	err := s.registry.Close()
	if s.redis != nil {
		_ = s.redis.Close()
	}
	return err
}
