package jwkscache_test

import (
	"net/http"
	"testing"

	"github.com/extauthz/extauthz/jwkscache"
)

// TestStatus_AttemptedAfterFirstAttemptNotAfterRetries: a provider counts as
// Attempted once its first fetch attempt has finished, even though that
// attempt failed and the retries are still pending, so a replica's readiness
// never waits for a down identity provider's whole retry policy.
func TestStatus_AttemptedAfterFirstAttemptNotAfterRetries(t *testing.T) {
	_, srv := newKeyServer(t)
	// The first request waits for release and fails; later ones get the
	// server's default answer.
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	srv.serve(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		arrived <- struct{}{}
		<-release
		srv.set(func(s *jwksServer) { s.handler = nil })
		http.Error(w, "down", http.StatusInternalServerError)
	})
	f := newFixture(t, srv)
	reg := f.registration(func(r *jwkscache.Registration) { r.RetryPolicy.MaxRetries = 3 })
	if err := f.reg.Register(t.Context(), reg); err != nil {
		t.Fatal(err)
	}
	<-arrived
	if st := f.status(t); st.Attempted || st.State != jwkscache.StateLoading {
		t.Fatalf("during the first attempt: Attempted=%v State=%v, want false, Loading", st.Attempted, st.State)
	}
	close(release)
	// The failed attempt arms the backoff timer on the fake clock; nothing
	// advances it yet, so the refresh is still in flight.
	waitFor(t, "the backoff timer", func() bool { _, ok := f.clk.Next(); return ok })
	if st := f.status(t); !st.Attempted || st.State != jwkscache.StateLoading {
		t.Fatalf("after a failed first attempt: Attempted=%v State=%v, want true, Loading", st.Attempted, st.State)
	}
	ev, _ := f.drive(t, reg.RetryPolicy.MaxBackoff)
	if ev.Result != "fetched" {
		t.Fatalf("refresh result %q (%v), want fetched", ev.Result, ev.Err)
	}
	if st := f.status(t); !st.Attempted || len(st.KeyIDs) != 1 {
		t.Fatalf("after the retry: Attempted=%v keys=%v", st.Attempted, st.KeyIDs)
	}
}
