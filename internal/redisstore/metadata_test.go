package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/redisstore/redistest"
	"github.com/extauthz/extauthz/jwkscache"
)

func validMetadata(now time.Time) jwkscache.SharedMetadata {
	return jwkscache.SharedMetadata{
		TenantID:     "acme",
		ProviderID:   "main_idp",
		Issuer:       "https://sso.acme.test/realms/acme",
		JWKSURI:      "https://sso.acme.test/realms/acme/protocol/openid-connect/certs",
		ETag:         `"m1"`,
		LastModified: "Wed, 25 Nov 2026 10:00:00 GMT",
		ExpiresAt:    now.Add(5 * time.Minute).UTC(),
		PersistedAt:  now.UTC(),
		Fingerprint:  "fp-1",
	}
}

// TestMetadata_RoundTripBesideTheKeySet: a metadata document is stored
// under its own key beside the provider's key set, comes back as saved,
// and expires with its own expires_at.
func TestMetadata_RoundTripBesideTheKeySet(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	ctx := context.Background()
	s := openStore(t, srv.URL(), redisstore.Options{})
	now := time.Now().Truncate(time.Millisecond)
	if _, err := s.LoadMetadata(ctx, "acme", "main_idp"); !errors.Is(err, redisstore.ErrNotFound) {
		t.Fatalf("LoadMetadata of nothing: %v, want ErrNotFound", err)
	}
	meta := validMetadata(now)
	snap := validSnapshot(now)
	snap.JWKSURI = meta.JWKSURI
	if err := s.SaveMetadata(ctx, meta); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, snap); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadMetadata(ctx, "acme", "main_idp")
	if err != nil || !reflect.DeepEqual(got, meta) {
		t.Fatalf("LoadMetadata = %+v, %v; want %+v", got, err, meta)
	}
	gotSnap, err := s.Load(ctx, "acme", "main_idp", 0)
	if err != nil || gotSnap.JWKSURI != snap.JWKSURI {
		t.Fatalf("Load = jwks_uri %q, %v; want %q", gotSnap.JWKSURI, err, snap.JWKSURI)
	}
	ttl, err := raw.PTTL(ctx, "test:meta:acme:main_idp").Result()
	if err != nil || ttl <= 4*time.Minute || ttl > 5*time.Minute {
		t.Fatalf("metadata TTL %v (%v), want about 5m (its expires_at)", ttl, err)
	}
	// Coordinator: the cache's terms.
	c := s.Coordinator().(jwkscache.MetadataCoordinator)
	if got, err := c.LoadMetadata(ctx, "acme", "main_idp"); err != nil || got.JWKSURI != meta.JWKSURI {
		t.Fatalf("Coordinator.LoadMetadata = %+v, %v", got, err)
	}
	if _, err := c.LoadMetadata(ctx, "acme", "other"); !errors.Is(err, jwkscache.ErrNoSnapshot) {
		t.Fatalf("Coordinator.LoadMetadata of nothing: %v, want ErrNoSnapshot", err)
	}
}

// TestMetadata_MACAuthenticatesEverything: like a key set, a metadata
// document is trusted only with a MAC made under one of the fleet's keys
// over this namespace, tenant, provider, fingerprint and every field. A
// forged, tampered or transplanted value is refused and counted.
func TestMetadata_MACAuthenticatesEverything(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	ctx := context.Background()
	fleet := openStore(t, srv.URL(), redisstore.Options{})
	const key = "test:meta:acme:main_idp"
	meta := validMetadata(time.Now().Truncate(time.Millisecond))
	if err := fleet.SaveMetadata(ctx, meta); err != nil {
		t.Fatal(err)
	}
	stored, err := raw.Get(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(field string, v any) string { return withField(t, stored, field, v) }
	attacker := openStore(t, srv.URL(), redisstore.Options{HMACKeys: [][]byte{[]byte(strings.Repeat("A", 32))}})
	tests := []struct {
		name  string
		write func(t *testing.T)
		want  redisstore.Reason
	}{
		{"signed with another key", func(t *testing.T) {
			if err := attacker.SaveMetadata(ctx, meta); err != nil {
				t.Fatal(err)
			}
		}, redisstore.ReasonBadMAC},
		{"no MAC", func(t *testing.T) { raw.Set(ctx, key, tamper("mac", ""), time.Minute) }, redisstore.ReasonBadMAC},
		{"jwks_uri moved", func(t *testing.T) { raw.Set(ctx, key, tamper("jwks_uri", "https://evil.test/keys"), time.Minute) }, redisstore.ReasonBadMAC},
		{"issuer changed", func(t *testing.T) { raw.Set(ctx, key, tamper("issuer", "https://evil.test"), time.Minute) }, redisstore.ReasonBadMAC},
		{"fingerprint changed", func(t *testing.T) { raw.Set(ctx, key, tamper("fingerprint", "fp-2"), time.Minute) }, redisstore.ReasonBadMAC},
		{"etag changed", func(t *testing.T) { raw.Set(ctx, key, tamper("etag", `"other"`), time.Minute) }, redisstore.ReasonBadMAC},
		{"expiry pushed out", func(t *testing.T) {
			raw.Set(ctx, key, tamper("expires_at", meta.ExpiresAt.Add(24*time.Hour).Format(time.RFC3339Nano)), time.Minute)
		}, redisstore.ReasonBadMAC},
		{"persisted_at moved", func(t *testing.T) {
			raw.Set(ctx, key, tamper("persisted_at", meta.PersistedAt.Add(time.Second).Format(time.RFC3339Nano)), time.Minute)
		}, redisstore.ReasonBadMAC},
		{"another provider's", func(t *testing.T) {
			other := meta
			other.ProviderID = "other"
			if err := fleet.SaveMetadata(ctx, other); err != nil {
				t.Fatal(err)
			}
			raw.Set(ctx, key, raw.Get(ctx, "test:meta:acme:other").Val(), time.Minute)
		}, redisstore.ReasonForeign},
		{"a key set's value, MAC and all", func(t *testing.T) {
			// A key-set snapshot signed by the fleet is no metadata: it has
			// no issuer, and its MAC is of another domain.
			if err := fleet.Save(ctx, validSnapshot(meta.PersistedAt)); err != nil {
				t.Fatal(err)
			}
			raw.Set(ctx, key, raw.Get(ctx, "test:acme:main_idp").Val(), time.Minute)
		}, redisstore.ReasonCorrupt},
		{"a key set's MAC on a value of both shapes", func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(raw.Get(ctx, "test:acme:main_idp").Val()), &m); err != nil {
				t.Fatal(err)
			}
			m["issuer"], m["jwks_uri"] = meta.Issuer, meta.JWKSURI
			b, _ := json.Marshal(m)
			raw.Set(ctx, key, string(b), time.Minute)
		}, redisstore.ReasonBadMAC},
		{"header smuggled in the etag", func(t *testing.T) {
			raw.Set(ctx, key, tamper("etag", "\"a\"\r\nX-Injected: 1"), time.Minute)
		}, redisstore.ReasonBadETag},
		{"no jwks_uri", func(t *testing.T) { raw.Set(ctx, key, tamper("jwks_uri", ""), time.Minute) }, redisstore.ReasonCorrupt},
		{"over the size limit", func(t *testing.T) {
			raw.Set(ctx, key, tamper("issuer", strings.Repeat("a", 64<<10)), time.Minute)
		}, redisstore.ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.write(t)
			before := fleet.Stats().Invalid[tt.want]
			_, err := fleet.LoadMetadata(ctx, "acme", "main_idp")
			wantReason(t, err, tt.want)
			if got := fleet.Stats().Invalid[tt.want] - before; got != 1 {
				t.Errorf("%s counted %d times, want 1", tt.want, got)
			}
			var rej *jwkscache.SnapshotRejectedError
			_, cerr := fleet.Coordinator().(jwkscache.MetadataCoordinator).LoadMetadata(ctx, "acme", "main_idp")
			if !errors.As(cerr, &rej) || rej.Reason != string(tt.want) || !errors.Is(cerr, jwkscache.ErrNoSnapshot) {
				t.Errorf("Coordinator.LoadMetadata: %v, want a rejection (%s) matching ErrNoSnapshot", cerr, tt.want)
			}
		})
	}
	raw.Set(ctx, key, stored, time.Minute)
	if got, err := fleet.LoadMetadata(ctx, "acme", "main_idp"); err != nil || got.JWKSURI != meta.JWKSURI {
		t.Fatalf("LoadMetadata of the genuine value = %+v, %v", got, err)
	}
}

// TestSnapshot_JWKSURIAuthenticated: the jwks_uri a key set records is
// under its MAC; a snapshot without one keeps the MAC earlier releases
// made.
func TestSnapshot_JWKSURIAuthenticated(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	ctx := context.Background()
	s := openStore(t, srv.URL(), redisstore.Options{})
	snap := validSnapshot(time.Now().Truncate(time.Millisecond))
	snap.JWKSURI = "https://sso.acme.test/certs"
	if err := s.Save(ctx, snap); err != nil {
		t.Fatal(err)
	}
	v := raw.Get(ctx, "test:acme:main_idp").Val()
	raw.Set(ctx, "test:acme:main_idp", strings.Replace(v, "sso.acme.test/certs", "sso.acme.test/other", 1), time.Minute)
	_, err := s.Load(ctx, "acme", "main_idp", 0)
	wantReason(t, err, redisstore.ReasonBadMAC)
	raw.Set(ctx, "test:acme:main_idp", strings.Replace(v, `,"jwks_uri":"https://sso.acme.test/certs"`, "", 1), time.Minute)
	_, err = s.Load(ctx, "acme", "main_idp", 0)
	wantReason(t, err, redisstore.ReasonBadMAC)
}

// TestSaveMetadata_RefusesInvalid: what LoadMetadata would refuse is never
// written.
func TestSaveMetadata_RefusesInvalid(t *testing.T) {
	s := openStore(t, "redis://127.0.0.1:1", redisstore.Options{}) // never dialled
	now := time.Now()
	for name, mutate := range map[string]func(m *jwkscache.SharedMetadata){
		"no issuer":            func(m *jwkscache.SharedMetadata) { m.Issuer = "" },
		"no jwks_uri":          func(m *jwkscache.SharedMetadata) { m.JWKSURI = "" },
		"jwks_uri with spaces": func(m *jwkscache.SharedMetadata) { m.JWKSURI = "https://a.test/ x" },
		"etag with CRLF":       func(m *jwkscache.SharedMetadata) { m.ETag = "\"a\"\r\n" },
		"expires before":       func(m *jwkscache.SharedMetadata) { m.ExpiresAt = m.PersistedAt.Add(-time.Second) },
		"tenant id with colon": func(m *jwkscache.SharedMetadata) { m.TenantID = "a:b" },
	} {
		m := validMetadata(now)
		mutate(&m)
		if err := s.SaveMetadata(context.Background(), m); err == nil {
			t.Errorf("%s: saved", name)
		}
	}
}
