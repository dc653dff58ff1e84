package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/extauthz/extauthz/internal/admin"
	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/metrics"
	"github.com/extauthz/extauthz/jwkscache"
	"github.com/extauthz/extauthz/jwkscache/clocktest"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// idpMode is what the scripted identity provider answers.
type idpMode int

const (
	idpOK   idpMode = iota // the JWKS, max-age=3600
	idpFail                // 500
)

// scriptedIdP is a real HTTPS identity provider whose answers the test
// scripts: OK or failing, and optionally held until the test releases it
// (to catch a provider in Loading or Refreshing).
type scriptedIdP struct {
	*httptest.Server
	doc []byte

	mu      sync.Mutex
	mode    idpMode
	gate    chan struct{} // non-nil: requests wait on it
	entered chan struct{} // a held request arrived
}

func newScriptedIdP(t *testing.T) *scriptedIdP {
	t.Helper()
	p := &scriptedIdP{entered: make(chan struct{}, 10)}
	_, p.doc = authztest.ES256JWKS(t, "k1")
	p.Server = httptest.NewTLSServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.release() // never leave a fetch hanging on the gate
		p.Close()
	})
	return p
}

func (p *scriptedIdP) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		p.entered <- struct{}{}
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	p.mu.Lock()
	mode := p.mode
	p.mu.Unlock()
	if mode == idpFail {
		http.Error(w, "identity provider down", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(p.doc)
}

func (p *scriptedIdP) setMode(m idpMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
}

// hold makes the next requests wait until release.
func (p *scriptedIdP) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate == nil {
		p.gate = make(chan struct{})
	}
}

func (p *scriptedIdP) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
}

// waitEntered waits until a held request has arrived.
func (p *scriptedIdP) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-p.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the identity provider got no request")
	}
}

// events hands refresh outcomes to the test.
type events chan jwkscache.RefreshEvent

func (e events) RefreshDone(ev jwkscache.RefreshEvent) { e <- ev }

func (e events) next(t *testing.T) jwkscache.RefreshEvent {
	t.Helper()
	select {
	case ev := <-e:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no refresh completed")
		return jwkscache.RefreshEvent{}
	}
}

// fixture is the admin API over a real registry on a fake clock, served by
// a real HTTP server, every exchange checked against the OpenAPI document.
type fixture struct {
	idp *scriptedIdP
	clk *clocktest.Clock
	// adminClk is the admin API's own clock (refresh spacing), apart from
	// the cache's so stepping it fires no refresh.
	adminClk *clocktest.Clock
	reg      *jwkscache.Registry
	events   events
	handler  *admin.Handler
	srv      *httptest.Server
	spec     *spec
}

func newFixture(t *testing.T, mutate ...func(*admin.Options)) *fixture {
	t.Helper()
	f := &fixture{idp: newScriptedIdP(t), clk: clocktest.New(t0), adminClk: clocktest.New(t0), events: make(events, 100), spec: loadSpec(t)}
	reg, err := jwkscache.New(jwkscache.Options{HTTPClient: f.idp.Client(), Clock: f.clk, Observer: f.events})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	f.reg = reg
	opts := admin.Options{Registry: reg, Metrics: metricsFor(t, reg), Now: f.adminClk.Now}
	for _, m := range mutate {
		m(&opts)
	}
	f.handler = admin.New(opts)
	f.srv = httptest.NewServer(f.handler)
	t.Cleanup(f.srv.Close)
	return f
}

// coldWait sets limits.cold_wait, measured on the admin API's clock.
func coldWait(d time.Duration) func(*admin.Options) {
	return func(o *admin.Options) { o.ColdWait = d }
}

// registration is a provider on the scripted identity provider: no
// retries, no jitter, so the fake clock alone decides every refresh.
func (f *fixture) registration(provider string) jwkscache.Registration {
	r := f.reg.NewRegistration("acme", provider, f.idp.URL+"/jwks")
	r.RetryPolicy.MaxRetries = 0
	r.PrefetchJitter = 0
	return r
}

func (f *fixture) register(t *testing.T, provider string) {
	t.Helper()
	if err := f.reg.Register(context.Background(), f.registration(provider)); err != nil {
		t.Fatal(err)
	}
}

// advance moves the fake clock by d and, when that fires the provider's
// refresh timer, waits for the refresh to end.
func (f *fixture) advance(t *testing.T, d time.Duration) jwkscache.RefreshEvent {
	t.Helper()
	next, ok := f.clk.Next()
	if !ok || next > d {
		t.Fatalf("no refresh due within %s (next in %s, %v)", d, next, ok)
	}
	f.clk.Advance(d)
	return f.events.next(t)
}

// mustStatus checks the registry's own status of acme/provider. The cache
// ages a key set (fresh, stale, unusable) on timers of the fake clock, and
// clocktest's Advance returns only once the timers it ran have returned, so
// the status is checked at once: nothing to wait for.
func (f *fixture) mustStatus(t *testing.T, provider string, cond func(jwkscache.Status) bool) {
	t.Helper()
	if st, ok := f.reg.Status("acme", provider); !ok || !cond(st) {
		t.Fatalf("status not in the expected state: %+v", st)
	}
}

// response is one validated exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// decode unmarshals the JSON body into v.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request to the real server and validates request and response
// against the OpenAPI document.
func (f *fixture) do(t *testing.T, method, path string) response {
	t.Helper()
	x := f.send(method, path)
	return f.checked(t, x)
}

// exchange is a request and its answer, not yet validated (send may run in
// another goroutine; validation must not).
type exchange struct {
	req *http.Request
	res response
	err error
}

func (f *fixture) send(method, path string) exchange {
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		return exchange{err: err}
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		return exchange{req: req, err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return exchange{req: req, res: response{status: res.StatusCode, header: res.Header, body: body}, err: err}
}

func (f *fixture) checked(t *testing.T, x exchange) response {
	t.Helper()
	if x.err != nil {
		t.Fatal(x.err)
	}
	f.spec.validate(t, x.req, x.res.status, x.res.header, x.res.body)
	return x.res
}

// spec is docs/admin-openapi.yaml, loaded and routed.
type spec struct {
	doc    *openapi3.T
	router routers.Router
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../../docs/admin-openapi.yaml")
	if err != nil {
		t.Fatalf("load OpenAPI document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("OpenAPI document is version %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("OpenAPI document invalid: %v", err)
	}
	// The document's server is the default address; the test server listens
	// elsewhere, so route by path alone.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &spec{doc: doc, router: router}
}

// validate checks one exchange: the route and request are documented, and
// the status, content type and body are what the document says.
func (s *spec) validate(t *testing.T, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if err := s.check(req, status, header, body); err != nil {
		t.Fatalf("%s %s: %v\n%s", req.Method, req.URL.Path, err, body)
	}
}

func (s *spec) check(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("not in the OpenAPI document: %w", err)
	}
	// The bearer token is the handler's to check (and the tests'); the
	// document only says the scheme.
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	ctx := context.Background()
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		return fmt.Errorf("request does not match the OpenAPI document: %w", err)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	out.SetBodyBytes(bytes.Clone(body))
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("%d response does not match the OpenAPI document: %w", status, err)
	}
	return nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// metricsFor returns the /metrics handler over reg's cache series.
func metricsFor(t *testing.T, reg *jwkscache.Registry) http.Handler {
	t.Helper()
	m := metrics.New()
	if err := m.CollectCache(reg); err != nil {
		t.Fatal(err)
	}
	return m.Handler()
}
