// Package jwkscache keeps the JSON Web Key Sets of many identity providers,
// for many tenants at once, and answers "which public key verifies this
// token" without ever making a warm caller wait on the network.
//
// A Registry holds one provider per (tenant, provider) pair. Each provider's
// current key set is an immutable snapshot, indexed by kid, swapped in
// atomically by refreshes that run in the background: early, before the set
// expires (with jitter), on an unknown kid (at most once per cooldown), and on
// demand. Lookups never take a lock a refresh holds and, warm, allocate
// nothing. When the identity provider fails, the old set keeps serving until
// expires_at + stale_while_error; after that lookups fail with ErrUnavailable,
// which callers tell apart from ErrKeyNotFound (a client problem).
//
// A Coordinator (optional) lets the replicas of a fleet share key sets and
// agree which of them fetches, so a fleet behaves like one cache towards
// each identity provider.
package jwkscache

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Errors a caller tells apart with errors.Is: ErrKeyNotFound is the
// token's fault (the client's), ErrUnavailable the identity provider's,
// and ErrUnknownProvider the caller's (a provider it never registered, or
// one a reload removed while a lookup ran).
var (
	// ErrUnknownProvider means no provider is registered under that
	// (tenant, provider) pair.
	ErrUnknownProvider = errors.New("jwkscache: unknown provider")
	// ErrKeyNotFound means the provider has usable keys but none with the
	// token's kid that fits the token's alg (including a known-missing kid
	// inside the negative-cache or unknown-kid cooldown window).
	ErrKeyNotFound = errors.New("jwkscache: key not found")
	// ErrUnavailable means the provider has no usable key set at all: never
	// fetched successfully, or expired beyond stale_while_error. It is the
	// identity provider's fault, never the client's.
	ErrUnavailable = errors.New("jwkscache: keys unavailable")
)

// Jitter names a retry jitter strategy from the AWS Architecture Blog's
// "Exponential Backoff and Jitter".
type Jitter string

// The jitter strategies.
const (
	JitterNone         Jitter = "none"
	JitterFull         Jitter = "full"
	JitterDecorrelated Jitter = "decorrelated"
)

// RetryPolicy bounds the attempts of one refresh.
type RetryPolicy struct {
	MaxRetries     int           // retries after the first attempt; default 2
	AttemptTimeout time.Duration // ≥ 100 ms; default 3 s
	InitialBackoff time.Duration // > 0; default 250 ms
	MaxBackoff     time.Duration // ≥ InitialBackoff; default 2 s
	Deadline       time.Duration // ≥ AttemptTimeout; default 8 s; bounds the whole sequence
	Jitter         Jitter        // default JitterFull
}

// Registration is one provider's settings. Start from DefaultRegistration (or
// Registry.NewRegistration): a zero value is not valid.
type Registration struct {
	TenantID   string
	ProviderID string
	JWKSURL    string
	// DiscoveryURL, instead of JWKSURL, is where the provider's metadata
	// document is (OpenID Connect Discovery 1.0 §4 or RFC 8414 §3; see
	// DiscoveryURL): the key set is fetched from its jwks_uri, which must
	// pass the guards a JWKSURL does. The document is cached like a key
	// set (discovery.go).
	DiscoveryURL string
	// Issuer is the iss the provider's keys are trusted for (optional;
	// required with DiscoveryURL, whose document must name it exactly).
	// The cache does not check tokens; it makes the issuer part of the
	// trust fingerprint that ties shared snapshots to these settings.
	Issuer string

	RequireHTTPS     bool          // default true
	AllowedDomains   []string      // canonical host names; JWKS host and redirect hops must be inside
	RefreshEarly     time.Duration // default 30 s; ≥ 1 s and < MaxTTL
	StaleWhileError  time.Duration // default 60 s
	MinTTL           time.Duration // default 30 s; ≥ 30 s
	MaxTTL           time.Duration // default 24 h; ≥ MinTTL
	MaxResponseBytes int64         // default 1 MiB; > 0
	NegativeCacheTTL time.Duration // default 0 (off); 0 or ≥ 1 s
	MaxRedirects     int           // default 3; 0..10
	PinnedSPKI       []string      // SHA-256 of SubjectPublicKeyInfo, base64 (std) or hex
	PrefetchJitter   time.Duration // default 5 s; ≥ 0
	// UnknownKIDCooldown is the minimum time between two refreshes triggered
	// by an unknown kid (default 30 s; ≥ 1 s). Scheduled and manual
	// refreshes do not start it.
	UnknownKIDCooldown time.Duration
	RetryPolicy        RetryPolicy
}

// DefaultRegistration returns a registration with the defaults noted on
// each field.
func DefaultRegistration(tenantID, providerID, jwksURL string) Registration {
	return Registration{
		TenantID:           tenantID,
		ProviderID:         providerID,
		JWKSURL:            jwksURL,
		RequireHTTPS:       true,
		RefreshEarly:       30 * time.Second,
		StaleWhileError:    60 * time.Second,
		MinTTL:             30 * time.Second,
		MaxTTL:             24 * time.Hour,
		MaxResponseBytes:   1 << 20,
		MaxRedirects:       3,
		PrefetchJitter:     5 * time.Second,
		UnknownKIDCooldown: 30 * time.Second,
		RetryPolicy: RetryPolicy{
			MaxRetries:     2,
			AttemptTimeout: 3 * time.Second,
			InitialBackoff: 250 * time.Millisecond,
			MaxBackoff:     2 * time.Second,
			Deadline:       8 * time.Second,
			Jitter:         JitterFull,
		},
	}
}

// FieldError is one validation failure. Field uses the YAML (snake_case)
// name, nested with dots ("retry_policy.max_backoff"), so the config loader
// can prefix it with the provider's path.
type FieldError struct {
	Field  string
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// State is a provider's lifecycle state.
type State int

// The states of a provider.
const (
	StateEmpty      State = iota // nothing cached
	StateLoading                 // first fetch running
	StateReady                   // fresh set
	StateRefreshing              // serving the cached set while a refresh runs
)

// String returns the state's name: Empty, Loading, Ready or Refreshing.
func (s State) String() string {
	switch s {
	case StateEmpty:
		return "Empty"
	case StateLoading:
		return "Loading"
	case StateReady:
		return "Ready"
	case StateRefreshing:
		return "Refreshing"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Source says where a provider's current key set came from.
type Source string

// The sources of a key set.
const (
	SourceNone             Source = ""
	SourceIdentityProvider Source = "identity_provider"
	SourceRedis            Source = "redis"
)

// Status is a point-in-time view of one provider, for the admin API and metrics.
type Status struct {
	TenantID   string
	ProviderID string
	State      State
	Stale      bool // serving past expires_at (stale-while-error)
	Unusable   bool // past expires_at + stale_while_error: lookups fail with ErrUnavailable
	// Attempted: the provider holds a key set or at least one fetch attempt
	// has finished, successfully or not. A replica is ready once every
	// provider has Attempted: waiting longer would not make a down
	// identity provider answer.
	Attempted         bool
	Source            Source
	SourceAt          time.Time
	LastRefresh       time.Time // last successful fetch or 304
	NextRefresh       time.Time
	ExpiresAt         time.Time
	ConsecutiveErrors int
	LastError         string
	KeyIDs            []string
	HitRate           float64 // hits / requests
	StaleServeRatio   float64 // stale / requests

	// Counters (monotonic).
	Requests            uint64        // key lookups
	Hits                uint64        // lookups answered with a key
	StaleServes         uint64        // lookups answered from an expired set
	RefreshErrors       uint64        // refreshes that failed after all retries
	RefreshFetched      uint64        // refreshes that got a new document (200)
	RefreshNotModified  uint64        // refreshes answered 304
	LastRefreshDuration time.Duration // duration of the last refresh, retries included
	SkippedKeys         uint64        // JWKs skipped as malformed, unsupported or refused

	// Discovery (a registration with DiscoveryURL); empty otherwise.
	DiscoveryURL      string    // the metadata document's URL (redacted)
	JWKSURI           string    // the discovered jwks_uri (redacted)
	MetadataFetchedAt time.Time // last verified fetch or 304 of the document
	MetadataExpiresAt time.Time // when the document is fetched again
	MetadataSource    Source    // where the document came from: the identity provider, or another replica (redis)
	MetadataError     string    // the last metadata fetch's error, "" after a success

	// SnapshotsRejected counts shared snapshots (Coordinator) that were
	// there but not trusted, by reason (the Reject* constants and the
	// coordinator's own reasons, such as "bad_mac"). Nil when none.
	SnapshotsRejected map[string]uint64
}

// Available reports whether lookups can be answered: a key set is held and
// is fresh, or stale but within stale_while_error. A provider that is not
// available answers every lookup with ErrUnavailable.
func (s Status) Available() bool {
	return (s.State == StateReady || s.State == StateRefreshing) && !s.Unusable
}

// RefreshResult is the outcome of one completed refresh. Its text is what
// metrics and logs show (the result label of jwks_cache_refresh_total).
type RefreshResult string

// The outcomes of a refresh.
const (
	RefreshFetched     RefreshResult = "fetched"      // a new document (200)
	RefreshNotModified RefreshResult = "not_modified" // revalidated: 304 Not Modified (RFC 9110 §15.4.5)
	RefreshError       RefreshResult = "error"        // every attempt failed
	// With a Coordinator, a refresh may make no request of its own:
	RefreshShared   RefreshResult = "shared"   // adopted the key set another replica fetched
	RefreshDeferred RefreshResult = "deferred" // the fleet's unknown-kid cooldown runs
)

// RefreshEvent reports one completed refresh (all attempts included).
type RefreshEvent struct {
	TenantID, ProviderID string
	Result               RefreshResult
	HTTPStatus           int // last status seen, 0 if none
	Duration             time.Duration
	Keys                 int
	ExpiresAt            time.Time
	Err                  error
}

// Observer receives refresh outcomes (metrics, logs). It must not block.
type Observer interface {
	RefreshDone(RefreshEvent)
}

// Clock is the cache's source of time. Tests inject a fake one so TTL,
// refresh and backoff tests run in milliseconds without sleeping.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled call from Clock.AfterFunc.
type Timer interface {
	// Stop prevents the call; it reports whether it did.
	Stop() bool
}

// Options are registry-wide settings.
type Options struct {
	// InsecureAllowHTTP lets registrations turn RequireHTTPS off. By default
	// the registry requires HTTPS and refuses such registrations.
	InsecureAllowHTTP bool
	// DefaultRefreshEarly and DefaultStaleWhileError are what
	// Registry.NewRegistration puts in a registration (0: 30 s and 60 s).
	DefaultRefreshEarly    time.Duration
	DefaultStaleWhileError time.Duration
	// AllowedDomains, when set, must contain every registration's JWKS host.
	AllowedDomains []string
	// HTTPClient is used for fetches (custom CA for internal identity
	// providers). An *http.Transport is cloned once and shared by every
	// provider (one more clone per distinct set of SPKI pins), bounded to
	// MaxConcurrentFetches connections per host and 4× that many idle in
	// all, closed after 90 s unused (tighter limits set on it stay), so
	// 10,000 providers on one host use a handful of connections. Its
	// CheckRedirect is replaced by each provider's own redirect guard.
	HTTPClient *http.Client
	// MaxConcurrentFetches bounds fetches running at once (default 16), so
	// registering 10,000 providers does not open 10,000 connections; it
	// also bounds the connections held per host.
	MaxConcurrentFetches int
	Clock                Clock    // default: the real clock
	Observer             Observer // optional
	// Tracer, optional, sees refreshes and the waits of lookups (spans).
	Tracer Tracer
	// Logger, optional; never receives a key or a token.
	Logger *slog.Logger
	// QuietRefreshFailures logs the line after each failed refresh at
	// Debug rather than Warn, for a caller whose Observer reports failures
	// itself (once per change of outcome rather than once per refresh).
	QuietRefreshFailures bool
	// Coordinator, optional, makes replicas share key sets and refresh
	// leases (Redis, package redisstore): warm starts from a shared
	// snapshot and about one fetch per refresh cycle for the whole fleet.
	// When it fails, the registry works alone, as without one.
	Coordinator Coordinator
	// CoordinatorHolder names this registry in refresh leases (default:
	// the pid and a random suffix).
	CoordinatorHolder string
}

// Registry holds every registered provider. It is safe for concurrent use.
type Registry struct {
	impl registryImpl
}
