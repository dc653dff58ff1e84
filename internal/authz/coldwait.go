package authz

import (
	"context"
	"sync"
	"time"
)

// coldWait bounds a key lookup by limits.cold_wait, the way
// context.WithTimeout would, but creates the timer only when the lookup
// actually looks at its context. A warm jwkscache lookup never does, so the
// hot path saves the timer and the cancel context (four allocations); a
// cold one, which waits on Done, gets the real deadline, measured from
// newColdWait.
type coldWait struct {
	context.Context // the request's context: values and, until bounded, everything else
	deadline        time.Time

	once    sync.Once
	bounded context.Context
	cancel  context.CancelFunc
}

func newColdWait(parent context.Context, d time.Duration) *coldWait {
	return &coldWait{Context: parent, deadline: time.Now().Add(d)}
}

func (c *coldWait) init() {
	c.once.Do(func() { c.bounded, c.cancel = context.WithDeadline(c.Context, c.deadline) })
}

// Deadline implements context.Context.
func (c *coldWait) Deadline() (time.Time, bool) { c.init(); return c.bounded.Deadline() }

// Done implements context.Context.
func (c *coldWait) Done() <-chan struct{} { c.init(); return c.bounded.Done() }

// Err implements context.Context.
func (c *coldWait) Err() error { c.init(); return c.bounded.Err() }

// stop releases the timer, if one was created.
func (c *coldWait) stop() {
	c.once.Do(func() {})
	if c.cancel != nil {
		c.cancel()
	}
}
