package jwkscache_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/logtest"
	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/jwkscache"
)

// storedFingerprint reads the trust fingerprint of the snapshot in Redis.
func (f *fleet) storedFingerprint(t *testing.T) string {
	t.Helper()
	v, err := f.redis.Client(t).Get(context.Background(), "jwks-cache:acme:main").Result()
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		Fingerprint string `json:"fingerprint"`
	}
	if err := json.Unmarshal([]byte(v), &w); err != nil || w.Fingerprint == "" {
		t.Fatalf("snapshot fingerprint %q: %v", w.Fingerprint, err)
	}
	return w.Fingerprint
}

// TestCoordinated_ForgedSnapshotNeverAdopted is an attack on Redis as a trust anchor:
// someone who can write to Redis, but has not the fleet's HMAC key, stores
// a well-formed snapshot with their own key and a far expiry. Neither a
// replica starting now nor one running (at its next refresh) adopts it:
// their token's kid stays unknown, the rejection is counted by reason and
// logged once, and the replicas keep fetching from the identity provider.
func TestCoordinated_ForgedSnapshotNeverAdopted(t *testing.T) {
	good, evil := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &good.PublicKey, "k1", "")))
	srv.set(func(s *jwksServer) { s.cacheControl = "max-age=60" })
	f := newFleet(t, srv, 1)
	var logs logtest.Buffer
	running := f.replicas[0]
	f.registerAll(t)

	attacker, err := redisstore.Open(f.redis.URL(), "jwks-cache", redisstore.Options{Timeout: time.Second, HMACKeys: [][]byte{[]byte(strings.Repeat("x", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { attacker.Close() })
	forge := func() {
		t.Helper()
		if err := attacker.Save(context.Background(), jwkscache.SharedSnapshot{
			TenantID: "acme", ProviderID: "main",
			JWKS:        jwksDoc(t, jwkJSON(t, &evil.PublicKey, "evil", "")),
			PersistedAt: f.clk.Now(), ExpiresAt: f.clk.Now().Add(365 * 24 * time.Hour),
			Fingerprint: f.storedFingerprint(t), // even the right fingerprint does not help
		}); err != nil {
			t.Fatal(err)
		}
	}
	forge()

	// A replica starting now.
	fresh := f.add(t)
	fresh.reg, err = jwkscache.New(jwkscache.Options{
		HTTPClient: srv.Client(), Clock: f.clk, Observer: fresh.events,
		Coordinator: fresh.store.Coordinator(), CoordinatorHolder: "fresh",
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.reg.Close() })
	hits := srv.hits.Load()
	if err := fresh.reg.Register(context.Background(), f.registration(fresh)); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	if got := srv.hits.Load() - hits; got != 1 {
		t.Errorf("the fresh replica made %d fetches, want 1 (it fetches for itself)", got)
	}
	// A running replica at its next refresh (the forgery is back: the
	// fresh replica's fetch overwrote it).
	for start := running.status(t).LastRefresh; running.status(t).SnapshotsRejected["bad_mac"] == 0; f.settle(t) {
		forge()
		f.step(t)
		if f.clk.Now().Sub(start) > time.Hour {
			t.Fatal("the running replica never refreshed")
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a hang becomes a failure
	defer cancel()
	for name, r := range map[string]*replica{"fresh": fresh, "running": running} {
		if _, err := r.reg.Key(ctx, "acme", "main", "evil", "ES256"); !errors.Is(err, jwkscache.ErrKeyNotFound) {
			t.Errorf("%s replica: the attacker's kid: err = %v, want ErrKeyNotFound", name, err)
		}
		if _, err := r.reg.Key(context.Background(), "acme", "main", "k1", "ES256"); err != nil {
			t.Errorf("%s replica: the identity provider's kid: %v", name, err)
		}
		st := r.status(t)
		if st.SnapshotsRejected["bad_mac"] == 0 {
			t.Errorf("%s replica: rejected %v, want bad_mac counted", name, st.SnapshotsRejected)
		}
		if !st.ExpiresAt.Before(f.clk.Now().Add(time.Hour)) {
			t.Errorf("%s replica: expires %v, the forgery's far expiry", name, st.ExpiresAt)
		}
	}
	if !strings.Contains(logs.String(), `"reason":"bad_mac"`) {
		t.Errorf("the fresh replica did not log the rejection:\n%s", logs.String())
	}
}

// TestCoordinated_RejectionLoggedOncePerChange: a forgery written again
// before every refresh is counted every time but logged once, so whoever
// writes to Redis cannot flood the log.
func TestCoordinated_RejectionLoggedOncePerChange(t *testing.T) {
	_, srv := newKeyServer(t, "max-age=60")
	f := newFleet(t, srv, 0)
	var logs logtest.Buffer
	r := f.add(t)
	var err error
	r.reg, err = jwkscache.New(jwkscache.Options{
		HTTPClient: srv.Client(), Clock: f.clk, Observer: r.events,
		Coordinator: r.store.Coordinator(), Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.reg.Close() })
	raw := f.redis.Client(t)
	forge := func() {
		t.Helper()
		v := `{"version":1,"tenant_id":"acme","provider_id":"main","jwks":{"keys":[]},"expires_at":"2099-01-01T00:00:00Z","persisted_at":"2026-01-01T00:00:00Z","mac":"AAAA"}`
		if err := raw.Set(context.Background(), "jwks-cache:acme:main", v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	forge()
	f.registerAll(t)
	const cycles = 3
	for range cycles {
		forge()
		for start := r.status(t).LastRefresh; !r.status(t).LastRefresh.After(start); f.settle(t) {
			f.step(t)
		}
	}
	f.settle(t)
	// Each read counts: Register's, then per cycle the look before taking
	// the refresh lease and the look again after taking it.
	if got := r.status(t).SnapshotsRejected["bad_mac"]; got != 1+2*cycles {
		t.Errorf("bad_mac counted %d times, want %d (each read)", got, 1+2*cycles)
	}
	if n := strings.Count(logs.String(), `"reason":"bad_mac"`); n != 1 {
		t.Errorf("bad_mac logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestCoordinated_SnapshotTiedToTrustSettings: a snapshot fetched under
// another jwks_url (the operator stopped trusting that identity provider),
// or claiming times no replica could have written (fetched in the future,
// a life beyond max_ttl), is not adopted, even with a valid MAC.
func TestCoordinated_SnapshotTiedToTrustSettings(t *testing.T) {
	k := newECKey(t)
	doc := jwksDoc(t, jwkJSON(t, &k.PublicKey, "k1", ""))
	tests := []struct {
		name   string
		mutate func(f *fleet, reg *jwkscache.Registration, snap *jwkscache.SharedSnapshot)
		want   string
	}{
		{"jwks_url changed", func(f *fleet, reg *jwkscache.Registration, snap *jwkscache.SharedSnapshot) {
			reg.JWKSURL = f.srv.URL + "/other-jwks"
		}, jwkscache.RejectFingerprint},
		{"issuer changed", func(f *fleet, reg *jwkscache.Registration, snap *jwkscache.SharedSnapshot) {
			reg.Issuer = "https://other.example/"
		}, jwkscache.RejectFingerprint},
		{"allowed_domains changed", func(f *fleet, reg *jwkscache.Registration, snap *jwkscache.SharedSnapshot) {
			reg.AllowedDomains = []string{"127.0.0.1"}
		}, jwkscache.RejectFingerprint},
		{"fetched in the future", func(f *fleet, reg *jwkscache.Registration, snap *jwkscache.SharedSnapshot) {
			snap.PersistedAt = f.clk.Now().Add(time.Hour)
			snap.ExpiresAt = snap.PersistedAt.Add(time.Hour)
		}, jwkscache.RejectFuture},
		{"expiry beyond max_ttl", func(f *fleet, reg *jwkscache.Registration, snap *jwkscache.SharedSnapshot) {
			snap.ExpiresAt = snap.PersistedAt.Add(reg.MaxTTL + time.Second)
		}, jwkscache.RejectLifetime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, doc)
			f := newFleet(t, srv, 2)
			first, second := f.replicas[0], f.replicas[1]
			if err := first.reg.Register(context.Background(), f.registration(first)); err != nil {
				t.Fatal(err)
			}
			f.settle(t)
			reg := f.registration(second)
			snap := jwkscache.SharedSnapshot{TenantID: "acme", ProviderID: "main", JWKS: doc,
				PersistedAt: f.clk.Now(), ExpiresAt: f.clk.Now().Add(time.Hour), Fingerprint: f.storedFingerprint(t)}
			tt.mutate(f, &reg, &snap)
			// Signed with the fleet's key: only the content is wrong.
			if err := first.store.Save(context.Background(), snap); err != nil {
				t.Fatal(err)
			}
			hits := srv.hits.Load()
			if err := second.reg.Register(context.Background(), reg); err != nil {
				t.Fatal(err)
			}
			f.settle(t)
			st := second.status(t)
			if st.Source != jwkscache.SourceIdentityProvider || srv.hits.Load() != hits+1 {
				t.Errorf("source %q after %d more fetches, want identity_provider after 1", st.Source, srv.hits.Load()-hits)
			}
			if st.SnapshotsRejected[tt.want] == 0 {
				t.Errorf("SnapshotsRejected = %v, want %s counted", st.SnapshotsRejected, tt.want)
			}
		})
	}
}
