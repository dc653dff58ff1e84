package metrics_test

import (
	"testing"

	"github.com/extauthz/extauthz/internal/authz"
)

// BenchmarkCheck measures one warm, allowed decision (real tenants.Set,
// real jwkscache.Registry, ES256 signature) without and with the metrics
// observer; the difference is what metrics cost the hot path. The cache
// series cost nothing here: they are read from the cache's status at scrape
// time.
func BenchmarkCheck(b *testing.B) {
	for _, bc := range []struct {
		name    string
		metrics bool
	}{{"metrics=off", false}, {"metrics=on", true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := newStack(b, bc.metrics)
			tok := s.token(b, "k1", nil)
			if d := s.check("api.acme.test", tok); d.Reason != authz.ReasonOK {
				b.Fatalf("warm-up: %s", d.Reason)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s.check("api.acme.test", tok)
			}
		})
	}
}

// BenchmarkCheckDone is the observer alone: the exact per-decision cost of
// metrics, without the noise of signature verification.
func BenchmarkCheckDone(b *testing.B) {
	s := newStack(b, true)
	d := s.check("api.acme.test", s.token(b, "k1", nil))
	b.ReportAllocs()
	for b.Loop() {
		s.metrics.CheckDone(&d, 0)
	}
}
