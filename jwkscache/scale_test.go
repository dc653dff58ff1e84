package jwkscache_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// connGauge counts a server's open connections and their peak.
type connGauge struct {
	mu         sync.Mutex
	open, peak int
}

func (g *connGauge) track(_ net.Conn, s http.ConnState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch s {
	case http.StateNew:
		g.open++
		g.peak = max(g.peak, g.open)
	case http.StateClosed, http.StateHijacked:
		g.open--
	}
}

func (g *connGauge) read() (open, peak int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open, g.peak
}

// TestScale_ManyProvidersOnOneHost registers providers (300, or
// EXTAUTHZ_SCALE_PROVIDERS, e.g. 10000) against one HTTPS identity provider
// serving a 10-key RSA JWKS to each, and reports the heap each provider
// costs, the IdP's peak open connections and the time until all are Ready.
// The IdP must see one request per provider (no retries on a healthy
// start) over at most MaxConcurrentFetches connections.
func TestScale_ManyProvidersOnOneHost(t *testing.T) {
	n := 300
	if v := os.Getenv("EXTAUTHZ_SCALE_PROVIDERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("EXTAUTHZ_SCALE_PROVIDERS=%q: want a positive number", v)
		}
	}
	const slots = 16
	if os.Getenv("EXTAUTHZ_SCALE_HEAPPROFILE") != "" {
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 512
	}
	var keys [][]byte
	for i := range 10 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, jwkJSON(t, &k.PublicKey, fmt.Sprintf("key-%d", i), "RS256"))
	}
	doc := jwksDoc(t, toRaw(keys)...)
	var requests atomic.Int64
	gauge := &connGauge{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(doc)
	}))
	srv.Config.ConnState = gauge.track
	srv.StartTLS()
	t.Cleanup(srv.Close)

	ev := make(events, n)
	r, err := jwkscache.New(jwkscache.Options{HTTPClient: srv.Client(), Observer: ev, MaxConcurrentFetches: slots})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	regs := make([]jwkscache.Registration, n)
	for i := range regs {
		regs[i] = r.NewRegistration(fmt.Sprintf("tenant-%d", i), "main", fmt.Sprintf("%s/t/%d/jwks", srv.URL, i))
	}
	before := heapInUse()
	start := time.Now()
	if err := r.RegisterAll(context.Background(), regs); err != nil {
		t.Fatal(err)
	}
	for range n {
		if e := <-ev; e.Err != nil {
			t.Fatalf("%s: %v", e.TenantID, e.Err)
		}
	}
	took := time.Since(start)
	after := heapInUse()
	if path := os.Getenv("EXTAUTHZ_SCALE_HEAPPROFILE"); path != "" {
		writeHeapProfile(t, path)
	}
	runtime.KeepAlive(regs)
	if a := r.Availability(); a.Usable != n {
		t.Fatalf("Availability = %+v, want %d usable", a, n)
	}
	open, peak := gauge.read()
	perProvider := (int64(after) - int64(before)) / int64(n)
	t.Logf("%d providers: ready in %v; heap %d B/provider (JWKS document %d B); IdP: %d requests, peak %d connections, %d open after",
		n, took.Round(time.Millisecond), perProvider, len(doc), requests.Load(), peak, open)
	if got := requests.Load(); got != int64(n) {
		t.Errorf("IdP saw %d requests, want one per provider (%d)", got, n)
	}
	// Issue 16's goal: at most 15 KB per provider over the key material;
	// this measures everything, the parsed keys included.
	if perProvider > 15<<10 {
		t.Errorf("heap per provider = %d B, want at most 15 KiB", perProvider)
	}
	if peak > slots {
		t.Errorf("IdP saw %d connections at once, want at most MaxConcurrentFetches = %d", peak, slots)
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// writeHeapProfile writes a heap profile (go tool pprof -sample_index=inuse_space).
func writeHeapProfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
}
