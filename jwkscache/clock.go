package jwkscache

import "time"

// realClock is the default Clock: the wall clock and time.AfterFunc.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// sleep waits d on clk, or until done is closed; it reports whether the full
// wait elapsed. Backoff waits go through the Clock so tests drive them with a
// fake one instead of sleeping.
func sleep(clk Clock, d time.Duration, done <-chan struct{}) bool {
	return sleepOrWake(clk, d, nil, done) // a nil wake never fires
}

// sleepOrWake is sleep that also ends early when wake is closed. It
// reports false when done closed first.
func sleepOrWake(clk Clock, d time.Duration, wake, done <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	elapsed := make(chan struct{})
	t := clk.AfterFunc(d, func() { close(elapsed) })
	select {
	case <-elapsed:
		return true
	case <-wake:
		t.Stop()
		return true
	case <-done:
		t.Stop()
		return false
	}
}
