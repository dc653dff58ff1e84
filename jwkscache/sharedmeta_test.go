package jwkscache_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/jwkscache"
)

// metaPath is where an idpServer whose issuer is its URL serves the
// issuer's OpenID Connect metadata document.
const metaPath = "/.well-known/openid-configuration"

// discoveryFleet is a fleet of n replicas discovering acme/main's keys from
// idp (issuer: its URL; metadata at metaPath; keys at /keys).
func discoveryFleet(t *testing.T, newFleet func(*testing.T, *jwksServer, int) *fleet, n int) (*fleet, *idpServer) {
	t.Helper()
	idp := newIDPServer(t)
	key := newECKey(t)
	idp.set(func(s *idpServer) {
		s.meta[metaPath] = metaDoc(t, idp.URL, idp.URL+"/keys")
		s.jwks["/keys"] = jwksDoc(t, jwkJSON(t, &key.PublicKey, "k1", "ES256"))
		s.jwks["/evil-keys"] = jwksDoc(t, jwkJSON(t, &newECKey(t).PublicKey, "evil", "ES256"))
	})
	return newFleet(t, &jwksServer{Server: idp.Server}, n), idp
}

// discovering is the registration of acme/main on r: discovery from idp,
// its host the only one allowed.
func discovering(r *replica, idp *idpServer) jwkscache.Registration {
	reg := r.reg.NewRegistration("acme", "main", "")
	reg.Issuer, reg.DiscoveryURL = idp.URL, idp.URL+metaPath
	reg.AllowedDomains = []string{"127.0.0.1"}
	reg.RetryPolicy.MaxRetries = 0
	return reg
}

// stepUntil steps the fleet, letting each step's refreshes and snapshot
// polls end, until cond holds.
func (f *fleet) stepUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for start := f.clk.Now(); !cond(); {
		f.step(t)
		f.drain(t)
		if f.clk.Now().Sub(start) > 24*time.Hour {
			t.Fatal("condition not met within a day")
		}
	}
}

func (r *replica) register(t *testing.T, reg jwkscache.Registration) {
	t.Helper()
	if err := r.reg.Register(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
}

// TestCoordinated_MetadataSharedLikeKeySets: one replica fetches the
// metadata document and the key set; another registered after it adopts
// both (zero requests to the identity provider, the metadata's source
// redis); and every time the document expires, the fleet fetches it once,
// not once per replica.
func TestCoordinated_MetadataSharedLikeKeySets(t *testing.T) {
	for _, kind := range fleetKinds {
		t.Run(kind.name, func(t *testing.T) {
			f, idp := discoveryFleet(t, kind.new, 2)
			first, second := f.replicas[0], f.replicas[1]
			first.register(t, discovering(first, idp))
			f.settle(t)
			if m, k := idp.hitsOf(metaPath), idp.hitsOf("/keys"); m != 1 || k != 1 {
				t.Fatalf("first replica: %d metadata and %d key set requests, want 1 and 1", m, k)
			}
			second.register(t, discovering(second, idp))
			f.settle(t)
			if m, k := idp.hitsOf(metaPath), idp.hitsOf("/keys"); m != 1 || k != 1 {
				t.Fatalf("after the second replica: %d metadata and %d key set requests, want still 1 and 1", m, k)
			}
			one, two := first.status(t), second.status(t)
			if two.Source != jwkscache.SourceRedis || two.MetadataSource != jwkscache.SourceRedis || two.JWKSURI != idp.URL+"/keys" ||
				!two.MetadataExpiresAt.Equal(one.MetadataExpiresAt) || !two.MetadataFetchedAt.Equal(one.MetadataFetchedAt) {
				t.Fatalf("second replica: keys from %q, metadata from %q, jwks_uri %q, metadata %v–%v; want both from redis, %s, %v–%v",
					two.Source, two.MetadataSource, two.JWKSURI, two.MetadataFetchedAt, two.MetadataExpiresAt,
					idp.URL+"/keys", one.MetadataFetchedAt, one.MetadataExpiresAt)
			}
			// The document lives 60 s, the key set an hour: each expiry of
			// the document is one request to it for the fleet.
			for cycle := range 3 {
				before := idp.hitsOf(metaPath)
				f.stepUntil(t, func() bool { return idp.hitsOf(metaPath) != before })
				if got := idp.hitsOf(metaPath) - before; got != 1 {
					t.Fatalf("cycle %d: %d metadata requests from the fleet, want 1", cycle, got)
				}
				one, two := first.status(t), second.status(t)
				if !one.MetadataExpiresAt.Equal(two.MetadataExpiresAt) || !one.MetadataExpiresAt.After(f.clk.Now()) {
					t.Fatalf("cycle %d: metadata expires at %v and %v, want the same, after now %v", cycle, one.MetadataExpiresAt, two.MetadataExpiresAt, f.clk.Now())
				}
			}
		})
	}
}

// TestCoordinated_FirstOwnFetchAfterAdoptingIsConditional: a replica that
// adopted the shared document and key set sends their validators the
// first time it fetches on its own, so the identity provider answers 304
// to both.
func TestCoordinated_FirstOwnFetchAfterAdoptingIsConditional(t *testing.T) {
	for _, kind := range fleetKinds {
		t.Run(kind.name, func(t *testing.T) {
			f, idp := discoveryFleet(t, kind.new, 2)
			idp.set(func(s *idpServer) {
				s.metaETag = `"m1"`
				s.jwksETag["/keys"] = `"k1"`
			})
			first, second := f.replicas[0], f.replicas[1]
			first.register(t, discovering(first, idp))
			f.settle(t)
			second.register(t, discovering(second, idp))
			f.settle(t)
			if st := second.status(t); st.Source != jwkscache.SourceRedis || st.MetadataSource != jwkscache.SourceRedis {
				t.Fatalf("second replica: keys from %q, metadata from %q; want both adopted", st.Source, st.MetadataSource)
			}
			// Its first own fetch (a forced refresh fetches even when fresh).
			if err := second.reg.Refresh(context.Background(), "acme", "main"); err != nil {
				t.Fatal(err)
			}
			idp.set(func(s *idpServer) {
				if c := s.conditions[metaPath]; len(c) != 2 || c[1] != `"m1"` {
					t.Errorf("metadata requests' If-None-Match: %q, want the second to send the adopted ETag", c)
				}
				if c := s.conditions["/keys"]; len(c) != 2 || c[1] != `"k1"` {
					t.Errorf("key set requests' If-None-Match: %q, want the second to send the adopted ETag", c)
				}
			})
			st := second.status(t)
			if st.RefreshNotModified != 1 || st.RefreshFetched != 0 || st.JWKSURI != idp.URL+"/keys" || st.MetadataSource != jwkscache.SourceIdentityProvider {
				t.Errorf("second replica after its own fetch: %d not modified, %d fetched, jwks_uri %q, metadata from %q; want a 304 revalidating the adopted set",
					st.RefreshNotModified, st.RefreshFetched, st.JWKSURI, st.MetadataSource)
			}
			if _, err := second.reg.Key(context.Background(), "acme", "main", "k1", "ES256"); err != nil {
				t.Errorf("k1 after the 304: %v", err)
			}
		})
	}
}

// TestCoordinated_ForgedMetadataNeverAdopted is an attack on Redis as a
// trust anchor, aimed at the metadata document: whoever writes to Redis
// stores a document pointing the fleet at keys of their choosing. Neither
// a replica starting (Register) nor one running (at its next refresh)
// adopts it, whether it is signed with another key, written under other
// trust settings, or properly signed by a replica but with a jwks_uri or
// issuer the configuration refuses (Redis is not trusted to have checked
// them); each is counted by reason and the replicas fetch the identity
// provider's own document.
func TestCoordinated_ForgedMetadataNeverAdopted(t *testing.T) {
	attackerKey := [][]byte{[]byte(strings.Repeat("x", 32))}
	tests := []struct {
		name   string
		signer func(f *fleet) [][]byte
		forge  func(idp *idpServer, m *jwkscache.SharedMetadata)
		want   string
	}{
		{"signed with the attacker's key", func(*fleet) [][]byte { return attackerKey }, func(*idpServer, *jwkscache.SharedMetadata) {}, "bad_mac"},
		{"other trust settings", nil, func(idp *idpServer, m *jwkscache.SharedMetadata) {
			m.Fingerprint = strings.Repeat("0", 64)
		}, jwkscache.RejectFingerprint},
		{"jwks_uri on a host outside allowed_domains", nil, func(idp *idpServer, m *jwkscache.SharedMetadata) {
			m.JWKSURI = "https://evil.test/keys"
		}, jwkscache.RejectJWKSURI},
		{"jwks_uri over http", nil, func(idp *idpServer, m *jwkscache.SharedMetadata) {
			m.JWKSURI = strings.Replace(idp.URL, "https:", "http:", 1) + "/evil-keys"
		}, jwkscache.RejectJWKSURI},
		{"issuer mismatch", nil, func(idp *idpServer, m *jwkscache.SharedMetadata) {
			m.Issuer = "https://evil.test"
		}, jwkscache.RejectIssuerMismatch},
		{"fetched in the future", nil, func(idp *idpServer, m *jwkscache.SharedMetadata) {
			m.PersistedAt = m.PersistedAt.Add(time.Hour)
			m.ExpiresAt = m.PersistedAt.Add(time.Hour)
		}, jwkscache.RejectFuture},
		{"expiry beyond max_ttl", nil, func(idp *idpServer, m *jwkscache.SharedMetadata) {
			m.ExpiresAt = m.PersistedAt.Add(24*time.Hour + time.Second)
		}, jwkscache.RejectLifetime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, idp := discoveryFleet(t, newFleet, 2)
			first, second := f.replicas[0], f.replicas[1]
			first.register(t, discovering(first, idp))
			f.settle(t)
			keys := [][]byte{fleetKey}
			if tt.signer != nil {
				keys = tt.signer(f)
			}
			writer, err := redisstore.Open(f.redis.URL(), "jwks-cache", redisstore.Options{HMACKeys: keys, Now: f.clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { writer.Close() })
			stored, err := first.store.LoadMetadata(context.Background(), "acme", "main")
			if err != nil {
				t.Fatal(err)
			}
			forge := func() {
				t.Helper()
				// By default the forgery points at keys the attacker holds,
				// on the identity provider's own host.
				m := stored
				m.JWKSURI = idp.URL + "/evil-keys"
				m.PersistedAt, m.ExpiresAt = f.clk.Now(), f.clk.Now().Add(time.Hour)
				tt.forge(idp, &m)
				if err := writer.SaveMetadata(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}

			// A replica starting now adopts the (genuine) key set, not the
			// document.
			forge()
			second.register(t, discovering(second, idp))
			f.settle(t)
			st := second.status(t)
			if st.JWKSURI != "" || st.MetadataSource != jwkscache.SourceNone || st.SnapshotsRejected[tt.want] == 0 {
				t.Fatalf("starting replica: jwks_uri %q from %q, rejected %v; want no document adopted and %s counted",
					st.JWKSURI, st.MetadataSource, st.SnapshotsRejected, tt.want)
			}
			// The running replica, when its document expires, looks at
			// Redis and fetches the identity provider's document instead.
			forge()
			before := idp.hitsOf(metaPath)
			f.stepUntil(t, func() bool { return idp.hitsOf(metaPath) != before })
			st = first.status(t)
			if st.JWKSURI != idp.URL+"/keys" || st.MetadataSource != jwkscache.SourceIdentityProvider || st.SnapshotsRejected[tt.want] == 0 {
				t.Fatalf("running replica: jwks_uri %q from %q, rejected %v; want the identity provider's and %s counted",
					st.JWKSURI, st.MetadataSource, st.SnapshotsRejected, tt.want)
			}
			// The starting replica, forced to refresh, fetches too.
			if err := second.reg.Refresh(context.Background(), "acme", "main"); err != nil {
				t.Fatal(err)
			}
			if st := second.status(t); st.JWKSURI != idp.URL+"/keys" {
				t.Fatalf("starting replica after a refresh: jwks_uri %q", st.JWKSURI)
			}
			if n := idp.hitsOf("/evil-keys"); n != 0 {
				t.Fatalf("the forged jwks_uri was fetched %d times", n)
			}
			for name, r := range map[string]*replica{"running": first, "starting": second} {
				if _, err := r.reg.Key(context.Background(), "acme", "main", "evil", "ES256"); err == nil {
					t.Errorf("%s replica trusts the attacker's key", name)
				}
			}
		})
	}
}
