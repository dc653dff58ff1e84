package authz

import (
	"sync"
	"time"
)

// DefaultDenialLogLimit is how many denial lines per reason code a Server
// writes in each second when Options.DenialLogLimit is zero.
const DefaultDenialLogLimit = 20

// denialLogWindow is the period of the per-reason limit.
const denialLogWindow = time.Second

// logLimiter bounds denial log lines per reason: in each window the first
// limit lines of a reason are written, the rest are only counted, and the
// first line of that reason in a later window reports how many were left
// out. A token-less flood then costs a few lines a second, not one per
// request; every decision is still counted in the metrics, which it does
// not touch. nil means no limit.
type logLimiter struct {
	now   func() time.Time
	limit int

	mu       sync.Mutex
	byReason map[Reason]*reasonWindow
}

type reasonWindow struct {
	start      time.Time
	written    int
	suppressed int
}

// newLogLimiter returns a limiter of limit lines per reason and second
// (nil, no limit, when limit is negative; DefaultDenialLogLimit when 0).
func newLogLimiter(limit int, now func() time.Time) *logLimiter {
	if limit < 0 {
		return nil
	}
	if limit == 0 {
		limit = DefaultDenialLogLimit
	}
	return &logLimiter{now: now, limit: limit, byReason: map[Reason]*reasonWindow{}}
}

// allow reports whether a line for reason may be written now and, when it
// may, how many lines of that reason the previous windows left out.
func (l *logLimiter) allow(reason Reason) (ok bool, suppressed int) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.byReason[reason]
	if w == nil {
		w = &reasonWindow{start: now}
		l.byReason[reason] = w // bounded: reasons are a fixed list
	}
	if now.Sub(w.start) >= denialLogWindow || now.Before(w.start) {
		w.start, w.written = now, 0
	}
	if w.written >= l.limit {
		w.suppressed++
		return false, 0
	}
	w.written++
	suppressed, w.suppressed = w.suppressed, 0
	return true, suppressed
}
