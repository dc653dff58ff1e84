// Package redisstore shares JWKS snapshots between extauthz replicas through
// Redis: snapshots under {namespace}:{tenant}:{provider} and discovering
// providers' metadata documents under {namespace}:meta:{tenant}:{provider}
// (each authenticated with an HMAC and validated on every read, never
// trusted), refresh leases under {namespace}:lease:{tenant}:{provider}
// (SET NX PX, compare-and-delete release), the fleet-wide unknown-kid
// cooldown under {namespace}:kid-cooldown:{tenant}:{provider}, and change
// notifications on the {namespace}:updates channel. Store.Coordinator
// plugs all of it into a jwkscache.Registry.
//
// Redis is an optimisation, never a dependency: every call is bounded by a
// short timeout (Options.Timeout, default 100 ms), failures are counted and
// returned so the caller can carry on alone (fetch for itself), and the
// store's health (up/down) is logged once per change rather than per call.
// The go-redis client reconnects by itself when Redis comes back.
package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/extauthz/extauthz/jwkscache"
)

// Defaults of Options.
const (
	// DefaultNamespace prefixes every key when Open is given none.
	DefaultNamespace = "jwks-cache"
	// DefaultTimeout bounds each Redis call: long enough for a round trip
	// inside a data centre, short enough that a slow Redis never holds up a
	// refresh (the caller then fetches for itself).
	DefaultTimeout = 100 * time.Millisecond
	// DefaultMaxJWKSBytes is the JWKS size limit Load applies when the
	// caller passes none (jwkscache.DefaultRegistration's MaxResponseBytes).
	DefaultMaxJWKSBytes = 1 << 20
)

// Options tune a Store. The zero value is usable.
type Options struct {
	// Timeout bounds every Redis call (default DefaultTimeout). It also
	// becomes the client's dial, read, write and pool timeouts, replacing
	// any the URL set, so that no single call can outlast it.
	Timeout time.Duration
	// Logger receives the health changes (default: discard). Snapshots,
	// keys and the URL's password are never logged.
	Logger *slog.Logger
	// Now is the clock used for persisted_at and the Redis TTL of a
	// snapshot (default time.Now).
	Now func() time.Time
	// HMACKeys authenticate snapshots (required; each at least
	// MinHMACKeyBytes): the first signs what Save writes, Load accepts a
	// MAC made with any of them. See ReadHMACKeys.
	HMACKeys [][]byte
}

// Store is a Redis-backed snapshot store, lease service and change feed. It
// is safe for concurrent use.
type Store struct {
	client    *redis.Client
	namespace string
	addr      string
	timeout   time.Duration
	log       *slog.Logger
	now       func() time.Time
	hmacKeys  [][]byte

	health  atomic.Int32 // healthUnknown, healthUp or healthDown
	errs    atomic.Uint64
	invalid [numReasons]atomic.Uint64
}

const (
	healthUnknown int32 = iota
	healthUp
	healthDown
)

// Open parses url with redis.ParseURL (redis:// or rediss:// for TLS;
// user, password and database in the URL) and returns a Store whose keys
// start with namespace (DefaultNamespace when empty). It does not connect:
// a Redis that is down at start is not an error, the first calls simply
// fail and the client keeps trying.
func Open(url, namespace string, opts Options) (*Store, error) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	if err := checkNamespace(namespace); err != nil {
		return nil, err
	}
	if err := checkHMACKeys(opts.HMACKeys); err != nil {
		return nil, err
	}
	ro, err := redis.ParseURL(url)
	if err != nil {
		// ParseURL's errors never contain the password.
		return nil, fmt.Errorf("redisstore: url: %w", err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ro.ContextTimeoutEnabled = true
	ro.DialTimeout = opts.Timeout
	ro.ReadTimeout = opts.Timeout
	ro.WriteTimeout = opts.Timeout
	ro.PoolTimeout = opts.Timeout
	// One quick retry covers a pooled connection that died with a Redis
	// restart; more would only spend the caller's budget.
	ro.MaxRetries = 1
	ro.DialerRetries = 1
	// Cluster maintenance notifications are a Redis Cloud feature we do not
	// use; turning them off saves a command per connection.
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return &Store{
		client:    redis.NewClient(ro),
		namespace: namespace,
		addr:      ro.Addr,
		timeout:   opts.Timeout,
		log:       opts.Logger,
		now:       opts.Now,
		hmacKeys:  cloneKeys(opts.HMACKeys),
	}, nil
}

// cloneKeys copies the keys, so a caller reusing its buffers cannot change
// them behind the store's back.
func cloneKeys(keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = bytes.Clone(k)
	}
	return out
}

func checkNamespace(ns string) error {
	if len(ns) > 128 {
		return fmt.Errorf("redisstore: namespace: longer than 128 bytes")
	}
	for i := 0; i < len(ns); i++ {
		if c := ns[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("redisstore: namespace %q: only printable ASCII without spaces", ns)
		}
	}
	return nil
}

// Close closes the client's connections. Subscribe loops end with an error.
func (s *Store) Close() error { return s.client.Close() }

// Namespace returns the key prefix.
func (s *Store) Namespace() string { return s.namespace }

// Ping checks that Redis answers within the timeout.
func (s *Store) Ping(ctx context.Context) error {
	return s.call(ctx, "ping", func(ctx context.Context) error {
		return s.client.Ping(ctx).Err()
	})
}

// Healthy reports whether the last Redis call succeeded (false before any
// call has completed).
func (s *Store) Healthy() bool { return s.health.Load() == healthUp }

// Stats are the store's counters since Open.
type Stats struct {
	// Errors counts Redis calls that failed (unreachable, timed out,
	// refused), whatever the operation.
	Errors uint64
	// Invalid counts snapshots Load refused, by reason.
	Invalid map[Reason]uint64
}

// Stats returns a copy of the counters.
func (s *Store) Stats() Stats {
	st := Stats{Errors: s.errs.Load(), Invalid: make(map[Reason]uint64, numReasons)}
	for i := range s.invalid {
		st.Invalid[reasons[i]] = s.invalid[i].Load()
	}
	return st
}

// call runs f with the store's timeout and records the outcome: counts
// the error and flips (and logs) the health state when it changes.
func (s *Store) call(ctx context.Context, op string, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := f(cctx)
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		s.setHealth(healthUp, nil)
		return err
	case ctx.Err() != nil:
		// The caller gave up: says nothing about Redis.
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	s.errs.Add(1)
	s.setHealth(healthDown, err)
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

func (s *Store) setHealth(h int32, err error) {
	if s.health.Swap(h) == h {
		return
	}
	if h == healthUp {
		s.log.Info("redisstore: redis reachable", "addr", s.addr)
		return
	}
	s.log.Warn("redisstore: redis unreachable, replicas fall back to fetching for themselves",
		"addr", s.addr, "err", err)
}

func (s *Store) snapshotKey(tenant, provider string) string {
	return s.namespace + ":" + tenant + ":" + provider
}

func (s *Store) leaseKey(tenant, provider string) string {
	return s.namespace + ":lease:" + tenant + ":" + provider
}

func (s *Store) cooldownKey(tenant, provider string) string {
	return s.namespace + ":kid-cooldown:" + tenant + ":" + provider
}

func (s *Store) updatesChannel() string { return s.namespace + ":updates" }

// checkIDs applies the cache's ID rules, so that no tenant or provider ID
// can reach into another key (no ':' in either).
func checkIDs(tenant, provider string) error {
	if err := jwkscache.CheckTenantID(tenant); err != nil {
		return fmt.Errorf("redisstore: tenant id: %w", err)
	}
	if err := jwkscache.CheckProviderID(provider); err != nil {
		return fmt.Errorf("redisstore: provider id: %w", err)
	}
	return nil
}
