package jwkscache_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"go.uber.org/goleak"

	"github.com/extauthz/extauthz/jwkscache"
)

func TestUnregister_LeavesNoGoroutines(t *testing.T) {
	_, srv := newKeyServer(t)
	ignore := goleak.IgnoreCurrent()
	ev := make(events, 10)
	// The real clock: its refresh timer must be stopped too.
	r, err := jwkscache.New(jwkscache.Options{HTTPClient: srv.Client(), Observer: ev})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(context.Background(), r.NewRegistration("acme", "main", srv.url())); err != nil {
		t.Fatal(err)
	}
	if e := <-ev; e.Err != nil {
		t.Fatal(e.Err)
	}
	if _, err := r.Key(context.Background(), "acme", "main", "k1", "ES256"); err != nil {
		t.Fatal(err)
	}
	if !r.Unregister("acme", "main") {
		t.Fatal("Unregister found nothing")
	}
	// The connection stays in the registry's shared pool (other providers
	// on the host reuse it) until its idle timeout or Close; nothing else
	// of the provider may remain.
	goleak.VerifyNone(t, ignore,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve")) // the test server's side of it
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
}

func TestClose_StopsRefreshesInFlightAndLeavesNoGoroutines(t *testing.T) {
	_, srv := newKeyServer(t)
	arrived := make(chan struct{}, 10)
	srv.serve(func(w http.ResponseWriter, r *http.Request, doc []byte) {
		if r.URL.Query().Get("hang") != "" {
			arrived <- struct{}{}
			<-r.Context().Done()
			return
		}
		_, _ = w.Write(doc)
	})
	ignore := goleak.IgnoreCurrent()
	ev := make(events, 10)
	r, err := jwkscache.New(jwkscache.Options{HTTPClient: srv.Client(), Observer: ev})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := r.Register(context.Background(), r.NewRegistration("acme", fmt.Sprintf("ok%d", i), srv.url())); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		<-ev
	}
	// One provider is stuck in its first fetch when the registry closes.
	if err := r.Register(context.Background(), r.NewRegistration("acme", "stuck", srv.url()+"?hang=1")); err != nil {
		t.Fatal(err)
	}
	<-arrived
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
	if _, err := r.Key(context.Background(), "acme", "ok0", "k1", "ES256"); err == nil {
		t.Fatal("lookup after Close succeeded")
	}
	if err := r.Register(context.Background(), r.NewRegistration("acme", "late", srv.url())); err == nil {
		t.Fatal("Register after Close succeeded")
	}
}
