package jwkscache_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// TestSchedule_RepeatedFailuresBackOffUpToMinTTL: after each failed refresh
// the next one comes max_backoff·2^(failures−1) later, never sooner than 1s
// and never later than min_ttl, so an identity provider that is down is
// asked again at a falling rate, and one that recovers is found within
// min_ttl.
func TestSchedule_RepeatedFailuresBackOffUpToMinTTL(t *testing.T) {
	f := failingFixture(t, jwkscache.RetryPolicy{
		MaxRetries: 0, AttemptTimeout: time.Second, InitialBackoff: 100 * time.Millisecond,
		MaxBackoff: 500 * time.Millisecond, Deadline: time.Second, Jitter: jwkscache.JitterNone,
	})
	want := []time.Duration{time.Second, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second}
	var got []time.Duration
	for i := range want {
		if ev := f.next(t); ev.Result != "error" {
			t.Fatalf("refresh %d: %+v", i+1, ev)
		}
		st := f.status(t)
		if st.ConsecutiveErrors != i+1 {
			t.Fatalf("refresh %d: ConsecutiveErrors = %d", i+1, st.ConsecutiveErrors)
		}
		d := st.NextRefresh.Sub(f.clk.Now())
		if pending := f.clk.Pending(); len(pending) != 1 || pending[0] != d {
			t.Fatalf("refresh %d: pending timers %v, want only the next refresh in %v", i+1, pending, d)
		}
		got = append(got, d)
		f.clk.Advance(d)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delays after failures = %v, want %v", got, want)
	}
	// One success resets the schedule to the document's freshness.
	f.srv.set(func(s *jwksServer) { s.handler = nil; s.doc = jwksDoc(t, jwkJSON(t, &newECKey(t).PublicKey, "k1", "")) })
	if ev := f.next(t); ev.Result != "fetched" {
		t.Fatalf("recovery: %+v", ev)
	}
	if st := f.status(t); st.ConsecutiveErrors != 0 || st.NextRefresh.Sub(f.clk.Now()) < 30*time.Minute {
		t.Fatalf("after recovery: ConsecutiveErrors %d, next refresh in %v", st.ConsecutiveErrors, st.NextRefresh.Sub(f.clk.Now()))
	}
}

// TestClose_DuringBackoffEndsTheRefresh: Close while a refresh waits
// between attempts returns without waiting out the backoff, and no attempt
// follows.
func TestClose_DuringBackoffEndsTheRefresh(t *testing.T) {
	f := failingFixture(t, jwkscache.RetryPolicy{
		MaxRetries: 5, AttemptTimeout: time.Second, InitialBackoff: time.Hour,
		MaxBackoff: time.Hour, Deadline: 10 * time.Hour, Jitter: jwkscache.JitterNone,
	})
	waitTimer(t, f, time.Hour) // the first attempt failed; the refresh sleeps
	closed := make(chan error)
	go func() { closed <- f.reg.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the backoff")
	}
	if ev := f.next(t); ev.Result != "error" || !errors.Is(ev.Err, context.Canceled) {
		t.Fatalf("outcome = %+v, want the refresh cancelled", ev)
	}
	if pending := f.clk.Pending(); len(pending) != 0 {
		t.Fatalf("timers left after Close: %v", pending)
	}
	f.clk.Advance(24 * time.Hour)
	if got := f.srv.hits.Load(); got != 1 {
		t.Fatalf("server saw %d attempts, want 1", got)
	}
}

// TestRefresh_NotModifiedWithNothingCached: a 304 answers a conditional
// request; with no set cached there was none, and the answer is an error,
// not an empty or nil set.
func TestRefresh_NotModifiedWithNothingCached(t *testing.T) {
	srv := newJWKSServer(t, nil)
	srv.serve(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.WriteHeader(http.StatusNotModified)
	})
	f := newFixture(t, srv)
	ev := f.register(t)
	if ev.Result != "error" || ev.Err == nil || !strings.Contains(ev.Err.Error(), "304 Not Modified without a cached set") {
		t.Fatalf("outcome = %+v", ev)
	}
	st := f.status(t)
	if st.State != jwkscache.StateEmpty || st.RefreshNotModified != 0 || st.ConsecutiveErrors != 1 {
		t.Fatalf("status = %+v", st)
	}
	_, err := f.key("k1", "ES256")
	wantErr(t, err, jwkscache.ErrUnavailable)
}
