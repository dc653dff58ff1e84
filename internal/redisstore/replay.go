package redisstore

import (
	"context"
	"fmt"
	"time"
)

// Once records key in the fleet-wide DPoP replay set
// ({namespace}:dpop-jti:{key}, SET NX PX ttl) and reports whether it was
// not there yet: of all replicas sharing the Redis, exactly one sees true
// within ttl. key is what dpop makes of a proof (base64url of a hash). An
// error means Redis did not answer; the caller decides (dpop fails closed).
func (s *Store) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if len(key) == 0 || len(key) > 128 || !validID(key, true) {
		return false, fmt.Errorf("redisstore: replay key %q: want 1-128 base64url characters", key)
	}
	return s.setNX(ctx, s.namespace+":dpop-jti:"+key, "1", ttl)
}
