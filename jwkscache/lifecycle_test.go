package jwkscache_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// waitFor polls cond, yielding the CPU, until it holds. The real-time bound
// only turns a hang into a failure; no test logic depends on it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func TestKey_LookupWaitingWhileRegisterReplacesProviderIsServedByReplacement(t *testing.T) {
	_, srv := newKeyServer(t)
	arrived, release := holdServer(t, srv)
	f := newFixture(t, srv)
	f.start(t)
	<-arrived // the first fetch hangs at the identity provider
	got := make(chan error, 1)
	go func() {
		_, err := f.key("k1", "ES256")
		got <- err
	}()
	waitFor(t, "the lookup to start waiting", func() bool { return f.status(t).Requests == 1 })

	// A reload changes a setting: the provider is replaced while the lookup
	// waits on its first fetch.
	f.start(t, func(r *jwkscache.Registration) { r.MinTTL = time.Minute })
	<-arrived // the replacement's first fetch
	release()
	if err := <-got; err != nil {
		t.Fatalf("lookup in flight during Register: %v (want the replacement's key)", err)
	}
}

func TestKey_LookupWaitingWhileUnregisteredReportsUnknownProvider(t *testing.T) {
	_, srv := newKeyServer(t)
	arrived, _ := holdServer(t, srv)
	f := newFixture(t, srv)
	f.start(t)
	<-arrived
	got := make(chan error, 1)
	go func() {
		_, err := f.key("k1", "ES256")
		got <- err
	}()
	waitFor(t, "the lookup to start waiting", func() bool { return f.status(t).Requests == 1 })
	if !f.reg.Unregister("acme", "main") {
		t.Fatal("Unregister found nothing")
	}
	wantErr(t, <-got, jwkscache.ErrUnknownProvider)
}

func TestUnregister_DuringRefreshStopsItAndItsTimers(t *testing.T) {
	_, srv := newKeyServer(t)
	f := newFixture(t, srv)
	if ev := f.register(t); ev.Err != nil {
		t.Fatal(ev.Err)
	}
	arrived := make(chan struct{}, 10)
	srv.serve(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		arrived <- struct{}{}
		<-r.Context().Done() // hangs until the client gives up
	})
	refreshed := make(chan error, 1)
	go func() { refreshed <- f.reg.Refresh(context.Background(), "acme", "main") }()
	<-arrived
	if !f.reg.Unregister("acme", "main") {
		t.Fatal("Unregister found nothing")
	}
	if err := <-refreshed; err == nil {
		t.Fatal("Refresh cut short by Unregister reported success")
	}
	if _, ok := f.reg.Status("acme", "main"); ok {
		t.Fatal("provider still listed after Unregister")
	}
	_, err := f.key("k1", "ES256")
	wantErr(t, err, jwkscache.ErrUnknownProvider)
	// Nothing of the provider is left on the clock: no scheduled refresh,
	// no retry, no phase timer.
	hits := srv.hits.Load()
	if p := f.clk.Pending(); len(p) != 0 {
		t.Fatalf("timers left after Unregister: %v", p)
	}
	f.clk.Advance(48 * time.Hour)
	if got := srv.hits.Load(); got != hits {
		t.Fatalf("%d requests after Unregister", got-hits)
	}
}

func TestParse_RSAKeyLargerThan8192BitsRefused(t *testing.T) {
	good := newECKey(t)
	// A 16,384-bit modulus: crypto/rsa would verify with it, each
	// verification costing about 64 times a 2048-bit one.
	n := make([]byte, 2048)
	if _, err := rand.Read(n); err != nil {
		t.Fatal(err)
	}
	n[0] |= 0x80
	n[len(n)-1] |= 1
	huge, _ := json.Marshal(map[string]string{"kty": "RSA", "kid": "huge", "n": base64.RawURLEncoding.EncodeToString(n), "e": "AQAB"})
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &good.PublicKey, "good", ""), huge))
	f := newFixture(t, srv)
	if ev := f.register(t); ev.Err != nil || ev.Keys != 1 {
		t.Fatalf("refresh = %+v, want the one good key", ev)
	}
	if st := f.status(t); st.SkippedKeys != 1 {
		t.Fatalf("SkippedKeys = %d, want 1", st.SkippedKeys)
	}
	_, err := f.key("huge", "RS256")
	wantErr(t, err, jwkscache.ErrKeyNotFound)
	f.mustKey(t, "good", good)
}

func TestKey_HugeKIDIsBoundedInErrors(t *testing.T) {
	_, srv := newKeyServer(t)
	f := newFixture(t, srv)
	f.register(t)
	kid := strings.Repeat("A", 16<<10) // a kid as large as the token limit allows
	for i := range 2 {                 // first: the unknown-kid refresh; then: the cooldown
		_, err := f.key(kid, "ES256")
		wantErr(t, err, jwkscache.ErrKeyNotFound)
		if len(err.Error()) > 256 {
			t.Fatalf("lookup %d: error of %d bytes quotes the whole kid", i, len(err.Error()))
		}
		if !strings.Contains(err.Error(), "16384 bytes") {
			t.Fatalf("lookup %d: error %q does not say how long the kid was", i, err)
		}
	}
	_, err := f.key("k1", strings.Repeat("X", 4096))
	if !errors.Is(err, jwkscache.ErrKeyNotFound) || len(err.Error()) > 256 {
		t.Fatalf("long alg: %v", err)
	}
	if got := srv.hits.Load(); got > 2 {
		t.Fatalf("%d requests for one unknown kid", got)
	}
}

func TestRefresh_NotModifiedWithoutCacheHeadersKeepsStoredFreshness(t *testing.T) {
	_, srv := newKeyServer(t)
	srv.serve(func(w http.ResponseWriter, r *http.Request, doc []byte) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			// Many servers send a bare 304: only the validator.
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(doc)
	})
	f := newFixture(t, srv)
	if ev := f.register(t); ev.Result != jwkscache.RefreshFetched {
		t.Fatalf("first fetch = %+v", ev)
	}
	for i := 1; i <= 2; i++ { // the stored fields survive more than one 304
		f.clk.Advance(10 * time.Minute)
		if err := f.reg.Refresh(context.Background(), "acme", "main"); err != nil {
			t.Fatal(err)
		}
		if ev := f.next(t); ev.Result != jwkscache.RefreshNotModified {
			t.Fatalf("refresh %d = %+v", i, ev)
		}
		// RFC 9111 §4.3.4: the stored max-age=3600 still applies, not min_ttl.
		if got, want := f.status(t).ExpiresAt, t0.Add(time.Duration(i)*10*time.Minute+time.Hour); !got.Equal(want) {
			t.Fatalf("ExpiresAt after 304 #%d = %v, want %v", i, got, want)
		}
	}
}

func TestRefresh_NotModifiedUpdatesStoredCacheControl(t *testing.T) {
	_, srv := newKeyServer(t)
	srv.set(func(s *jwksServer) { s.etag, s.cacheControl = `"v1"`, "max-age=3600" })
	f := newFixture(t, srv)
	f.register(t)
	srv.set(func(s *jwksServer) { s.cacheControl = "max-age=120" }) // sent on the 304
	if err := f.reg.Refresh(context.Background(), "acme", "main"); err != nil {
		t.Fatal(err)
	}
	if ev := f.next(t); ev.Result != jwkscache.RefreshNotModified {
		t.Fatalf("refresh = %+v", ev)
	}
	if got, want := f.status(t).ExpiresAt, t0.Add(120*time.Second); !got.Equal(want) {
		t.Fatalf("ExpiresAt = %v, want %v (the 304's Cache-Control replaces the stored one)", got, want)
	}
}

func TestRefresh_OversizedValidatorsAreNotSentBack(t *testing.T) {
	_, srv := newKeyServer(t)
	srv.serve(func(w http.ResponseWriter, r *http.Request, doc []byte) {
		// Like most servers, refuse oversized request headers.
		if len(r.Header.Get("If-None-Match")) > 2048 || len(r.Header.Get("If-Modified-Since")) > 2048 {
			w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
			return
		}
		w.Header().Set("ETag", `"`+strings.Repeat("e", 4000)+`"`)
		w.Header().Set("Last-Modified", strings.Repeat("m", 4000))
		_, _ = w.Write(doc)
	})
	f := newFixture(t, srv)
	if ev := f.register(t); ev.Err != nil {
		t.Fatal(ev.Err)
	}
	for range 2 {
		if err := f.reg.Refresh(context.Background(), "acme", "main"); err != nil {
			t.Fatalf("refresh after a response with oversized validators: %v", err)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if v := srv.lastHeaders.Get("If-None-Match") + srv.lastHeaders.Get("If-Modified-Since"); v != "" {
		t.Fatalf("sent validators of %d bytes", len(v))
	}
}

func TestRefresh_ValidLastModifiedIsSentBack(t *testing.T) {
	_, srv := newKeyServer(t)
	const lm = "Mon, 01 Jan 2024 00:00:00 GMT"
	srv.serve(func(w http.ResponseWriter, r *http.Request, doc []byte) {
		if r.Header.Get("If-Modified-Since") == lm {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Last-Modified", lm)
		_, _ = w.Write(doc)
	})
	f := newFixture(t, srv)
	f.register(t)
	if err := f.reg.Refresh(context.Background(), "acme", "main"); err != nil {
		t.Fatal(err)
	}
	if ev := f.next(t); ev.Result != jwkscache.RefreshNotModified {
		t.Fatalf("refresh = %+v, want not_modified", ev)
	}
}

func TestParse_SkippedKeyWithHugeKIDIsLoggedBounded(t *testing.T) {
	good := newECKey(t)
	bad, _ := json.Marshal(map[string]string{"kty": "oct", "kid": strings.Repeat("K", 100<<10), "k": "c2VjcmV0"})
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &good.PublicKey, "good", ""), bad))
	logs := &logSink{}
	f := newFixture(t, srv, func(o *jwkscache.Options) { o.Logger = slog.New(logs) })
	if ev := f.register(t); ev.Err != nil || ev.Keys != 1 {
		t.Fatalf("refresh = %+v", ev)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.lines) != 1 {
		t.Fatalf("logged %d lines, want 1 (the skipped key)", len(logs.lines))
	}
	if n := len(logs.lines[0]); n > 1024 {
		t.Fatalf("skipped-key log line of %d bytes quotes the whole kid", n)
	}
}

func TestParse_ThousandsOfBadKeysLogAFewLines(t *testing.T) {
	good := newECKey(t)
	keys := []json.RawMessage{jwkJSON(t, &good.PublicKey, "good", "")}
	for i := range 5000 {
		keys = append(keys, json.RawMessage(fmt.Sprintf(`{"kty":"%s","kid":"bad-%d"}`, strings.Repeat("Z", i%3+1), i)))
	}
	f, logs := registerSkipping(t, jwksDoc(t, keys...), 1, 5000)
	f.mustKey(t, "good", good)
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if n := len(logs.lines); n > 11 {
		t.Fatalf("one refresh logged %d lines", n)
	}
	if last := logs.lines[len(logs.lines)-1]; !strings.Contains(last, `"count",4990`) {
		t.Fatalf("last line %q does not count the rest", last)
	}
}

func TestRegister_ChangedTimingKeepsServingTheOldSetWhileTheIdentityProviderIsDown(t *testing.T) {
	k, srv := newKeyServer(t, "max-age=600")
	f := newFixture(t, srv)
	f.register(t)
	f.mustKey(t, "k1", k)
	srv.down(http.StatusBadGateway)
	// A reload changes a timing setting while the identity provider is down.
	if err := f.reg.Register(context.Background(), f.registration(func(r *jwkscache.Registration) {
		r.RefreshEarly = time.Minute
		r.StaleWhileError = 2 * time.Minute
	})); err != nil {
		t.Fatal(err)
	}
	if ev := f.next(t); ev.Result != jwkscache.RefreshError {
		t.Fatalf("first fetch of the replacement = %+v, want an error", ev)
	}
	f.mustKey(t, "k1", k)
	st := f.status(t)
	if !st.ExpiresAt.Equal(t0.Add(600*time.Second)) || st.Stale {
		t.Fatalf("status = %+v, want the old set with its own expires_at", st)
	}
	// The replacement's stale_while_error applies to the carried set.
	f.clk.Advance(600*time.Second + 90*time.Second)
	f.mustKey(t, "k1", k)
	f.clk.Advance(31 * time.Second)
	_, err := f.key("k1", "ES256")
	wantErr(t, err, jwkscache.ErrUnavailable)
}

// TestRegister_NewSourceStartsCold: keys fetched under one source (URL and
// the guards of the fetch: HTTPS, allowlist, pins, redirect and size
// limits) never serve a replacement that changes it, since the replacement
// might not have accepted them. Only timing changes keep the keys
// (TestRegister_ChangedTimingKeepsServingTheOldSetWhileTheIdentityProviderIsDown).
func TestRegister_NewSourceStartsCold(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(r *jwkscache.Registration, srvURL string)
	}{
		{"new url", func(r *jwkscache.Registration, u string) { r.JWKSURL = u + "/other-jwks" }},
		{"added pin", func(r *jwkscache.Registration, _ string) {
			r.PinnedSPKI = []string{"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}
		}},
		{"narrowed allowlist", func(r *jwkscache.Registration, _ string) { r.AllowedDomains = []string{"127.0.0.1"} }},
		{"smaller response limit", func(r *jwkscache.Registration, _ string) { r.MaxResponseBytes = 1024 }},
		{"fewer redirects", func(r *jwkscache.Registration, _ string) { r.MaxRedirects = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, srv := newKeyServer(t)
			f := newFixture(t, srv)
			f.register(t)
			f.mustKey(t, "k1", k)
			srv.down(http.StatusBadGateway)
			if err := f.reg.Register(context.Background(), f.registration(func(r *jwkscache.Registration) {
				tc.mutate(r, srv.URL)
			})); err != nil {
				t.Fatal(err)
			}
			f.next(t)
			_, err := f.key("k1", "ES256")
			wantErr(t, err, jwkscache.ErrUnavailable)
		})
	}
}
