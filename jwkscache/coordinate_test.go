package jwkscache_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/redisstore/redistest"
	"github.com/extauthz/extauthz/jwkscache"
	"github.com/extauthz/extauthz/jwkscache/clocktest"
)

// fleetKey is the replicas' shared snapshot key (jwks.redis.hmac_key_file).
var fleetKey = []byte("fleet-key-0123456789abcdefghijklmnop")

// fleet is several registries (replicas) sharing one fake clock, one JWKS
// server and one coordinator: a real redis-server, each replica with its
// own Redis client as separate processes would be (newFleet), or one
// in-memory coordinator (newMemFleet), which tests the fleet logic through
// the Coordinator seam alone.
type fleet struct {
	clk      *clocktest.Clock
	srv      *jwksServer
	redis    *redistest.Server // nil with mem
	mem      *memCoordinator   // nil with redis
	replicas []*replica
}

type replica struct {
	reg    *jwkscache.Registry
	store  *redisstore.Store // nil in a mem fleet
	events events
}

func newFleet(t *testing.T, srv *jwksServer, n int) *fleet {
	t.Helper()
	f := &fleet{clk: clocktest.New(t0), srv: srv, redis: redistest.Start(t)}
	for range n {
		f.add(t)
	}
	return f
}

// newMemFleet is newFleet with an in-memory coordinator instead of Redis.
func newMemFleet(t *testing.T, srv *jwksServer, n int) *fleet {
	t.Helper()
	clk := clocktest.New(t0)
	f := &fleet{clk: clk, srv: srv, mem: newMemCoordinator(clk)}
	for range n {
		f.add(t)
	}
	return f
}

// fleetKinds runs a test on a Redis fleet and on an in-memory one.
var fleetKinds = []struct {
	name string
	new  func(*testing.T, *jwksServer, int) *fleet
}{{"redis", newFleet}, {"memory", newMemFleet}}

// add starts one more replica (not yet registered).
func (f *fleet) add(t *testing.T) *replica {
	t.Helper()
	r := &replica{events: make(events, 1000)}
	var coord jwkscache.Coordinator = f.mem
	if f.mem == nil {
		store, err := redisstore.Open(f.redis.URL(), "jwks-cache", redisstore.Options{Now: f.clk.Now, Timeout: time.Second, HMACKeys: [][]byte{fleetKey}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		r.store, coord = store, store.Coordinator()
	}
	var err error
	r.reg, err = jwkscache.New(jwkscache.Options{
		HTTPClient:        f.srv.Client(),
		Clock:             f.clk,
		Observer:          r.events,
		Coordinator:       coord,
		CoordinatorHolder: fmt.Sprintf("replica-%d", len(f.replicas)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.reg.Close() })
	f.replicas = append(f.replicas, r)
	return r
}

func (f *fleet) registration(r *replica) jwkscache.Registration {
	reg := r.reg.NewRegistration("acme", "main", f.srv.url())
	reg.RetryPolicy.MaxRetries = 0
	return reg
}

func (r *replica) status(t *testing.T) jwkscache.Status {
	t.Helper()
	st, ok := r.reg.Status("acme", "main")
	if !ok {
		t.Fatal("provider not registered")
	}
	return st
}

// settle waits until every registered replica is idle or waiting on the
// fake clock: each provider then has exactly three timers (the scheduled
// refresh or a snapshot poll, and the two that age its set). It is woken by
// each change to the clock's timers; real time bounds the wait only to
// turn a hang into a failure.
func (f *fleet) settle(t *testing.T) {
	t.Helper()
	want := 0
	for _, r := range f.replicas {
		want += 3 * len(r.reg.Statuses())
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		changed := f.clk.Changed()
		if len(f.clk.Pending()) == want {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("fleet did not settle: %d timers pending, want %d: %v", len(f.clk.Pending()), want, f.clk.Pending())
		}
	}
}

// step settles the fleet, then advances the clock to its next timer.
func (f *fleet) step(t *testing.T) {
	t.Helper()
	f.settle(t)
	d, ok := f.clk.Next()
	if !ok {
		t.Fatal("no timer pending")
	}
	f.clk.Advance(d)
	if testing.Verbose() {
		for i, r := range f.replicas {
			for _, st := range r.reg.Statuses() {
				t.Logf("  +%v r%d hits=%d state=%v src=%s srcAt=+%v exp=+%v next=+%v", f.clk.Now().Sub(t0), i, f.srv.hits.Load(), st.State, st.Source, st.SourceAt.Sub(t0), st.ExpiresAt.Sub(t0), st.NextRefresh.Sub(t0))
			}
		}
	}
}

// drain steps the clock through snapshot polls only (timers due within
// pollStep): replicas waiting for another's snapshot find it or give up,
// and no scheduled refresh comes due.
func (f *fleet) drain(t *testing.T) {
	t.Helper()
	const pollStep = time.Second // jwkscache's sharedPoll
	for {
		f.settle(t)
		d, ok := f.clk.Next()
		if !ok || d > pollStep {
			return
		}
		f.clk.Advance(d)
	}
}

// results counts the replicas' refresh outcomes so far, by Result.
func (f *fleet) results() map[jwkscache.RefreshResult]int {
	out := map[jwkscache.RefreshResult]int{}
	for _, r := range f.replicas {
		for {
			select {
			case ev := <-r.events:
				out[ev.Result]++
				continue
			default:
			}
			break
		}
	}
	return out
}

// registerAll registers the provider on every replica in turn, waiting for
// each to be Ready (the first fetches, the others start warm).
func (f *fleet) registerAll(t *testing.T) {
	t.Helper()
	for _, r := range f.replicas {
		if err := r.reg.Register(context.Background(), f.registration(r)); err != nil {
			t.Fatal(err)
		}
		f.settle(t)
		if st := r.status(t); st.State != jwkscache.StateReady {
			t.Fatalf("after Register: %+v", st)
		}
	}
}

func TestCoordinated_WarmStartIsReadyWithoutFetch(t *testing.T) {
	for _, kind := range fleetKinds {
		t.Run(kind.name, func(t *testing.T) {
			_, srv := newKeyServer(t)
			f := kind.new(t, srv, 1)
			f.registerAll(t)
			first := f.replicas[0].status(t)
			if first.Source != jwkscache.SourceIdentityProvider || srv.hits.Load() != 1 {
				t.Fatalf("first replica: source %q, %d fetches", first.Source, srv.hits.Load())
			}

			f.clk.Advance(10 * time.Second) // later, a replica starts
			late := f.add(t)
			if err := late.reg.Register(context.Background(), f.registration(late)); err != nil {
				t.Fatal(err)
			}
			// Ready as soon as Register returns, before any lookup.
			st := late.status(t)
			if st.State != jwkscache.StateReady || st.Source != jwkscache.SourceRedis {
				t.Fatalf("warm replica: state %v source %q, want Ready from redis", st.State, st.Source)
			}
			if !st.ExpiresAt.Equal(first.ExpiresAt) || !st.SourceAt.Equal(first.SourceAt) {
				t.Errorf("warm replica expires %v (source at %v), want the snapshot's own %v (%v)", st.ExpiresAt, st.SourceAt, first.ExpiresAt, first.SourceAt)
			}
			if _, err := late.reg.Key(context.Background(), "acme", "main", "k1", "ES256"); err != nil {
				t.Fatalf("Key on the warm replica: %v", err)
			}
			if got := srv.hits.Load(); got != 1 {
				t.Errorf("JWKS fetches = %d, want 1 (warm start fetches nothing)", got)
			}
			if st.NextRefresh.IsZero() || !st.NextRefresh.Before(st.ExpiresAt) {
				t.Errorf("warm replica next refresh %v, want one scheduled before expiry %v", st.NextRefresh, st.ExpiresAt)
			}
		})
	}
}

// TestCoordinated_FiveCyclesOneFetchEach: three replicas, five refresh
// cycles, one request per cycle for the whole fleet (alone, each replica
// would make one per cycle: fifteen). A rotation in the middle reaches
// every replica through the shared snapshot.
func TestCoordinated_FiveCyclesOneFetchEach(t *testing.T) {
	for _, kind := range fleetKinds {
		t.Run(kind.name, func(t *testing.T) {
			k1, k2 := newECKey(t), newECKey(t)
			srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k1.PublicKey, "k1", "")))
			srv.set(func(s *jwksServer) { s.cacheControl, s.etag = "max-age=60", `"v1"` })
			f := kind.new(t, srv, 3)
			f.registerAll(t)
			if got := srv.hits.Load(); got != 1 {
				t.Fatalf("fetches after three registrations = %d, want 1", got)
			}
			// A cycle is at least ttl/2 − prefetch_jitter = 25 s of this clock.
			const minCycle = 25 * time.Second
			last := t0
			for cycle := 1; cycle <= 5; cycle++ {
				if cycle == 3 {
					srv.set(func(s *jwksServer) { s.doc, s.etag = jwksDoc(t, jwkJSON(t, &k2.PublicKey, "k2", "")), `"v2"` })
				}
				for f.settle(t); srv.hits.Load() < int64(1+cycle); f.settle(t) {
					f.step(t)
				}
				if got := srv.hits.Load(); got != int64(1+cycle) {
					t.Fatalf("cycle %d: %d fetches in all, want %d", cycle, got, 1+cycle)
				}
				var fetchedAt time.Time // the cycle's fetch: the newest set's source time
				for _, r := range f.replicas {
					if at := r.status(t).SourceAt; at.After(fetchedAt) {
						fetchedAt = at
					}
				}
				if gap := fetchedAt.Sub(last); gap < minCycle {
					t.Fatalf("cycle %d: fetch %s after the previous one, want ≥ %s", cycle, gap, minCycle)
				}
				last = fetchedAt
				// Every replica adopts the cycle's snapshot before the next fetch.
				for i, r := range f.replicas {
					for f.settle(t); r.status(t).SourceAt.Before(fetchedAt); f.settle(t) {
						f.step(t)
						if f.settle(t); srv.hits.Load() > int64(1+cycle) {
							t.Fatalf("cycle %d: replica %d had not adopted the snapshot when the next fetch came", cycle, i)
						}
					}
				}
			}
			f.settle(t)
			if got := srv.hits.Load(); got != 6 {
				t.Errorf("JWKS fetches over five cycles = %d, want 6 (1 initial + 1 per cycle)", got)
			}
			res := f.results()
			if res[jwkscache.RefreshFetched]+res[jwkscache.RefreshNotModified] != 6 || res[jwkscache.RefreshShared] < 10 || res[jwkscache.RefreshError] != 0 {
				t.Errorf("refresh outcomes %v: want 6 fetches (first + 5), ≥ 10 adoptions, no error", res)
			}
			t.Logf("5 refresh cycles, 3 replicas: %d JWKS requests after the first fetch (15 without sharing); outcomes %v", srv.hits.Load()-1, res)
			for i, r := range f.replicas { // the rotation reached every replica
				if _, err := r.reg.Key(context.Background(), "acme", "main", "k2", "ES256"); err != nil {
					t.Errorf("replica %d: rotated key: %v", i, err)
				}
				if _, err := r.reg.Key(context.Background(), "acme", "main", "k1", "ES256"); !errors.Is(err, jwkscache.ErrKeyNotFound) {
					t.Errorf("replica %d: removed key: err = %v, want ErrKeyNotFound", i, err)
				}
			}
		})
	}
}

// TestCoordinated_UnknownKIDFloodOneFetchFleetWide: random kids on every
// replica at once cost one request; the replica that fetched keeps the
// lease for the cooldown, so a replica whose own cooldown is free still
// does not fetch. The replicas that did not win the cooldown wait for the
// winner's snapshot (woken by its announcement, or by their poll, which
// the test drives on the fake clock while the lookups wait), so the
// rotated kid among the random ones is found on every replica.
func TestCoordinated_UnknownKIDFloodOneFetchFleetWide(t *testing.T) {
	k1, k2 := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k1.PublicKey, "k1", "")))
	f := newFleet(t, srv, 3)
	f.registerAll(t)
	srv.set(func(s *jwksServer) {
		s.doc = jwksDoc(t, jwkJSON(t, &k1.PublicKey, "k1", ""), jwkJSON(t, &k2.PublicKey, "k2", ""))
	})
	f.clk.Advance(time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // turns a hang into a failure
	defer cancel()
	// The test hears the winner's announcement too: only after it may the
	// fake clock move (polls), or the waiting replicas' wait could run out
	// on the fake clock while the winner's real fetch is still running.
	updates := f.redis.Client(t).Subscribe(ctx, "jwks-cache:updates")
	defer updates.Close()
	if _, err := updates.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var refused []error
	for i, r := range f.replicas {
		for j := range 50 {
			wg.Go(func() {
				kid := fmt.Sprintf("random-%d-%d", i, j)
				if j == 0 {
					kid = "k2" // the rotated key, among the random ones
				}
				_, err := r.reg.Key(ctx, "acme", "main", kid, "ES256")
				if (kid == "k2" && err != nil) || (kid != "k2" && !errors.Is(err, jwkscache.ErrKeyNotFound)) {
					mu.Lock()
					refused = append(refused, fmt.Errorf("replica %d kid %s: %w", i, kid, err))
					mu.Unlock()
				}
			})
		}
	}
	receive(t, updates.Channel(), "the cooldown winner's snapshot announcement")
	f.whileWaiting(t, &wg)
	f.drain(t)
	for _, err := range refused {
		t.Error(err)
	}

	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("JWKS fetches = %d, want 2 (first fetch + one for the whole flood)", got)
	}
	for i, r := range f.replicas {
		if _, err := r.reg.Key(context.Background(), "acme", "main", "k2", "ES256"); err != nil {
			t.Errorf("replica %d: rotated key after the flood: %v", i, err)
		}
	}
	// A replica started now has the newest snapshot (the cooldown holder's
	// fetch) and a fresh cooldown of its own; the fleet's cooldown still
	// holds it back, and it does not wait: it has the holder's result.
	late := f.add(t)
	if err := late.reg.Register(context.Background(), f.registration(late)); err != nil {
		t.Fatal(err)
	}
	_, err := late.reg.Key(ctx, "acme", "main", "another-random", "ES256")
	if !errors.Is(err, jwkscache.ErrKeyNotFound) {
		t.Fatalf("unknown kid on the late replica: err = %v, want ErrKeyNotFound", err)
	}
	// Key answered without waiting; the refresh it started reports its
	// outcome when its Redis round trips are done. (Its provider's timers
	// do not change meanwhile, so settling the fleet does not wait for it.)
	if ev := receive(t, (<-chan jwkscache.RefreshEvent)(late.events), "the late replica's unknown-kid refresh"); ev.Result != jwkscache.RefreshDeferred {
		t.Errorf("the late replica's unknown-kid refresh: %s (%v), want deferred to the fleet's cooldown", ev.Result, ev.Err)
	}
	f.drain(t)
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS fetches after the late replica's unknown kid = %d, want still 2", got)
	}
}

// whileWaiting advances the fake clock through snapshot polls (timers due
// within sharedPoll) until wg is done, so lookups waiting for a shared
// snapshot whose announcement was lost still find it.
func (f *fleet) whileWaiting(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		changed := f.clk.Changed()
		if d, ok := f.clk.Next(); ok && d <= time.Second {
			f.clk.Advance(d)
			continue
		}
		select {
		case <-done:
			return
		case <-changed:
		}
	}
}

// TestCoordinated_LeaseHolderDiesAnotherTakesOver: a replica took the
// lease and died. Nobody fetches while the lease lasts; when it ends (its
// expiry is Redis's, simulated here by deleting it) one replica fetches and
// the other adopts.
func TestCoordinated_LeaseHolderDiesAnotherTakesOver(t *testing.T) {
	_, srv := newKeyServer(t, "max-age=60")
	f := newFleet(t, srv, 2)
	f.registerAll(t)
	dead := f.replicas[0].store
	leaseTTL := f.registration(f.replicas[0]).RetryPolicy.Deadline + time.Second
	// The lease's real expiry is far: only the fake clock moves, and the
	// test deletes the key when the lease time has passed on it.
	if ok, err := dead.TryAcquire(context.Background(), "acme", "main", "dead-replica", leaseTTL); !ok || err != nil {
		t.Fatalf("TryAcquire: %v %v", ok, err)
	}
	due := f.replicas[0].status(t).NextRefresh
	if d := f.replicas[1].status(t).NextRefresh; d.Before(due) {
		due = d
	}
	for f.clk.Now().Before(due.Add(leaseTTL - time.Second)) {
		f.step(t)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("JWKS fetches while the dead replica's lease lasts = %d, want 1", got)
	}
	if err := f.redis.Client(t).Del(context.Background(), "jwks-cache:lease:acme:main").Err(); err != nil {
		t.Fatal(err)
	}
	for f.settle(t); srv.hits.Load() < 2 || f.replicas[0].status(t).SourceAt.Before(due) || f.replicas[1].status(t).SourceAt.Before(due); f.settle(t) {
		f.step(t)
		if f.clk.Now().After(due.Add(3 * leaseTTL)) {
			t.Fatal("nobody took over")
		}
	}
	f.settle(t)
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS fetches after the takeover = %d, want 2", got)
	}
}

// TestCoordinated_RedisDownEachFetchesThenSharesAgain: with Redis stopped
// the replicas refresh alone and keep serving; when it is back they share
// again.
func TestCoordinated_RedisDownEachFetchesThenSharesAgain(t *testing.T) {
	_, srv := newKeyServer(t, "max-age=60")
	f := newFleet(t, srv, 2)
	f.registerAll(t)
	f.redis.Stop(t)
	cycle := func() {
		t.Helper()
		start := f.clk.Now()
		for _, r := range f.replicas {
			for f.settle(t); r.status(t).LastRefresh.Before(start.Add(time.Second)); f.settle(t) {
				f.step(t)
				for _, r := range f.replicas {
					if _, err := r.reg.Key(context.Background(), "acme", "main", "k1", "ES256"); err != nil {
						t.Fatalf("Key: %v", err)
					}
				}
			}
		}
	}
	cycle()
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("JWKS fetches with Redis down = %d, want 3 (1 + one per replica)", got)
	}
	f.redis.Restart(t)
	for _, r := range f.replicas { // go-redis redials a refused address about once a second
		deadline := time.Now().Add(10 * time.Second)
		for r.store.Ping(context.Background()) != nil {
			if time.Now().After(deadline) {
				t.Fatal("Redis still unreachable")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cycle()
	if got := srv.hits.Load(); got != 4 {
		t.Errorf("JWKS fetches in the cycle after Redis came back = %d, want 4 (one more)", got)
	}
}

// TestCoordinated_InvalidSnapshotIgnored: a bad snapshot is never trusted:
// the replica fetches from the identity provider, and the store counts it.
func TestCoordinated_InvalidSnapshotIgnored(t *testing.T) {
	k := newECKey(t)
	jwks := string(jwksDoc(t, jwkJSON(t, &k.PublicKey, "k1", "")))
	enc := func(tenant, provider, doc, expires, persisted string) string {
		return `{"version":1,"tenant_id":"` + tenant + `","provider_id":"` + provider + `","jwks":` + doc +
			`,"expires_at":"` + expires + `","persisted_at":"` + persisted + `"}`
	}
	exp, pers := t0.Add(time.Hour).Format(time.RFC3339), t0.Format(time.RFC3339)
	tests := []struct {
		name  string
		value string
		want  redisstore.Reason
	}{
		{"corrupt", `{"version":1,"tenant_id":"acme","provider_id":"main","jwks":{"keys":[`, redisstore.ReasonCorrupt},
		{"too large", enc("acme", "main", `{"keys":[],"pad":"`+strings.Repeat("x", 2<<20)+`"}`, exp, pers), redisstore.ReasonTooLarge},
		{"another tenant", enc("globex", "main", jwks, exp, pers), redisstore.ReasonForeign},
		{"expiry before persisted_at", enc("acme", "main", jwks, pers, exp), redisstore.ReasonBadTimes},
		{"well-formed but unsigned", enc("acme", "main", jwks, exp, pers), redisstore.ReasonBadMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, []byte(jwks))
			f := newFleet(t, srv, 1)
			if err := f.redis.Client(t).Set(context.Background(), "jwks-cache:acme:main", tt.value, 0).Err(); err != nil {
				t.Fatal(err)
			}
			f.registerAll(t)
			r := f.replicas[0]
			if st := r.status(t); st.Source != jwkscache.SourceIdentityProvider || srv.hits.Load() != 1 {
				t.Errorf("source %q after %d fetches, want identity_provider after 1", st.Source, srv.hits.Load())
			}
			if got := r.store.Stats().Invalid[tt.want]; got != 1 {
				t.Errorf("Invalid[%s] = %d, want 1", tt.want, got)
			}
			if got := r.status(t).SnapshotsRejected; got[string(tt.want)] != 1 {
				t.Errorf("SnapshotsRejected = %v, want %s: 1", got, tt.want)
			}
		})
	}
}

// TestCoordinated_RegisterNeverFailsOnRedis: Redis down at registration is
// not an error, and the replica works alone.
func TestCoordinated_RegisterNeverFailsOnRedis(t *testing.T) {
	_, srv := newKeyServer(t)
	f := newFleet(t, srv, 1)
	f.redis.Stop(t)
	f.registerAll(t)
	if st := f.replicas[0].status(t); st.Source != jwkscache.SourceIdentityProvider {
		t.Errorf("source %q, want identity_provider", st.Source)
	}
	if _, err := f.replicas[0].reg.Key(context.Background(), "acme", "main", "k1", "ES256"); err != nil {
		t.Errorf("Key: %v", err)
	}
}

// TestCoordinated_LookupsNeverWaitOnRedis: Redis accepts connections and
// never answers (the worst outage: every call runs into its timeout). A
// refresh stuck on it does not hold up a single lookup.
func TestCoordinated_LookupsNeverWaitOnRedis(t *testing.T) {
	_, srv := newKeyServer(t, "max-age=60")
	f := newFleet(t, srv, 1)
	f.registerAll(t)
	r := f.replicas[0]
	f.redis.Stop(t)
	silent, err := net.Listen("tcp", f.redis.Addr)
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		silent.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	f.step(t) // the scheduled refresh starts and asks Redis first
	if st := r.status(t); st.State != jwkscache.StateRefreshing {
		t.Fatalf("state %v, want Refreshing", st.State)
	}
	for i := range 100 {
		if _, err := r.reg.Key(context.Background(), "acme", "main", "k1", "ES256"); err != nil {
			t.Fatalf("lookup %d during the stuck refresh: %v", i, err)
		}
	}
	if st := r.status(t); st.State != jwkscache.StateRefreshing || srv.hits.Load() != 1 {
		t.Fatalf("state %v after %d fetches: the lookups did not run while the refresh waited on Redis", st.State, srv.hits.Load())
	}
	f.settle(t) // Redis times out: the replica fetches alone
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS fetches = %d, want 2 (the refresh went on without Redis)", got)
	}
}

// The tests below drive the fleet logic through the Coordinator seam
// alone: an in-memory coordinator, no Redis.

func TestSeam_CoordinatorDownEachReplicaFetchesAlone(t *testing.T) {
	_, srv := newKeyServer(t)
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
