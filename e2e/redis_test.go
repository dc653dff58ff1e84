package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/redisstore/redistest"
	"github.com/extauthz/extauthz/jwkscache"
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
	delay   atomic.Int64                  // a slow identity provider: JWKS answers take this long (ns)
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
			if d := time.Duration(r.delay.Load()); d > 0 {
				select {
				case <-time.After(d):
				case <-req.Context().Done():
				}
			}
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
	t       *testing.T
	acme    *redisIdP
	redis   *redistest.Server
	ca      string
	keyFile string // jwks.redis.hmac_key_file, shared by the replicas
	procs   []*proc
}

// redisHMACKey is the fleet's snapshot key in the e2e tests.
const redisHMACKey = "e2e-fleet-snapshot-key-0123456789abcdef"

func redisNewFleet(t *testing.T) *redisFleet {
	t.Helper()
	acme := redisNewIdP(t)
	keyFile := filepath.Join(t.TempDir(), "redis-hmac.keys")
	if err := os.WriteFile(keyFile, []byte(redisHMACKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &redisFleet{t: t, acme: acme, redis: redistest.Start(t), ca: caFile(t, acme.srv), keyFile: keyFile}
}

// start starts one more replica and waits until it serves. With admin
// set, its admin API listens there; edit, when given, changes its config.
func (f *redisFleet) start(admin string, edit ...func(string) string) *proc {
	f.t.Helper()
	addr := freeAddr(f.t)
	cfg := f.config(addr, admin)
	for _, e := range edit {
		cfg = e(cfg)
	}
	p := start(f.t, addr, cfg)
	f.procs = append(f.procs, p)
	return p
}

// config is a replica's configuration: acme trusting the fleet's identity
// provider, snapshots shared through the fleet's Redis.
func (f *redisFleet) config(addr, admin string) string {
	cfg := config(addr, f.ca, tenant{
		id: "acme", host: "api.acme.test", idp: f.acme.idp,
		extra: fmt.Sprintf("        prefetch_jitter: %s\n", redisJitter),
	})
	cfg = strings.Replace(cfg, "jwks:\n", fmt.Sprintf("jwks:\n  redis: {url: %q, namespace: e2e, hmac_key_file: %q}\n", f.redis.URL(), f.keyFile), 1)
	if admin != "" {
		cfg = strings.Replace(cfg, `admin: ""`, fmt.Sprintf("admin: %q", admin), 1)
	}
	return cfg
}

// redisProviderStatus reads acme/main's status from an admin API.
func redisProviderStatus(t *testing.T, admin string) (state, source string) {
	t.Helper()
	res := adminDo(http.MethodGet, "http://"+admin+"/v1/providers/acme/main")
	var st struct {
		State  string  `json:"state"`
		Source *string `json:"source"`
	}
	if err := json.Unmarshal([]byte(res.body), &st); err != nil {
		t.Fatalf("admin status (HTTP %d %s): %v", res.status, res.body, err)
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
// apart: at most one fetch per cycle for the whole fleet, but for the
// fallbacks replicas that lost Redis meanwhile (a Redis call past its
// 100 ms timeout, as on a loaded machine), each of which fetches for
// itself as designed.
func redisCheckGaps(t *testing.T, what string, fetches []time.Time, fallbacks int) {
	t.Helper()
	var close []string
	for i := 1; i < len(fetches); i++ {
		if gap := fetches[i].Sub(fetches[i-1]); gap < redisMinCycle {
			close = append(close, fmt.Sprintf("fetches %d and %d only %s apart", i-1, i, gap.Round(time.Millisecond)))
		}
	}
	switch {
	case len(close) > fallbacks:
		t.Errorf("%s: %s (a cycle is ≥ %s): more than one fetch in a cycle, with %d replicas that lost Redis", what, strings.Join(close, ", "), redisMinCycle, fallbacks)
	case len(close) > 0:
		t.Logf("%s: %s, explained by %d replicas that lost Redis and fetched for themselves", what, strings.Join(close, ", "), fallbacks)
	}
}

// logMarks returns where each replica's log ends now.
func (f *redisFleet) logMarks() []int {
	marks := make([]int, len(f.procs))
	for i, p := range f.procs {
		marks[i] = len(p.stderr.String())
	}
	return marks
}

// lostRedis counts the replicas that logged losing Redis since marks.
func (f *redisFleet) lostRedis(marks []int) int {
	n := 0
	for i, p := range f.procs {
		if strings.Contains(p.stderr.String()[marks[i]:], "redis unreachable") {
			n++
		}
	}
	return n
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
	mark, logs := f.acme.count(), f.logMarks()
	start := time.Now()
	time.Sleep(2*redisMaxAge/2 + 2*redisJitter) // two cycles, observed in real time
	shared := f.acme.since(mark)
	redisCheckGaps(t, "sharing", shared, f.lostRedis(logs))
	t.Logf("sharing: %d fetches in %s for 3 replicas (alone they would make %d)", len(shared), time.Since(start).Round(time.Second), 3*len(shared))
	total, failed := stop()
	if failed != 0 {
		t.Fatalf("%d of %d Checks failed while sharing", failed, total)
	}

	// Rotation under traffic: the identity provider publishes a new key
	// (keeping the old one, as a graceful rotation does) and signs with it
	// from now on. The first replica to see the new kid wins the fleet's
	// unknown-kid cooldown and fetches; the others wait for its snapshot,
	// woken by the Redis announcement: not one valid Check is refused.
	stop = f.traffic(current)
	time.Sleep(500 * time.Millisecond) // traffic before the rotation
	mark = f.acme.count()
	if _, err := f.acme.Rotate("ES256", true); err != nil {
		t.Fatal(err)
	}
	tokMu.Lock()
	tok = f.acme.token(t, "alice", nil)
	tokMu.Unlock()
	for i, p := range f.procs {
		eventually(t, func() bool { return redisAllow(t, p, current()) }, "replica %d to allow the rotated key", i)
	}
	time.Sleep(500 * time.Millisecond) // and after it
	total, failed = stop()
	t.Logf("rotation: %d of %d valid Checks refused across the rotation on 3 replicas; %d JWKS fetches", failed, total, f.acme.count()-mark)
	if failed != 0 {
		t.Errorf("%d of %d valid Checks refused across the rotation, want 0", failed, total)
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
	mark2, logs := f.acme.count(), f.logMarks()
	time.Sleep(2*redisMaxAge/2 + 2*redisJitter) // two cycles to count
	total, failed = stop()
	if failed != 0 {
		t.Errorf("%d of %d Checks failed around the Redis outage", failed, total)
	}
	after := f.acme.since(mark2)
	redisCheckGaps(t, "after the outage", after, f.lostRedis(logs))
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

// TestRedis_FleetRotationRefusesNothing: five key rotations
// under steady traffic on three replicas sharing Redis, the identity
// provider taking 300 ms to answer. Each time, the replica that wins the
// fleet's unknown-kid cooldown fetches and the others wait for its
// snapshot instead of refusing the new kid: zero valid Checks refused, and
// one JWKS request per rotation for the whole fleet.
func TestRedis_FleetRotationRefusesNothing(t *testing.T) {
	const cooldown = time.Second
	f := redisNewFleet(t)
	short := func(cfg string) string {
		return strings.Replace(cfg, "        prefetch_jitter:", fmt.Sprintf("        unknown_kid_cooldown: %s\n        prefetch_jitter:", cooldown), 1)
	}
	for range 3 {
		f.start("", short)
	}
	// A slow identity provider: the replicas that lose the cooldown meet
	// the new kid while the winner's fetch is still running.
	f.acme.delay.Store(int64(300 * time.Millisecond))
	var tokMu sync.Mutex
	tok := f.acme.token(t, "alice", nil)
	current := func() string { tokMu.Lock(); defer tokMu.Unlock(); return tok }
	var allTotal, allFailed int64
	for rotation := 1; rotation <= 5; rotation++ {
		stop := f.traffic(current)
		time.Sleep(500 * time.Millisecond) // traffic before the rotation
		mark := f.acme.count()
		if _, err := f.acme.Rotate("ES256", true); err != nil {
			t.Fatal(err)
		}
		tokMu.Lock()
		tok = f.acme.token(t, "alice", nil) // every replica meets the new kid at once
		tokMu.Unlock()
		for i, p := range f.procs {
			eventually(t, func() bool { return redisAllow(t, p, current()) }, "replica %d to allow the rotated key", i)
		}
		time.Sleep(500 * time.Millisecond) // and after it
		total, failed := stop()
		allTotal, allFailed = allTotal+total, allFailed+failed
		fetches := f.acme.count() - mark
		t.Logf("rotation %d: %d of %d valid Checks refused, %d JWKS fetches", rotation, failed, total, fetches)
		if fetches != 1 {
			t.Errorf("rotation %d cost %d JWKS fetches, want 1 for the whole fleet", rotation, fetches)
		}
		time.Sleep(2 * cooldown) // the unknown-kid cooldowns end before the next rotation
	}
	t.Logf("5 rotations on 3 replicas: %d of %d valid Checks refused", allFailed, allTotal)
	if allFailed != 0 {
		t.Errorf("%d of %d valid Checks refused across the rotations, want 0", allFailed, allTotal)
	}
}

// redisForge stores a snapshot of (acme, main) signed with an attacker's
// key, holding the attacker's JWKS, with the fingerprint of the genuine one
// and an expiry ten years out.
func (f *redisFleet) redisForge(attacker *demo.IdP) {
	f.t.Helper()
	ctx := context.Background()
	v, err := f.redis.Client(f.t).Get(ctx, "e2e:acme:main").Result()
	if err != nil {
		f.t.Fatalf("genuine snapshot: %v", err)
	}
	var genuine struct {
		Fingerprint string `json:"fingerprint"`
	}
	if err := json.Unmarshal([]byte(v), &genuine); err != nil {
		f.t.Fatal(err)
	}
	store, err := redisstore.Open(f.redis.URL(), "e2e", redisstore.Options{Timeout: time.Second, HMACKeys: [][]byte{[]byte("attacker-key-that-is-not-the-fleets-key")}})
	if err != nil {
		f.t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	if err := store.Save(ctx, jwkscache.SharedSnapshot{
		TenantID: "acme", ProviderID: "main", JWKS: attacker.JWKS(),
		PersistedAt: now, ExpiresAt: now.Add(10 * 365 * 24 * time.Hour), Fingerprint: genuine.Fingerprint,
	}); err != nil {
		f.t.Fatal(err)
	}
}

// TestRedis_ForgedSnapshotNotTrusted: someone who can write
// to Redis but has not the fleet's HMAC key stores a snapshot with their
// own key and a far expiry, then presents a token it signed. A running
// replica (the token's unknown kid makes it look at Redis at once) and a
// replica started afterwards both deny it, count the rejection and fetch
// from the identity provider instead.
func TestRedis_ForgedSnapshotNotTrusted(t *testing.T) {
	f := redisNewFleet(t)
	running := f.start("")
	attacker, err := demo.NewIdP(demo.IdPOptions{Issuer: f.acme.Issuer(), Audience: "orders", Algorithm: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	evil, err := attacker.Mint("mallory", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	valid := f.acme.token(t, "alice", nil)

	f.redisForge(attacker)
	if res := running.check(checkclient.Request{Host: "api.acme.test", Token: evil}); res.Allowed || res.Reason != "key_not_found" {
		t.Errorf("running replica: attacker's token: allowed %v reason %q, want denied key_not_found", res.Allowed, res.Reason)
	}
	running.waitLog(`"reason":"bad_mac"`, 1)

	f.redisForge(attacker) // the running replica's own fetch replaced it
	admin := freeAddr(t)
	fresh := f.start(admin)
	fresh.waitLog(`"reason":"bad_mac"`, 1)
	for name, p := range map[string]*proc{"running": running, "fresh": fresh} {
		if res := p.check(checkclient.Request{Host: "api.acme.test", Token: evil}); res.Allowed {
			t.Errorf("%s replica allows the attacker's token", name)
		}
		if !redisAllow(t, p, valid) {
			t.Errorf("%s replica refuses a valid token", name)
		}
	}
	body := adminDo(http.MethodGet, "http://"+admin+"/metrics").body
	const series = `jwks_cache_redis_snapshots_rejected_total{provider="main",reason="bad_mac",tenant="acme"} `
	if i := strings.Index(body, series); i < 0 || strings.HasPrefix(body[i+len(series):], "0") {
		t.Errorf("fresh replica's /metrics does not count the rejection (%s≥1)", series)
	}
}

// TestRedis_SnapshotOfOldJWKSURLNotAdopted: changing a
// provider's jwks_url means "stop trusting those keys". A snapshot fetched
// under the old URL, properly signed, is adopted neither by a replica that
// reloads the new config nor by one started with it: both fetch the new
// URL, and a token signed with the old identity provider's key is denied.
func TestRedis_SnapshotOfOldJWKSURLNotAdopted(t *testing.T) {
	f := redisNewFleet(t)
	replica := f.start("")
	old := f.acme.token(t, "alice", nil)
	if !redisAllow(t, replica, old) {
		t.Fatal("valid token refused before the change")
	}
	snap, err := f.redis.Client(t).Get(context.Background(), "e2e:acme:main").Result()
	if err != nil {
		t.Fatal(err)
	}
	// The new identity provider: another server, other keys; the issuer
	// stays, so only the keys decide.
	next := newIdP(t, "ES256")
	moved := func(cfg string) string { return strings.Replace(cfg, f.acme.jwksURL(), next.jwksURL(), 1) }

	// Reload.
	replica.rewrite(moved(f.config(replica.addr, "")))
	replica.signal(syscall.SIGHUP)
	replica.waitLog("config reloaded", 1)
	replica.waitLog(`"reason":"fingerprint_mismatch"`, 1)
	if res := replica.check(checkclient.Request{Host: "api.acme.test", Token: old}); res.Allowed || res.Reason != "key_not_found" {
		t.Errorf("after the reload: old key's token allowed %v reason %q, want denied key_not_found", res.Allowed, res.Reason)
	}

	// Fresh start, with the old URL's snapshot back in Redis.
	if err := f.redis.Client(t).Set(context.Background(), "e2e:acme:main", snap, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	mark := next.JWKSRequests()
	fresh := f.start("", moved)
	fresh.waitLog(`"reason":"fingerprint_mismatch"`, 1)
	if res := fresh.check(checkclient.Request{Host: "api.acme.test", Token: old}); res.Allowed || res.Reason != "key_not_found" {
		t.Errorf("fresh start: old key's token allowed %v reason %q, want denied key_not_found", res.Allowed, res.Reason)
	}
	if got := next.JWKSRequests() - mark; got < 1 {
		t.Errorf("the fresh replica made %d requests to the new jwks_url, want it to fetch", got)
	}
}

// TestRedis_CheckRequiresHMACKeyFile: `-check` refuses jwks.redis without
// a key file, or with a key shorter than 32 bytes, naming the key; and the
// server refuses to start on such a config.
func TestRedis_CheckRequiresHMACKeyFile(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.keys")
	if err := os.WriteFile(short, []byte("too-short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "listen: {grpc: \"127.0.0.1:9191\"}\njwks:\n  redis: {url: \"redis://127.0.0.1:6379/0\"%s}\ntenants: []\n"
	for name, tt := range map[string]struct{ extra, want string }{
		"no key file": {"", "jwks.redis.hmac_key_file: required when redis is set"},
		"short key":   {fmt.Sprintf(", hmac_key_file: %q", short), "jwks.redis.hmac_key_file: redisstore: hmac keys " + short + ": line 1: key of 9 bytes, want at least 32"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "extauthz.yaml")
			if err := os.WriteFile(path, []byte(fmt.Sprintf(base, tt.extra)), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := run(t, "-config", path, "-check")
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Errorf("-check: exit %d, want non-zero naming %q:\n%s", code, tt.want, stderr)
			}
			if strings.Contains(stderr, "too-short") {
				t.Errorf("-check quotes the key:\n%s", stderr)
			}
			if code, _, _ := run(t, "-config", path); code == 0 {
				t.Error("the server started on the config")
			}
		})
	}
}
