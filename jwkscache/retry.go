package jwkscache

import (
	"math/rand/v2"
	"time"
)

// backoff computes the waits between the attempts of one refresh, following
// the AWS Architecture Blog's "Exponential Backoff and Jitter":
//
//	none:         min(cap, base·2^attempt)
//	full:         random_between(0, min(cap, base·2^attempt))
//	decorrelated: min(cap, random_between(base, previous·3)), previous starting at base
//
// It is written here rather than taken from a library because it is a dozen
// lines and must run on the injectable Clock.
type backoff struct {
	policy RetryPolicy
	prev   time.Duration // last decorrelated wait
	rand   func(n int64) int64
}

func newBackoff(p RetryPolicy) *backoff {
	return &backoff{policy: p, prev: p.InitialBackoff, rand: rand.Int64N}
}

// exp is min(cap, base·2^attempt), without overflowing.
func (b *backoff) exp(attempt int) time.Duration {
	d := b.policy.InitialBackoff
	for range attempt {
		if d >= b.policy.MaxBackoff/2 {
			return b.policy.MaxBackoff
		}
		d *= 2
	}
	return min(d, b.policy.MaxBackoff)
}

// between returns a uniform duration in [lo, hi].
func (b *backoff) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(b.rand(int64(hi-lo)+1))
}

// next returns the wait after the failed attempt number attempt (0-based).
func (b *backoff) next(attempt int) time.Duration {
	switch b.policy.Jitter {
	case JitterNone:
		return b.exp(attempt)
	case JitterDecorrelated:
		hi := b.prev * 3
		if hi < b.prev { // overflow
			hi = b.policy.MaxBackoff
		}
		b.prev = min(b.policy.MaxBackoff, b.between(b.policy.InitialBackoff, hi))
		return b.prev
	default: // JitterFull
		return b.between(0, b.exp(attempt))
	}
}
