package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// metadataWire is the JSON encoding of a jwkscache.SharedMetadata: what the
// cache trusts of a discovering provider's metadata document (issuer,
// jwks_uri), its validators and times, authenticated like a key-set
// snapshot with a MAC of its own.
type metadataWire struct {
	Version      int       `json:"version"`
	TenantID     string    `json:"tenant_id"`
	ProviderID   string    `json:"provider_id"`
	Issuer       string    `json:"issuer"`
	JWKSURI      string    `json:"jwks_uri"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	ExpiresAt    time.Time `json:"expires_at"`
	PersistedAt  time.Time `json:"persisted_at"`
	Fingerprint  string    `json:"fingerprint"`
	MAC          string    `json:"mac"` // HMAC-SHA-256 over the other fields, unpadded base64
}

// maxMetadataBytes bounds a stored metadata value: two URLs and the
// envelope of a snapshot.
const maxMetadataBytes = 2*maxURLBytes + envelopeBytes

// metadataKey is where the metadata document of (tenant, provider) is
// stored. IDs hold no ':', so it never meets a snapshot's key.
func (s *Store) metadataKey(tenant, provider string) string {
	return s.namespace + ":meta:" + tenant + ":" + provider
}

// metadataMAC is HMAC-SHA-256 under key over everything a metadata value
// asserts, as snapshotMAC for a key set. Its first field differs from a
// snapshot's, so neither MAC is ever valid for the other.
func metadataMAC(key []byte, namespace string, w *metadataWire) []byte {
	return fieldsMAC(key, func(field func([]byte)) {
		field([]byte("extauthz metadata snapshot v1"))
		field([]byte(namespace))
		field([]byte(w.TenantID))
		field([]byte(w.ProviderID))
		field([]byte(w.Fingerprint))
		field([]byte(w.Issuer))
		field([]byte(w.JWKSURI))
		field([]byte(w.ETag))
		field([]byte(w.LastModified))
		field([]byte(w.ExpiresAt.UTC().Format(time.RFC3339Nano)))
		field([]byte(w.PersistedAt.UTC().Format(time.RFC3339Nano)))
	})
}

func (s *Store) metadataMACOf(w *metadataWire) func(key []byte) []byte {
	return func(key []byte) []byte { return metadataMAC(key, s.namespace, w) }
}

// LoadMetadata reads and validates the metadata document of (tenant,
// provider), MAC included: ErrNotFound when there is none, an
// *InvalidSnapshotError (counted and logged) when the stored value fails
// validation, or another error when Redis failed. Whether its issuer and
// jwks_uri may be trusted is the cache's to decide (the configured issuer,
// the jwks_url guards), as for a fetched document.
func (s *Store) LoadMetadata(ctx context.Context, tenant, provider string) (jwkscache.SharedMetadata, error) {
	if err := checkIDs(tenant, provider); err != nil {
		return jwkscache.SharedMetadata{}, err
	}
	key := s.metadataKey(tenant, provider)
	raw, err := s.get(ctx, key, maxMetadataBytes)
	if err != nil {
		return jwkscache.SharedMetadata{}, err
	}
	meta, reason, detail := s.decodeMetadata(raw, tenant, provider)
	if reason != "" {
		return jwkscache.SharedMetadata{}, s.refuse(key, reason, detail)
	}
	return meta, nil
}

// decodeMetadata parses and validates a metadata value read under the key
// of (tenant, provider), MAC included.
func (s *Store) decodeMetadata(raw []byte, tenant, provider string) (jwkscache.SharedMetadata, Reason, string) {
	var w metadataWire
	if r, d := decodeJSON(raw, &w, &w.Version, &w.TenantID, &w.ProviderID, tenant, provider); r != "" {
		return jwkscache.SharedMetadata{}, r, d
	}
	if r, d := checkMetadata(w.Issuer, w.JWKSURI, w.ETag, w.LastModified, w.ExpiresAt, w.PersistedAt); r != "" {
		return jwkscache.SharedMetadata{}, r, d
	}
	if !s.verify(w.MAC, s.metadataMACOf(&w)) {
		return jwkscache.SharedMetadata{}, ReasonBadMAC, "MAC missing or made with none of the configured keys"
	}
	return jwkscache.SharedMetadata{
		TenantID:     w.TenantID,
		ProviderID:   w.ProviderID,
		Issuer:       w.Issuer,
		JWKSURI:      w.JWKSURI,
		ETag:         w.ETag,
		LastModified: w.LastModified,
		ExpiresAt:    w.ExpiresAt,
		PersistedAt:  w.PersistedAt,
		Fingerprint:  w.Fingerprint,
	}, "", ""
}

// checkMetadata holds the rules shared by SaveMetadata and LoadMetadata.
func checkMetadata(issuer, jwksURI, etag, lastModified string, expiresAt, persistedAt time.Time) (Reason, string) {
	if r, d := checkURL("issuer", issuer); r != "" {
		return r, d
	}
	if r, d := checkURL("jwks_uri", jwksURI); r != "" {
		return r, d
	}
	return checkValidity(etag, lastModified, expiresAt, persistedAt)
}

// SaveMetadata writes meta under its provider's metadata key with a Redis
// TTL of the time left until ExpiresAt (at least 1 s). The stored value
// carries an HMAC-SHA-256 under the store's first key. It is not
// announced: the cache saves the key set after it, and that is. A zero
// PersistedAt is set to now. SaveMetadata refuses a value that
// LoadMetadata would refuse.
func (s *Store) SaveMetadata(ctx context.Context, meta jwkscache.SharedMetadata) error {
	if err := checkIDs(meta.TenantID, meta.ProviderID); err != nil {
		return err
	}
	now := s.now()
	if meta.PersistedAt.IsZero() {
		meta.PersistedAt = now
	}
	if r, d := checkMetadata(meta.Issuer, meta.JWKSURI, meta.ETag, meta.LastModified, meta.ExpiresAt, meta.PersistedAt); r != "" {
		return fmt.Errorf("redisstore: save metadata %s/%s: %s: %s", meta.TenantID, meta.ProviderID, r, d)
	}
	w := metadataWire{
		Version:      snapshotVersion,
		TenantID:     meta.TenantID,
		ProviderID:   meta.ProviderID,
		Issuer:       meta.Issuer,
		JWKSURI:      meta.JWKSURI,
		ETag:         meta.ETag,
		LastModified: meta.LastModified,
		ExpiresAt:    meta.ExpiresAt.UTC(),
		PersistedAt:  meta.PersistedAt.UTC(),
		Fingerprint:  meta.Fingerprint,
	}
	w.MAC = s.sign(s.metadataMACOf(&w))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return fmt.Errorf("redisstore: save metadata %s/%s: %w", meta.TenantID, meta.ProviderID, err)
	}
	key := s.metadataKey(meta.TenantID, meta.ProviderID)
	return s.call(ctx, "save "+key, func(ctx context.Context) error {
		return s.client.Set(ctx, key, bytes.TrimSuffix(buf.Bytes(), []byte("\n")), snapshotTTL(meta.ExpiresAt, now)).Err()
	})
}
