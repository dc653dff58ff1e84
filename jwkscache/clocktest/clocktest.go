// Package clocktest provides a fake jwkscache.Clock whose time moves only
// when a test says so, so TTL, refresh and backoff tests run in
// milliseconds without sleeping.
package clocktest

import (
	"slices"
	"sync"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// Clock is a manually advanced jwkscache.Clock. It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer
	changed chan struct{} // closed and replaced whenever the pending timers change
}

type timer struct {
	c    *Clock
	when time.Time
	f    func()
}

// New returns a clock that reads start until advanced.
func New(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f to run in its own goroutine once the clock has been
// advanced by d. A d ≤ 0 fires at the next Advance (even by 0).
func (c *Clock) AfterFunc(d time.Duration, f func()) jwkscache.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, when: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.notify()
	return t
}

// notify wakes every waiter on Changed. c.mu must be held.
func (c *Clock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Stop implements jwkscache.Timer.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	t.c.notify()
	return true
}

// Advance moves the clock forward by d, runs every timer due by then, each
// in its own goroutine, and returns once they all have returned, so a test
// sees their effects (a key set turned stale) as soon as Advance returns.
// Callbacks must not call Advance.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*timer
	c.timers = slices.DeleteFunc(c.timers, func(t *timer) bool {
		if !t.when.After(c.now) {
			due = append(due, t)
			return true
		}
		return false
	})
	if len(due) > 0 {
		c.notify()
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range due {
		wg.Go(t.f)
	}
	wg.Wait()
}

// Pending returns, earliest first, how long until each pending timer fires.
func (c *Clock) Pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Duration, 0, len(c.timers))
	for _, t := range c.timers {
		out = append(out, t.when.Sub(c.now))
	}
	slices.Sort(out)
	return out
}

// Next reports how long until the earliest pending timer fires.
func (c *Clock) Next() (time.Duration, bool) {
	p := c.Pending()
	if len(p) == 0 {
		return 0, false
	}
	return p[0], true
}

// Changed returns a channel closed when the pending timers next change: a
// timer added, stopped or fired. Take it before inspecting Pending, so no
// change is missed; a test waits on it instead of polling Pending.
func (c *Clock) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}
