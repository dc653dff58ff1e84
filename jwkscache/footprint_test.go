package jwkscache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkFootprint measures what one registered provider costs once its
// keys are cached: live heap per provider and per key, and goroutines per
// provider. Each iteration registers `providers` providers of `keys` EC
// P-256 keys each against one HTTPS JWKS server, waits for every first
// fetch, and compares runtime.MemStats.HeapAlloc (after a GC) and
// runtime.NumGoroutine with the registry's before: first with the HTTP
// client's idle connections (which all go to one host here, but to one
// host per provider in production), then without them (the cache alone). docs/operating.md
// ("Sizing") reports its figures:
//
//	go test -run '^$' -bench BenchmarkFootprint -benchtime 1x ./jwkscache
func BenchmarkFootprint(b *testing.B) {
	for _, tc := range []struct{ providers, keys int }{{200, 2}, {200, 10}, {1000, 2}} {
		b.Run(fmt.Sprintf("providers=%d/keys=%d", tc.providers, tc.keys), func(b *testing.B) {
			var docKeys []json.RawMessage
			for i := range tc.keys {
				k := newECKey(b)
				docKeys = append(docKeys, jwkJSON(b, &k.PublicKey, fmt.Sprintf("k%d", i), "ES256"))
			}
			srv := newJWKSServer(b, jwksDoc(b, docKeys...))
			for range b.N {
				heap0, gr0 := liveHeap(), runtime.NumGoroutine()
				f := newFixture(b, srv)
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
				b.ReportMetric(float64(gr1-gr0)/float64(tc.providers), "goroutines/provider")
				// Without the HTTP client's idle connections: the cache
				// alone (each provider on its own host keeps one, as above).
				srv.Client().CloseIdleConnections()
				heap2, gr2 := liveHeap(), runtime.NumGoroutine()
				b.ReportMetric(float64(heap2-heap0)/float64(tc.providers), "cacheB/provider")
				b.ReportMetric(float64(heap2-heap0)/float64(tc.providers*tc.keys), "cacheB/key")
				b.ReportMetric(float64(gr2-gr0)/float64(tc.providers), "cacheGoroutines/provider")
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
