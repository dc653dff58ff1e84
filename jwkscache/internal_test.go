package jwkscache

import (
	"fmt"
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

// TestNegativeCache_Bounded: random kids cannot grow the negative cache past
// maxNegative; once it is full, expired entries make room and live ones are
// kept.
func TestNegativeCache_Bounded(t *testing.T) {
	p := &provider{reg: DefaultRegistration("t", "p", "https://x")}
	p.reg.NegativeCacheTTL = time.Minute
	now := time.Unix(1e9, 0)
	for i := range maxNegative + 10 {
		p.rememberMissing(fmt.Sprintf("kid-%d", i), now)
	}
	if len(p.negative) != maxNegative {
		t.Fatalf("negative cache holds %d kids, want the bound %d", len(p.negative), maxNegative)
	}
	if !p.knownMissing("kid-0", now) || p.knownMissing(fmt.Sprintf("kid-%d", maxNegative), now) {
		t.Fatal("a full cache must keep its entries and refuse new ones")
	}
	// Half the entries expire: the next miss evicts them and is remembered.
	later := now.Add(time.Minute)
	for i := range maxNegative / 2 {
		p.negative[fmt.Sprintf("kid-%d", i)] = now.Add(30 * time.Second)
	}
	p.rememberMissing("new", later.Add(-time.Second))
	if got := len(p.negative); got != maxNegative/2+1 {
		t.Fatalf("after eviction %d kids, want %d", got, maxNegative/2+1)
	}
	if !p.knownMissing("new", later.Add(-time.Second)) || !p.knownMissing(fmt.Sprintf("kid-%d", maxNegative-1), later.Add(-time.Second)) {
		t.Fatal("live entries lost in eviction")
	}
	// An entry is missing until exactly its expiry, then forgotten.
	if p.knownMissing("new", later.Add(59*time.Second)) {
		t.Fatal("expired entry still known missing")
	}
	if _, ok := p.negative["new"]; ok {
		t.Fatal("expired entry not deleted on lookup")
	}
}

// TestNegativeCache_OffWhenTTLZero: negative_cache_ttl 0 turns the cache off.
func TestNegativeCache_OffWhenTTLZero(t *testing.T) {
	p := &provider{reg: DefaultRegistration("t", "p", "https://x")}
	p.reg.NegativeCacheTTL = 0
	now := time.Unix(1e9, 0)
	p.rememberMissing("k", now)
	if p.knownMissing("k", now) || len(p.negative) != 0 {
		t.Fatal("negative cache used with negative_cache_ttl 0")
	}
}
