package jwkscache_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

func TestKey_ColdLookupWaitsForFirstFetch(t *testing.T) {
	k, srv := newKeyServer(t)
	f := newFixture(t, srv)
	f.start(t)
	f.mustKey(t, "k1", k)
	st := f.status(t)
	if st.State != jwkscache.StateReady || st.Source != jwkscache.SourceIdentityProvider || st.Hits != 1 || st.Requests != 1 {
		t.Fatalf("status = %+v", st)
	}
}

func TestKey_ThousandConcurrentColdLookupsMakeOneRequest(t *testing.T) {
	_, srv := newKeyServer(t)
	_, release := holdServer(t, srv)
	f := newFixture(t, srv)
	f.start(t)
	if st := f.status(t); st.State != jwkscache.StateLoading {
		t.Fatalf("state before the first fetch = %v, want Loading", st.State)
	}
	const n = 1000
	var started, done sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			_, err := f.key("k1", "ES256")
			errs <- err
		}()
	}
	started.Wait()
	release()
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("server saw %d requests, want 1", got)
	}
}

func TestKey_ColdLookupBoundedByContext(t *testing.T) {
	_, srv := newKeyServer(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv.serve(func(w http.ResponseWriter, r *http.Request, doc []byte) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = w.Write(doc)
	})
	f := newFixture(t, srv)
	f.start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.reg.Key(ctx, "acme", "main", "k1", "ES256")
	wantErr(t, err, jwkscache.ErrUnavailable)
	wantErr(t, err, context.Canceled)
}

func TestKey_UnknownProvider(t *testing.T) {
	f := newFixture(t, newJWKSServer(t, nil))
	_, err := f.reg.Key(context.Background(), "nobody", "none", "k", "ES256")
	wantErr(t, err, jwkscache.ErrUnknownProvider)
	if err := f.reg.Refresh(context.Background(), "nobody", "none"); !errors.Is(err, jwkscache.ErrUnknownProvider) {
		t.Fatalf("Refresh error = %v", err)
	}
}

func TestRefresh_NotModifiedRenewsTTLWithoutReparsing(t *testing.T) {
	k, srv := newKeyServer(t)
	srv.set(func(s *jwksServer) { s.etag, s.cacheControl = `"v1"`, "max-age=600" })
	f := newFixture(t, srv)
	if ev := f.register(t); ev.Result != jwkscache.RefreshFetched {
		t.Fatalf("first fetch = %+v", ev)
	}
	if got, want := f.status(t).ExpiresAt, t0.Add(600*time.Second); !got.Equal(want) {
		t.Fatalf("ExpiresAt = %v, want %v", got, want)
	}
	// A document the cache would reject if it parsed it: it must not.
	srv.set(func(s *jwksServer) { s.doc = []byte("not json") })
	f.clk.Advance(100 * time.Second)
	if err := f.reg.Refresh(context.Background(), "acme", "main"); err != nil {
		t.Fatal(err)
	}
	if ev := f.next(t); ev.Result != jwkscache.RefreshNotModified || ev.HTTPStatus != http.StatusNotModified {
		t.Fatalf("refresh = %+v", ev)
	}
	srv.mu.Lock()
	inm := srv.lastHeaders.Get("If-None-Match")
	srv.mu.Unlock()
	if inm != `"v1"` {
		t.Fatalf("If-None-Match = %q", inm)
	}
	st := f.status(t)
	if want := t0.Add(700 * time.Second); !st.ExpiresAt.Equal(want) {
		t.Fatalf("ExpiresAt after 304 = %v, want %v", st.ExpiresAt, want)
	}
	if st.RefreshNotModified != 1 || st.RefreshFetched != 1 {
		t.Fatalf("status = %+v", st)
	}
	f.mustKey(t, "k1", k)
}

func TestRefresh_TTLFromCacheHeadersIsClamped(t *testing.T) {
	k := newECKey(t)
	doc := jwksDoc(t, jwkJSON(t, &k.PublicKey, "k1", ""))
	for _, tc := range []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"max-age inside the bounds", http.Header{"Cache-Control": {"public, max-age=600"}}, 600 * time.Second},
		{"max-age 5s raised to min_ttl", http.Header{"Cache-Control": {"max-age=5"}}, 30 * time.Second},
		{"max-age of a week cut to max_ttl", http.Header{"Cache-Control": {"max-age=604800"}}, 24 * time.Hour},
		{"no-store means min_ttl", http.Header{"Cache-Control": {"no-store, max-age=600"}}, 30 * time.Second},
		{"no-cache means min_ttl", http.Header{"Cache-Control": {"no-cache"}}, 30 * time.Second},
		{"Age is subtracted", http.Header{"Cache-Control": {"max-age=600"}, "Age": {"100"}}, 500 * time.Second},
		{"Expires relative to Date", http.Header{
			"Date":    {"Mon, 01 Jan 2024 00:00:00 GMT"},
			"Expires": {"Mon, 01 Jan 2024 01:00:00 GMT"},
		}, time.Hour},
		{"no freshness information means min_ttl", http.Header{}, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, doc)
			srv.serve(func(w http.ResponseWriter, r *http.Request, doc []byte) {
				for name, v := range tc.header {
					w.Header()[name] = v
				}
				_, _ = w.Write(doc)
			})
			f := newFixture(t, srv)
			f.register(t)
			if got := f.status(t).ExpiresAt.Sub(t0); got != tc.want {
				t.Fatalf("TTL = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRefresh_EarlyRefreshRunsOnTimerAndServesOldSetMeanwhile(t *testing.T) {
	k, srv := newKeyServer(t, "max-age=600")
	f := newFixture(t, srv)
	f.register(t, func(r *jwkscache.Registration) {
		r.RefreshEarly = 30 * time.Second
		r.PrefetchJitter = 5 * time.Second
	})
	// The refresh is armed with no request at all.
	next, ok := f.clk.Next()
	if !ok {
		t.Fatal("no refresh scheduled")
	}
	lo, hi := 600*time.Second-30*time.Second-5*time.Second, 600*time.Second-30*time.Second+5*time.Second
	if next < lo || next > hi {
		t.Fatalf("refresh scheduled in %v, want within [%v, %v]", next, lo, hi)
	}
	if st := f.status(t); !st.NextRefresh.Equal(t0.Add(next)) {
		t.Fatalf("NextRefresh = %v, want %v", st.NextRefresh, t0.Add(next))
	}
	k2 := newECKey(t)
	srv.set(func(s *jwksServer) { s.doc = jwksDoc(t, jwkJSON(t, &k2.PublicKey, "k2", "")) })
	arrived, release := holdServer(t, srv)
	f.clk.Advance(next)
	<-arrived
	// The refresh is stuck at the server; lookups answer from the old set.
	f.mustKey(t, "k1", k)
	if st := f.status(t); st.State != jwkscache.StateRefreshing || st.Stale {
		t.Fatalf("status during refresh = %+v", st)
	}
	release()
	if ev := f.next(t); ev.Result != jwkscache.RefreshFetched || ev.Keys != 1 {
		t.Fatalf("refresh = %+v", ev)
	}
	f.mustKey(t, "k2", k2)
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("server saw %d requests, want 2", got)
	}
}

func TestKey_StaleWhileErrorThenUnavailable(t *testing.T) {
	k, srv := newKeyServer(t, "max-age=60")
	f := newFixture(t, srv)
	f.register(t, func(r *jwkscache.Registration) {
		r.StaleWhileError = 60 * time.Second
		r.PrefetchJitter = 0
	})
	srv.down(http.StatusBadGateway)
	// The scheduled refresh (at 30 s) fails; the set is still fresh.
	f.clk.Advance(30 * time.Second)
	if ev := f.next(t); ev.Result != jwkscache.RefreshError || ev.HTTPStatus != http.StatusBadGateway {
		t.Fatalf("refresh = %+v", ev)
	}
	f.mustKey(t, "k1", k)
	if st := f.status(t); st.StaleServes != 0 || st.ConsecutiveErrors != 1 || st.RefreshErrors != 1 {
		t.Fatalf("status = %+v", st)
	}
	// Past expires_at: still served, counted as stale.
	f.clk.Advance(31 * time.Second)
	f.mustKey(t, "k1", k)
	f.mustKey(t, "k1", k)
	st := f.status(t)
	if !st.Stale || st.StaleServes != 2 || st.StaleServeRatio <= 0 {
		t.Fatalf("status when stale = %+v", st)
	}
	// Past expires_at + stale_while_error: unavailable, not "not found".
	f.clk.Advance(60 * time.Second)
	_, err := f.key("k1", "ES256")
	wantErr(t, err, jwkscache.ErrUnavailable)
	if errors.Is(err, jwkscache.ErrKeyNotFound) {
		t.Fatalf("error %v must not be ErrKeyNotFound", err)
	}
}

func TestKey_UnknownKIDFloodMakesAtMostOneRequest(t *testing.T) {
	k, srv := newKeyServer(t)
	f := newFixture(t, srv)
	f.register(t)
	const workers, each = 50, 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	var unexpected []error
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				_, err := f.key(fmt.Sprintf("rnd-%d-%d-%d", w, i, rand.Int64()), "ES256")
				if !errors.Is(err, jwkscache.ErrKeyNotFound) {
					mu.Lock()
					unexpected = append(unexpected, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(unexpected) > 0 {
		t.Fatalf("%d lookups did not fail with ErrKeyNotFound, first: %v", len(unexpected), unexpected[0])
	}
	if got := srv.hits.Load(); got > 2 {
		t.Fatalf("server saw %d requests, want at most 2 (first fetch + one refresh)", got)
	}
	f.mustKey(t, "k1", k)
}

func TestKey_RotatedKeyResolvesAfterOneRefresh(t *testing.T) {
	k1, k2 := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k1.PublicKey, "k1", "")))
	f := newFixture(t, srv)
	f.register(t)
	// A scheduled refresh must not start the unknown-kid cooldown.
	f.clk.Advance(time.Hour)
	f.next(t)
	srv.set(func(s *jwksServer) { s.doc = jwksDoc(t, jwkJSON(t, &k2.PublicKey, "k2", "")) })
	f.mustKey(t, "k2", k2)
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("server saw %d requests, want 3", got)
	}
	// The rotation replaced the whole set: k1 is gone.
	_, err := f.key("k1", "ES256")
	wantErr(t, err, jwkscache.ErrKeyNotFound)
}

func TestKey_UnknownKIDInsideCooldownAnswersAtOnce(t *testing.T) {
	_, srv := newKeyServer(t)
	f := newFixture(t, srv)
	f.register(t, func(r *jwkscache.Registration) { r.UnknownKIDCooldown = 10 * time.Second })
	_, err := f.key("nope", "ES256")
	wantErr(t, err, jwkscache.ErrKeyNotFound)
	f.next(t)
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("server saw %d requests, want 2", got)
	}
	// Inside the cooldown, even with the server hanging, the answer is immediate.
	srv.set(func(s *jwksServer) {
		s.handler = func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	})
	_, err = f.key("nope-2", "ES256")
	wantErr(t, err, jwkscache.ErrKeyNotFound)
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("server saw %d requests, want 2", got)
	}
	// After the cooldown, a new unknown kid may refresh again.
	srv.set(func(s *jwksServer) { s.handler = nil })
	f.clk.Advance(11 * time.Second)
	_, err = f.key("nope-3", "ES256")
	wantErr(t, err, jwkscache.ErrKeyNotFound)
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("server saw %d requests, want 3", got)
	}
}

func TestKey_NegativeCacheRemembersMissingKID(t *testing.T) {
	_, srv := newKeyServer(t)
	f := newFixture(t, srv)
	f.register(t, func(r *jwkscache.Registration) {
		r.UnknownKIDCooldown = time.Second
		r.NegativeCacheTTL = time.Minute
	})
	_, err := f.key("gone", "ES256")
	wantErr(t, err, jwkscache.ErrKeyNotFound)
	f.next(t)
	f.clk.Advance(2 * time.Second) // past the cooldown
	_, err = f.key("gone", "ES256")
	wantErr(t, err, jwkscache.ErrKeyNotFound)
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("negative-cached kid fetched again: %d requests, want 2", got)
	}
	f.clk.Advance(time.Minute)
	_, err = f.key("gone", "ES256")
	wantErr(t, err, jwkscache.ErrKeyNotFound)
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("after the negative TTL: %d requests, want 3", got)
	}
}

func TestRefresh_KeyRemovedUpstreamStopsVerifying(t *testing.T) {
	k1, k2 := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k1.PublicKey, "k1", ""), jwkJSON(t, &k2.PublicKey, "k2", "")))
	f := newFixture(t, srv)
	f.register(t)
	f.mustKey(t, "k1", k1)
	srv.set(func(s *jwksServer) { s.doc = jwksDoc(t, jwkJSON(t, &k2.PublicKey, "k2", "")) })
	// A manual refresh fetches although the set is fresh.
	if err := f.reg.Refresh(context.Background(), "acme", "main"); err != nil {
		t.Fatal(err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("manual refresh of a fresh set: %d requests, want 2", got)
	}
	_, err := f.key("k1", "ES256")
	wantErr(t, err, jwkscache.ErrKeyNotFound)
	f.mustKey(t, "k2", k2)
	if got := f.status(t).KeyIDs; len(got) != 1 || got[0] != "k2" {
		t.Fatalf("KeyIDs = %v", got)
	}
}

func TestRegister_SameRegistrationKeepsWarmCache(t *testing.T) {
	k, srv := newKeyServer(t)
	f := newFixture(t, srv)
	f.register(t)
	f.mustKey(t, "k1", k)
	// A reload builds an equal registration (empty rather than nil slices).
	again := f.registration(func(r *jwkscache.Registration) { r.AllowedDomains, r.PinnedSPKI = []string{}, []string{} })
	if err := f.reg.Register(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	if st := f.status(t); st.Requests != 1 || st.State != jwkscache.StateReady || srv.hits.Load() != 1 {
		t.Fatalf("equal registration replaced the provider: %+v, %d requests", st, srv.hits.Load())
	}
	changed := f.registration(func(r *jwkscache.Registration) { r.StaleWhileError = 2 * time.Minute })
	if err := f.reg.Register(context.Background(), changed); err != nil {
		t.Fatal(err)
	}
	f.next(t)
	if st := f.status(t); st.Requests != 0 || srv.hits.Load() != 2 {
		t.Fatalf("changed registration kept the old provider: %+v", st)
	}
}

func TestRegistry_StatusesSortedAndUnregister(t *testing.T) {
	_, srv := newKeyServer(t)
	f := newFixture(t, srv)
	for _, id := range [][2]string{{"zeta", "b"}, {"alpha", "z"}, {"alpha", "a"}} {
		reg := f.reg.NewRegistration(id[0], id[1], srv.url())
		if err := f.reg.Register(context.Background(), reg); err != nil {
			t.Fatal(err)
		}
		f.next(t)
	}
	var got []string
	for _, st := range f.reg.Statuses() {
		got = append(got, st.TenantID+"/"+st.ProviderID)
	}
	if want := "[alpha/a alpha/z zeta/b]"; fmt.Sprint(got) != want {
		t.Fatalf("Statuses order = %v, want %v", got, want)
	}
	if !f.reg.Unregister("alpha", "z") || f.reg.Unregister("alpha", "z") {
		t.Fatal("Unregister reported wrongly")
	}
	_, err := f.reg.Key(context.Background(), "alpha", "z", "k1", "ES256")
	wantErr(t, err, jwkscache.ErrUnknownProvider)
	if _, ok := f.reg.Status("alpha", "z"); ok {
		t.Fatal("status of an unregistered provider")
	}
}

func TestRegister_FirstFetchesBoundedByMaxConcurrentFetches(t *testing.T) {
	_, srv := newKeyServer(t)
	var mu sync.Mutex
	cur, peak := 0, 0
	arrived := make(chan struct{}, 100)
	release := make(chan struct{})
	srv.serve(func(w http.ResponseWriter, r *http.Request, doc []byte) {
		mu.Lock()
		cur++
		peak = max(peak, cur)
		mu.Unlock()
		arrived <- struct{}{}
		<-release
		mu.Lock()
		cur--
		mu.Unlock()
		_, _ = w.Write(doc)
	})
	f := newFixture(t, srv, func(o *jwkscache.Options) { o.MaxConcurrentFetches = 2 })
	const n = 20
	for i := range n {
		reg := f.reg.NewRegistration("acme", fmt.Sprintf("p%d", i), srv.url())
		if err := f.reg.Register(context.Background(), reg); err != nil {
			t.Fatal(err)
		}
	}
	<-arrived
	<-arrived
	close(release)
	for range n {
		if ev := f.next(t); ev.Err != nil {
			t.Fatal(ev.Err)
		}
	}
	if peak > 2 {
		t.Fatalf("%d fetches ran at once, want at most 2", peak)
	}
}

func TestRefresh_ConcurrentDemandsShareOneFetch(t *testing.T) {
	_, srv := newKeyServer(t)
	f := newFixture(t, srv)
	f.register(t)
	arrived, release := holdServer(t, srv)
	refreshed := make(chan error, 1)
	go func() { refreshed <- f.reg.Refresh(context.Background(), "acme", "main") }()
	<-arrived
	// While that fetch runs, every other demand joins it instead of fetching.
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		if err := f.reg.Refresh(canceled, "acme", "main"); !errors.Is(err, context.Canceled) {
			t.Fatalf("joined refresh: %v", err)
		}
	}
	release()
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Refresh(context.Background(), "acme", "main"); err != nil {
		t.Fatal(err)
	}
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("server saw %d requests, want 3 (first, shared, last)", got)
	}
}

func TestStatus_LastRefreshDurationIsTheRefreshsOwn(t *testing.T) {
	_, srv := newKeyServer(t)
	f := newFixture(t, srv)
	const took = 1500 * time.Millisecond
	srv.serve(func(w http.ResponseWriter, r *http.Request, doc []byte) {
		f.clk.Advance(took) // the identity provider answers slowly
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(doc)
	})
	if ev := f.register(t); ev.Result != jwkscache.RefreshFetched || ev.Duration != took {
		t.Fatalf("refresh = %+v, want fetched in %s", ev, took)
	}
	if got := f.status(t).LastRefreshDuration; got != took {
		t.Fatalf("Status.LastRefreshDuration = %s, want %s", got, took)
	}
}
