package logtest

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBuffer_ConcurrentWritesAndReads fails under -race if Buffer's lock
// goes, and checks that no write is lost.
func TestBuffer_ConcurrentWritesAndReads(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("x\n"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "x\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
}

// TestBuffer_WaitCountWakesOnWrite: a waiter is woken by the write that
// completes the count, and gives up at its timeout when none does.
func TestBuffer_WaitCountWakesOnWrite(t *testing.T) {
	var b Buffer
	go func() {
		_, _ = b.Write([]byte("a\n"))
		_, _ = b.Write([]byte("ready\n"))
		_, _ = b.Write([]byte("ready\n"))
	}()
	if !b.WaitCount("ready", 2, time.Minute) {
		t.Fatal("WaitCount missed two writes")
	}
	if b.WaitCount("ready", 3, 10*time.Millisecond) {
		t.Fatal("WaitCount reported a third write that never came")
	}
}
