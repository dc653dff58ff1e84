package jwkscache

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
)

// TestFromShared_EveryCheckAtItsBoundary runs each check a shared snapshot
// passes before adoption, on both sides of its bound, with the snapshot
// handed in directly: through Redis most of these never arrive, because
// redisstore refuses them first, so only this test fails when one of the
// checks is deleted.
func TestFromShared_EveryCheckAtItsBoundary(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1"}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(map[string]any{"keys": []any{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	reg := DefaultRegistration("acme", "main", "https://idp.acme.test/jwks.json")
	reg.MaxResponseBytes = int64(len(doc))
	p := &provider{reg: reg, fingerprint: fingerprint(reg, nil)}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	good := func() SharedSnapshot {
		return SharedSnapshot{TenantID: "acme", ProviderID: "main", JWKS: doc, ETag: `"e"`,
			PersistedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour), Fingerprint: p.fingerprint}
	}
	tests := []struct {
		name       string
		mutate     func(*SharedSnapshot)
		wantReason string // "" with wantErr: refused without a counted reason (expired)
		wantErr    string
	}{
		{"valid", func(*SharedSnapshot) {}, "", ""},
		{"another tenant", func(s *SharedSnapshot) { s.TenantID = "globex" }, RejectForeign, "snapshot of globex/main"},
		{"another provider", func(s *SharedSnapshot) { s.ProviderID = "other" }, RejectForeign, "snapshot of acme/other"},
		{"other trust settings", func(s *SharedSnapshot) {
			s.Fingerprint = fingerprint(DefaultRegistration("acme", "main", "https://evil.test/jwks"), nil)
		}, RejectFingerprint, "other trust settings"},
		{"no fingerprint", func(s *SharedSnapshot) { s.Fingerprint = "" }, RejectFingerprint, "other trust settings"},
		{"one byte over max_response_bytes", func(s *SharedSnapshot) { s.JWKS = append(append([]byte(nil), doc...), ' ') }, RejectTooLarge, "exceeds max_response_bytes"},
		{"persisted 2 s ahead (the skew bound)", func(s *SharedSnapshot) { s.PersistedAt = now.Add(2 * time.Second) }, "", ""},
		{"persisted 3 s ahead", func(s *SharedSnapshot) { s.PersistedAt = now.Add(3 * time.Second) }, RejectFuture, "in the future"},
		{"expires before persisted", func(s *SharedSnapshot) { s.ExpiresAt = s.PersistedAt.Add(-time.Second) }, RejectLifetime, "expires before it was persisted"},
		{"lifetime of exactly max_ttl", func(s *SharedSnapshot) { s.ExpiresAt = s.PersistedAt.Add(reg.MaxTTL) }, "", ""},
		{"lifetime past max_ttl", func(s *SharedSnapshot) { s.ExpiresAt = s.PersistedAt.Add(reg.MaxTTL + time.Second) }, RejectLifetime, "exceeds max_ttl"},
		{"expired now", func(s *SharedSnapshot) { s.PersistedAt, s.ExpiresAt = now.Add(-time.Hour), now }, "", "expired"},
		{"no usable key", func(s *SharedSnapshot) { s.JWKS = []byte(`{"keys":[]}`) }, RejectInvalidJWKS, "no usable key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sn := good()
			tc.mutate(&sn)
			s, reason, err := p.fromShared(sn, now)
			if tc.wantErr == "" {
				if err != nil || s == nil {
					t.Fatalf("fromShared: %v (%s), want adopted", err, reason)
				}
				if s.source != SourceRedis || !s.expiresAt.Equal(sn.ExpiresAt) || !s.fetchedAt.Equal(sn.PersistedAt) || s.etag != `"e"` || len(s.keys) != 1 {
					t.Fatalf("adopted set: source %s, expires %v, fetched %v, etag %q, %d keys", s.source, s.expiresAt, s.fetchedAt, s.etag, len(s.keys))
				}
				return
			}
			if err == nil || s != nil || reason != tc.wantReason || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("fromShared = %v, %q, %v; want refused with %q, %q", s != nil, reason, err, tc.wantReason, tc.wantErr)
			}
		})
	}
}

// TestFromSharedMetadata_EveryCheckAtItsBoundary runs each check a shared
// metadata document passes before adoption, handed in directly (through
// Redis most never arrive): the checks of every snapshot, then those of a
// fetched document, since Redis is not trusted to hold a document a
// replica checked.
func TestFromSharedMetadata_EveryCheckAtItsBoundary(t *testing.T) {
	const issuer = "https://login.idp.test/{tid}/v2.0"
	reg := DefaultRegistration("acme", "main", "")
	reg.Issuer, reg.DiscoveryURL = issuer, "https://login.idp.test/common/v2.0/.well-known/openid-configuration"
	reg.AllowedDomains = []string{"idp.test"}
	p := &provider{reg: reg, fingerprint: fingerprint(reg, nil),
		meta: &metadata{issuer: issuer, check: fetchURLCheck(true, reg.AllowedDomains)}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	good := func() SharedMetadata {
		return SharedMetadata{TenantID: "acme", ProviderID: "main", Issuer: "https://login.idp.test/{tenantid}/v2.0",
			JWKSURI: "https://login.idp.test/common/discovery/v2.0/keys", ETag: `"m"`, LastModified: "Fri, 02 Jan 2026 03:00:00 GMT",
			PersistedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour), Fingerprint: p.fingerprint}
	}
	tests := []struct {
		name       string
		mutate     func(*SharedMetadata)
		wantReason string
		wantErr    string
	}{
		{"valid (the template's placeholder under another name)", func(*SharedMetadata) {}, "", ""},
		{"another tenant", func(m *SharedMetadata) { m.TenantID = "globex" }, RejectForeign, "snapshot of globex/main"},
		{"another provider", func(m *SharedMetadata) { m.ProviderID = "other" }, RejectForeign, "snapshot of acme/other"},
		{"other trust settings", func(m *SharedMetadata) {
			m.Fingerprint = fingerprint(DefaultRegistration("acme", "main", "https://evil.test/jwks"), nil)
		}, RejectFingerprint, "other trust settings"},
		{"persisted at the skew bound", func(m *SharedMetadata) { m.PersistedAt = now.Add(maxSnapshotSkew) }, "", ""},
		{"persisted past the skew bound", func(m *SharedMetadata) { m.PersistedAt = now.Add(maxSnapshotSkew + time.Second) }, RejectFuture, "in the future"},
		{"expires before persisted", func(m *SharedMetadata) { m.ExpiresAt = m.PersistedAt.Add(-time.Second) }, RejectLifetime, "expires before it was persisted"},
		{"lifetime of exactly max_ttl", func(m *SharedMetadata) { m.ExpiresAt = m.PersistedAt.Add(reg.MaxTTL) }, "", ""},
		{"lifetime past max_ttl", func(m *SharedMetadata) { m.ExpiresAt = m.PersistedAt.Add(reg.MaxTTL + time.Second) }, RejectLifetime, "exceeds max_ttl"},
		{"expired now", func(m *SharedMetadata) { m.PersistedAt, m.ExpiresAt = now.Add(-time.Hour), now }, "", "expired"},
		{"another issuer", func(m *SharedMetadata) { m.Issuer = "https://evil.test/{tid}/v2.0" }, RejectIssuerMismatch, "differs from the configured issuer"},
		{"the template with a value in it", func(m *SharedMetadata) { m.Issuer = "https://login.idp.test/contoso/v2.0" }, RejectIssuerMismatch, "differs"},
		{"no issuer", func(m *SharedMetadata) { m.Issuer = "" }, RejectIssuerMismatch, "differs"},
		{"no jwks_uri", func(m *SharedMetadata) { m.JWKSURI = "" }, RejectJWKSURI, "no jwks_uri"},
		{"jwks_uri over http", func(m *SharedMetadata) { m.JWKSURI = "http://login.idp.test/keys" }, RejectJWKSURI, "must use https"},
		{"jwks_uri outside allowed_domains", func(m *SharedMetadata) { m.JWKSURI = "https://evil.test/keys" }, RejectJWKSURI, "not inside the allowed domains"},
		{"jwks_uri on a lookalike host", func(m *SharedMetadata) { m.JWKSURI = "https://idp.test.evil.test/keys" }, RejectJWKSURI, "not inside the allowed domains"},
		{"jwks_uri relative", func(m *SharedMetadata) { m.JWKSURI = "/keys" }, RejectJWKSURI, "absolute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sm := good()
			tc.mutate(&sm)
			doc, reason, err := p.fromSharedMetadata(sm, now)
			if tc.wantErr == "" {
				if err != nil || doc == nil {
					t.Fatalf("fromSharedMetadata: %v (%s), want adopted", err, reason)
				}
				if doc.source != SourceRedis || doc.jwksURI != sm.JWKSURI || !doc.expiresAt.Equal(sm.ExpiresAt) || !doc.fetchedAt.Equal(sm.PersistedAt) ||
					doc.etag != `"m"` || doc.lastModified != sm.LastModified {
					t.Fatalf("adopted document: %+v", doc)
				}
				return
			}
			if err == nil || doc != nil || reason != tc.wantReason || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("fromSharedMetadata = %v, %q, %v; want refused with %q, %q", doc != nil, reason, err, tc.wantReason, tc.wantErr)
			}
		})
	}
}
