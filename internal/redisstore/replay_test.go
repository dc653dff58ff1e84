package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/redisstore/redistest"
)

func TestOnce_FleetWideWithTTL(t *testing.T) {
	srv := redistest.Start(t)
	a := openStore(t, srv.URL(), redisstore.Options{})
	b := openStore(t, srv.URL(), redisstore.Options{})
	ctx := context.Background()
	if ok, err := a.Once(ctx, "k1", time.Minute); !ok || err != nil {
		t.Fatalf("first Once = %v, %v; want true", ok, err)
	}
	if ok, err := b.Once(ctx, "k1", time.Minute); ok || err != nil {
		t.Fatalf("Once on another replica = %v, %v; want false", ok, err)
	}
	// Unlike a lease, a replay record is never taken over, even by a
	// caller asking for less time than it has left.
	if ok, err := b.Once(ctx, "k1", time.Second); ok || err != nil {
		t.Fatalf("Once with a shorter ttl = %v, %v; want false (a replay)", ok, err)
	}
	ttl, err := srv.Client(t).PTTL(ctx, "test:dpop-jti:k1").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("PTTL = %s, %v; want in (0, 1m]", ttl, err)
	}
	for _, bad := range []string{"", "a:b", "a/b", string(make([]byte, 129))} {
		if _, err := a.Once(ctx, bad, time.Minute); err == nil {
			t.Errorf("Once(%q) accepted", bad)
		}
	}
}

func TestOnce_RedisDownIsAnError(t *testing.T) {
	srv := redistest.Start(t)
	a := openStore(t, srv.URL(), redisstore.Options{Timeout: 50 * time.Millisecond})
	srv.Stop(t)
	if ok, err := a.Once(context.Background(), "k1", time.Minute); ok || err == nil {
		t.Fatalf("Once with Redis down = %v, %v; want an error", ok, err)
	}
}
