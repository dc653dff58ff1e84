package jwkscache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/jwkscache"
)

// BenchmarkResolveWarm looks up keys of a warm 10-key set from all CPUs:
// through this cache, and through keyfunc/v3's default HTTP-backed storage
// (the same document from the same HTTPS server), so the ratio shows what
// the immutable kid index buys.
func BenchmarkResolveWarm(b *testing.B) {
	var keys [][]byte
	kids := make([]string, 10)
	for i := range kids {
		kids[i] = fmt.Sprintf("key-%d", i)
		keys = append(keys, jwkJSON(b, &newECKey(b).PublicKey, kids[i], "ES256"))
	}
	srv := newJWKSServer(b, jwksDoc(b, toRaw(keys)...))

	b.Run("jwkscache", func(b *testing.B) {
		r, err := jwkscache.New(jwkscache.Options{HTTPClient: srv.Client()})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		if err := r.Register(context.Background(), r.NewRegistration("acme", "main", srv.url())); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		benchLookups(b, len(kids), func(i int) error {
			_, err := r.Key(ctx, "acme", "main", kids[i], "ES256")
			return err
		})
	})

	b.Run("keyfunc_v3", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{srv.url()}, keyfunc.Override{Client: srv.Client()})
		if err != nil {
			b.Fatal(err)
		}
		tokens := make([]*jwt.Token, len(kids))
		for i, kid := range kids {
			tokens[i] = &jwt.Token{Header: map[string]any{"kid": kid, "alg": "ES256"}}
		}
		benchLookups(b, len(tokens), func(i int) error {
			_, err := kf.Keyfunc(tokens[i])
			return err
		})
	})
}

// benchLookups warms up every one of n keys with lookup (a failure stops
// the benchmark), then measures lookup from all CPUs, each goroutine
// cycling through the n keys.
func benchLookups(b *testing.B, n int, lookup func(i int) error) {
	b.Helper()
	for i := range n {
		if err := lookup(i); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := lookup(i % n); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func toRaw(keys [][]byte) []json.RawMessage {
	out := make([]json.RawMessage, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out
}
