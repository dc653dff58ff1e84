package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/redisstore/redistest"
)

// wantReason checks that err is an invalid snapshot of reason r.
func wantReason(t *testing.T, err error, r redisstore.Reason) {
	t.Helper()
	var ie *redisstore.InvalidSnapshotError
	if !errors.As(err, &ie) || ie.Reason != r {
		t.Fatalf("Load: err = %v, want an invalid snapshot (%s)", err, r)
	}
}

// TestLoad_MACAuthenticatesEverything: Redis is shared storage, not a trust
// anchor. A snapshot is adopted only with a MAC made under one of the
// fleet's keys over this namespace, tenant, provider, fingerprint and every
// field; a forged, tampered, copied or unsigned one is bad_mac.
func TestLoad_MACAuthenticatesEverything(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	ctx := context.Background()
	fleet := openStore(t, srv.URL(), redisstore.Options{})
	const key = "test:acme:main_idp"
	snap := validSnapshot(time.Now().Truncate(time.Millisecond))
	snap.Fingerprint = "fp-1"
	if err := fleet.Save(ctx, snap); err != nil {
		t.Fatal(err)
	}
	stored, err := raw.Get(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(field string, v any) string { return withField(t, stored, field, v) }
	attackerKey := []byte(strings.Repeat("A", 32))
	attacker := openStore(t, srv.URL(), redisstore.Options{HMACKeys: [][]byte{attackerKey}})

	tests := []struct {
		name  string
		write func(t *testing.T)
	}{
		{"signed with another key", func(t *testing.T) {
			if err := attacker.Save(ctx, snap); err != nil {
				t.Fatal(err)
			}
		}},
		{"no MAC", func(t *testing.T) { raw.Set(ctx, key, tamper("mac", ""), time.Minute) }},
		{"MAC not base64", func(t *testing.T) { raw.Set(ctx, key, tamper("mac", "!!"), time.Minute) }},
		{"keys swapped", func(t *testing.T) {
			raw.Set(ctx, key, tamper("jwks", map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "evil", "n": "AQAB", "e": "AQAB"}}}), time.Minute)
		}},
		{"expiry pushed out", func(t *testing.T) {
			raw.Set(ctx, key, tamper("expires_at", snap.ExpiresAt.Add(24*time.Hour).Format(time.RFC3339Nano)), time.Minute)
		}},
		{"persisted_at moved", func(t *testing.T) {
			raw.Set(ctx, key, tamper("persisted_at", snap.PersistedAt.Add(time.Second).Format(time.RFC3339Nano)), time.Minute)
		}},
		{"fingerprint changed", func(t *testing.T) { raw.Set(ctx, key, tamper("fingerprint", "fp-2"), time.Minute) }},
		{"etag changed", func(t *testing.T) { raw.Set(ctx, key, tamper("etag", `"other"`), time.Minute) }},
		{"copied from another namespace", func(t *testing.T) {
			other, err := redisstore.Open(srv.URL(), "other", redisstore.Options{Timeout: time.Second, HMACKeys: [][]byte{testKey}})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := other.Save(ctx, snap); err != nil {
				t.Fatal(err)
			}
			v, err := raw.Get(ctx, "other:acme:main_idp").Result()
			if err != nil {
				t.Fatal(err)
			}
			raw.Set(ctx, key, v, time.Minute)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.write(t)
			before := fleet.Stats().Invalid[redisstore.ReasonBadMAC]
			_, err := fleet.Load(ctx, "acme", "main_idp", 0)
			wantReason(t, err, redisstore.ReasonBadMAC)
			if got := fleet.Stats().Invalid[redisstore.ReasonBadMAC] - before; got != 1 {
				t.Errorf("bad_mac counted %d times, want 1", got)
			}
		})
	}

	// The untouched value still loads, fingerprint and all.
	raw.Set(ctx, key, stored, time.Minute)
	got, err := fleet.Load(ctx, "acme", "main_idp", 0)
	if err != nil || got.Fingerprint != "fp-1" {
		t.Fatalf("Load of the genuine snapshot = %+v, %v; want fingerprint fp-1", got, err)
	}
}

// TestLoad_KeyRotation: the first key signs, every key verifies, so a fleet
// rolls a new key in without refusing its own snapshots.
func TestLoad_KeyRotation(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	oldKey, newKey := testKey, []byte(strings.Repeat("n", 40))
	before := openStore(t, srv.URL(), redisstore.Options{HMACKeys: [][]byte{oldKey}})
	during := openStore(t, srv.URL(), redisstore.Options{HMACKeys: [][]byte{newKey, oldKey}})
	after := openStore(t, srv.URL(), redisstore.Options{HMACKeys: [][]byte{newKey}})
	snap := validSnapshot(time.Now())
	if err := before.Save(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if _, err := during.Load(ctx, "acme", "main_idp", 0); err != nil {
		t.Errorf("a replica with both keys refuses the old key's snapshot: %v", err)
	}
	_, err := after.Load(ctx, "acme", "main_idp", 0)
	wantReason(t, err, redisstore.ReasonBadMAC)
	if err := during.Save(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if _, err := after.Load(ctx, "acme", "main_idp", 0); err != nil {
		t.Errorf("the new key's snapshot refused: %v", err)
	}
}

func TestReadHMACKeys(t *testing.T) {
	long := strings.Repeat("k", 32)
	tests := []struct {
		name, content string
		want          int
		wantErr       string
	}{
		{"one key", long + "\n", 1, ""},
		{"comments, blanks and spaces", "# rotated 2026-12\n\n  " + long + "  \n" + strings.Repeat("o", 48) + "\n", 2, ""},
		{"short key", long + "\nxyzzy\n", 0, "line 2: key of 5 bytes, want at least 32"},
		{"empty", "\n# nothing\n", 0, "no key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			keys, err := redisstore.ReadHMACKeys(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "xyzzy") {
					t.Errorf("error quotes a key: %v", err)
				}
				return
			}
			if err != nil || len(keys) != tt.want || string(keys[0]) != long {
				t.Fatalf("keys = %q, %v; want %d", keys, err, tt.want)
			}
		})
	}
	if _, err := redisstore.ReadHMACKeys(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file is no error")
	}
}

// TestAcquire_ForgedKeysBoundedByTheirTTL: whoever writes to Redis can hold
// a lease or the unknown-kid cooldown only as long as a replica would: a
// key without expiry, or with more time left than the replica's TTL, is
// taken over; a genuine one (within the TTL) is respected.
func TestAcquire_ForgedKeysBoundedByTheirTTL(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	s := openStore(t, srv.URL(), redisstore.Options{})
	ctx := context.Background()
	const ttl = 3 * time.Second
	try := map[string]func() (bool, error){
		"test:lease:acme:main_idp": func() (bool, error) { return s.TryAcquire(ctx, "acme", "main_idp", "replica", ttl) },
		"test:kid-cooldown:acme:main_idp": func() (bool, error) {
			ok, _, err := s.TryCooldown(ctx, "acme", "main_idp", "replica", ttl)
			return ok, err
		},
	}
	for key, acquire := range try {
		for _, tt := range []struct {
			name   string
			expiry time.Duration // 0: none
			want   bool
		}{
			{"no expiry", 0, true},
			{"a year", 365 * 24 * time.Hour, true},
			{"within the TTL", ttl / 2, false},
		} {
			t.Run(key+"/"+tt.name, func(t *testing.T) {
				if err := raw.Set(ctx, key, "attacker", tt.expiry).Err(); err != nil {
					t.Fatal(err)
				}
				ok, err := acquire()
				if err != nil || ok != tt.want {
					t.Fatalf("acquire over a key with expiry %v = %v, %v; want %v", tt.expiry, ok, err, tt.want)
				}
				if left, _ := raw.PTTL(ctx, key).Result(); left <= 0 || left > ttl {
					t.Errorf("PTTL after = %v, want within (0, %v]", left, ttl)
				}
			})
		}
	}
}

// withField returns the stored JSON value with field set to v, keeping
// every other field (its MAC too): a tampered value.
func withField(t testing.TB, stored, field string, v any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(stored), &m); err != nil {
		t.Fatal(err)
	}
	m[field] = v
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
