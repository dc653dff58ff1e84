// Package logtest provides what tests need to read the logs a component
// writes from its own goroutines.
package logtest

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent writes and reads: a log
// handler writes to it from the goroutines under test while the test
// reads what was logged, or waits for a line to be.
type Buffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // closed, and replaced, by the next Write
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written != nil {
		close(b.written)
		b.written = nil
	}
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// WaitCount waits, woken by each Write, until s has been written at least
// n times, and reports whether it was before timeout (which only turns a
// hang into a failure).
func (b *Buffer) WaitCount(s string, n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		if strings.Count(b.b.String(), s) >= n {
			b.mu.Unlock()
			return true
		}
		if b.written == nil {
			b.written = make(chan struct{})
		}
		written := b.written
		b.mu.Unlock()
		select {
		case <-written:
		case <-deadline.C:
			return false
		}
	}
}
