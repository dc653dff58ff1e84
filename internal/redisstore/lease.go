package redisstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// TryAcquire takes the refresh lease of (tenant, provider) for holder when
// nobody holds it (SET NX PX): true means holder may fetch, and the lease
// ends by itself after ttl if the holder dies. A false with a nil error
// means another replica holds it. A lease that would outlast ttl (see
// setNX) is taken over.
func (s *Store) TryAcquire(ctx context.Context, tenant, provider, holder string, ttl time.Duration) (bool, error) {
	if err := checkIDs(tenant, provider); err != nil {
		return false, err
	}
	if holder == "" {
		return false, fmt.Errorf("redisstore: lease %s/%s: empty holder", tenant, provider)
	}
	ok, _, err := s.setNX(ctx, s.leaseKey(tenant, provider), holder, ttl)
	return ok, err
}

// TryCooldown starts the fleet-wide unknown-kid cooldown of (tenant,
// provider) for holder unless it runs already: true means holder may
// refresh for an unknown kid, and nobody else may until ttl has passed. It
// is a key of its own ({namespace}:kid-cooldown:{tenant}:{provider}) so
// that the cooldown never holds up the scheduled refreshes' lease. When
// the cooldown runs already, settled reports whether its holder has shared
// the outcome of its refresh (SettleCooldown): a replica that has adopted
// that snapshot need not wait for it.
func (s *Store) TryCooldown(ctx context.Context, tenant, provider, holder string, ttl time.Duration) (ok, settled bool, err error) {
	if err := checkIDs(tenant, provider); err != nil {
		return false, false, err
	}
	if holder == "" || strings.HasSuffix(holder, settledSuffix) {
		return false, false, fmt.Errorf("redisstore: cooldown %s/%s: bad holder %q", tenant, provider, holder)
	}
	key := s.cooldownKey(tenant, provider)
	ok, _, err = s.setNX(ctx, key, holder, ttl)
	if ok || err != nil {
		return ok, false, err
	}
	err = s.call(ctx, "cooldown state "+key, func(ctx context.Context) error {
		v, err := s.client.Get(ctx, key).Result()
		settled = strings.HasSuffix(v, settledSuffix)
		if err == redis.Nil { // ended between the two calls: nobody refreshing
			settled, err = true, nil
		}
		return err
	})
	return false, settled, err
}

// settledSuffix marks a cooldown whose holder has shared its refresh.
const settledSuffix = " settled"

// settleScript marks the cooldown settled, keeping its expiry, while
// ARGV[1] still holds it, and announces it on the updates channel (ARGV[3],
// message ARGV[4]) so that the replicas waiting on it look again.
var settleScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('SET', KEYS[1], ARGV[1] .. ARGV[2], 'KEEPTTL')
	redis.call('PUBLISH', ARGV[3], ARGV[4])
	return 1
end
return 0
`)

// SettleCooldown records that holder, which started the unknown-kid
// cooldown of (tenant, provider), has shared the outcome of its refresh,
// and announces it like a saved snapshot. It does nothing when another
// holds the cooldown.
func (s *Store) SettleCooldown(ctx context.Context, tenant, provider, holder string) error {
	if err := checkIDs(tenant, provider); err != nil {
		return err
	}
	key := s.cooldownKey(tenant, provider)
	return s.call(ctx, "settle "+key, func(ctx context.Context) error {
		return settleScript.Run(ctx, s.client, []string{key}, holder, settledSuffix,
			s.updatesChannel(), tenant+"/"+provider).Err()
	})
}

// setNX sets key to holder for ttl (SET NX PX) unless it exists with at
// most ttl left. A key without an expiry, or with more time left than any
// replica asks for, was not written by a replica (or by one with other
// settings): whoever can write to Redis must not be able to stop the fleet
// refreshing for longer than the lease's own bound, so such a key is taken
// over. The check and the write are one script, so two replicas never both
// take it.
//
// It reports whether holder has the key now and, when not, the time left
// on the key another holds.
func (s *Store) setNX(ctx context.Context, key, holder string, ttl time.Duration) (ok bool, left time.Duration, err error) {
	ttl = max(ttl, time.Millisecond)
	err = s.call(ctx, "acquire "+key, func(ctx context.Context) error {
		n, err := acquireScript.Run(ctx, s.client, []string{key}, holder, ttl.Milliseconds()).Int64()
		ok, left = n < 0, time.Duration(n)*time.Millisecond
		return err
	})
	return ok, left, err
}

// acquireScript is setNX's SET NX PX with the takeover of a key whose
// remaining time (PTTL: -1 without expiry) exceeds ARGV[2] ms. It returns
// -1 when ARGV[1] holds the key now, else the key's remaining time in ms.
var acquireScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return -1 end
local left = redis.call('PTTL', KEYS[1])
if left < 0 or left > tonumber(ARGV[2]) then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
	return -1
end
return left
`)

// releaseScript deletes the lease only while ARGV[1] still holds it: after
// a lease expired and another replica took it, the late first holder must
// not release the second one's lease.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// Release ends holder's lease of (tenant, provider) early, so that the
// next refresh need not wait for it to expire. It reports whether holder
// still held it; releasing a lease held by another is a no-op.
func (s *Store) Release(ctx context.Context, tenant, provider, holder string) (bool, error) {
	if err := checkIDs(tenant, provider); err != nil {
		return false, err
	}
	key := s.leaseKey(tenant, provider)
	var n int64
	err := s.call(ctx, "release "+key, func(ctx context.Context) error {
		var err error
		n, err = releaseScript.Run(ctx, s.client, []string{key}, holder).Int64()
		return err
	})
	return n == 1, err
}
