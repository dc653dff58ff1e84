package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/extauthz/extauthz/jwkscache"
)

// snapshotVersion is the encoding's version. A replica that meets another
// version (a newer release during a rolling upgrade) treats the snapshot as
// corrupt and fetches for itself, which is always safe.
const snapshotVersion = 1

// wire is the JSON encoding of a jwkscache.SharedSnapshot, with snake_case
// field names like the configuration's. The
// JWKS is embedded as JSON (not base64) so an operator can read it with
// redis-cli.
type wire struct {
	Version      int             `json:"version"`
	TenantID     string          `json:"tenant_id"`
	ProviderID   string          `json:"provider_id"`
	JWKS         json.RawMessage `json:"jwks"`
	ETag         string          `json:"etag,omitempty"`
	LastModified string          `json:"last_modified,omitempty"`
	ExpiresAt    time.Time       `json:"expires_at"`
	PersistedAt  time.Time       `json:"persisted_at"`
	Fingerprint  string          `json:"fingerprint"`
	JWKSURI      string          `json:"jwks_uri,omitempty"` // a discovering provider's: where the JWKS came from
	MAC          string          `json:"mac"`                // HMAC-SHA-256 over the other fields, unpadded base64
}

// envelopeBytes is what the encoding may add to the JWKS: IDs, validators,
// timestamps and field names. A value longer than max+envelopeBytes is too
// large without decoding it.
const envelopeBytes = 8 << 10

// ErrNotFound means no snapshot is stored for that provider (never written,
// or expired: its Redis TTL ends at expires_at).
var ErrNotFound = errors.New("redisstore: no snapshot")

// ErrInvalidSnapshot is matched (errors.Is) by every *InvalidSnapshotError.
var ErrInvalidSnapshot = errors.New("redisstore: invalid snapshot")

// Reason classifies an invalid snapshot; Stats counts each.
type Reason string

// The reasons a snapshot is refused.
const (
	ReasonTooLarge        Reason = "too_large"         // encoded value or JWKS over the limit
	ReasonCorrupt         Reason = "corrupt"           // not the JSON encoding, or a required field missing
	ReasonForeign         Reason = "foreign"           // tenant or provider differ from the key asked for
	ReasonBadETag         Reason = "bad_etag"          // not printable ASCII (RFC 9110 §8.8.3)
	ReasonBadLastModified Reason = "bad_last_modified" // not printable ASCII
	ReasonBadTimes        Reason = "bad_times"         // expires_at missing or before persisted_at
	ReasonBadMAC          Reason = "bad_mac"           // no MAC, or not one of our keys' over this snapshot
)

var reasons = [...]Reason{ReasonTooLarge, ReasonCorrupt, ReasonForeign, ReasonBadETag, ReasonBadLastModified, ReasonBadTimes, ReasonBadMAC}

const numReasons = len(reasons)

func reasonIndex(r Reason) int {
	for i, x := range reasons {
		if x == r {
			return i
		}
	}
	return -1
}

// InvalidSnapshotError is a snapshot that failed validation: it must be
// ignored, never trusted.
type InvalidSnapshotError struct {
	Key    string
	Reason Reason
	Detail string
}

// Error implements error.
func (e *InvalidSnapshotError) Error() string {
	return fmt.Sprintf("redisstore: invalid snapshot %s: %s: %s", e.Key, e.Reason, e.Detail)
}

// Is makes errors.Is(err, ErrInvalidSnapshot) true.
func (e *InvalidSnapshotError) Is(target error) bool { return target == ErrInvalidSnapshot }

// loadScript returns the value only when it is at most ARGV[1] bytes long,
// its length when longer (so an oversized value never crosses the network)
// and nil when the key does not exist.
var loadScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local n = redis.call('STRLEN', KEYS[1])
if n > tonumber(ARGV[1]) then return n end
return redis.call('GET', KEYS[1])
`)

// Load reads and validates the snapshot of (tenant, provider). maxJWKSBytes
// is the provider's max_response_bytes (DefaultMaxJWKSBytes when ≤ 0). It
// returns ErrNotFound when there is none, an *InvalidSnapshotError (counted
// and logged) when the stored value fails validation, or another error when Redis
// failed.
func (s *Store) Load(ctx context.Context, tenant, provider string, maxJWKSBytes int64) (jwkscache.SharedSnapshot, error) {
	if err := checkIDs(tenant, provider); err != nil {
		return jwkscache.SharedSnapshot{}, err
	}
	if maxJWKSBytes <= 0 {
		maxJWKSBytes = DefaultMaxJWKSBytes
	}
	key := s.snapshotKey(tenant, provider)
	raw, err := s.get(ctx, key, maxJWKSBytes+envelopeBytes)
	if err != nil {
		return jwkscache.SharedSnapshot{}, err
	}
	snap, reason, detail := s.decode(raw, tenant, provider, maxJWKSBytes)
	if reason != "" {
		return jwkscache.SharedSnapshot{}, s.refuse(key, reason, detail)
	}
	return snap, nil
}

// get reads the value under key when it is a string of at most limit
// bytes: ErrNotFound when there is none, an *InvalidSnapshotError (counted
// and logged) for another type or a longer value, or the Redis failure.
func (s *Store) get(ctx context.Context, key string, limit int64) ([]byte, error) {
	var res any
	err := s.call(ctx, "load "+key, func(ctx context.Context) error {
		var err error
		res, err = loadScript.Run(ctx, s.client, []string{key}, limit).Result()
		if err != nil && isWrongType(err) {
			// Someone stored another type under our key: a bad value,
			// not a Redis failure.
			res, err = nil, nil
		}
		return err
	})
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	switch v := res.(type) {
	case nil:
		return nil, s.refuse(key, ReasonCorrupt, "not a string value")
	case int64:
		return nil, s.refuse(key, ReasonTooLarge, fmt.Sprintf("%d bytes, limit %d", v, limit))
	case string:
		return []byte(v), nil
	default:
		return nil, s.refuse(key, ReasonCorrupt, fmt.Sprintf("unexpected reply %T", v))
	}
}

func isWrongType(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "WRONGTYPE")
}

func (s *Store) refuse(key string, r Reason, detail string) error {
	if i := reasonIndex(r); i >= 0 {
		s.invalid[i].Add(1)
	}
	// The cache logs a refused snapshot once per change of reason; a
	// line per read would let anyone who writes to Redis flood the log.
	s.log.Debug("redisstore: ignoring invalid snapshot", "key", key, "reason", string(r), "detail", detail)
	return &InvalidSnapshotError{Key: key, Reason: r, Detail: detail}
}

// decode parses and validates an encoded snapshot read under the key of
// (tenant, provider), MAC included. It returns the reason and a detail
// when invalid.
func (s *Store) decode(raw []byte, tenant, provider string, maxJWKSBytes int64) (jwkscache.SharedSnapshot, Reason, string) {
	var w wire
	if r, d := decodeJSON(raw, &w, &w.Version, &w.TenantID, &w.ProviderID, tenant, provider); r != "" {
		return jwkscache.SharedSnapshot{}, r, d
	}
	if int64(len(w.JWKS)) > maxJWKSBytes {
		return jwkscache.SharedSnapshot{}, ReasonTooLarge, fmt.Sprintf("jwks %d bytes, limit %d", len(w.JWKS), maxJWKSBytes)
	}
	if r, d := checkSnapshot(w.JWKS, w.ETag, w.LastModified, w.ExpiresAt, w.PersistedAt); r != "" {
		return jwkscache.SharedSnapshot{}, r, d
	}
	if w.JWKSURI != "" {
		if r, d := checkURL("jwks_uri", w.JWKSURI); r != "" {
			return jwkscache.SharedSnapshot{}, r, d
		}
	}
	// Redis is shared storage, not a trust anchor: whoever can write to it
	// could otherwise make every replica trust keys of their choosing.
	if !s.verify(w.MAC, s.snapshotMACOf(&w)) {
		return jwkscache.SharedSnapshot{}, ReasonBadMAC, "MAC missing or made with none of the configured keys"
	}
	return jwkscache.SharedSnapshot{
		TenantID:     w.TenantID,
		ProviderID:   w.ProviderID,
		JWKS:         []byte(w.JWKS),
		ETag:         w.ETag,
		LastModified: w.LastModified,
		ExpiresAt:    w.ExpiresAt,
		PersistedAt:  w.PersistedAt,
		Fingerprint:  w.Fingerprint,
		JWKSURI:      w.JWKSURI,
	}, "", ""
}

// decodeJSON decodes raw, one JSON object and nothing after it, into v,
// then checks the version and the tenant and provider it holds (pointers
// into v) against the key's.
func decodeJSON(raw []byte, v any, version *int, gotTenant, gotProvider *string, tenant, provider string) (Reason, string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return ReasonCorrupt, "json: " + err.Error()
	}
	if dec.More() {
		return ReasonCorrupt, "json: data after the object"
	}
	if *version != snapshotVersion {
		return ReasonCorrupt, fmt.Sprintf("version %d, want %d", *version, snapshotVersion)
	}
	if *gotTenant != tenant || *gotProvider != provider {
		return ReasonForeign, fmt.Sprintf("holds %q/%q", *gotTenant, *gotProvider)
	}
	return "", ""
}

// maxURLBytes bounds a URL in a stored value (an issuer, a jwks_uri).
const maxURLBytes = 4096

// checkURL checks a URL field of a stored value for its form only: the
// cache decides whether to trust it.
func checkURL(name, v string) (Reason, string) {
	if v == "" || len(v) > maxURLBytes || !printable(v, false) {
		return ReasonCorrupt, fmt.Sprintf("%s is not a printable URL of at most %d bytes", name, maxURLBytes)
	}
	return "", ""
}

// checkSnapshot holds the rules shared by Save and Load.
func checkSnapshot(jwks []byte, etag, lastModified string, expiresAt, persistedAt time.Time) (Reason, string) {
	trimmed := bytes.TrimSpace(jwks)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return ReasonCorrupt, "jwks is not a JSON object"
	}
	return checkValidity(etag, lastModified, expiresAt, persistedAt)
}

// checkValidity holds the rules of the validators and times every stored
// value carries.
func checkValidity(etag, lastModified string, expiresAt, persistedAt time.Time) (Reason, string) {
	// Both validators go back out as request headers (If-None-Match,
	// If-Modified-Since): printable ASCII only, so a stored value can never
	// smuggle a header. An entity-tag is VCHARs (RFC 9110 §8.8.3).
	if !printable(etag, false) {
		return ReasonBadETag, fmt.Sprintf("etag %q is not printable ASCII", etag)
	}
	if !printable(lastModified, true) {
		return ReasonBadLastModified, fmt.Sprintf("last_modified %q is not printable ASCII", lastModified)
	}
	if expiresAt.IsZero() || persistedAt.IsZero() {
		return ReasonBadTimes, "expires_at or persisted_at missing"
	}
	if expiresAt.Before(persistedAt) {
		return ReasonBadTimes, fmt.Sprintf("expires_at %s before persisted_at %s",
			expiresAt.Format(time.RFC3339Nano), persistedAt.Format(time.RFC3339Nano))
	}
	return "", ""
}

func printable(s string, space bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > '~' || c < ' ' || (c == ' ' && !space) {
			return false
		}
	}
	return true
}

// Save writes snap under its provider's key with a Redis TTL of the time
// left until ExpiresAt (at least 1 s), then announces it on the updates
// channel. The stored value carries an HMAC-SHA-256 under the store's
// first key. A zero PersistedAt is set to now. Save refuses a snapshot that
// Load would refuse.
func (s *Store) Save(ctx context.Context, snap jwkscache.SharedSnapshot) error {
	if err := checkIDs(snap.TenantID, snap.ProviderID); err != nil {
		return err
	}
	now := s.now()
	if snap.PersistedAt.IsZero() {
		snap.PersistedAt = now
	}
	if r, d := checkSnapshot(snap.JWKS, snap.ETag, snap.LastModified, snap.ExpiresAt, snap.PersistedAt); r != "" {
		return fmt.Errorf("redisstore: save %s/%s: %s: %s", snap.TenantID, snap.ProviderID, r, d)
	}
	if snap.JWKSURI != "" {
		if r, d := checkURL("jwks_uri", snap.JWKSURI); r != "" {
			return fmt.Errorf("redisstore: save %s/%s: %s: %s", snap.TenantID, snap.ProviderID, r, d)
		}
	}
	// The MAC covers the JWKS as stored: the encoder compacts a
	// RawMessage, so compact it first.
	var jwks bytes.Buffer
	if err := json.Compact(&jwks, snap.JWKS); err != nil {
		return fmt.Errorf("redisstore: save %s/%s: jwks: %w", snap.TenantID, snap.ProviderID, err)
	}
	w := wire{
		Version:      snapshotVersion,
		TenantID:     snap.TenantID,
		ProviderID:   snap.ProviderID,
		JWKS:         json.RawMessage(jwks.Bytes()),
		ETag:         snap.ETag,
		LastModified: snap.LastModified,
		ExpiresAt:    snap.ExpiresAt.UTC(),
		PersistedAt:  snap.PersistedAt.UTC(),
		Fingerprint:  snap.Fingerprint,
		JWKSURI:      snap.JWKSURI,
	}
	w.MAC = s.sign(s.snapshotMACOf(&w))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return fmt.Errorf("redisstore: save %s/%s: %w", snap.TenantID, snap.ProviderID, err)
	}
	ttl := snapshotTTL(snap.ExpiresAt, now)
	key := s.snapshotKey(snap.TenantID, snap.ProviderID)
	return s.call(ctx, "save "+key, func(ctx context.Context) error {
		return saveScript.Run(ctx, s.client, []string{key},
			bytes.TrimSuffix(buf.Bytes(), []byte("\n")), ttl.Milliseconds(),
			s.updatesChannel(), snap.TenantID+"/"+snap.ProviderID).Err()
	})
}

// saveScript writes the snapshot and announces it in one round trip on the
// client's regular pool. (A go-redis pipeline would use a second pool whose
// reconnection after an outage is not in step with the first, making the
// health state flap.)
var saveScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`)

// snapshotTTL is the Redis TTL of a snapshot: the time left until it
// expires, at least 1 s so that an already expired one is still written
// (and readable for stale-while-error) rather than refused by Redis.
func snapshotTTL(expiresAt, now time.Time) time.Duration {
	return max(expiresAt.Sub(now), time.Second)
}
