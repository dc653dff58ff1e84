package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/redisstore/redistest"
	"github.com/extauthz/extauthz/internal/tenants"
)

// TestDPoPReplay_RedisDownFollowsOnRedisError: with Redis unreachable a
// proof is refused (deny, the default) or checked by the replica alone
// (per_replica); with Redis up the memory is shared.
func TestDPoPReplay_RedisDownFollowsOnRedisError(t *testing.T) {
	srv := redistest.Start(t)
	store, err := redisstore.Open(srv.URL(), "t", redisstore.Options{Timeout: time.Second, HMACKeys: [][]byte{[]byte("service-test-snapshot-key-0123456789")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ctx := context.Background()
	cfg := func(onErr string) *tenants.Config {
		return &tenants.Config{DPoPReplay: tenants.DPoPReplay{MaxEntries: 10, OnRedisError: onErr}}
	}
	deny, perReplica := dpopReplay(cfg("deny"), store), dpopReplay(cfg("per_replica"), store)
	if ok, err := deny.Once(ctx, "k1", time.Minute); !ok || err != nil {
		t.Fatalf("Redis up: %v %v", ok, err)
	}
	if ok, err := perReplica.Once(ctx, "k1", time.Minute); ok || err != nil {
		t.Fatalf("Redis up, other replica: %v %v, want the shared refusal", ok, err)
	}
	srv.Stop(t)
	if ok, err := deny.Once(ctx, "k2", time.Minute); ok || err == nil {
		t.Fatalf("deny with Redis down: %v %v, want an error", ok, err)
	}
	if ok, err := perReplica.Once(ctx, "k2", time.Minute); !ok || err != nil {
		t.Fatalf("per_replica with Redis down: %v %v, want the local answer", ok, err)
	}
	if ok, _ := perReplica.Once(ctx, "k2", time.Minute); ok {
		t.Fatal("per_replica: local replay accepted")
	}
	// Without Redis: the bounded local memory, refusing when full.
	local := dpopReplay(&tenants.Config{DPoPReplay: tenants.DPoPReplay{MaxEntries: 1}}, nil)
	local.Once(ctx, "a", time.Minute)
	if _, err := local.Once(ctx, "b", time.Minute); !errors.Is(err, dpop.ErrReplayFull) {
		t.Fatalf("full local cache: %v, want ErrReplayFull", err)
	}
}
