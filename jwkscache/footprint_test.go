package jwkscache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"testing"

	"github.com/extauthz/extauthz/jwkscache"
)

// BenchmarkFootprint measures what one registered provider costs once its
// keys are cached: live heap per provider and per key, and goroutines per
// provider. Each iteration registers `providers` providers of `keys` EC
// P-256 keys each against one HTTPS JWKS server, waits for every first
// fetch, and compares runtime.MemStats.HeapAlloc (after a GC) and
// runtime.NumGoroutine with the figures before.
//
// Each provider has its own connection pool (see providerClient), so right
// after a fetch it holds a kept-alive TLS connection until the transport's
// idle timeout (90 s in the service): conn=keepalive measures that moment
// (its goroutines include the in-process test server's one per
// connection), conn=closed the steady state between refreshes.
// docs/operating.md ("Sizing") reports the figures:
//
//	go test -run '^$' -bench BenchmarkFootprint -benchtime 1x ./jwkscache
func BenchmarkFootprint(b *testing.B) {
	for _, tc := range []struct {
		providers, keys int
		keepAlive       bool
	}{{500, 2, true}, {500, 2, false}, {500, 10, false}, {1000, 2, false}} {
		conn := map[bool]string{true: "keepalive", false: "closed"}[tc.keepAlive]
		b.Run(fmt.Sprintf("providers=%d/keys=%d/conn=%s", tc.providers, tc.keys, conn), func(b *testing.B) {
			var docKeys []json.RawMessage
			for i := range tc.keys {
				k := newECKey(b)
				docKeys = append(docKeys, jwkJSON(b, &k.PublicKey, fmt.Sprintf("k%d", i), "ES256"))
			}
			srv := newJWKSServer(b, jwksDoc(b, docKeys...))
			for range b.N {
				heap0, gr0 := liveHeap(), runtime.NumGoroutine()
				f := newFixture(b, srv, func(o *jwkscache.Options) {
					t := srv.Client().Transport.(*http.Transport).Clone()
					t.DisableKeepAlives = !tc.keepAlive
					o.HTTPClient = &http.Client{Transport: t}
				})
				for i := range tc.providers {
					reg := f.reg.NewRegistration(fmt.Sprintf("t%d", i), "main", fmt.Sprintf("%s?p=%d", srv.url(), i))
					if err := f.reg.Register(context.Background(), reg); err != nil {
						b.Fatal(err)
					}
				}
				for range tc.providers {
					if ev := f.next(b); ev.Err != nil {
						b.Fatalf("first fetch: %v", ev.Err)
					}
				}
				heap1, gr1 := liveHeap(), runtime.NumGoroutine()
				b.ReportMetric(float64(heap1-heap0)/float64(tc.providers), "heapB/provider")
				b.ReportMetric(float64(heap1-heap0)/float64(tc.providers*tc.keys), "heapB/key")
				b.ReportMetric(float64(gr1-gr0)/float64(tc.providers), "goroutines/provider")
				if err := f.reg.Close(); err != nil {
					b.Fatal(err)
				}
				srv.CloseClientConnections()
			}
		})
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
