package dpop

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache/clocktest"
)

func once(t *testing.T, c ReplayCache, key string, ttl time.Duration) (bool, error) {
	t.Helper()
	return c.Once(context.Background(), key, ttl)
}

func TestMemoryReplay_OncePerWindow(t *testing.T) {
	clock := clocktest.New(testNow)
	m := NewMemoryReplay(10, clock.Now)
	if ok, err := once(t, m, "a", time.Minute); !ok || err != nil {
		t.Fatalf("first: %v %v", ok, err)
	}
	clock.Advance(time.Minute - time.Millisecond)
	if ok, err := once(t, m, "a", time.Minute); ok || err != nil {
		t.Fatalf("within ttl: %v %v, want false", ok, err)
	}
	clock.Advance(time.Millisecond)
	if ok, err := once(t, m, "a", time.Minute); !ok || err != nil {
		t.Fatalf("after ttl: %v %v, want true", ok, err)
	}
}

func TestMemoryReplay_FullRefusesRatherThanForgets(t *testing.T) {
	clock := clocktest.New(testNow)
	m := NewMemoryReplay(2, clock.Now)
	once(t, m, "a", time.Minute)
	once(t, m, "b", 2*time.Minute)
	if ok, err := once(t, m, "c", time.Minute); ok || !errors.Is(err, ErrReplayFull) {
		t.Fatalf("full: %v %v, want ErrReplayFull", ok, err)
	}
	// Nothing was forgotten to make room.
	if ok, _ := once(t, m, "a", time.Minute); ok {
		t.Fatal("a was forgotten")
	}
	clock.Advance(time.Minute) // a expires: room for one
	if ok, err := once(t, m, "c", time.Minute); !ok || err != nil {
		t.Fatalf("after expiry: %v %v", ok, err)
	}
	if m.Len() != 2 {
		t.Fatalf("Len %d, want 2", m.Len())
	}
}

func TestFallbackReplay(t *testing.T) {
	down := failingReplay{errors.New("redis down")}
	t.Run("fails closed by default", func(t *testing.T) {
		local := NewMemoryReplay(10, nil)
		f := &FallbackReplay{Shared: down, Local: local}
		if ok, err := once(t, f, "a", time.Minute); ok || err == nil {
			t.Fatalf("%v %v, want the shared error", ok, err)
		}
		if local.Len() != 0 {
			t.Fatal("local cache used without FallBack")
		}
	})
	t.Run("falls back when asked", func(t *testing.T) {
		var told error
		f := &FallbackReplay{Shared: down, Local: NewMemoryReplay(10, nil), FallBack: true, OnFallback: func(err error) { told = err }}
		if ok, err := once(t, f, "a", time.Minute); !ok || err != nil {
			t.Fatalf("%v %v, want the local answer", ok, err)
		}
		if ok, _ := once(t, f, "a", time.Minute); ok {
			t.Fatal("local replay accepted")
		}
		if told == nil {
			t.Error("OnFallback not called")
		}
	})
	t.Run("shared answer wins", func(t *testing.T) {
		shared := NewMemoryReplay(10, nil)
		once(t, shared, "a", time.Minute)
		f := &FallbackReplay{Shared: shared, Local: NewMemoryReplay(10, nil), FallBack: true}
		if ok, err := once(t, f, "a", time.Minute); ok || err != nil {
			t.Fatalf("%v %v, want the shared replay refusal", ok, err)
		}
	})
}

// BenchmarkMemoryReplay_Once records distinct keys into a cache large
// enough to hold them all: the cost a fresh proof adds without Redis.
func BenchmarkMemoryReplay_Once(b *testing.B) {
	m := NewMemoryReplay(1<<30, nil)
	ctx := context.Background()
	var i int
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := m.Once(ctx, strconv.Itoa(i), time.Minute); !ok {
			b.Fatal("refused")
		}
		i++
	}
}
