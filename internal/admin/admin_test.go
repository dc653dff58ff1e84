package admin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/admin"
	"github.com/extauthz/extauthz/jwkscache"
)

// wantStatus is the part of a provider's status a step asserts.
type wantStatus struct {
	State      string
	Stale      bool
	Available  bool
	ErrorCount int
	HasError   bool
	KeyIDs     []string
}

func summary(p admin.ProviderStatus) wantStatus {
	return wantStatus{State: p.State, Stale: p.Stale, Available: p.Available, ErrorCount: p.ErrorCount, HasError: p.LastError != nil, KeyIDs: p.KeyIDs}
}

func (f *fixture) provider(t *testing.T) admin.ProviderStatus {
	t.Helper()
	r := f.do(t, http.MethodGet, "/v1/providers/acme/main")
	if r.status != http.StatusOK {
		t.Fatalf("GET provider: %d %s", r.status, r.body)
	}
	var p admin.ProviderStatus
	r.decode(t, &p)
	return p
}

func (f *fixture) readyz(t *testing.T) (int, admin.Readiness) {
	t.Helper()
	r := f.do(t, http.MethodGet, "/readyz")
	var rd admin.Readiness
	r.decode(t, &rd)
	if (r.status == http.StatusOK) != rd.Ready {
		t.Fatalf("/readyz status %d with ready=%v", r.status, rd.Ready)
	}
	return r.status, rd
}

func (f *fixture) expectStep(t *testing.T, step string, want wantStatus, wantReady int) admin.ProviderStatus {
	t.Helper()
	p := f.provider(t)
	if diff := cmp.Diff(want, summary(p)); diff != "" {
		t.Fatalf("%s: provider (-want +got):\n%s", step, diff)
	}
	code, rd := f.readyz(t)
	if code != wantReady {
		t.Fatalf("%s: /readyz %d, want %d: %+v", step, code, wantReady, rd)
	}
	if !want.Available {
		if len(rd.Unavailable) != 1 || rd.Unavailable[0].ProviderID != "main" || rd.Unavailable[0].State != want.State {
			t.Fatalf("%s: unavailable = %+v, want acme/main in %s", step, rd.Unavailable, want.State)
		}
	} else if len(rd.Unavailable) != 0 {
		t.Fatalf("%s: unavailable = %+v, want none", step, rd.Unavailable)
	}
	return p
}

// TestAdmin_WalkThroughProviderStates walks one provider through Loading,
// Empty, Ready, Refreshing, stale, unavailable and back to Ready with a
// scripted identity provider and the fake clock; every exchange is
// validated against the OpenAPI document. The replica is unready only while
// the first fetch attempt runs: afterwards a provider without keys is listed
// as unavailable while /readyz answers 200.
func TestAdmin_WalkThroughProviderStates(t *testing.T) {
	f := newFixture(t, coldWait(time.Hour))

	// Loading: the first fetch is held at the identity provider.
	f.idp.hold()
	f.register(t, "main")
	f.idp.waitEntered(t)
	f.expectStep(t, "loading", wantStatus{State: "Loading", KeyIDs: []string{}}, http.StatusServiceUnavailable)
	if _, rd := f.readyz(t); rd.Started || rd.Pending != 1 {
		t.Fatalf("loading: started %v pending %d, want false, 1", rd.Started, rd.Pending)
	}

	// Empty: the first fetch failed; nothing cached. The attempt finished,
	// so the replica is ready; the provider is unavailable.
	f.idp.setMode(idpFail)
	f.idp.release()
	if ev := f.events.next(t); ev.Result != "error" {
		t.Fatalf("first fetch: %s", ev.Result)
	}
	f.expectStep(t, "empty", wantStatus{State: "Empty", ErrorCount: 1, HasError: true, KeyIDs: []string{}}, http.StatusOK)

	// Ready: a forced refresh succeeds and answers with the new status.
	f.idp.setMode(idpOK)
	r := f.do(t, http.MethodPost, "/v1/providers/acme/main/refresh")
	if r.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	f.events.next(t)
	var refreshed admin.ProviderStatus
	r.decode(t, &refreshed)
	ready := wantStatus{State: "Ready", Available: true, KeyIDs: []string{"k1"}}
	if diff := cmp.Diff(ready, summary(refreshed)); diff != "" {
		t.Fatalf("refresh answer (-want +got):\n%s", diff)
	}
	p := f.expectStep(t, "ready", ready, http.StatusOK)
	if p.ExpiresAt == nil || !p.ExpiresAt.Equal(t0.Add(time.Hour)) || p.Source == nil || *p.Source != "identity_provider" {
		t.Fatalf("ready: expires_at %v source %v, want %v identity_provider", p.ExpiresAt, p.Source, t0.Add(time.Hour))
	}
	if p.NextRefresh == nil || !p.NextRefresh.Equal(t0.Add(time.Hour-30*time.Second)) {
		t.Fatalf("ready: next_refresh %v, want expires_at - refresh_early", p.NextRefresh)
	}

	// Refreshing: a forced refresh is held; the cached set keeps serving.
	f.adminClk.Advance(admin.DefaultRefreshMinInterval)
	f.idp.hold()
	done := make(chan exchange, 1)
	go func() { done <- f.send(http.MethodPost, "/v1/providers/acme/main/refresh") }()
	f.idp.waitEntered(t)
	f.expectStep(t, "refreshing", wantStatus{State: "Refreshing", Available: true, KeyIDs: []string{"k1"}}, http.StatusOK)

	// The held refresh fails: 502 with the status after the failure.
	f.idp.setMode(idpFail)
	f.idp.release()
	f.events.next(t)
	r = f.checked(t, <-done)
	if r.status != http.StatusBadGateway {
		t.Fatalf("failed refresh: %d %s", r.status, r.body)
	}
	var fail admin.Error
	r.decode(t, &fail)
	if fail.Error != "refresh_failed" || fail.Status == nil || fail.Status.ErrorCount != 1 || !strings.Contains(fail.Message, "500") {
		t.Fatalf("failed refresh body: %s", r.body)
	}

	// Stale: past expires_at, refreshes failing, the old set still serves.
	f.advance(t, time.Hour+time.Second)
	f.waitStatus(t, "main", func(st jwkscache.Status) bool { return st.Stale })
	f.expectStep(t, "stale", wantStatus{State: "Ready", Stale: true, Available: true, ErrorCount: 2, HasError: true, KeyIDs: []string{"k1"}}, http.StatusOK)

	// Unavailable: past expires_at + stale_while_error (60 s), still failing:
	// the set is kept for the status but no lookup uses it. The provider is
	// unavailable; the replica stays ready for every other tenant.
	f.advance(t, time.Minute)
	f.waitStatus(t, "main", func(st jwkscache.Status) bool { return st.Unusable })
	f.expectStep(t, "unavailable", wantStatus{State: "Ready", Stale: true, ErrorCount: 3, HasError: true, KeyIDs: []string{"k1"}}, http.StatusOK)

	// Back: the identity provider answers again and the next refresh brings
	// the provider, and readiness, back.
	f.idp.setMode(idpOK)
	if ev := f.advance(t, time.Minute); ev.Result != "fetched" {
		t.Fatalf("recovery refresh: %s", ev.Result)
	}
	f.expectStep(t, "recovered", ready, http.StatusOK)
}

func TestAdmin_UnknownProviderIs404JSON(t *testing.T) {
	f := newFixture(t)
	f.register(t, "main")
	f.events.next(t)
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/v1/providers/acme/nope"},
		{http.MethodGet, "/v1/providers/nope/main"},
		{http.MethodPost, "/v1/providers/acme/nope/refresh"},
	} {
		r := f.do(t, req.method, req.path)
		var e admin.Error
		r.decode(t, &e)
		if r.status != http.StatusNotFound || e.Error != "not_found" || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %s %s", req.method, req.path, r.status, r.header.Get("Content-Type"), r.body)
		}
	}
}

func TestAdmin_ListProvidersAndMetrics(t *testing.T) {
	f := newFixture(t)
	f.register(t, "main")
	f.events.next(t)
	f.idp.setMode(idpFail)
	f.register(t, "backup")
	f.events.next(t)

	var list struct{ Providers []admin.ProviderStatus }
	f.do(t, http.MethodGet, "/v1/providers").decode(t, &list)
	var got []string
	for _, p := range list.Providers {
		got = append(got, p.TenantID+"/"+p.ProviderID+":"+p.State)
	}
	if diff := cmp.Diff([]string{"acme/backup:Empty", "acme/main:Ready"}, got); diff != "" {
		t.Errorf("providers (-want +got):\n%s", diff)
	}

	r := f.do(t, http.MethodGet, "/metrics")
	for _, line := range []string{
		`jwks_cache_refresh_total{provider="main",result="fetched",tenant="acme"} 1`,
		`jwks_cache_refresh_total{provider="backup",result="error",tenant="acme"} 1`,
		`jwks_cache_keys{provider="main",tenant="acme"} 1`,
	} {
		if !strings.Contains(string(r.body), line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	r = f.do(t, http.MethodGet, "/healthz")
	if r.status != http.StatusOK {
		t.Errorf("/healthz: %d", r.status)
	}
}

func TestAdmin_ReadinessShare(t *testing.T) {
	tests := []struct {
		name     string
		share    float64
		want     int
		required int
	}{
		{"default: off", 0, http.StatusOK, 0},
		{"all", 1, http.StatusServiceUnavailable, 2},
		{"half", 0.5, http.StatusOK, 1},
		{"just over half rounds up", 0.51, http.StatusServiceUnavailable, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *admin.Options) { o.MinAvailableShare = tt.share })
			f.register(t, "main")
			f.events.next(t)
			f.idp.setMode(idpFail)
			f.register(t, "backup")
			f.events.next(t)
			code, rd := f.readyz(t)
			if code != tt.want || rd.Required != tt.required || rd.Providers != 2 || rd.Available != 1 {
				t.Fatalf("/readyz %d %+v, want %d with required %d", code, rd, tt.want, tt.required)
			}
			if len(rd.Unavailable) != 1 || rd.Unavailable[0].ProviderID != "backup" || rd.Unavailable[0].ErrorCount != 1 {
				t.Errorf("unavailable = %+v, want only backup", rd.Unavailable)
			}
		})
	}
}

func TestAdmin_ReadinessConfigAndDrain(t *testing.T) {
	loaded := false
	f := newFixture(t, func(o *admin.Options) { o.ConfigLoaded = func() bool { return loaded } })
	if code, rd := f.readyz(t); code != http.StatusServiceUnavailable || rd.ConfigLoaded {
		t.Fatalf("before config: %d %+v", code, rd)
	}
	loaded = true
	if code, rd := f.readyz(t); code != http.StatusOK || rd.Providers != 0 {
		t.Fatalf("config without providers: %d %+v", code, rd)
	}
	f.handler.Drain()
	if code, rd := f.readyz(t); code != http.StatusServiceUnavailable || !rd.ShuttingDown {
		t.Fatalf("draining: %d %+v", code, rd)
	}
	if f.handler.Ready() {
		t.Error("Ready() true while draining")
	}
	if r := f.do(t, http.MethodGet, "/healthz"); r.status != http.StatusOK {
		t.Errorf("/healthz while draining: %d, want 200 (alive)", r.status)
	}
}

// TestAdmin_RefreshTimeoutIs503 stops waiting for a held refresh by
// cancelling the admin request, which is what the refresh timeout does.
func TestAdmin_RefreshTimeoutIs503(t *testing.T) {
	f := newFixture(t)
	f.register(t, "main")
	f.events.next(t)
	f.idp.hold()
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/providers/acme/main/refresh", nil)
	rec := httptest.NewRecorder()
	served := make(chan struct{})
	go func() {
		f.handler.ServeHTTP(rec, req)
		close(served)
	}()
	f.idp.waitEntered(t)
	cancel()
	<-served
	f.spec.validate(t, req, rec.Code, rec.Header(), rec.Body.Bytes())
	var e admin.Error
	if err := jsonUnmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != http.StatusServiceUnavailable || e.Error != "refresh_timeout" || e.Status == nil || e.Status.State != "Refreshing" {
		t.Fatalf("%d %s (%v)", rec.Code, rec.Body, err)
	}
	f.idp.release()
	f.events.next(t)
}

func TestWatch_SetsOnChangeOnly(t *testing.T) {
	ticks := make(chan time.Time)
	nudge := admin.NewNudge()
	// ready hands Watch one value per call, so each step's value is the one
	// evaluated after that step's wake-up.
	values := make(chan bool)
	set := make(chan bool, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go admin.Watch(ctx, ticks, nudge, func() bool { return <-values }, func(v bool) { set <- v })
	values <- false // the initial value, set at once
	steps := []struct {
		ready bool
		wake  func()
	}{
		{false, func() { ticks <- time.Time{} }},
		{true, func() { nudge.RefreshDone(jwkscache.RefreshEvent{}) }}, // a refresh made it ready
		{true, func() { ticks <- time.Time{} }},
		{false, func() { ticks <- time.Time{} }}, // stale keys ran out
		{false, func() { nudge.RefreshDone(jwkscache.RefreshEvent{}) }},
	}
	for _, st := range steps {
		st.wake()
		values <- st.ready
	}
	// Once Watch takes this tick it has finished the last step; the value
	// (no change) lets it go back to wait, where cancel ends it.
	ticks <- time.Time{}
	values <- false
	cancel()
	close(set)
	var got []bool
	for v := range set {
		got = append(got, v)
	}
	if diff := cmp.Diff([]bool{false, true, false}, got); diff != "" {
		t.Errorf("set calls (-want +got):\n%s", diff)
	}
}

func TestNudge_NeverBlocks(t *testing.T) {
	n := admin.NewNudge()
	for range 3 {
		n.RefreshDone(jwkscache.RefreshEvent{}) // a full Nudge drops the extra ones
	}
	if len(n) != 1 {
		t.Errorf("pending nudges = %d, want 1", len(n))
	}
}

// TestAdmin_ReadyAfterColdWaitAndStaysReady: a first fetch that hangs keeps
// the replica unready only until limits.cold_wait has passed; from then on
// it is ready, and a provider added later (a reload) whose first fetch
// hangs too does not take it out of rotation again.
func TestAdmin_ReadyAfterColdWaitAndStaysReady(t *testing.T) {
	f := newFixture(t, coldWait(2*time.Second))
	f.idp.hold()
	t.Cleanup(f.idp.release)
	f.register(t, "main")
	f.idp.waitEntered(t)
	if code, rd := f.readyz(t); code != http.StatusServiceUnavailable || rd.Pending != 1 || rd.Started {
		t.Fatalf("within cold_wait: %d %+v", code, rd)
	}
	f.adminClk.Advance(2 * time.Second)
	code, rd := f.readyz(t)
	if code != http.StatusOK || !rd.Started || rd.Pending != 0 {
		t.Fatalf("after cold_wait: %d %+v", code, rd)
	}
	if len(rd.Unavailable) != 1 || rd.Unavailable[0].ProviderID != "main" || rd.Unavailable[0].State != "Loading" {
		t.Fatalf("after cold_wait: unavailable = %+v, want acme/main Loading", rd.Unavailable)
	}
	f.register(t, "backup")
	f.idp.waitEntered(t)
	if code, rd := f.readyz(t); code != http.StatusOK || len(rd.Unavailable) != 2 {
		t.Fatalf("provider added later: %d %+v, want 200 listing both", code, rd)
	}
	if !f.handler.Ready() {
		t.Error("Ready() false after start")
	}
}

// TestAdmin_StartedStaysStartedAcrossReload: once every first fetch attempt
// finished, a provider added later whose first fetch hangs does not make
// the replica unready, even long before cold_wait would have passed.
func TestAdmin_StartedStaysStartedAcrossReload(t *testing.T) {
	f := newFixture(t, coldWait(time.Hour))
	f.register(t, "main")
	f.events.next(t)
	if code, rd := f.readyz(t); code != http.StatusOK || !rd.Started {
		t.Fatalf("after the first fetch: %d %+v", code, rd)
	}
	f.idp.hold()
	t.Cleanup(f.idp.release)
	f.register(t, "backup")
	f.idp.waitEntered(t)
	if code, rd := f.readyz(t); code != http.StatusOK || rd.Pending != 0 || len(rd.Unavailable) != 1 {
		t.Fatalf("provider added later: %d %+v, want 200 with backup unavailable", code, rd)
	}
}

// TestAdmin_TokenRequired: with a token, every path needs it (the provider
// API always, the probes unless OpenProbes); a wrong, truncated or
// differently-schemed token is 401 with a Bearer challenge.
func TestAdmin_TokenRequired(t *testing.T) {
	const token = "s3cret-admin-token-0123456789abcdef"
	for _, open := range []bool{false, true} {
		f := newFixture(t, func(o *admin.Options) { o.Token = []byte(token); o.OpenProbes = open })
		f.register(t, "main")
		f.events.next(t)
		tests := []struct {
			method, path, auth string
			want               int
		}{
			{http.MethodGet, "/v1/providers", "", http.StatusUnauthorized},
			{http.MethodGet, "/v1/providers", "Bearer " + token, http.StatusOK},
			{http.MethodGet, "/v1/providers", "bearer " + token, http.StatusOK}, // RFC 6750: scheme case-insensitive
			{http.MethodGet, "/v1/providers", "Bearer " + token[:len(token)-1], http.StatusUnauthorized},
			{http.MethodGet, "/v1/providers", "Bearer " + token + "x", http.StatusUnauthorized},
			{http.MethodGet, "/v1/providers", "Basic " + token, http.StatusUnauthorized},
			{http.MethodGet, "/v1/providers", token, http.StatusUnauthorized},
			{http.MethodGet, "/v1/providers/acme/main", "Bearer wrong", http.StatusUnauthorized},
			{http.MethodPost, "/v1/providers/acme/main/refresh", "", http.StatusUnauthorized},
			{http.MethodPost, "/v1/providers/acme/main/refresh", "Bearer wrong", http.StatusUnauthorized},
			{http.MethodGet, "/healthz", "", map[bool]int{false: http.StatusUnauthorized, true: http.StatusOK}[open]},
			{http.MethodGet, "/readyz", "", map[bool]int{false: http.StatusUnauthorized, true: http.StatusOK}[open]},
			{http.MethodGet, "/metrics", "", map[bool]int{false: http.StatusUnauthorized, true: http.StatusOK}[open]},
			{http.MethodGet, "/metrics", "Bearer " + token, http.StatusOK},
		}
		for _, tt := range tests {
			req, err := http.NewRequest(tt.method, f.srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			res, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Errorf("open_probes=%v %s %s with %q: %d, want %d", open, tt.method, tt.path, tt.auth, res.StatusCode, tt.want)
				continue
			}
			f.spec.validate(t, req, res.StatusCode, res.Header, body)
			if tt.want == http.StatusUnauthorized {
				if got := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
					t.Errorf("%s %s: WWW-Authenticate %q, want a Bearer challenge", tt.method, tt.path, got)
				}
				if strings.Contains(string(body), "acme") || strings.Contains(string(body), token) {
					t.Errorf("401 body reveals something: %s", body)
				}
			}
		}
	}
}

// TestAdmin_RefreshMinInterval: a second forced refresh of one provider
// within the interval is 429 with Retry-After and fetches nothing; another
// provider is not affected; after the interval it is accepted again.
func TestAdmin_RefreshMinInterval(t *testing.T) {
	f := newFixture(t, func(o *admin.Options) { o.RefreshMinInterval = 10 * time.Second })
	f.register(t, "main")
	f.events.next(t)
	f.register(t, "backup")
	f.events.next(t)

	if r := f.do(t, http.MethodPost, "/v1/providers/acme/main/refresh"); r.status != http.StatusOK {
		t.Fatalf("first refresh: %d %s", r.status, r.body)
	}
	f.events.next(t)
	for _, step := range []struct {
		advance   time.Duration
		wantRetry string
	}{
		{0, "10"},
		{2500 * time.Millisecond, "8"}, // 7.5 s rounded up
		{7 * time.Second, "1"},         // 0.5 s rounded up
	} {
		f.adminClk.Advance(step.advance)
		r := f.do(t, http.MethodPost, "/v1/providers/acme/main/refresh")
		var e admin.Error
		r.decode(t, &e)
		if r.status != http.StatusTooManyRequests || e.Error != "refresh_too_soon" || r.header.Get("Retry-After") != step.wantRetry {
			t.Fatalf("refresh again: %d Retry-After %q %s, want 429 Retry-After %s", r.status, r.header.Get("Retry-After"), r.body, step.wantRetry)
		}
	}
	select {
	case ev := <-f.events:
		t.Fatalf("a refused refresh fetched: %+v", ev)
	default:
	}
	// Another provider has its own interval.
	if r := f.do(t, http.MethodPost, "/v1/providers/acme/backup/refresh"); r.status != http.StatusOK {
		t.Fatalf("other provider: %d %s", r.status, r.body)
	}
	f.events.next(t)
	f.adminClk.Advance(500 * time.Millisecond) // exactly the interval since the first
	if r := f.do(t, http.MethodPost, "/v1/providers/acme/main/refresh"); r.status != http.StatusOK {
		t.Fatalf("after the interval: %d %s", r.status, r.body)
	}
	f.events.next(t)
}
