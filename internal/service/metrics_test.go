package service

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/demo"
)

// scrapeMetrics GETs /metrics from the service's real handler and returns
// its sample lines that carry label value.
func scrapeMetrics(t *testing.T, s *Service, label string) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	var lines []string
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if !strings.HasPrefix(line, "#") && strings.Contains(line, label) {
			lines = append(lines, line)
		}
	}
	return lines
}

// thirdProvider is a second provider of the extra tenant, on the demo
// identity provider's keys under an issuer of its own.
const thirdProvider = `      - id: third
        issuer: https://third.extra.test/
        jwks_url: %JWKS%
        algorithms: [ES256]
`

func TestReload_RemovedProvidersSeriesLeaveMetrics(t *testing.T) {
	f := newFixture(t)
	r := runService(t, Options{ConfigPath: f.cfgPath, DrainDelay: -1})
	third := strings.ReplaceAll(thirdProvider, "%JWKS%", f.idp.JWKSURL())
	f.write(t, f.extraTenant(third))
	if err := r.svc.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	extraTok := f.extraToken(t)
	thirdTok, err := f.idp.IdP.Mint("alice", time.Hour, map[string]any{"iss": "https://third.extra.test/"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a verified-token cache miss, then a hit
		for _, tok := range []string{extraTok, thirdTok} {
			if res := r.check(t, "api.extra.test", tok); !res.Allowed {
				t.Fatalf("added tenant: %s", res.Reason)
			}
		}
	}
	if got := scrapeMetrics(t, r.svc, `provider="third"`); len(got) == 0 {
		t.Fatal("no series of provider third before the reload")
	}

	// A reload removes provider third; the tenant stays.
	f.write(t, f.extraTenant(""))
	if err := r.svc.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left := scrapeMetrics(t, r.svc, `provider="third"`); len(left) != 0 {
		t.Errorf("series of the removed provider still in /metrics:\n%s", strings.Join(left, "\n"))
	}
	if res := r.check(t, demo.Host, f.token(t)); !res.Allowed {
		t.Fatalf("demo tenant: %s", res.Reason)
	}
	before := strings.Join(scrapeMetrics(t, r.svc, `tenant="extra"`), "\n")
	for _, name := range []string{
		`extauthz_check_total{decision="allow",provider="second",reason="ok",tenant="extra"} 2`,
		`extauthz_token_cache_requests_total{provider="second",result="hit",tenant="extra"} 1`,
		`extauthz_token_cache_requests_total{provider="second",result="miss",tenant="extra"} 1`,
		`extauthz_check_duration_seconds_count{decision="allow",tenant="extra"} 4`,
		`jwks_cache_keys{provider="second",tenant="extra"}`,
	} {
		if !strings.Contains(before, name) {
			t.Errorf("after removing provider third, /metrics lacks %s; the extra tenant's lines:\n%s", name, before)
		}
	}

	// Another removes the tenant and its provider: no series names them.
	f.write(t, "")
	if err := r.svc.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left := scrapeMetrics(t, r.svc, `tenant="extra"`); len(left) != 0 {
		t.Errorf("series of the removed tenant still in /metrics:\n%s", strings.Join(left, "\n"))
	}
	if kept := scrapeMetrics(t, r.svc, `extauthz_check_total{decision="allow",provider="demo-idp",reason="ok",tenant="demo"} 1`); len(kept) != 1 {
		t.Errorf("the remaining tenant's decision series changed: %q", kept)
	}
}
