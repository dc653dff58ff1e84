package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/metrics"
	"github.com/extauthz/extauthz/jwkscache"
)

// Example wires Metrics the way the service does: the cache reports refreshes
// to it, the cache's status is read at scrape time, and authz reports every
// decision.
func Example() {
	m := metrics.New()
	reg, err := jwkscache.New(jwkscache.Options{Observer: m})
	if err != nil {
		panic(err)
	}
	defer reg.Close()
	if err := m.CollectCache(reg); err != nil {
		panic(err)
	}
	// No tenants yet: every request is tenant_unknown.
	srv := authz.New(nil, reg, authz.Options{Observer: m, Logger: slog.New(slog.DiscardHandler)})
	srv.Decide(context.Background(), &authz.Request{Host: "api.example.test", Path: "/"})

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sc := bufio.NewScanner(strings.NewReader(rec.Body.String()))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "extauthz_check_total") {
			fmt.Println(sc.Text())
		}
	}
	// Output:
	// extauthz_check_total{decision="deny",provider="none",reason="tenant_unknown",tenant="unknown"} 1
}
