package jwkscache

import (
	"context"
	"sync"
)

// call is one in-flight refresh shared by every waiter (single-flight, as
// go-oidc's inflight). The goroutine running the refresh owns it: only it
// calls firstAttemptDone and finish. Waiters select on firstAttempt (a
// lookup that needs keys now waits for one attempt, never for retries) or
// finished (a manual refresh waits for the outcome).
type call struct {
	first     chan struct{}
	firstOnce sync.Once
	done      chan struct{}
	err       error // set by finish before done closes

	// ctx is the context the refresh runs with: the provider's, carrying
	// the Tracer's span when there is one; traced ends that span.
	ctx    context.Context
	traced func(RefreshEvent)
}

func newCall() *call { return &call{first: make(chan struct{}), done: make(chan struct{})} }

// firstAttemptDone releases the lookups waiting on the first attempt: a
// set was published (fetched, or adopted from another replica), the
// attempt failed, or the lookups may answer from the set they have. Later
// calls do nothing.
func (c *call) firstAttemptDone() { c.firstOnce.Do(func() { close(c.first) }) }

// finish records the refresh's outcome and releases every waiter.
func (c *call) finish(err error) {
	c.err = err
	c.firstAttemptDone()
	close(c.done)
}

// firstAttempt is closed once the first attempt is over (firstAttemptDone).
func (c *call) firstAttempt() <-chan struct{} { return c.first }

// finished is closed once the refresh is over; outcome then reports it.
func (c *call) finished() <-chan struct{} { return c.done }

// outcome is the refresh's error, nil on success; valid once finished is
// closed.
func (c *call) outcome() error { return c.err }
