package jwkscache_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
	"github.com/extauthz/extauthz/jwkscache/clocktest"
)

// failingFixture registers a provider whose server always answers 500.
func failingFixture(t *testing.T, policy jwkscache.RetryPolicy) *fixture {
	t.Helper()
	srv := newJWKSServer(t, nil)
	srv.down(http.StatusInternalServerError)
	f := newFixture(t, srv)
	reg := f.registration(func(r *jwkscache.Registration) {
		r.RetryPolicy = policy
		r.PrefetchJitter = 0
	})
	if err := f.reg.Register(t.Context(), reg); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRetry_AttemptsAndDelaysPerJitterStrategy(t *testing.T) {
	const initial, maxBackoff = 100 * time.Millisecond, 800 * time.Millisecond
	for _, tc := range []struct {
		jitter jwkscache.Jitter
		// bounds returns the allowed range of wait i given the previous wait.
		bounds func(i int, prev time.Duration) (lo, hi time.Duration)
	}{
		{jwkscache.JitterNone, func(i int, _ time.Duration) (time.Duration, time.Duration) {
			d := min(initial<<i, maxBackoff)
			return d, d
		}},
		{jwkscache.JitterFull, func(i int, _ time.Duration) (time.Duration, time.Duration) {
			return 0, min(initial<<i, maxBackoff)
		}},
		{jwkscache.JitterDecorrelated, func(_ int, prev time.Duration) (time.Duration, time.Duration) {
			return initial, min(maxBackoff, 3*prev)
		}},
	} {
		t.Run(string(tc.jitter), func(t *testing.T) {
			f := failingFixture(t, jwkscache.RetryPolicy{
				MaxRetries: 4, AttemptTimeout: time.Second, InitialBackoff: initial,
				MaxBackoff: maxBackoff, Deadline: time.Minute, Jitter: tc.jitter,
			})
			ev, waits := f.drive(t, maxBackoff)
			if ev.Result != jwkscache.RefreshError || ev.HTTPStatus != http.StatusInternalServerError || !strings.Contains(ev.Err.Error(), "5 attempts") {
				t.Fatalf("outcome = %+v", ev)
			}
			if got := f.srv.hits.Load(); got != 5 {
				t.Fatalf("server saw %d attempts, want 1 + max_retries = 5", got)
			}
			// (A full-jitter wait of exactly 0 needs no timer; its odds here are 1 in 10^8.)
			if len(waits) != 4 {
				t.Fatalf("waits = %v, want 4", waits)
			}
			prev := initial
			for i, w := range waits {
				lo, hi := tc.bounds(i, prev)
				if w < lo || w > hi {
					t.Errorf("wait %d = %v, want within [%v, %v]", i, w, lo, hi)
				}
				prev = w
			}
			if tc.jitter == jwkscache.JitterNone {
				want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
				for i := range want {
					if waits[i] != want[i] {
						t.Fatalf("waits = %v, want %v", waits, want)
					}
				}
			}
		})
	}
}

func TestRetry_NoAttemptAfterDeadline(t *testing.T) {
	// Waits of 100, 200 and 400 s on the fake clock: the third would end
	// past the 500 s deadline. (Seconds, not milliseconds: the deadline also
	// bounds the refresh's context in real time, and a loaded machine can
	// take 500 ms for three attempts.)
	f := failingFixture(t, jwkscache.RetryPolicy{
		MaxRetries: 10, AttemptTimeout: 100 * time.Second, InitialBackoff: 100 * time.Second,
		MaxBackoff: 400 * time.Second, Deadline: 500 * time.Second, Jitter: jwkscache.JitterNone,
	})
	ev, waits := f.drive(t, 400*time.Second)
	if got := f.srv.hits.Load(); got != 3 {
		t.Fatalf("server saw %d attempts, want 3 (waits %v)", got, waits)
	}
	if ev.Err == nil || !strings.Contains(ev.Err.Error(), "retry deadline 8m20s reached") {
		t.Fatalf("outcome = %+v", ev)
	}
}

func TestRetry_LookupsNeverWaitForRetries(t *testing.T) {
	k, srv := newKeyServer(t)
	f := newFixture(t, srv)
	f.register(t, func(r *jwkscache.Registration) {
		r.RetryPolicy.MaxRetries = 3
		r.RetryPolicy.InitialBackoff = time.Second
		r.RetryPolicy.MaxBackoff = time.Second
		r.RetryPolicy.Jitter = jwkscache.JitterNone
	})
	srv.down(http.StatusInternalServerError)
	// An unknown kid triggers a refresh whose first attempt fails; the
	// caller gets its answer while the refresh sits in backoff.
	_, err := f.key("new", "ES256")
	wantErr(t, err, jwkscache.ErrKeyNotFound)
	waitTimer(t, f, time.Second)
	if st := f.status(t); st.State != jwkscache.StateRefreshing {
		t.Fatalf("state = %v, want Refreshing", st.State)
	}
	f.mustKey(t, "k1", k)
	if ev, _ := f.drive(t, time.Second); ev.Result != jwkscache.RefreshError {
		t.Fatalf("outcome = %+v", ev)
	}
	if got := f.srv.hits.Load(); got != 5 {
		t.Fatalf("server saw %d requests, want 5", got)
	}
}

// waitTimer waits until the fake clock has a timer pending that fires in
// exactly d. It does not read the earliest timer: a timer armed earlier (the
// scheduled refresh) is pending before the one the test waits for.
func waitTimer(t *testing.T, f *fixture, d time.Duration) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		changed := f.clk.Changed()
		pending := f.clk.Pending()
		if slices.Contains(pending, d) {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no %v timer armed; pending %v", d, pending)
		}
	}
}

// TestRetry_DeadlineExcludesWaitForFetchSlot registers providers while the
// only fetch slot is held, moves the clock far past their retry deadline,
// and frees the slot: each must still get its attempts (the first fails,
// the retry succeeds) rather than give up without having tried.
func TestRetry_DeadlineExcludesWaitForFetchSlot(t *testing.T) {
	const queued = 20
	doc := jwksDoc(t, jwkJSON(t, &newECKey(t).PublicKey, "k1", "ES256"))
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		n := hits[r.URL.Path]
		mu.Unlock()
		switch {
		case r.URL.Path == "/block":
			close(entered)
			<-release
		case n == 1:
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	clk := clocktest.New(t0)
	evs := make(events, 100)
	r, err := jwkscache.New(jwkscache.Options{HTTPClient: srv.Client(), Clock: clk, Observer: evs, MaxConcurrentFetches: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	ctx := t.Context()
	if err := r.Register(ctx, r.NewRegistration("acme", "blocker", srv.URL+"/block")); err != nil {
		t.Fatal(err)
	}
	<-entered
	for i := range queued {
		reg := r.NewRegistration("acme", fmt.Sprintf("p%d", i), fmt.Sprintf("%s/p%d", srv.URL, i))
		reg.PrefetchJitter = 0
		reg.RetryPolicy = jwkscache.RetryPolicy{MaxRetries: 1, AttemptTimeout: time.Second,
			InitialBackoff: 100 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Deadline: time.Second, Jitter: jwkscache.JitterNone}
		if err := r.Register(ctx, reg); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute) // the queued providers wait, far past their deadline
	close(release)
	deadline := time.After(20 * time.Second)
	for done := 0; done < queued+1; {
		changed := clk.Changed()
		select {
		case ev := <-evs:
			if ev.Err != nil {
				t.Fatalf("%s: %v", ev.ProviderID, ev.Err)
			}
			done++
			continue
		default:
		}
		if d, ok := clk.Next(); ok && d <= 100*time.Millisecond {
			clk.Advance(d)
			continue
		}
		select {
		case <-changed:
		case ev := <-evs:
			if ev.Err != nil {
				t.Fatalf("%s: %v", ev.ProviderID, ev.Err)
			}
			done++
		case <-deadline:
			t.Fatal("refreshes did not complete")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range queued {
		if n := hits[fmt.Sprintf("/p%d", i)]; n != 2 {
			t.Errorf("p%d: %d requests, want 2 (a failed attempt and its retry)", i, n)
		}
	}
}
