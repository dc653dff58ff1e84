package jwkscache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// receive waits for one value; the real-time bound only turns a hang into
// a failure.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// TestKey_UnknownKIDWaitOutOfTimeIsUnavailable: a lookup that
// waits on the refresh for its unknown kid while the identity provider is
// slow, and runs out of time, answers ErrUnavailable (503 jwks_unavailable):
// the keys were not available, nothing says the token is bad. A second
// lookup for the same kid inside the cooldown joins the refresh in flight
// and gets the rotated key, instead of a refusal at once.
func TestKey_UnknownKIDWaitOutOfTimeIsUnavailable(t *testing.T) {
	k1, k2 := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k1.PublicKey, "k1", "")))
	f := newFixture(t, srv)
	f.register(t)
	srv.set(func(s *jwksServer) { s.doc = jwksDoc(t, jwkJSON(t, &k2.PublicKey, "k2", "")) })
	entered, release := holdServer(t, srv)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := f.reg.Key(ctx, "acme", "main", "k2", "ES256")
	wantErr(t, err, jwkscache.ErrUnavailable)
	if errors.Is(err, jwkscache.ErrKeyNotFound) {
		t.Fatalf("error %v also matches ErrKeyNotFound", err)
	}
	receive(t, entered, "the refresh to reach the identity provider")

	joined := make(chan error, 1)
	go func() {
		_, err := f.reg.Key(context.Background(), "acme", "main", "k2", "ES256")
		joined <- err
	}()
	select {
	case err := <-joined:
		t.Fatalf("a lookup inside the cooldown answered %v at once, while the refresh for its kid runs", err)
	case <-time.After(50 * time.Millisecond): // still waiting, as it should; the release below ends it
	}
	release()
	if err := receive(t, joined, "the joined lookup"); err != nil {
		t.Fatalf("joined lookup: %v, want the rotated key", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("server saw %d requests, want 2 (first fetch + one refresh)", got)
	}
}

// TestCoordinated_RotationWaitsForTheHolder (zero refusals on
// rotation): replica A wins the fleet's unknown-kid cooldown and is still
// fetching the rotated set when replica B meets the new kid. B does not
// refuse it: its lookup waits, and A's snapshot announcement wakes it (the
// fake clock never moves, so no poll could have found it).
func TestCoordinated_RotationWaitsForTheHolder(t *testing.T) {
	k1, k2 := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k1.PublicKey, "k1", "")))
	f := newFleet(t, srv, 2)
	f.registerAll(t)
	f.clk.Advance(time.Second) // the rotation comes after the sets were fetched
	srv.set(func(s *jwksServer) { s.doc = jwksDoc(t, jwkJSON(t, &k2.PublicKey, "k2", "")) })
	entered, release := holdServer(t, srv)
	a, b := f.replicas[0], f.replicas[1]

	lookup := func(r *replica) <-chan error {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := r.reg.Key(ctx, "acme", "main", "k2", "ES256")
			done <- err
		}()
		return done
	}
	fromA := lookup(a)
	receive(t, entered, "replica A's refresh to reach the identity provider")
	fromB := lookup(b)
	select {
	case err := <-fromB:
		t.Fatalf("replica B answered %v while A fetches the rotated set", err)
	case <-time.After(100 * time.Millisecond): // B waits, as it should
	}
	release()
	if err := receive(t, fromA, "A's lookup"); err != nil {
		t.Errorf("replica A: %v", err)
	}
	if err := receive(t, fromB, "B's lookup"); err != nil {
		t.Errorf("replica B: %v, want the rotated key from A's snapshot", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS fetches = %d, want 2 (first fetch + A's)", got)
	}
	if st := b.status(t); st.Source != jwkscache.SourceRedis {
		t.Errorf("replica B's source = %q, want redis (A's snapshot)", st.Source)
	}
}
