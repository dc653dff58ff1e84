package jwkscache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// The tests below drive the fleet logic through the Coordinator seam
// alone: an in-memory coordinator, no Redis.

func TestSeam_CoordinatorDownEachReplicaFetchesAlone(t *testing.T) {
	k := newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k.PublicKey, "k1", "")))
	f := newMemFleet(t, srv, 3)
	f.mem.down.Store(true)
	f.registerAll(t) // Register never fails on the coordinator
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("JWKS fetches with the coordinator down = %d, want 3 (each replica alone)", got)
	}
	for i, r := range f.replicas {
		if st := r.status(t); st.Source != jwkscache.SourceIdentityProvider {
			t.Errorf("replica %d: source %q, want the identity provider", i, st.Source)
		}
		if _, err := r.reg.Key(context.Background(), "acme", "main", "k1", "ES256"); err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	if _, ok := f.mem.stored(); ok {
		t.Error("a snapshot was stored while the coordinator was down")
	}
}

func TestSeam_SnapshotOfOtherTrustSettingsIsNotAdopted(t *testing.T) {
	k, evil := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k.PublicKey, "k1", "")))
	f := newMemFleet(t, srv, 1)
	now := f.clk.Now()
	// Written under another jwks_url, issuer or pins: the fingerprint differs.
	f.mem.put(jwkscache.SharedSnapshot{
		TenantID: "acme", ProviderID: "main",
		JWKS:      jwksDoc(t, jwkJSON(t, &evil.PublicKey, "evil", "")),
		ExpiresAt: now.Add(time.Hour), PersistedAt: now,
		Fingerprint: "written-under-other-settings",
	})
	f.registerAll(t)
	r := f.replicas[0]
	st := r.status(t)
	if st.Source != jwkscache.SourceIdentityProvider || srv.hits.Load() != 1 {
		t.Fatalf("source %q after %d fetches, want the identity provider's set", st.Source, srv.hits.Load())
	}
	if got := st.SnapshotsRejected[jwkscache.RejectFingerprint]; got != 1 {
		t.Errorf("SnapshotsRejected = %v, want one %s", st.SnapshotsRejected, jwkscache.RejectFingerprint)
	}
	if _, err := r.reg.Key(context.Background(), "acme", "main", "evil", "ES256"); !errors.Is(err, jwkscache.ErrKeyNotFound) {
		t.Errorf("the rejected snapshot's key: err = %v, want ErrKeyNotFound", err)
	}
	if s, ok := f.mem.stored(); !ok || s.Fingerprint == "written-under-other-settings" {
		t.Error("the replica did not share its own set in place of the rejected one")
	}
}

func TestSeam_RotatedKIDOneFetchForTheFleet(t *testing.T) {
	k1, k2 := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k1.PublicKey, "k1", "")))
	f := newMemFleet(t, srv, 3)
	f.registerAll(t)
	srv.set(func(s *jwksServer) { s.doc = jwksDoc(t, jwkJSON(t, &k2.PublicKey, "k2", "")) })
	// The first replica to meet k2 wins the fleet's cooldown and fetches;
	// the others find the cooldown settled and adopt its snapshot.
	for i, r := range f.replicas {
		if _, err := r.reg.Key(context.Background(), "acme", "main", "k2", "ES256"); err != nil {
			t.Fatalf("replica %d: rotated kid: %v", i, err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS fetches = %d, want 2 (the first, then one for the rotation)", got)
	}
}
