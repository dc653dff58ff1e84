package clocktest_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache/clocktest"
)

func TestClock_AdvanceRunsDueTimersOnly(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clocktest.New(start)
	var early, late, stopped atomic.Int32
	c.AfterFunc(time.Second, func() { early.Add(1) })
	c.AfterFunc(time.Minute, func() { late.Add(1) })
	s := c.AfterFunc(2*time.Second, func() { stopped.Add(1) })
	if !s.Stop() || s.Stop() {
		t.Fatal("Stop must report true once, then false")
	}
	if got := c.Pending(); len(got) != 2 || got[0] != time.Second || got[1] != time.Minute {
		t.Fatalf("Pending = %v", got)
	}
	c.Advance(30 * time.Second)
	if early.Load() != 1 || late.Load() != 0 || stopped.Load() != 0 {
		t.Fatalf("fired early=%d late=%d stopped=%d", early.Load(), late.Load(), stopped.Load())
	}
	if !c.Now().Equal(start.Add(30 * time.Second)) {
		t.Fatalf("Now = %v", c.Now())
	}
	if d, ok := c.Next(); !ok || d != 30*time.Second {
		t.Fatalf("Next = %v, %v", d, ok)
	}
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	changed := c.Changed()
	c.AfterFunc(0, func() {})
	if !closed(changed) {
		t.Fatal("Changed not closed by AfterFunc")
	}
	changed = c.Changed()
	if closed(changed) {
		t.Fatal("Changed closed with no change")
	}
	later := c.AfterFunc(time.Hour, func() {})
	changed = c.Changed()
	later.Stop()
	if !closed(changed) {
		t.Fatal("Changed not closed by Stop")
	}
	changed = c.Changed()
	s.Stop() // already stopped: no change
	if closed(changed) {
		t.Fatal("Changed closed by the Stop of a stopped timer")
	}
	c.AfterFunc(0, func() {})
	changed = c.Changed()
	c.Advance(0)
	if !closed(changed) {
		t.Fatal("Changed not closed when a timer fired")
	}
}
