package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/extauthz/extauthz/internal/checkclient"
	"github.com/extauthz/extauthz/internal/demo"
	"github.com/extauthz/extauthz/internal/redisstore/redistest"
)

// The Redis tests run real extauthz processes against one real
// redis-server and one counting HTTPS identity provider. The JWKS max-age
// is min_ttl's floor (30 s) and refresh_early is left at 30 s, so a set is
// refreshed at half its TTL: a refresh cycle is 15 s ± prefetch_jitter.
const (
	redisMaxAge = 30 * time.Second
	redisJitter = time.Second
	// redisMinCycle is the shortest time between two refreshes of one
	// set: TTL/2 − jitter, less a second of slack for process scheduling.
	redisMinCycle = redisMaxAge/2 - redisJitter - time.Second
	// redisLease is the refresh lease: retry_policy.deadline (2 s in the
	// harness's config) + 1 s.
	redisLease = 3 * time.Second
)

// redisIdP is an identity provider that records when its JWKS is fetched
// and can hold fetches (to kill a replica in the middle of one).
type redisIdP struct {
	*idp
	mu      sync.Mutex
	fetches []time.Time
	hold    atomic.Pointer[chan struct{}] // non-nil: JWKS requests wait for it to close
	held    atomic.Int64                  // requests currently held
}

func redisNewIdP(t *testing.T) *redisIdP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	p, err := demo.NewIdP(demo.IdPOptions{
		Issuer:    "https://" + srv.Listener.Addr().String() + "/",
		Audience:  "orders",
		Algorithm: "ES256",
		MaxAge:    redisMaxAge,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &redisIdP{idp: &idp{IdP: p, srv: srv}}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == demo.JWKSPath {
			r.mu.Lock()
			r.fetches = append(r.fetches, time.Now())
			r.mu.Unlock()
			if ch := r.hold.Load(); ch != nil {
				r.held.Add(1)
				select {
				case <-*ch:
				case <-req.Context().Done():
				}
				r.held.Add(-1)
			}
		}
		p.ServeHTTP(w, req)
	})
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return r
}

// count returns how many JWKS fetches the identity provider has served.
func (r *redisIdP) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.fetches)
}

// since returns the fetch times from index i on.
func (r *redisIdP) since(i int) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.fetches[i:]...)
}

// redisFleet is the replicas of one test, their Redis and their identity
// provider.
type redisFleet struct {
	t     *testing.T
	acme  *redisIdP
	redis *redistest.Server
	ca    string
	procs []*proc
}

func redisNewFleet(t *testing.T) *redisFleet {
	t.Helper()
	acme := redisNewIdP(t)
	return &redisFleet{t: t, acme: acme, redis: redistest.Start(t), ca: caFile(t, acme.srv)}
}

// start starts one more replica and waits until it serves. With admin
// set, its admin API listens there.
func (f *redisFleet) start(admin string) *proc {
	f.t.Helper()
	addr := freeAddr(f.t)
	cfg := config(addr, f.ca, tenant{
		id: "acme", host: "api.acme.test", idp: f.acme.idp,
		extra: fmt.Sprintf("        prefetch_jitter: %s\n", redisJitter),
	})
	cfg = strings.Replace(cfg, "jwks:\n", fmt.Sprintf("jwks:\n  redis: {url: %q, namespace: e2e}\n", f.redis.URL()), 1)
	if admin != "" {
		cfg = strings.Replace(cfg, `admin: ""`, fmt.Sprintf("admin: %q", admin), 1)
	}
	p := start(f.t, addr, cfg)
	f.procs = append(f.procs, p)
	return p
}

// redisProviderStatus reads acme/main's status from an admin API.
func redisProviderStatus(t *testing.T, admin string) (state, source string) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/v1/providers/acme/main")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		State  string  `json:"state"`
		Source *string `json:"source"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("admin status (HTTP %d): %v", resp.StatusCode, err)
	}
	if st.Source != nil {
		source = *st.Source
	}
	return st.State, source
}

// redisAllow reports whether p allows tok.
func redisAllow(t *testing.T, p *proc, tok string) bool {
	t.Helper()
	return p.check(checkclient.Request{Host: "api.acme.test", Token: tok}).Allowed
}

// traffic sends a valid token to every live process until stop is called,
// and returns the number of Checks made and failed.
func (f *redisFleet) traffic(tok func() string) (stop func() (total, failed int64)) {
	ctx, cancel := context.WithCancel(context.Background())
	var total, failed atomic.Int64
	var wg sync.WaitGroup
	for _, p := range f.procs {
		wg.Go(func() {
			for ctx.Err() == nil {
				select {
				case <-p.done:
					return
				default:
				}
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				res, err := checkclient.Check(cctx, authv3.NewAuthorizationClient(p.conn), checkclient.Request{Host: "api.acme.test", Token: tok()})
				ccancel()
				if ctx.Err() != nil {
					return
				}
				total.Add(1)
				if err != nil || !res.Allowed {
					failed.Add(1)
					f.t.Logf("Check on pid %d failed: %v %s", p.cmd.Process.Pid, err, res.Reason)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	return func() (int64, int64) {
		cancel()
		wg.Wait()
		return total.Load(), failed.Load()
	}
}

// redisCheckGaps checks that consecutive fetches are at least a refresh cycle
// apart: at most one fetch per cycle for the whole fleet.
func redisCheckGaps(t *testing.T, what string, fetches []time.Time) {
	t.Helper()
	for i := 1; i < len(fetches); i++ {
		if gap := fetches[i].Sub(fetches[i-1]); gap < redisMinCycle {
			t.Errorf("%s: fetches %d and %d only %s apart (a cycle is ≥ %s): more than one fetch in a cycle", what, i-1, i, gap.Round(time.Millisecond), redisMinCycle)
		}
	}
}

// persistedAt reads the shared snapshot's persisted_at from Redis (zero
// when there is none).
func (f *redisFleet) persistedAt() time.Time {
	f.t.Helper()
	v, err := f.redis.Client(f.t).Get(context.Background(), "e2e:acme:main").Result()
	if err != nil {
		return time.Time{}
	}
	var snap struct {
		PersistedAt time.Time `json:"persisted_at"`
	}
	if err := json.Unmarshal([]byte(v), &snap); err != nil {
		f.t.Fatalf("snapshot in Redis: %v", err)
	}
	return snap.PersistedAt
}

// TestRedis_FleetSharesRefreshes is the scenario on three (then
// four) real processes: warm starts, one fetch per refresh cycle for the
// whole fleet, a rotation reaching everyone, the lease holder killed in the
// middle of a fetch, and a Redis outage under traffic.
func TestRedis_FleetSharesRefreshes(t *testing.T) {
	f := redisNewFleet(t)
	f.start("")
	f.start("")
	f.start("")
	if got := f.acme.count(); got != 1 {
		t.Fatalf("JWKS fetches after starting three replicas = %d, want 1 (the first fetches, the others start warm)", got)
	}
	for _, p := range f.procs[1:] {
		p.waitLog("warm start from shared snapshot", 1)
	}
	tok := f.acme.token(t, "alice", nil)
	for i, p := range f.procs {
		if !redisAllow(t, p, tok) {
			t.Fatalf("replica %d does not allow a valid token", i)
		}
	}

	// Sharing: two refresh cycles under traffic.
	var tokMu sync.Mutex
	current := func() string { tokMu.Lock(); defer tokMu.Unlock(); return tok }
	stop := f.traffic(current)
	mark := f.acme.count()
	start := time.Now()
	time.Sleep(2*redisMaxAge/2 + 2*redisJitter) // two cycles, observed in real time
	shared := f.acme.since(mark)
	redisCheckGaps(t, "sharing", shared)
	t.Logf("sharing: %d fetches in %s for 3 replicas (alone they would make %d)", len(shared), time.Since(start).Round(time.Second), 3*len(shared))
	total, failed := stop()
	if failed != 0 {
		t.Fatalf("%d of %d Checks failed while sharing", failed, total)
	}

	// Rotation: the first replica to see the new kid fetches, the others
	// adopt its snapshot. Until a replica has polled the shared snapshot
	// (every 250 ms) it refuses the new kid, because the fleet's unknown-kid
	// cooldown stops it from fetching itself: so no traffic is counted here,
	// only that every replica comes to allow the rotated key.
	mark = f.acme.count()
	if _, err := f.acme.Rotate("ES256", false); err != nil {
		t.Fatal(err)
	}
	tokMu.Lock()
	tok = f.acme.token(t, "alice", nil)
	tokMu.Unlock()
	for i, p := range f.procs {
		eventually(t, func() bool { return redisAllow(t, p, current()) }, "replica %d to allow the rotated key", i)
	}
	if got := f.acme.count() - mark; got > 1 {
		t.Errorf("the rotation cost %d fetches, want at most 1", got)
	}

	// A fourth replica started now is warm: ready without a fetch.
	mark = f.acme.count()
	admin := freeAddr(t)
	late := f.start(admin)
	if state, source := redisProviderStatus(t, admin); state != "Ready" || source != "redis" {
		t.Errorf("late replica before any request: state %q source %q, want Ready from redis", state, source)
	}
	if !redisAllow(t, late, current()) {
		t.Fatal("the late replica does not allow a valid token")
	}
	if got := f.acme.count() - mark; got != 0 {
		t.Errorf("the late replica cost %d fetches, want 0", got)
	}
	late.waitLog("warm start from shared snapshot", 1)

	// Kill the lease holder in the middle of its fetch: another replica
	// completes the refresh once the lease ends.
	release := make(chan struct{})
	f.acme.hold.Store(&release)
	eventually(t, func() bool { return f.acme.held.Load() > 0 }, "a replica's refresh to reach the identity provider")
	holder, err := f.redis.Client(t).Get(context.Background(), "e2e:lease:acme:main").Result()
	if err != nil {
		t.Fatalf("lease: %v", err)
	}
	pid, _, _ := strings.Cut(holder, "-")
	var victim *proc
	for _, p := range f.procs {
		if strconv.Itoa(p.cmd.Process.Pid) == pid {
			victim = p
		}
	}
	if victim == nil {
		t.Fatalf("lease holder %q is none of the replicas", holder)
	}
	if n := f.acme.held.Load(); n != 1 {
		t.Fatalf("%d fetches in flight, want only the lease holder's", n)
	}
	before, fetchesBefore := f.persistedAt(), f.acme.count()
	victim.signal(syscall.SIGKILL)
	killedAt := time.Now()
	<-victim.done
	f.acme.hold.Store(nil)
	close(release)
	eventually(t, func() bool { return f.persistedAt().After(before) }, "another replica to complete the refresh")
	took := time.Since(killedAt)
	t.Logf("lease holder (pid %s) killed mid-fetch; another replica completed the refresh %s later (lease %s)", pid, took.Round(10*time.Millisecond), redisLease)
	// A waiting replica retries the lease one lease time after its own
	// failed try, which came up to a prefetch_jitter after the holder's.
	if limit := redisLease + redisJitter + 2*time.Second; took > limit {
		t.Errorf("takeover took %s, want within the lease time %s (+ jitter, polling and the fetch: %s)", took, redisLease, limit)
	}
	if got := f.acme.count() - fetchesBefore; got != 1 {
		t.Errorf("the takeover cost %d fetches, want 1", got)
	}

	// Redis stopped under traffic: no Check fails, each replica fetches
	// for itself; restarted: one fetch per cycle again.
	stop = f.traffic(current)
	f.redis.Stop(t)
	mark = f.acme.count()
	// Without Redis no replica can share: each fetches for itself when its
	// set is due, which is within a cycle (TTL/2 + jitter) of the last
	// shared fetch.
	live := 0
	for _, p := range f.procs {
		select {
		case <-p.done: // the lease holder killed above
		default:
			live++
		}
	}
	outage := time.Now()
	eventually(t, func() bool { return f.acme.count()-mark >= live }, "every replica to fetch alone")
	alone := f.acme.count() - mark
	if took := time.Since(outage); took > redisMaxAge/2+2*redisJitter+2*time.Second {
		t.Errorf("with Redis down the replicas took %s to fetch alone, want within a cycle", took.Round(time.Second))
	}
	f.redis.Restart(t)
	mark = f.acme.count()
	time.Sleep(redisMaxAge/2 + 2*redisJitter) // back to sharing
	mark2 := f.acme.count()
	time.Sleep(2*redisMaxAge/2 + 2*redisJitter) // two cycles to count
	total, failed = stop()
	if failed != 0 {
		t.Errorf("%d of %d Checks failed around the Redis outage", failed, total)
	}
	after := f.acme.since(mark2)
	redisCheckGaps(t, "after the outage", after)
	t.Logf("Redis down: %d fetches by %d replicas alone; back: %d in the first cycle, then %d in two cycles; %d Checks, none failed", alone, live, mark2-mark, len(after), total)
}

// TestRedis_InvalidSnapshotsIgnored: a replica never trusts a bad
// snapshot: it logs it (with its reason) and fetches from the identity
// provider.
func TestRedis_InvalidSnapshotsIgnored(t *testing.T) {
	f := redisNewFleet(t)
	doc := string(f.acme.JWKS())
	enc := func(tenant, provider, jwks string, expires, persisted time.Time) string {
		return fmt.Sprintf(`{"version":1,"tenant_id":%q,"provider_id":%q,"jwks":%s,"expires_at":%q,"persisted_at":%q}`,
			tenant, provider, jwks, expires.Format(time.RFC3339), persisted.Format(time.RFC3339))
	}
	now := time.Now()
	tests := []struct{ name, value, reason string }{
		{"corrupt", `{"version":1,"tenant_id":"acme"`, "corrupt"},
		{"too large", enc("acme", "main", `{"keys":[],"pad":"`+strings.Repeat("x", 2<<20)+`"}`, now.Add(time.Hour), now), "too_large"},
		{"another tenant", enc("globex", "main", doc, now.Add(time.Hour), now), "foreign"},
		{"expiry before persisted_at", enc("acme", "main", doc, now, now.Add(time.Hour)), "bad_times"},
	}
	tok := f.acme.token(t, "alice", nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.redis.Client(t).Set(context.Background(), "e2e:acme:main", tt.value, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			mark := f.acme.count()
			f.t = t
			p := f.start("")
			if !redisAllow(t, p, tok) {
				t.Fatal("valid token refused")
			}
			if got := f.acme.count() - mark; got != 1 {
				t.Errorf("fetches = %d, want 1 (the snapshot ignored)", got)
			}
			p.waitLog(`"reason":"`+tt.reason+`"`, 1)
			p.signal(syscall.SIGKILL)
			<-p.done
		})
	}
}
