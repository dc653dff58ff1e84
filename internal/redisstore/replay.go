package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Once records key in the fleet-wide DPoP replay set
// ({namespace}:dpop-jti:{key}, SET NX PX ttl) and reports whether it was
// not there yet: of all replicas sharing the Redis, exactly one sees true
// within ttl. key is what dpop makes of a proof (base64url of a hash). An
// error means Redis did not answer; the caller decides (dpop fails closed).
func (s *Store) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if len(key) == 0 || len(key) > 128 || !isBase64URL(key) {
		return false, fmt.Errorf("redisstore: replay key %q: want 1-128 base64url characters", key)
	}
	// Plain SET NX, not setNX: a replay record is never taken over, whatever
	// its remaining time (a proof seen once stays seen for its ttl).
	key = s.namespace + ":dpop-jti:" + key
	ttl = max(ttl, time.Millisecond)
	var ok bool
	err := s.call(ctx, "once "+key, func(ctx context.Context) error {
		err := s.client.Do(ctx, "SET", key, "1", "NX", "PX", ttl.Milliseconds()).Err()
		switch err {
		case nil:
			ok = true
		case redis.Nil: // NX and the key exists: a replay
			err = nil
		}
		return err
	})
	return ok, err
}

// isBase64URL reports whether s holds only the base64url alphabet (RFC 4648
// §5), so a key can never reach into another part of the namespace.
func isBase64URL(s string) bool {
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
