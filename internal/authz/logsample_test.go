package authz

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/logtest"
)

// steppedClock is a clock the test moves by hand.
type steppedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *steppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *steppedClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logLines decodes the JSON log lines of buf.
func logLines(t *testing.T, buf string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestDecide_DenialLogsLimitedPerReasonAndCounted(t *testing.T) {
	const limit, flood = 5, 40
	clk := &steppedClock{now: testNow}
	logs := &logtest.Buffer{}
	obs := &recordingObserver{}
	srv := New(testSet(t, testConfig), authztest.NewFakeKeys(), Options{
		Now:            clk.Now,
		Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
		Observer:       obs,
		DenialLogLimit: limit,
	})
	ctx := context.Background()
	tokenless := &Request{Host: "api.acme.test", Path: "/p"}
	for range flood {
		srv.Decide(ctx, tokenless)
	}
	// Another reason has a budget of its own.
	srv.Decide(ctx, acmeRequest("abc"))

	lines := logLines(t, logs.String())
	byReason := map[string]int{}
	for _, l := range lines {
		byReason[l["reason"].(string)]++
	}
	if byReason["token_missing"] != limit || byReason["token_malformed"] != 1 {
		t.Fatalf("lines per reason = %v, want token_missing:%d token_malformed:1", byReason, limit)
	}
	// Every decision still reaches the observer (the metrics).
	if len(obs.reasons) != flood+1 {
		t.Fatalf("observer saw %d decisions, want %d", len(obs.reasons), flood+1)
	}

	// A new second: the first line says how many were left out.
	clk.Add(time.Second)
	mark := len(logs.String())
	srv.Decide(ctx, tokenless)
	lines = logLines(t, logs.String()[mark:])
	if len(lines) != 1 || lines[0]["suppressed_before"] != float64(flood-limit) {
		t.Fatalf("after the window: %v, want one line with suppressed_before=%d", lines, flood-limit)
	}
	// The tenant matched, no provider did: the same placeholder as metrics.
	if lines[0]["provider"] != NoProvider || lines[0]["tenant"] != "acme" {
		t.Fatalf("tenant/provider = %v/%v, want acme/%s", lines[0]["tenant"], lines[0]["provider"], NoProvider)
	}
}

func TestDecide_DenialLogsUnlimitedWhenNegative(t *testing.T) {
	logs := &logtest.Buffer{}
	srv := New(testSet(t, testConfig), authztest.NewFakeKeys(), Options{
		Now:            func() time.Time { return testNow },
		Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
		DenialLogLimit: -1,
	})
	for range 2 * DefaultDenialLogLimit {
		srv.Decide(context.Background(), &Request{Host: "nobody.test", Path: "/"})
	}
	lines := logLines(t, logs.String())
	if len(lines) != 2*DefaultDenialLogLimit {
		t.Fatalf("%d lines, want all %d", len(lines), 2*DefaultDenialLogLimit)
	}
	if lines[0]["tenant"] != NoTenant || lines[0]["provider"] != NoProvider {
		t.Fatalf("tenant/provider = %v/%v, want %s/%s", lines[0]["tenant"], lines[0]["provider"], NoTenant, NoProvider)
	}
}

// TestDecide_ShadowWouldDenyLogsLimited: in shadow mode a flood is allowed,
// but its would-be denials are logged at info: they get a budget too.
func TestDecide_ShadowWouldDenyLogsLimited(t *testing.T) {
	const limit, flood = 3, 25
	logs := &logtest.Buffer{}
	srv := New(testSet(t, reqConfig+"    mode: shadow\n"), authztest.NewFakeKeys(), Options{
		Now:            func() time.Time { return testNow },
		Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
		DenialLogLimit: limit,
	})
	for range flood {
		if d := srv.Decide(context.Background(), &Request{Host: "api.acme.test", Method: "GET", Path: "/a%2fb"}); !d.Allowed || d.WouldDeny == "" {
			t.Fatalf("shadow mode: %+v, want an allow that would deny", d)
		}
	}
	if n := len(logLines(t, logs.String())); n != limit {
		t.Fatalf("%d would-deny lines for %d requests, want %d", n, flood, limit)
	}
}
