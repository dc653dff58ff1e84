package jwkscache_test

import (
	"context"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/redisstore/redistest"
	"github.com/extauthz/extauthz/jwkscache"
	"github.com/extauthz/extauthz/jwkscache/clocktest"
)

// beforeAcquire is a Coordinator that runs a hook before each TryAcquire.
type beforeAcquire struct {
	jwkscache.Coordinator
	hook func()
}

func (b beforeAcquire) TryAcquire(ctx context.Context, tenantID, providerID, holder string, ttl time.Duration) (bool, error) {
	if b.hook != nil {
		b.hook()
	}
	return b.Coordinator.TryAcquire(ctx, tenantID, providerID, holder, ttl)
}

// TestCoordinated_LeaseFreedAfterAnotherSharedDoesNotFetchAgain: two
// replicas' refreshes come due together. B looks for a newer snapshot and
// finds none; before it asks for the lease, A takes the lease, fetches,
// shares and releases. B then gets the lease, but must adopt A's snapshot
// rather than fetch again: one request per refresh cycle for the fleet.
func TestCoordinated_LeaseFreedAfterAnotherSharedDoesNotFetchAgain(t *testing.T) {
	_, srv := newKeyServer(t)
	redis := redistest.Start(t)
	type replica struct {
		reg    *jwkscache.Registry
		clk    *clocktest.Clock
		events events
	}
	newReplica := func(name string, hook func()) *replica {
		r := &replica{clk: clocktest.New(t0), events: make(events, 100)}
		store, err := redisstore.Open(redis.URL(), "jwks-cache", redisstore.Options{Now: r.clk.Now, Timeout: time.Second, HMACKeys: [][]byte{fleetKey}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		r.reg, err = jwkscache.New(jwkscache.Options{
			HTTPClient: srv.Client(), Clock: r.clk, Observer: r.events,
			Coordinator: beforeAcquire{store.Coordinator(), hook}, CoordinatorHolder: name,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.reg.Close() })
		reg := r.reg.NewRegistration("acme", "main", srv.url())
		reg.RetryPolicy.MaxRetries, reg.PrefetchJitter = 0, 0
		if err := r.reg.Register(context.Background(), reg); err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := newReplica("a", nil)
	if ev := <-a.events; ev.Result != "fetched" {
		t.Fatalf("A's first refresh: %s", ev.Result)
	}
	var b *replica
	raced := false
	b = newReplica("b", func() {
		if raced {
			return
		}
		raced = true
		// A's refresh, due at the same instant, runs to its end here.
		a.clk.Advance(b.clk.Now().Sub(a.clk.Now()))
		if ev := <-a.events; ev.Result != "fetched" {
			t.Errorf("A's refresh: %s (%v)", ev.Result, ev.Err)
		}
	})
	if st, _ := b.reg.Status("acme", "main"); st.Source != jwkscache.SourceRedis {
		t.Fatalf("B did not start warm: %+v", st)
	}
	before := srv.hits.Load()
	d, ok := b.clk.Next()
	if !ok {
		t.Fatal("B has no refresh scheduled")
	}
	b.clk.Advance(d)
	ev := <-b.events
	if got := srv.hits.Load() - before; got != 1 || ev.Result != "shared" {
		t.Fatalf("B's refresh: %s, %d requests to the identity provider this cycle, want shared and 1 (A's)", ev.Result, got)
	}
}
