package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/logtest"

	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/admin"
	"github.com/extauthz/extauthz/jwkscache"
)

func TestRefreshLog_OneLinePerOutcomeChange(t *testing.T) {
	var buf bytes.Buffer
	l := admin.NewRefreshLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	ev := func(provider string, result jwkscache.RefreshResult) jwkscache.RefreshEvent {
		e := jwkscache.RefreshEvent{TenantID: "acme", ProviderID: provider, Result: result, Keys: 1}
		if result == jwkscache.RefreshError {
			e.Err = errors.New("unexpected HTTP status 500")
			e.Keys = 0
		}
		return e
	}
	for _, e := range []jwkscache.RefreshEvent{
		ev("main", "fetched"),      // first outcome: logged
		ev("main", "not_modified"), // still fine: quiet
		ev("main", "fetched"),
		ev("main", "error"), // failing: logged
		ev("main", "error"), // still failing: quiet
		ev("main", "error"),
		ev("other", "error"),       // another provider's first outcome: logged
		ev("main", "not_modified"), // recovered: logged
	} {
		l.RefreshDone(e)
	}
	var got []string
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var line struct{ Level, Msg, Provider, Result string }
		if err := dec.Decode(&line); err != nil {
			t.Fatal(err)
		}
		got = append(got, line.Level+" "+line.Msg+" "+line.Provider+" "+line.Result)
	}
	want := []string{
		"INFO jwks refresh ok main fetched",
		"WARN jwks refresh failing main error",
		"WARN jwks refresh failing other error",
		"INFO jwks refresh ok main not_modified",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log lines (-want +got):\n%s", diff)
	}
}

// TestRefreshLog_WithQuietCacheLogsOneLinePerFailingStreak runs a real
// registry (QuietRefreshFailures, as the service builds it) whose identity
// provider fails three refreshes in a row: at Info level the log holds one
// line about it, not three.
func TestRefreshLog_WithQuietCacheLogsOneLinePerFailingStreak(t *testing.T) {
	var buf logtest.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rl := admin.NewRefreshLog(log)
	idp := newScriptedIdP(t)
	idp.setMode(idpFail)
	evs := make(events, 10)
	reg, err := jwkscache.New(jwkscache.Options{
		HTTPClient: idp.Client(),
		Observer:   observers{rl, evs},
		Logger:     log,

		QuietRefreshFailures: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	r := reg.NewRegistration("acme", "main", idp.URL+"/jwks")
	r.RetryPolicy.MaxRetries = 0
	if err := reg.Register(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	evs.next(t)
	for range 2 {
		if err := reg.Refresh(context.Background(), "acme", "main"); err == nil {
			t.Fatal("refresh succeeded against a failing identity provider")
		}
		evs.next(t)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 || !strings.Contains(buf.String(), `"msg":"jwks refresh failing"`) {
		t.Errorf("log at info after 3 failed refreshes, want one line:\n%s", buf.String())
	}
}

// observers fans refresh events out.
type observers []jwkscache.Observer

func (o observers) RefreshDone(ev jwkscache.RefreshEvent) {
	for _, x := range o {
		x.RefreshDone(ev)
	}
}

// TestRefreshLog_CloseDuringRefreshIsNotAFailure closes a real registry
// while its first fetch is held at the identity provider: the refresh ends
// with the registry's context canceled, which says nothing about the
// identity provider, so nothing is logged (at shutdown of a large fleet
// this was one Warn line per provider).
func TestRefreshLog_CloseDuringRefreshIsNotAFailure(t *testing.T) {
	var buf logtest.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	idp := newScriptedIdP(t)
	idp.hold()
	evs := make(events, 10)
	reg, err := jwkscache.New(jwkscache.Options{
		HTTPClient: idp.Client(),
		Observer:   observers{admin.NewRefreshLog(log), evs},
		Logger:     log,

		QuietRefreshFailures: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := reg.NewRegistration("acme", "main", idp.URL+"/jwks")
	if err := reg.Register(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	idp.waitEntered(t)
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	ev := evs.next(t)
	if ev.Result != jwkscache.RefreshError || !errors.Is(ev.Err, context.Canceled) {
		t.Fatalf("refresh cut short by Close: result %q, error %v; want an error wrapping context.Canceled", ev.Result, ev.Err)
	}
	if s := buf.String(); s != "" {
		t.Errorf("log after Close during a refresh, want nothing:\n%s", s)
	}
}
