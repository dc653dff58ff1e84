package jwkscache_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// TestDiscovery_WarmMetadataOutageBacksOff: a warm provider whose metadata
// endpoint fails (while its key set endpoint works) asks for the metadata
// again on the failure schedule of key-set refreshes (max_backoff·2^(n−1),
// at least 1s, at most min_ttl), not at every second; the last verified
// jwks_uri and its keys keep serving; and the scheduled refresh after the
// endpoint recovers fetches the document again.
func TestDiscovery_WarmMetadataOutageBacksOff(t *testing.T) {
	f, key := newRevalidatingFixture(t)
	if ev := f.registerIDP(t, func(r *jwkscache.Registration) {
		// As TestSchedule_RepeatedFailuresBackOffUpToMinTTL.
		r.RetryPolicy = jwkscache.RetryPolicy{
			MaxRetries: 0, AttemptTimeout: time.Second, InitialBackoff: 100 * time.Millisecond,
			MaxBackoff: 500 * time.Millisecond, Deadline: time.Second, Jitter: jwkscache.JitterNone,
		}
		r.PrefetchJitter = 0
	}); ev.Result != "fetched" {
		t.Fatalf("first refresh = %s (%v)", ev.Result, ev.Err)
	}
	metaExpires := f.status(t).MetadataExpiresAt // max-age=60
	f.idp.set(func(s *idpServer) { s.metaStatus = http.StatusServiceUnavailable })

	// advance moves the clock to the next scheduled refresh, waits for its
	// outcome and returns how long after the previous one it came.
	advance := func() time.Duration {
		t.Helper()
		d := f.status(t).NextRefresh.Sub(f.clk.Now())
		f.clk.Advance(d)
		if ev := f.next(t); ev.Result == "error" {
			t.Fatalf("refresh with the metadata down: %v", ev.Err)
		}
		return d
	}
	if d := advance(); !f.clk.Now().Equal(metaExpires) {
		t.Fatalf("first refresh with the metadata down came %v after the last, at %s; want at the metadata's expiry %s",
			d, f.clk.Now().Sub(t0), metaExpires.Sub(t0))
	}
	before := f.idp.hitsOf(oidcPath)
	want := []time.Duration{time.Second, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := 0; f.clk.Now().Before(metaExpires.Add(10 * time.Minute)); i++ {
		d := advance()
		if w := want[min(i, len(want)-1)]; d != w {
			t.Fatalf("metadata retry %d came %v after the failure before, want %v (the key-set failure schedule)", i+1, d, w)
		}
		f.mustKey(t, "k1", key)
	}
	st := f.status(t)
	if st.MetadataError == "" || st.JWKSURI != f.idp.URL+"/keys" || st.ConsecutiveErrors != 0 {
		t.Fatalf("during the outage: metadata error %q, jwks_uri %q, consecutive errors %d", st.MetadataError, st.JWKSURI, st.ConsecutiveErrors)
	}
	// 1+1+2+4+8+16 s, then every 30 s: 6 + 19 requests in 10 minutes.
	if got := f.idp.hitsOf(oidcPath) - before; got > 25 {
		t.Fatalf("%d metadata requests in 10 minutes of outage, want at most 25", got)
	}

	// Recovery: the next scheduled refresh fetches the document, and the
	// schedule returns to the document's freshness.
	f.idp.set(func(s *idpServer) { s.metaStatus = 0 })
	advance()
	st = f.status(t)
	if st.MetadataError != "" || !st.MetadataFetchedAt.Equal(f.clk.Now()) {
		t.Fatalf("after recovery: metadata error %q, fetched at %s (now %s)", st.MetadataError, st.MetadataFetchedAt.Sub(t0), f.clk.Now().Sub(t0))
	}
	if d := st.NextRefresh.Sub(f.clk.Now()); d != time.Minute {
		t.Fatalf("after recovery the next refresh is in %v, want the metadata's max-age (1m)", d)
	}
	f.mustKey(t, "k1", key)
}
