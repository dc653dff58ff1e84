package jwkscache

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoff_StrategiesStayWithinBounds(t *testing.T) {
	p := RetryPolicy{InitialBackoff: 250 * time.Millisecond, MaxBackoff: 2 * time.Second}
	for _, tc := range []struct {
		name   string
		jitter Jitter
		rand   func(n int64) int64
		want   []time.Duration
	}{
		{"none doubles up to the cap", JitterNone, nil, []time.Duration{250e6, 500e6, 1e9, 2e9, 2e9}},
		{"full at its upper bound", JitterFull, func(n int64) int64 { return n - 1 }, []time.Duration{250e6, 500e6, 1e9, 2e9, 2e9}},
		{"full at its lower bound", JitterFull, func(int64) int64 { return 0 }, []time.Duration{0, 0, 0, 0, 0}},
		{"decorrelated at its upper bound", JitterDecorrelated, func(n int64) int64 { return n - 1 }, []time.Duration{750e6, 2e9, 2e9, 2e9, 2e9}},
		{"decorrelated at its lower bound", JitterDecorrelated, func(int64) int64 { return 0 }, []time.Duration{250e6, 250e6, 250e6, 250e6, 250e6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Jitter = tc.jitter
			b := newBackoff(p)
			if tc.rand != nil {
				b.rand = tc.rand
			}
			for i, want := range tc.want {
				if got := b.next(i); got != want {
					t.Fatalf("wait %d = %v, want %v", i, got, want)
				}
			}
		})
	}
}

func TestBackoff_NoOverflowOnManyAttempts(t *testing.T) {
	b := newBackoff(RetryPolicy{InitialBackoff: time.Second, MaxBackoff: time.Hour, Jitter: JitterNone})
	if got := b.next(200); got != time.Hour {
		t.Fatalf("wait = %v, want the cap", got)
	}
}

func TestFreshness_InvalidExpiresMeansMinTTL(t *testing.T) {
	h := http.Header{"Expires": {"0"}}
	if got := freshness(h, time.Now(), 30*time.Second, time.Hour); got != 30*time.Second {
		t.Fatalf("ttl = %v", got)
	}
}

func TestSchedule_ShortTTLDoesNotLoop(t *testing.T) {
	// With max-age equal to refresh_early, the refresh comes at half the TTL,
	// not immediately.
	p := &provider{reg: DefaultRegistration("t", "p", "https://x"), deps: deps{clock: realClock{}}}
	p.reg.PrefetchJitter = 0
	now := time.Now()
	p.snap.Store(&keySet{expiresAt: now.Add(30 * time.Second)})
	var got time.Duration
	p.deps.clock = recordClock{now: now, d: &got}
	p.schedule(now)
	if got != 15*time.Second {
		t.Fatalf("next refresh in %v, want 15s", got)
	}
}

type recordClock struct {
	now time.Time
	d   *time.Duration
}

func (c recordClock) Now() time.Time { return c.now }
func (c recordClock) AfterFunc(d time.Duration, f func()) Timer {
	*c.d = d
	return time.AfterFunc(time.Hour, f)
}
