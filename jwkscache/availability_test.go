package jwkscache_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/jwkscache"
)

// TestAvailability_FollowsEveryStateChange walks one provider through the
// changes readiness counts (registered cold, first set, stale, unusable,
// refreshed, replaced, removed) and checks the running counts and the
// list of unusable providers after each.
func TestAvailability_FollowsEveryStateChange(t *testing.T) {
	k := newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k.PublicKey, "k1", "ES256")))
	f := newFixture(t, srv)
	check := func(step string, want jwkscache.Availability, unusable ...string) {
		t.Helper()
		if got := f.reg.Availability(); got != want {
			t.Fatalf("%s: Availability = %+v, want %+v", step, got, want)
		}
		var got []string
		for _, st := range f.reg.UnusableStatuses() {
			got = append(got, st.TenantID+"/"+st.ProviderID)
		}
		if diff := cmp.Diff(unusable, got); diff != "" {
			t.Fatalf("%s: UnusableStatuses (-want +got):\n%s", step, diff)
		}
	}
	check("empty", jwkscache.Availability{})

	// A provider whose IdP always fails: registered, never usable. (The
	// httptest servers share one certificate, so f's client trusts it.)
	down := newJWKSServer(t, nil)
	down.set(func(s *jwksServer) {
		s.handler = func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }
	})
	if err := f.reg.Register(t.Context(), f.registration(func(r *jwkscache.Registration) { r.ProviderID = "down"; r.JWKSURL = down.url() })); err != nil {
		t.Fatal(err)
	}
	f.next(t)
	check("failing provider", jwkscache.Availability{Providers: 1}, "acme/down")

	f.register(t, func(r *jwkscache.Registration) { r.PrefetchJitter = 0; r.StaleWhileError = time.Minute })
	check("first set", jwkscache.Availability{Providers: 2, Usable: 1}, "acme/down")

	// The IdP fails from now on: the set goes stale (still usable), then
	// past stale_while_error (unusable), on the clock alone.
	srv.set(func(s *jwksServer) {
		s.handler = func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }
	})
	f.clk.Advance(time.Hour)
	check("stale", jwkscache.Availability{Providers: 2, Usable: 1}, "acme/down")
	f.clk.Advance(time.Minute)
	check("past stale_while_error", jwkscache.Availability{Providers: 2}, "acme/down", "acme/main")

	// The IdP recovers; the retry timers bring the set back.
	srv.set(func(s *jwksServer) { s.handler = nil })
	for {
		if ev, _ := f.drive(t, time.Hour); ev.ProviderID == "main" && ev.Err == nil {
			break
		}
	}
	check("refreshed", jwkscache.Availability{Providers: 2, Usable: 1}, "acme/down")

	// Replacing a provider keeps one entry for it.
	if err := f.reg.Register(t.Context(), f.registration(func(r *jwkscache.Registration) { r.RefreshEarly = 40 * time.Second })); err != nil {
		t.Fatal(err)
	}
	check("replaced", jwkscache.Availability{Providers: 2, Usable: 1}, "acme/down")

	f.reg.Unregister("acme", "down")
	check("unregistered", jwkscache.Availability{Providers: 1, Usable: 1})
	if n := f.reg.Retain(func(string, string) bool { return false }); n != 1 {
		t.Fatalf("Retain removed %d, want 1", n)
	}
	check("retained none", jwkscache.Availability{})
}

func TestRegisterAll_OneInvalidRegistersNoneAndNamesEveryProblem(t *testing.T) {
	srv := newJWKSServer(t, nil)
	f := newFixture(t, srv)
	good := f.registration()
	bad1 := f.registration(func(r *jwkscache.Registration) { r.ProviderID = "b1"; r.JWKSURL = "http://idp.example/jwks" })
	bad2 := f.registration(func(r *jwkscache.Registration) { r.ProviderID = "b2"; r.MaxRedirects = 99 })
	err := f.reg.RegisterAll(t.Context(), []jwkscache.Registration{good, bad1, bad2})
	if err == nil || !strings.Contains(err.Error(), "acme/b1") || !strings.Contains(err.Error(), "acme/b2") {
		t.Fatalf("error = %v, want both invalid registrations named", err)
	}
	if got := f.reg.Availability().Providers; got != 0 {
		t.Fatalf("%d providers registered, want none", got)
	}
}

func TestRegisterAll_LastRegistrationForAProviderWins(t *testing.T) {
	k := newECKey(t)
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &k.PublicKey, "k1", "ES256")))
	f := newFixture(t, srv)
	first := f.registration(func(r *jwkscache.Registration) { r.JWKSURL = srv.URL + "/other" })
	last := f.registration()
	other := f.registration(func(r *jwkscache.Registration) { r.ProviderID = "second" })
	if err := f.reg.RegisterAll(context.Background(), []jwkscache.Registration{first, other, last}); err != nil {
		t.Fatal(err)
	}
	f.next(t)
	f.next(t)
	f.mustKey(t, "k1", k)
	if got := f.reg.Availability(); got != (jwkscache.Availability{Providers: 2, Usable: 2}) {
		t.Fatalf("Availability = %+v", got)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("IdP saw %d requests, want 2 (the replaced registration never fetches)", got)
	}
}
