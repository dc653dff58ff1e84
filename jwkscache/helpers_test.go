package jwkscache_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/extauthz/extauthz/jwkscache"
	"github.com/extauthz/extauthz/jwkscache/clocktest"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newECKey returns a fresh P-256 key (cheap to generate, unlike RSA).
func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newKeyServer returns a fresh key and a JWKS server serving its public
// part as kid "k1", the opening of most tests. The server answers with
// Cache-Control cacheControl when given, max-age=3600 otherwise.
func newKeyServer(t testing.TB, cacheControl ...string) (*ecdsa.PrivateKey, *jwksServer) {
	t.Helper()
	k := newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k.PublicKey, "k1", "")))
	for _, cc := range cacheControl {
		srv.set(func(s *jwksServer) { s.cacheControl = cc })
	}
	return k, srv
}

// jwkJSON marshals the public part of key as a JWK with kid (and alg, if set).
func jwkJSON(t testing.TB, key crypto.PublicKey, kid, alg string) json.RawMessage {
	t.Helper()
	return jwkscache.MarshalJWK(t, key, kid, jwkset.ALG(alg), false)
}

// jwksDoc builds a JWKS document from JWKs.
func jwksDoc(t testing.TB, keys ...json.RawMessage) []byte {
	t.Helper()
	return jwkscache.MarshalJWKS(t, keys...)
}

// jwksServer is a real HTTPS JWKS endpoint whose answers a test controls.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu           sync.Mutex
	doc          []byte
	etag         string
	cacheControl string
	handler      http.HandlerFunc // overrides the default answer when set
	lastHeaders  http.Header
}

func newJWKSServer(t testing.TB, doc []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{doc: doc, cacheControl: "max-age=3600"}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		s.lastHeaders = r.Header.Clone()
		h, doc, etag, cc := s.handler, s.doc, s.etag, s.cacheControl
		s.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		if etag != "" && r.Header.Get("If-None-Match") == etag {
			w.Header().Set("Cache-Control", cc)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(f func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// serve makes h answer every request instead of the default answer; h
// gets the server's document as it is when serve is called.
func (s *jwksServer) serve(h func(w http.ResponseWriter, r *http.Request, doc []byte)) {
	s.set(func(s *jwksServer) {
		doc := s.doc
		s.handler = func(w http.ResponseWriter, r *http.Request) { h(w, r, doc) }
	})
}

// down makes every request fail with status.
func (s *jwksServer) down(status int) {
	s.set(func(s *jwksServer) {
		s.handler = func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }
	})
}

func (s *jwksServer) url() string { return s.URL + "/jwks" }

// holdServer makes srv's JWKS requests wait until the returned release is
// called (t.Cleanup calls it, so no fetch is left hanging); entered
// receives one value per request that arrived. Held requests answer with
// the server's document as it is when they are released.
func holdServer(t testing.TB, srv *jwksServer) (entered <-chan struct{}, release func()) {
	t.Helper()
	in, gate := make(chan struct{}, 100), make(chan struct{})
	srv.set(func(s *jwksServer) {
		doc := s.doc
		s.handler = func(w http.ResponseWriter, r *http.Request) {
			in <- struct{}{}
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
			srv.mu.Lock()
			doc = srv.doc
			srv.mu.Unlock()
			w.Header().Set("Cache-Control", "max-age=3600")
			_, _ = w.Write(doc)
		}
	})
	var released bool
	release = func() {
		if !released {
			released = true
			close(gate)
		}
	}
	t.Cleanup(release)
	return in, release
}

// events is an Observer that hands refresh outcomes to the test.
type events chan jwkscache.RefreshEvent

func (e events) RefreshDone(ev jwkscache.RefreshEvent) {
	select {
	case e <- ev:
	default:
	}
}

// fixture is a registry on a fake clock, talking to one JWKS server.
type fixture struct {
	reg    *jwkscache.Registry
	clk    *clocktest.Clock
	srv    *jwksServer
	events events
}

func newFixture(t testing.TB, srv *jwksServer, mutate ...func(*jwkscache.Options)) *fixture {
	t.Helper()
	f := &fixture{clk: clocktest.New(t0), srv: srv, events: make(events, 100000)}
	opts := jwkscache.Options{HTTPClient: srv.Client(), Clock: f.clk, Observer: f.events}
	for _, m := range mutate {
		m(&opts)
	}
	r, err := jwkscache.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	f.reg = r
	return f
}

// registration is the test default: DefaultRegistration, no retries.
func (f *fixture) registration(mutate ...func(*jwkscache.Registration)) jwkscache.Registration {
	reg := f.reg.NewRegistration("acme", "main", f.srv.url())
	reg.RetryPolicy.MaxRetries = 0
	for _, m := range mutate {
		m(&reg)
	}
	return reg
}

// start registers without waiting for the first fetch.
func (f *fixture) start(t testing.TB, mutate ...func(*jwkscache.Registration)) {
	t.Helper()
	if err := f.reg.Register(context.Background(), f.registration(mutate...)); err != nil {
		t.Fatal(err)
	}
}

// register registers and waits for the first fetch's outcome.
func (f *fixture) register(t testing.TB, mutate ...func(*jwkscache.Registration)) jwkscache.RefreshEvent {
	t.Helper()
	f.start(t, mutate...)
	return f.next(t)
}

// next waits for the next refresh outcome. The real-time bound only turns
// a hang into a failure; no test logic depends on it.
func (f *fixture) next(t testing.TB) jwkscache.RefreshEvent {
	t.Helper()
	select {
	case ev := <-f.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no refresh completed")
		return jwkscache.RefreshEvent{}
	}
}

// drive advances the fake clock through every timer due within limit (the
// backoff waits) until a refresh completes, and returns its outcome and the
// waits it advanced. Timers further out (the next scheduled refresh) are
// left alone.
func (f *fixture) drive(t testing.TB, limit time.Duration) (jwkscache.RefreshEvent, []time.Duration) {
	t.Helper()
	var waits []time.Duration
	deadline := time.After(10 * time.Second)
	for {
		changed := f.clk.Changed()
		select {
		case ev := <-f.events:
			return ev, waits
		default:
		}
		if d, ok := f.clk.Next(); ok && d <= limit {
			waits = append(waits, d)
			f.clk.Advance(d)
			continue
		}
		select {
		case ev := <-f.events:
			return ev, waits
		case <-changed:
		case <-deadline:
			t.Fatal("no refresh completed")
		}
	}
}

func (f *fixture) status(t testing.TB) jwkscache.Status {
	t.Helper()
	st, ok := f.reg.Status("acme", "main")
	if !ok {
		t.Fatal("provider not registered")
	}
	return st
}

func (f *fixture) key(kid, alg string) (crypto.PublicKey, error) {
	return f.reg.Key(context.Background(), "acme", "main", kid, alg)
}

// mustKey resolves kid and checks it is want's public key.
func (f *fixture) mustKey(t testing.TB, kid string, want *ecdsa.PrivateKey) {
	t.Helper()
	got, err := f.key(kid, "ES256")
	if err != nil {
		t.Fatalf("Key(%q): %v", kid, err)
	}
	if !want.PublicKey.Equal(got) {
		t.Fatalf("Key(%q) returned another key", kid)
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}
