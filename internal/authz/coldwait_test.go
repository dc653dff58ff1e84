package authz

import (
	"context"
	"crypto"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestColdWait_BehavesLikeWithTimeout(t *testing.T) {
	type key struct{}
	t.Run("expired deadline", func(t *testing.T) {
		parent := context.WithValue(context.Background(), key{}, "v")
		cw := newColdWait(parent, -time.Second)
		defer cw.stop()
		select {
		case <-cw.Done():
		default:
			t.Fatal("Done not closed past the deadline")
		}
		if !errors.Is(cw.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v", cw.Err())
		}
		if dl, ok := cw.Deadline(); !ok || !dl.Equal(cw.deadline) {
			t.Fatalf("Deadline = %v, %v", dl, ok)
		}
		if cw.Value(key{}) != "v" {
			t.Fatal("parent's values lost")
		}
	})
	t.Run("parent cancellation", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		cw := newColdWait(parent, time.Hour)
		defer cw.stop()
		if cw.Err() != nil {
			t.Fatalf("Err before cancel = %v", cw.Err())
		}
		cancel()
		<-cw.Done()
		if !errors.Is(cw.Err(), context.Canceled) {
			t.Fatalf("Err = %v", cw.Err())
		}
	})
	t.Run("stop without use", func(t *testing.T) {
		cw := newColdWait(context.Background(), time.Hour)
		cw.stop()
		if cw.cancel != nil {
			t.Fatal("a context was created although nobody asked for it")
		}
	})
}

// blockingKeys is a key source that waits for its context, like a lookup on
// a cold provider whose identity provider hangs.
type blockingKeys struct{}

func (blockingKeys) Key(ctx context.Context, _, _, _, _ string) (crypto.PublicKey, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestDecide_ColdWaitBoundsTheKeyLookup(t *testing.T) {
	cfg := strings.Replace(testConfig, "limits: {", "limits: {cold_wait: 20ms, ", 1)
	srv := New(testSet(t, cfg), blockingKeys{}, Options{Now: func() time.Time { return testNow }, Logger: slog.New(slog.DiscardHandler)})
	// cold_wait bounds the wait; the request's own context has no deadline.
	d := srv.Decide(context.Background(), acmeRequest(rs256(t, acmeClaims())))
	if d.Reason != ReasonJWKSUnavailable {
		t.Fatalf("Reason = %s, want %s", d.Reason, ReasonJWKSUnavailable)
	}
}
