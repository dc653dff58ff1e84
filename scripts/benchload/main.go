// Command benchload drives `make bench-load`: it starts the demo identity
// provider, then for each scenario (a no-op ext_authz server, extauthz with
// the verified-token cache off, with it on, and with 10,000 providers) starts
// the server binary, checks that it decides correctly (ghz counts a denial
// as a success: the verdict is in CheckResponse.status.code), and drives it
// with ghz at a fixed rate and at saturation. It prints requests per second,
// p50 and p99 latency, and the server's CPU time per request, read from
// /proc (Linux only). With -idle it measures the service's CPU with no traffic
// instead, at 10,000 providers with and without cache headers (idle.go).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/extauthz/extauthz/internal/demo"
)

func main() {
	extauthz := flag.String("extauthz", "bin/extauthz", "extauthz binary")
	noop := flag.String("noop", "bin/noop-authz", "no-op ext_authz server binary")
	ghz := flag.String("ghz", "bin/ghz", "ghz v0.120.0 binary")
	duration := flag.Duration("duration", 5*time.Second, "length of each ghz run")
	rate := flag.Int("rps", 500, "fixed request rate of the first run of each scenario")
	providers := flag.Int("providers", 10000, "providers of the last scenario (with -idle: of every case)")
	idle := flag.Bool("idle", false, "measure the service's CPU with no traffic instead (idle.go); needs only -extauthz")
	idleCases := flag.String("idle-cases", "max-age=3600,max-age=60,none", "with -idle: the identity provider's behaviours, comma-separated: max-age=SECONDS (with an ETag), none (no cache headers), none/min_ttl=DURATION")
	keys := flag.Int("keys", 10, "with -idle: RSA-2048 keys in the JWKS")
	settle := flag.Duration("settle", 20*time.Second, "with -idle: wait from SERVING to the first window")
	window := flag.Duration("window", 60*time.Second, "with -idle: length of one measuring window")
	windows := flag.Int("windows", 3, "with -idle: windows per case, back to back")
	flag.Parse()
	if *idle {
		cases, err := parseIdleCases(*idleCases)
		if err == nil {
			err = runIdle(idleOptions{extauthz: *extauthz, providers: *providers, keys: *keys, cases: cases,
				settle: *settle, window: *window, windows: max(*windows, 1)})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchload:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*extauthz, *noop, *ghz, *duration, *rate, *providers); err != nil {
		fmt.Fprintln(os.Stderr, "benchload:", err)
		os.Exit(1)
	}
}

// scenario is one server under load.
type scenario struct {
	name   string
	cmd    func(addr string) *exec.Cmd
	denies bool // checks a bad token is denied (not the no-op server)
}

// result is one ghz run's numbers.
type result struct {
	scenario, rate   string
	rps, p50, p99    float64 // requests/s, ms, ms
	count, errors    int64
	cpuPerRequestMic float64
}

func run(extauthz, noop, ghz string, duration time.Duration, rate, providers int) error {
	dir, err := os.MkdirTemp("", "benchload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	idp, err := demo.Start("127.0.0.1:0", "")
	if err != nil {
		return err
	}
	defer idp.Close()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, idp.CA.PEM(), 0o600); err != nil {
		return err
	}
	token, err := idp.IdP.Mint("bench", 24*time.Hour, nil)
	if err != nil {
		return err
	}
	config := func(name string, cacheEntries, n int) (string, error) {
		var b strings.Builder
		fmt.Fprintf(&b, "listen: {admin: \"\"}\nlog: {level: warn}\njwks: {ca_file: %q}\nlimits: {token_cache_entries: %d}\ntenants:\n", caFile, cacheEntries)
		for i := range n {
			// One tenant per provider, all on the demo IdP: tenants that share
			// an issuer must have disjoint audiences; tenant 0 takes the demo's.
			aud, host := demo.Audience, demo.Host
			if i > 0 {
				aud, host = fmt.Sprintf("aud-%d", i), fmt.Sprintf("t%d.bench.test", i)
			}
			fmt.Fprintf(&b, "  - id: t%d\n    hosts: [%q]\n    providers:\n      - id: idp\n        issuer: %q\n        jwks_url: %q\n        audiences: [%q]\n        algorithms: [ES256, RS256, EdDSA]\n        claims_to_headers: {sub: x-auth-subject}\n",
				i, host, idp.IdP.Issuer(), idp.JWKSURL(), aud)
		}
		path := filepath.Join(dir, name+".yaml")
		return path, os.WriteFile(path, []byte(b.String()), 0o600)
	}
	serve := func(cfg string) func(addr string) *exec.Cmd {
		return func(addr string) *exec.Cmd {
			// The listen address comes from the config; rewrite it per run.
			return exec.Command(extauthz, "-config", cfg, "-reflection", "-log-format", "text")
		}
	}
	var scenarios []scenario
	scenarios = append(scenarios, scenario{name: "no-op", cmd: func(addr string) *exec.Cmd { return exec.Command(noop, "-listen", addr) }})
	for _, sc := range []struct {
		name         string
		cacheEntries int
		n            int
	}{{"uncached", 0, 1}, {"cached", 10000, 1}, {fmt.Sprintf("cached, %d providers", providers), 10000, providers}} {
		cfg, err := config(strings.NewReplacer(" ", "", ",", "-").Replace(sc.name), sc.cacheEntries, sc.n)
		if err != nil {
			return err
		}
		scenarios = append(scenarios, scenario{name: sc.name, cmd: serve(cfg), denies: true})
	}

	var results []result
	for _, sc := range scenarios {
		rs, err := runScenario(sc, ghz, token, duration, rate, idp)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		results = append(results, rs...)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\trate\trps\tp50 ms\tp99 ms\tCPU µs/req\tvs no-op\tfailed calls\t")
	base := map[string]float64{}
	for _, r := range results {
		if r.scenario == "no-op" {
			base[r.rate] = r.cpuPerRequestMic
		}
		ratio := "-"
		if b := base[r.rate]; b > 0 {
			ratio = fmt.Sprintf("%.2f×", r.cpuPerRequestMic/b)
		}
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%.2f\t%.2f\t%.1f\t%s\t%d\t\n", r.scenario, r.rate, r.rps, r.p50, r.p99, r.cpuPerRequestMic, ratio, r.errors)
	}
	return w.Flush()
}

func runScenario(sc scenario, ghz, token string, duration time.Duration, rate int, idp *demo.Server) ([]result, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := sc.cmd(addr)
	if sc.denies {
		// extauthz reads the address from its config: pass it through the
		// environment-free way, a copy of the config with listen.grpc set.
		cfg := cmd.Args[2]
		b, err := os.ReadFile(cfg)
		if err != nil {
			return nil, err
		}
		b = []byte(strings.Replace(string(b), `listen: {admin: ""}`, fmt.Sprintf("listen: {admin: \"\", grpc: %q}", addr), 1))
		if err := os.WriteFile(cfg, b, 0o600); err != nil {
			return nil, err
		}
	}
	cmd.Stderr = os.Stderr
	before := idp.IdP.JWKSRequests()
	start := time.Now()
	conn, stop, err := startServing(cmd, addr, 120*time.Second)
	if err != nil {
		return nil, err
	}
	defer stop()
	ready := time.Since(start)
	if sc.denies {
		fmt.Fprintf(os.Stderr, "%s: SERVING after %v, RSS %s, %d JWKS requests\n", sc.name, ready.Round(time.Millisecond), rss(cmd.Process.Pid), idp.IdP.JWKSRequests()-before)
	}
	if err := checkDecisions(conn, token, sc.denies); err != nil {
		return nil, err
	}
	var out []result
	for _, r := range []int{rate, 0} {
		label := "saturation"
		if r > 0 {
			label = strconv.Itoa(r) + " rps"
		}
		cpu0, err := cpuTime(cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		res, err := runGHZ(ghz, addr, token, duration, r)
		if err != nil {
			return nil, err
		}
		cpu1, err := cpuTime(cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		res.scenario, res.rate = sc.name, label
		if res.count > 0 {
			res.cpuPerRequestMic = float64((cpu1 - cpu0).Microseconds()) / float64(res.count)
		}
		out = append(out, res)
	}
	return out, nil
}

func checkRequest(token string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Host: demo.Host, Path: "/orders", Method: "GET",
			Headers: map[string]string{"authorization": "Bearer " + token}},
	}}}
}

// checkDecisions makes sure the server allows the token and, unless it is
// the no-op server, denies a forged one: a load test of a server that denies
// everything would measure the wrong thing.
func checkDecisions(conn *grpc.ClientConn, token string, denies bool) error {
	c := authv3.NewAuthorizationClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, checkRequest(token))
	if err != nil {
		return err
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK || resp.GetOkResponse() == nil {
		return fmt.Errorf("the benchmark token is denied: %v", resp.GetStatus())
	}
	if !denies {
		return nil
	}
	forged := token[:strings.LastIndexByte(token, '.')+1] + "AAAA"
	resp, err = c.Check(ctx, checkRequest(forged))
	if err != nil {
		return err
	}
	if codes.Code(resp.GetStatus().GetCode()) == codes.OK {
		return errors.New("a forged token is allowed")
	}
	return nil
}

// concurrency is ghz's number of concurrent calls (over 4 connections).
const concurrency = 32

func runGHZ(ghz, addr, token string, duration time.Duration, rate int) (result, error) {
	data, err := json.Marshal(map[string]any{"attributes": map[string]any{"request": map[string]any{"http": map[string]any{
		"host": demo.Host, "path": "/orders", "method": "GET", "headers": map[string]string{"authorization": "Bearer " + token},
	}}}})
	if err != nil {
		return result{}, err
	}
	args := []string{"--insecure", "--call", "envoy.service.auth.v3.Authorization.Check", "-d", string(data),
		"-z", duration.String(), "-c", strconv.Itoa(concurrency), "--connections", "4", "--format", "json", "--skipFirst", "100"}
	if rate > 0 {
		args = append(args, "--rps", strconv.Itoa(rate))
	}
	out, err := exec.Command(ghz, append(args, addr)...).Output()
	if err != nil {
		return result{}, fmt.Errorf("ghz: %w", err)
	}
	var rep struct {
		Count   int64   `json:"count"`
		RPS     float64 `json:"rps"`
		Latency []struct {
			Percentage int   `json:"percentage"`
			Latency    int64 `json:"latency"` // ns
		} `json:"latencyDistribution"`
		StatusCodeDistribution map[string]int64 `json:"statusCodeDistribution"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return result{}, fmt.Errorf("ghz output: %w", err)
	}
	// ghz ends a timed run by closing its connections, so the calls in
	// flight then (up to the concurrency, 32) fail as Unavailable; they are
	// reported. More failures than that make the run meaningless.
	ok := rep.StatusCodeDistribution["OK"]
	if rep.Count-ok > 2*concurrency {
		return result{}, fmt.Errorf("ghz: %d of %d calls OK: %v", ok, rep.Count, rep.StatusCodeDistribution)
	}
	res := result{rps: rep.RPS, count: rep.Count, errors: rep.Count - ok}
	for _, l := range rep.Latency {
		switch l.Percentage {
		case 50:
			res.p50 = float64(l.Latency) / 1e6
		case 99:
			res.p99 = float64(l.Latency) / 1e6
		}
	}
	return res, nil
}

// startServing starts cmd, a server listening on addr, and waits up to
// limit for its gRPC health to say SERVING. stop closes conn, interrupts
// the server and waits for it to exit.
func startServing(cmd *exec.Cmd, addr string, limit time.Duration) (conn *grpc.ClientConn, stop func(), err error) {
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	end := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
	conn, err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		end()
		return nil, nil, err
	}
	if err := waitServing(conn, limit); err != nil {
		conn.Close()
		end()
		return nil, nil, err
	}
	return conn, func() { conn.Close(); end() }, nil
}

func waitServing(conn *grpc.ClientConn, limit time.Duration) error {
	h := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(limit)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not SERVING after %v (last: %v, %v)", limit, resp.GetStatus(), err)
		}
		time.Sleep(wait) // polling a process we started; nothing to wait on
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// cpuTime is a process's user + system CPU time (/proc/PID/stat fields 14
// and 15, in clock ticks of 10 ms on Linux).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
