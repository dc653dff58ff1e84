package authz

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/logtest"
)

// Short names for the shared fixture (see authztest).
var (
	testNow    = authztest.Now
	keysOnce   = authztest.Keys
	testSet    = authztest.Set
	acmeClaims = authztest.AcmeClaims
	sign       = authztest.Sign
	rs256      = authztest.RS256
	rawToken   = authztest.RawToken
	mustJSON   = authztest.JSON
	bearer     = authztest.Bearer
)

// testConfig is the shared fixture plus requirements: acme has
// orders-write (provider main, scope orders:write), globex a route to
// admins (group admins) under /admin/.
var testConfig = strings.Replace(authztest.Config, "  - id: globex\n", `    requirements:
      orders-write:
        providers: [main]
        claims: [{claim: scope, all_of: ["orders:write"]}]
  - id: globex
`, 1) + `    routes: [{path_prefix: /admin/, requirement: admins}]
    requirements:
      admins: {claims: [{claim: groups, any_of: [admins]}]}
`

type fixture struct {
	srv  *Server
	keys *authztest.FakeKeys
	logs *logtest.Buffer
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{keys: authztest.NewFakeKeys(), logs: &logtest.Buffer{}}
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.srv = New(testSet(t, testConfig), f.keys, Options{Now: func() time.Time { return testNow }, Logger: log})
	return f
}

func acmeRequest(tok string) *Request {
	return &Request{Host: "api.acme.test", Path: "/orders?x=1", Method: "GET", RequestID: "req-1", Headers: bearer(tok)}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
