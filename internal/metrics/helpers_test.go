package metrics_test

import (
	"context"
	"crypto/ecdsa"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/metrics"
	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
	"github.com/extauthz/extauthz/jwkscache"
	"github.com/extauthz/extauthz/jwkscache/clocktest"
)

// t0 is the fake clock's start; tokens are issued relative to it.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const issuer = "https://idp.acme.test/"

// stack is the real hot path: a tenants.Set, a jwkscache.Registry on a fake
// clock fetching from a real HTTPS identity provider, and an authz.Server,
// observed by one Metrics.
type stack struct {
	clk     *clocktest.Clock
	reg     *jwkscache.Registry
	authz   *authz.Server
	metrics *metrics.Metrics
	key     *ecdsa.PrivateKey
	events  chan jwkscache.RefreshEvent
}

// fanout passes refresh events to metrics and to the test.
type fanout struct {
	m  *metrics.Metrics
	ch chan jwkscache.RefreshEvent
}

func (f fanout) RefreshDone(ev jwkscache.RefreshEvent) {
	f.m.RefreshDone(ev)
	select {
	case f.ch <- ev:
	default:
	}
}

// newStack builds the stack with one tenant "acme" (host api.acme.test)
// with providers "main" and "backup" on one identity provider serving kid
// k1. withMetrics false leaves the authz observer unset (the benchmark's
// baseline).
func newStack(tb testing.TB, withMetrics bool) *stack {
	tb.Helper()
	key, doc := authztest.ES256JWKS(tb, "k1")
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	}))
	tb.Cleanup(idp.Close)

	s := &stack{clk: clocktest.New(t0), key: key, events: make(chan jwkscache.RefreshEvent, 100)}
	s.metrics = metrics.New()
	reg, err := jwkscache.New(jwkscache.Options{HTTPClient: idp.Client(), Clock: s.clk, Observer: fanout{s.metrics, s.events}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = reg.Close() })
	s.reg = reg
	if err := s.metrics.CollectCache(reg); err != nil {
		tb.Fatal(err)
	}

	set, providers := authztest.Register(tb, reg, tenantstest.Config("", tenantstest.Tenant("acme", "[api.acme.test]",
		tenantstest.Provider("main", issuer, idp.URL+"/jwks", "algorithms: [ES256]"),
		tenantstest.Provider("backup", "https://backup.acme.test/", idp.URL+"/jwks", "algorithms: [ES256]"))))
	for range providers {
		s.nextEvent(tb)
	}
	opts := authz.Options{Now: s.clk.Now, Logger: discardLogger()}
	if withMetrics {
		opts.Observer = s.metrics
	}
	s.authz = authz.New(set, reg, opts)
	return s
}

// nextEvent waits for a refresh outcome. The real-time bound only turns a
// hang into a failure.
func (s *stack) nextEvent(tb testing.TB) jwkscache.RefreshEvent {
	tb.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-time.After(10 * time.Second):
		tb.Fatal("no refresh completed")
		return jwkscache.RefreshEvent{}
	}
}

// token signs claims for the acme main provider with kid.
func (s *stack) token(tb testing.TB, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	base := jwt.MapClaims{"iss": issuer, "sub": "alice", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
	for k, v := range claims {
		base[k] = v
	}
	return authztest.Sign(tb, jwt.SigningMethodES256, s.key, kid, base, nil)
}

// check runs one decision for host with an optional bearer token.
func (s *stack) check(host, token string) authz.Decision {
	r := &authz.Request{Host: host, Path: "/orders", Method: "GET", Headers: map[string]string{}}
	if token != "" {
		r.Headers["authorization"] = "Bearer " + token
	}
	return s.authz.Decide(context.Background(), r)
}

// scrape GETs /metrics from the real handler and parses the text exposition.
func scrape(tb testing.TB, m *metrics.Metrics) map[string]*dto.MetricFamily {
	tb.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		tb.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// series returns a family's samples keyed by their labels in name order
// ("decision=allow,provider=main,..."), with counter, gauge or histogram
// count values.
func series(fams map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	f := fams[name]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		var v float64
		switch {
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Histogram != nil:
			v = float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			v = m.GetUntyped().GetValue()
		}
		out[strings.Join(labels, ",")] = v
	}
	return out
}

// seriesCount counts every sample line of every family.
func seriesCount(fams map[string]*dto.MetricFamily) int {
	n := 0
	for _, f := range fams {
		n += len(f.GetMetric())
	}
	return n
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
