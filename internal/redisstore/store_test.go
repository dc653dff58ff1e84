package redisstore_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/logtest"

	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/redisstore/redistest"
	"github.com/extauthz/extauthz/jwkscache"
)

const testJWKS = `{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"}]}`

// testKey is the fleet's snapshot key in tests (32 bytes).
var testKey = []byte("0123456789abcdef0123456789abcdef")

func openStore(t *testing.T, url string, opts redisstore.Options) *redisstore.Store {
	t.Helper()
	if opts.HMACKeys == nil {
		opts.HMACKeys = [][]byte{testKey}
	}
	if opts.Timeout == 0 {
		// DefaultTimeout (100 ms) is a production latency budget: on a
		// loaded test machine a call (the first one dials) can miss it, and
		// the store then answers as if Redis were down. Tests of the
		// timeout itself set theirs.
		opts.Timeout = time.Second
	}
	s, err := redisstore.Open(url, "test", opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func validSnapshot(now time.Time) jwkscache.SharedSnapshot {
	return jwkscache.SharedSnapshot{
		TenantID:     "acme",
		ProviderID:   "main_idp",
		JWKS:         []byte(testJWKS),
		ETag:         `W/"v1"`,
		LastModified: "Wed, 25 Nov 2026 10:00:00 GMT",
		ExpiresAt:    now.Add(5 * time.Minute).UTC(),
		PersistedAt:  now.UTC(),
	}
}

func TestSaveLoad_RoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	s := openStore(t, srv.URL(), redisstore.Options{})
	ctx := context.Background()
	want := validSnapshot(time.Now().Truncate(time.Millisecond))
	if err := s.Save(ctx, want); err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, err := s.Load(ctx, "acme", "main_idp", 0)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load after Save (-want +got):\n%s", diff)
	}
	if !s.Healthy() {
		t.Errorf("Healthy = false after successful calls")
	}
	// Another store on the same Redis (another replica) reads it too.
	other := openStore(t, srv.URL(), redisstore.Options{})
	if _, err := other.Load(ctx, "acme", "main_idp", 0); err != nil {
		t.Errorf("Load from a second client: %v", err)
	}
}

func TestLoad_MissingIsNotFound(t *testing.T) {
	srv := redistest.Start(t)
	s := openStore(t, srv.URL(), redisstore.Options{})
	_, err := s.Load(context.Background(), "acme", "nobody", 0)
	if !errors.Is(err, redisstore.ErrNotFound) {
		t.Fatalf("Load of a missing key: err = %v, want ErrNotFound", err)
	}
	if st := s.Stats(); st.Errors != 0 || sum(st.Invalid) != 0 {
		t.Errorf("Stats after a miss = %+v, want nothing counted", st)
	}
}

func TestSave_TTLUntilExpiry(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	now := time.Now()
	s := openStore(t, srv.URL(), redisstore.Options{Now: func() time.Time { return now }})
	tests := []struct {
		name     string
		expires  time.Duration // from now
		min, max time.Duration // accepted PTTL right after the write
	}{
		{"future expiry", 90 * time.Second, 89 * time.Second, 90 * time.Second},
		{"already expired gets 1 s", -10 * time.Second, 1, time.Second},
		{"expiring in 10 ms gets 1 s", 10 * time.Millisecond, 1, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := validSnapshot(now)
			snap.PersistedAt = now.Add(-time.Minute)
			snap.ExpiresAt = now.Add(tt.expires)
			if err := s.Save(context.Background(), snap); err != nil {
				t.Fatalf("Save: %v", err)
			}
			ttl, err := raw.PTTL(context.Background(), "test:acme:main_idp").Result()
			if err != nil {
				t.Fatalf("PTTL: %v", err)
			}
			if ttl < tt.min || ttl > tt.max {
				t.Errorf("PTTL = %v, want in [%v, %v]", ttl, tt.min, tt.max)
			}
		})
	}
}

func TestSave_RefusesInvalid(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	s := openStore(t, srv.URL(), redisstore.Options{})
	now := time.Now()
	tests := []struct {
		name   string
		mutate func(*jwkscache.SharedSnapshot)
		want   string
	}{
		{"non-ASCII etag", func(s *jwkscache.SharedSnapshot) { s.ETag = `"é"` }, "bad_etag"},
		{"header smuggling in last-modified", func(s *jwkscache.SharedSnapshot) { s.LastModified = "x\r\nX-Evil: 1" }, "bad_last_modified"},
		{"expiry before persisted_at", func(s *jwkscache.SharedSnapshot) { s.ExpiresAt = s.PersistedAt.Add(-time.Second) }, "bad_times"},
		{"jwks not JSON", func(s *jwkscache.SharedSnapshot) { s.JWKS = []byte(`{"keys":[`) }, "corrupt"},
		{"jwks not an object", func(s *jwkscache.SharedSnapshot) { s.JWKS = []byte(`[]`) }, "corrupt"},
		{"tenant id reaching into another key", func(s *jwkscache.SharedSnapshot) { s.TenantID = "acme:lease" }, "tenant id"},
		{"bad provider id", func(s *jwkscache.SharedSnapshot) { s.ProviderID = "a/b" }, "provider id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := validSnapshot(now)
			tt.mutate(&snap)
			err := s.Save(context.Background(), snap)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Save: err = %v, want one naming %q", err, tt.want)
			}
		})
	}
	if n, err := raw.DBSize(context.Background()).Result(); err != nil || n != 0 {
		t.Errorf("DBSize after refused saves = %d, %v; want 0", n, err)
	}
}

// TestLoad_RefusesInvalid writes bad values directly (as a buggy or hostile
// writer would) and checks each is refused with its reason and counted.
func TestLoad_RefusesInvalid(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	s := openStore(t, srv.URL(), redisstore.Options{})
	ctx := context.Background()
	const key = "test:acme:main_idp"
	enc := func(tenant, provider, jwks, etag, lastMod, expires, persisted string) string {
		return `{"version":1,"tenant_id":"` + tenant + `","provider_id":"` + provider + `","jwks":` + jwks +
			`,"etag":"` + etag + `","last_modified":"` + lastMod + `","expires_at":"` + expires +
			`","persisted_at":"` + persisted + `"}`
	}
	const exp, pers = "2030-01-01T00:05:00Z", "2030-01-01T00:00:00Z"
	bigJWKS := `{"keys":[],"pad":"` + strings.Repeat("x", 200) + `"}`
	tests := []struct {
		name     string
		value    string
		maxBytes int64
		want     redisstore.Reason
	}{
		{"corrupt JSON", `{"version":1,"tenant_id":"acme"`, 0, redisstore.ReasonCorrupt},
		{"not JSON at all", "\x00\x01garbage", 0, redisstore.ReasonCorrupt},
		{"trailing data", enc("acme", "main_idp", testJWKS, "", "", exp, pers) + "{}", 0, redisstore.ReasonCorrupt},
		{"unknown version", strings.Replace(enc("acme", "main_idp", testJWKS, "", "", exp, pers), `"version":1`, `"version":2`, 1), 0, redisstore.ReasonCorrupt},
		{"jwks not an object", enc("acme", "main_idp", `"keys"`, "", "", exp, pers), 0, redisstore.ReasonCorrupt},
		{"jwks over max_response_bytes", enc("acme", "main_idp", bigJWKS, "", "", exp, pers), 100, redisstore.ReasonTooLarge},
		{"value over the limit, not transferred", `"` + strings.Repeat("x", 20<<10) + `"`, 100, redisstore.ReasonTooLarge},
		{"foreign tenant", enc("evil", "main_idp", testJWKS, "", "", exp, pers), 0, redisstore.ReasonForeign},
		{"foreign provider", enc("acme", "other", testJWKS, "", "", exp, pers), 0, redisstore.ReasonForeign},
		{"expiry before persisted_at", enc("acme", "main_idp", testJWKS, "", "", pers, exp), 0, redisstore.ReasonBadTimes},
		{"expiry missing", strings.Replace(enc("acme", "main_idp", testJWKS, "", "", exp, pers), `"expires_at":"`+exp+`",`, "", 1), 0, redisstore.ReasonBadTimes},
		{"non-ASCII etag", enc("acme", "main_idp", testJWKS, `W/\"caf\u00e9\"`, "", exp, pers), 0, redisstore.ReasonBadETag},
		{"control character in last_modified", enc("acme", "main_idp", testJWKS, "", `x\r\nSet-Cookie: a=b`, exp, pers), 0, redisstore.ReasonBadLastModified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := raw.Set(ctx, key, tt.value, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			before := s.Stats()
			_, err := s.Load(ctx, "acme", "main_idp", tt.maxBytes)
			var ie *redisstore.InvalidSnapshotError
			if !errors.Is(err, redisstore.ErrInvalidSnapshot) || !errors.As(err, &ie) {
				t.Fatalf("Load: err = %v, want an *InvalidSnapshotError", err)
			}
			if ie.Reason != tt.want || ie.Key != key {
				t.Errorf("Load: reason %q key %q, want %q %q (%v)", ie.Reason, ie.Key, tt.want, key, err)
			}
			after := s.Stats()
			if got := after.Invalid[tt.want] - before.Invalid[tt.want]; got != 1 {
				t.Errorf("Invalid[%s] grew by %d, want 1", tt.want, got)
			}
			if sum(after.Invalid)-sum(before.Invalid) != 1 || after.Errors != before.Errors {
				t.Errorf("Stats %+v -> %+v: want exactly one invalid count and no Redis error", before, after)
			}
		})
	}
	t.Run("wrong Redis type", func(t *testing.T) {
		raw.Del(ctx, key)
		if err := raw.HSet(ctx, key, "a", "b").Err(); err != nil {
			t.Fatal(err)
		}
		_, err := s.Load(ctx, "acme", "main_idp", 0)
		var ie *redisstore.InvalidSnapshotError
		if !errors.As(err, &ie) || ie.Reason != redisstore.ReasonCorrupt {
			t.Fatalf("Load of a hash: err = %v, want corrupt", err)
		}
		if !s.Healthy() {
			t.Errorf("a bad value turned health down")
		}
	})
}

func TestLease_Exclusive(t *testing.T) {
	srv := redistest.Start(t)
	a := openStore(t, srv.URL(), redisstore.Options{})
	b := openStore(t, srv.URL(), redisstore.Options{})
	ctx := context.Background()
	mustAcquire(t, a, "replica-a", time.Minute, true)
	mustAcquire(t, b, "replica-b", time.Minute, false)
	mustAcquire(t, a, "replica-a", time.Minute, false) // not re-entrant: one fetch per lease
	if ok, err := a.Release(ctx, "acme", "main_idp", "replica-a"); err != nil || !ok {
		t.Fatalf("Release by the holder = %v, %v; want true", ok, err)
	}
	mustAcquire(t, b, "replica-b", time.Minute, true)
	// Leases are per provider.
	if ok, err := a.TryAcquire(ctx, "acme", "other", "replica-a", time.Minute); err != nil || !ok {
		t.Errorf("TryAcquire of another provider = %v, %v; want true", ok, err)
	}
	if v, err := srv.Client(t).Get(ctx, "test:lease:acme:main_idp").Result(); err != nil || v != "replica-b" {
		t.Errorf("lease key = %q, %v; want replica-b", v, err)
	}
}

func TestRelease_ByNonHolderIsNoOp(t *testing.T) {
	srv := redistest.Start(t)
	a := openStore(t, srv.URL(), redisstore.Options{})
	b := openStore(t, srv.URL(), redisstore.Options{})
	mustAcquire(t, a, "replica-a", time.Minute, true)
	if ok, err := b.Release(context.Background(), "acme", "main_idp", "replica-b"); err != nil || ok {
		t.Fatalf("Release by a non-holder = %v, %v; want false, nil", ok, err)
	}
	mustAcquire(t, b, "replica-b", time.Minute, false)
}

// TestLease_ExpiryLetsAnotherTakeOver waits on Redis's own clock (a 20 ms
// lease): the expiry is Redis's, there is no clock of ours to advance. The
// test waits for Redis's keyspace notification of the lease's expiry.
func TestLease_ExpiryLetsAnotherTakeOver(t *testing.T) {
	srv := redistest.Start(t)
	a := openStore(t, srv.URL(), redisstore.Options{})
	b := openStore(t, srv.URL(), redisstore.Options{})
	ctx := context.Background()
	c := srv.Client(t)
	if err := c.ConfigSet(ctx, "notify-keyspace-events", "Ex").Err(); err != nil {
		t.Fatal(err)
	}
	expired := c.Subscribe(ctx, "__keyevent@0__:expired")
	defer expired.Close()
	if _, err := expired.Receive(ctx); err != nil { // the subscription is active
		t.Fatal(err)
	}
	mustAcquire(t, a, "replica-a", 20*time.Millisecond, true)
	select {
	case m := <-expired.Channel():
		if m.Payload != "test:lease:acme:main_idp" {
			t.Fatalf("expired %q, want the lease", m.Payload)
		}
	case <-time.After(10 * time.Second): // a hang, not a speed measurement
		t.Fatal("the 20 ms lease never expired")
	}
	mustAcquire(t, b, "replica-b", time.Minute, true)
	// The first holder, back late, must not release the new holder's lease.
	if ok, err := a.Release(ctx, "acme", "main_idp", "replica-a"); err != nil || ok {
		t.Fatalf("late Release by the expired holder = %v, %v; want false", ok, err)
	}
	mustAcquire(t, a, "replica-a", time.Minute, false)
}

func mustAcquire(t *testing.T, s *redisstore.Store, holder string, ttl time.Duration, want bool) {
	t.Helper()
	ok, err := s.TryAcquire(context.Background(), "acme", "main_idp", holder, ttl)
	if err != nil || ok != want {
		t.Fatalf("TryAcquire(%s) = %v, %v; want %v", holder, ok, err, want)
	}
}

type update struct{ tenant, provider string }

func subscribe(t *testing.T, s *redisstore.Store) <-chan update {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan update, 16)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, func(tenant, provider string) { ch <- update{tenant, provider} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Subscribe returned %v, want context.Canceled", err)
		}
	})
	return ch
}

// saveUntilNotified saves until the subscriber sees it: a subscription
// becomes active asynchronously, and pub/sub drops what is published
// before.
func saveUntilNotified(t *testing.T, s *redisstore.Store, ch <-chan update) update {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_ = s.Save(context.Background(), validSnapshot(time.Now()))
		select {
		case u := <-ch:
			return u
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("no notification within 10 s")
	return update{}
}

func TestSubscribe_NotifiesSavesAndReconnects(t *testing.T) {
	srv := redistest.Start(t)
	writer := openStore(t, srv.URL(), redisstore.Options{})
	reader := openStore(t, srv.URL(), redisstore.Options{})
	ch := subscribe(t, reader)
	if u := saveUntilNotified(t, writer, ch); u != (update{"acme", "main_idp"}) {
		t.Fatalf("notification = %+v, want acme/main_idp", u)
	}
	// Malformed messages on the channel are ignored.
	raw := srv.Client(t)
	raw.Publish(context.Background(), "test:updates", "no-slash")
	raw.Publish(context.Background(), "test:updates", "a:b/c")

	srv.Stop(t)
	srv.Restart(t)
	if u := saveUntilNotified(t, writer, ch); u != (update{"acme", "main_idp"}) {
		t.Fatalf("notification after a Redis restart = %+v, want acme/main_idp", u)
	}
}

func TestOutage_FailsAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	logs := new(logtest.Buffer)
	s := openStore(t, srv.URL(), redisstore.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ctx := context.Background()
	if err := s.Save(ctx, validSnapshot(time.Now())); err != nil {
		t.Fatalf("Save: %v", err)
	}
	srv.Stop(t)
	for i := range 5 {
		_, err := s.Load(ctx, "acme", "main_idp", 0)
		if err == nil || errors.Is(err, redisstore.ErrNotFound) || errors.Is(err, redisstore.ErrInvalidSnapshot) {
			t.Fatalf("Load %d with Redis down: err = %v, want a Redis error", i, err)
		}
		if _, err := s.TryAcquire(ctx, "acme", "main_idp", "a", time.Second); err == nil {
			t.Fatalf("TryAcquire %d with Redis down succeeded", i)
		}
	}
	if s.Healthy() {
		t.Error("Healthy = true with Redis down")
	}
	if st := s.Stats(); st.Errors != 10 {
		t.Errorf("Errors = %d, want 10", st.Errors)
	}
	if n := strings.Count(logs.String(), "redis unreachable"); n != 1 {
		t.Errorf("logged unreachable %d times, want once:\n%s", n, logs.String())
	}

	srv.Restart(t) // empty: no persistence
	deadline := time.Now().Add(10 * time.Second)
	// go-redis redials a refused address about once a second.
	for s.Save(ctx, validSnapshot(time.Now())) != nil {
		if time.Now().After(deadline) {
			t.Fatal("Save still failing 10 s after Redis came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := s.Load(ctx, "acme", "main_idp", 0); err != nil {
		t.Fatalf("Load after recovery: %v", err)
	}
	if !s.Healthy() {
		t.Error("Healthy = false after recovery")
	}
	if n := strings.Count(logs.String(), "redis reachable"); n != 2 { // first success, then recovery
		t.Errorf("logged reachable %d times, want 2:\n%s", n, logs.String())
	}
}

// TestTimeout_BoundsEveryCall talks to a "Redis" that accepts connections
// and never answers: only the store's own deadline can end the calls.
func TestTimeout_BoundsEveryCall(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); l.Close(); conns.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { defer conns.Done(); <-stop; c.Close() }()
		}
	}()
	s := openStore(t, "redis://"+l.Addr().String()+"/0", redisstore.Options{Timeout: 50 * time.Millisecond})
	ctx := context.Background()
	calls := map[string]func() error{
		"Load":       func() error { _, err := s.Load(ctx, "acme", "main_idp", 0); return err },
		"Save":       func() error { return s.Save(ctx, validSnapshot(time.Now())) },
		"TryAcquire": func() error { _, err := s.TryAcquire(ctx, "acme", "main_idp", "a", time.Second); return err },
		"Release":    func() error { _, err := s.Release(ctx, "acme", "main_idp", "a"); return err },
		"Ping":       func() error { return s.Ping(ctx) },
	}
	for name, call := range calls {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			var ne net.Error
			if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
				t.Errorf("%s against a silent server: err = %v, want a timeout", name, err)
			}
		case <-time.After(10 * time.Second): // a hang, not a speed measurement
			t.Fatalf("%s against a silent server did not return", name)
		}
	}
	if s.Healthy() {
		t.Error("Healthy = true against a silent server")
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name, url, namespace string
		keys                 [][]byte
		wantErr              string
	}{
		{"defaults", "redis://127.0.0.1:1/0", "", [][]byte{testKey}, ""},
		{"tls and password through the URL", "rediss://user:secret@127.0.0.1:1/2", "ns", [][]byte{testKey}, ""},
		{"bad scheme", "http://127.0.0.1:1", "", [][]byte{testKey}, "url"},
		{"namespace with space", "redis://127.0.0.1:1", "a b", [][]byte{testKey}, "namespace"},
		{"no HMAC key", "redis://127.0.0.1:1/0", "", nil, "no snapshot HMAC key"},
		{"HMAC key too short", "redis://127.0.0.1:1/0", "", [][]byte{testKey, []byte("short")}, "HMAC key 1: 5 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := redisstore.Open(tt.url, tt.namespace, redisstore.Options{HMACKeys: tt.keys})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				s.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open: err = %v, want one naming %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func sum(m map[redisstore.Reason]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func BenchmarkLoad(b *testing.B) {
	srv := redistest.Start(b)
	s, err := redisstore.Open(srv.URL(), "bench", redisstore.Options{Timeout: time.Second, HMACKeys: [][]byte{testKey}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.Save(ctx, validSnapshot(time.Now())); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Load(ctx, "acme", "main_idp", 0); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSetClientLogger_RoutesClientLinesToDebug(t *testing.T) {
	logs := new(logtest.Buffer)
	redisstore.SetClientLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { redisstore.SetClientLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // a refused address: the client logs its dial failure
	s := openStore(t, "redis://"+addr+"/0", redisstore.Options{})
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping of a closed port succeeded")
	}
	if n := strings.Count(logs.String(), "level=DEBUG msg=\"redis client: "); n == 0 {
		t.Errorf("no client line at debug level:\n%s", logs.String())
	}
}

func TestCooldown_ExclusiveAndApartFromTheLease(t *testing.T) {
	srv := redistest.Start(t)
	a := openStore(t, srv.URL(), redisstore.Options{})
	b := openStore(t, srv.URL(), redisstore.Options{})
	ctx := context.Background()
	mustAcquire(t, a, "replica-a", time.Minute, true) // the refresh lease is held...
	if ok, _, err := b.TryCooldown(ctx, "acme", "main_idp", "replica-b", time.Minute); err != nil || !ok {
		t.Fatalf("TryCooldown while another holds the lease = %v, %v; want true", ok, err) // ...the cooldown is not
	}
	ok, settled, err := a.TryCooldown(ctx, "acme", "main_idp", "replica-a", time.Minute)
	if err != nil || ok || settled {
		t.Fatalf("TryCooldown while it runs = %v, settled %v, %v; want false, not settled", ok, settled, err)
	}
	// Only the holder settles it; settled, it still runs, with its expiry.
	if err := a.SettleCooldown(ctx, "acme", "main_idp", "replica-a"); err != nil {
		t.Fatal(err)
	}
	if _, settled, _ := a.TryCooldown(ctx, "acme", "main_idp", "replica-a", time.Minute); settled {
		t.Fatal("a replica that does not hold the cooldown settled it")
	}
	if err := b.SettleCooldown(ctx, "acme", "main_idp", "replica-b"); err != nil {
		t.Fatal(err)
	}
	if ok, settled, err := a.TryCooldown(ctx, "acme", "main_idp", "replica-a", time.Minute); ok || !settled || err != nil {
		t.Fatalf("TryCooldown after the holder settled = %v, settled %v, %v; want false, settled", ok, settled, err)
	}
	ttl, err := srv.Client(t).PTTL(ctx, "test:kid-cooldown:acme:main_idp").Result()
	if err != nil || ttl <= 59*time.Second || ttl > time.Minute {
		t.Errorf("cooldown PTTL = %v, %v; want about a minute", ttl, err)
	}
}
