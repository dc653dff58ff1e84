package jwkscache_test

import (
	"context"
	"sync"
	"testing"

	"github.com/extauthz/extauthz/jwkscache"
)

type ctxKey string

// recordingTracer is a jwkscache.Tracer that remembers every call.
type recordingTracer struct {
	mu        sync.Mutex
	refreshes []tracedRefresh
	waits     []tracedWait
	waitStart chan struct{} // a WaitStarted call happened
}

type tracedRefresh struct {
	r      jwkscache.TracedRefresh
	lookup string // the lookup context's "id" value
	ev     *jwkscache.RefreshEvent
}

type tracedWait struct {
	w       jwkscache.TracedWait
	lookup  string // the lookup context's "id" value
	refresh any    // the refresh context's "refresh" value
	ended   bool
	err     error
}

func (tr *recordingTracer) RefreshStarted(ctx, lookup context.Context, r jwkscache.TracedRefresh) (context.Context, func(jwkscache.RefreshEvent)) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	rec := tracedRefresh{r: r}
	if lookup != nil {
		rec.lookup, _ = lookup.Value(ctxKey("id")).(string)
	}
	tr.refreshes = append(tr.refreshes, rec)
	i := len(tr.refreshes) - 1
	return context.WithValue(ctx, ctxKey("refresh"), i), func(ev jwkscache.RefreshEvent) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		tr.refreshes[i].ev = &ev
	}
}

func (tr *recordingTracer) WaitStarted(ctx, refresh context.Context, w jwkscache.TracedWait) func(error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	id, _ := ctx.Value(ctxKey("id")).(string)
	tr.waits = append(tr.waits, tracedWait{w: w, lookup: id, refresh: refresh.Value(ctxKey("refresh"))})
	i := len(tr.waits) - 1
	select {
	case tr.waitStart <- struct{}{}:
	default:
	}
	return func(err error) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		tr.waits[i].ended, tr.waits[i].err = true, err
	}
}

func (tr *recordingTracer) snapshot() ([]tracedRefresh, []tracedWait) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]tracedRefresh(nil), tr.refreshes...), append([]tracedWait(nil), tr.waits...)
}

func TestTracer_UnknownKIDRefreshAndWait(t *testing.T) {
	k1, k2 := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k1.PublicKey, "k1", "ES256")))
	tr := &recordingTracer{waitStart: make(chan struct{}, 8)}
	f := newFixture(t, srv, func(o *jwkscache.Options) { o.Tracer = tr })
	if ev := f.register(t); ev.Result != "fetched" {
		t.Fatalf("first fetch: %+v", ev)
	}
	srv.set(func(s *jwksServer) {
		s.doc = jwksDoc(t, jwkJSON(t, &k1.PublicKey, "k1", "ES256"), jwkJSON(t, &k2.PublicKey, "k2", "ES256"))
	})
	ctx := context.WithValue(context.Background(), ctxKey("id"), "check-1")
	if _, err := f.reg.Key(ctx, "acme", "main", "k2", "ES256"); err != nil {
		t.Fatalf("Key(k2): %v", err)
	}
	f.next(t) // the unknown-kid refresh has reported: its done ran before
	refreshes, waits := tr.snapshot()
	if len(refreshes) != 2 || refreshes[0].r.Trigger != "first" || refreshes[0].lookup != "" ||
		refreshes[1].r.Trigger != "unknown_kid" || refreshes[1].lookup != "check-1" {
		t.Fatalf("refreshes %+v: want first (no lookup), then unknown_kid started by check-1", refreshes)
	}
	for i, r := range refreshes {
		if r.ev == nil || r.ev.Result != "fetched" || r.r.TenantID != "acme" || r.r.ProviderID != "main" {
			t.Errorf("refresh %d: %+v, outcome %+v", i, r.r, r.ev)
		}
	}
	if len(waits) != 1 {
		t.Fatalf("waits %+v, want one", waits)
	}
	w := waits[0]
	if w.w.Kind != jwkscache.WaitUnknownKID || w.w.KID != "k2" || w.lookup != "check-1" || w.refresh != 1 || !w.ended || w.err != nil {
		t.Errorf("wait %+v: want unknown_kid k2 of check-1 on refresh 1, ended without error", w)
	}
	// A warm lookup is not a wait.
	if _, err := f.reg.Key(ctx, "acme", "main", "k1", "ES256"); err != nil {
		t.Fatal(err)
	}
	if _, waits := tr.snapshot(); len(waits) != 1 {
		t.Errorf("a warm lookup was traced as a wait: %+v", waits)
	}
}

func TestTracer_ColdWait(t *testing.T) {
	k1 := newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k1.PublicKey, "k1", "ES256")))
	_, release := holdServer(t, srv)
	tr := &recordingTracer{waitStart: make(chan struct{}, 8)}
	f := newFixture(t, srv, func(o *jwkscache.Options) { o.Tracer = tr })
	f.start(t)
	ctx := context.WithValue(context.Background(), ctxKey("id"), "cold-1")
	errc := make(chan error, 1)
	go func() {
		_, err := f.reg.Key(ctx, "acme", "main", "k1", "ES256")
		errc <- err
	}()
	<-tr.waitStart
	release()
	if err := <-errc; err != nil {
		t.Fatalf("cold Key: %v", err)
	}
	_, waits := tr.snapshot()
	if len(waits) != 1 || waits[0].w.Kind != jwkscache.WaitCold || waits[0].lookup != "cold-1" || waits[0].refresh != 0 ||
		!waits[0].ended || waits[0].err != nil {
		t.Errorf("waits %+v: want one cold wait of cold-1 on the first refresh, ended without error", waits)
	}
}
