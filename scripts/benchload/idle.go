package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// idleCase is one identity-provider behaviour of the idle benchmark: with
// cache headers (Cache-Control: max-age and an ETag, answering a matching
// If-None-Match with 304), or with none at all, so that the service's
// min_ttl decides how often it fetches.
type idleCase struct {
	name   string
	maxAge int           // seconds; 0: no cache headers
	minTTL time.Duration // jwks.min_ttl; 0: the default (30 s)
}

// parseIdleCases reads -idle-cases: a comma-separated list of
// "max-age=SECONDS" (cache headers) and "none" or "none/min_ttl=DURATION"
// (no cache headers, optionally with a configured min_ttl).
func parseIdleCases(s string) ([]idleCase, error) {
	var cases []idleCase
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case strings.HasPrefix(f, "max-age="):
			n, err := strconv.Atoi(strings.TrimPrefix(f, "max-age="))
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("idle case %q: max-age must be a positive number of seconds", f)
			}
			cases = append(cases, idleCase{name: f + " + ETag", maxAge: n})
		case f == "none":
			cases = append(cases, idleCase{name: "no cache headers, min_ttl 30s (default)"})
		case strings.HasPrefix(f, "none/min_ttl="):
			d, err := time.ParseDuration(strings.TrimPrefix(f, "none/min_ttl="))
			if err != nil {
				return nil, fmt.Errorf("idle case %q: %w", f, err)
			}
			cases = append(cases, idleCase{name: "no cache headers, min_ttl " + d.String(), minTTL: d})
		default:
			return nil, fmt.Errorf("idle case %q: want max-age=SECONDS, none or none/min_ttl=DURATION", f)
		}
	}
	return cases, nil
}

// idleOptions are the idle benchmark's flags.
type idleOptions struct {
	extauthz  string
	providers int
	keys      int // RSA-2048 keys in the JWKS
	cases     []idleCase
	settle    time.Duration // from SERVING to the first window
	window    time.Duration
	windows   int
}

// idleResult is one measuring window of one case.
type idleResult struct {
	name            string
	windowIndex     int
	window          time.Duration
	cpu             time.Duration
	fetched, notMod int64 // IdP answers 200 and 304 during the window
	rss             string
	load            string // load average at the end of the window
}

// runIdle measures the service's CPU with no traffic at all: opts.providers
// tenants of one provider each, every JWKS served by one local HTTPS
// identity provider (this process, so its CPU is not counted), for each
// case. After SERVING and a settling time it reads the service process's
// CPU seconds (/proc/PID/stat utime+stime) over windows of fixed length and
// counts the identity provider's requests in them.
func runIdle(opts idleOptions) error {
	dir, err := os.MkdirTemp("", "benchidle")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	doc, err := rsaJWKS(opts.keys)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(doc)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	var maxAge atomic.Int64 // the running case's; 0: no cache headers
	var fetched, notMod atomic.Int64
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := maxAge.Load(); a > 0 {
			w.Header().Set("Cache-Control", "max-age="+strconv.FormatInt(a, 10))
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				notMod.Add(1)
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		fetched.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	}))
	defer idp.Close()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idp.Certificate().Raw}), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "idle: %d providers, JWKS of %d RSA-2048 keys (%d bytes) at %s; settle %v, %d windows of %v\n",
		opts.providers, opts.keys, len(doc), idp.URL, opts.settle, opts.windows, opts.window)

	var results []idleResult
	for _, c := range opts.cases {
		maxAge.Store(int64(c.maxAge))
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		cfg := filepath.Join(dir, "idle.yaml")
		if err := os.WriteFile(cfg, idleConfig(addr, caFile, idp.URL+"/jwks", c.minTTL, opts.providers), 0o600); err != nil {
			return err
		}
		rs, err := measureIdle(c, opts, cfg, addr, &fetched, &notMod)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		results = append(results, rs...)
	}
	// The CPU of a refresh is what a case with refreshes costs over one
	// without (the first such case, window for window).
	var base []idleResult
	for i := 0; i < len(results); {
		j := i + opts.windows
		free := true
		for _, r := range results[i:j] {
			free = free && r.fetched+r.notMod == 0
		}
		if free && base == nil {
			base = results[i:j]
		}
		i = j
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "IdP behaviour\twindow\tCPU s\tcores\tIdP 200/s\tIdP 304/s\tCPU ms/refresh\tnet of idle\tRSS\tload avg (1m 5m 15m)\t")
	for _, r := range results {
		secs := r.window.Seconds()
		n := r.fetched + r.notMod
		per, net := "-", "-"
		if n > 0 {
			per = fmt.Sprintf("%.3f", float64(r.cpu.Microseconds())/1e3/float64(n))
			if base != nil {
				b := base[r.windowIndex]
				net = fmt.Sprintf("%.3f", (float64(r.cpu.Microseconds())/1e3-b.cpu.Seconds()*1e3*secs/b.window.Seconds())/float64(n))
			}
		}
		fmt.Fprintf(w, "%s\t%d\t%.2f\t%.3f\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t\n", r.name, r.windowIndex+1, r.cpu.Seconds(), r.cpu.Seconds()/secs,
			float64(r.fetched)/secs, float64(r.notMod)/secs, per, net, r.rss, r.load)
	}
	return w.Flush()
}

// measureIdle starts the service on cfg, waits for SERVING and the
// settling time, and measures opts.windows windows.
func measureIdle(c idleCase, opts idleOptions, cfg, addr string, fetched, notMod *atomic.Int64) ([]idleResult, error) {
	cmd := exec.Command(opts.extauthz, "-config", cfg, "-log-format", "text")
	cmd.Stderr = os.Stderr
	before := fetched.Load() + notMod.Load()
	start := time.Now()
	_, stop, err := startServing(cmd, addr, 15*time.Minute)
	if err != nil {
		return nil, err
	}
	defer stop()
	pid := cmd.Process.Pid
	fmt.Fprintf(os.Stderr, "idle: %s: SERVING after %v, %d IdP requests, RSS %s; settling %v\n",
		c.name, time.Since(start).Round(time.Millisecond), fetched.Load()+notMod.Load()-before, rss(pid), opts.settle)
	time.Sleep(opts.settle) // the measurement is of elapsed time with no traffic
	var out []idleResult
	for i := range opts.windows {
		load0 := loadAvg()
		cpu0, err := cpuTime(pid)
		if err != nil {
			return nil, err
		}
		f0, n0 := fetched.Load(), notMod.Load()
		t0 := time.Now()
		time.Sleep(opts.window)
		cpu1, err := cpuTime(pid)
		if err != nil {
			return nil, err
		}
		r := idleResult{name: c.name, windowIndex: i, window: time.Since(t0), cpu: cpu1 - cpu0,
			fetched: fetched.Load() - f0, notMod: notMod.Load() - n0, rss: rss(pid), load: loadAvg()}
		fmt.Fprintf(os.Stderr, "idle: %s: window %d: CPU %v (%.3f cores), IdP %d fetched + %d not modified, RSS %s, load %s → %s\n",
			c.name, i+1, r.cpu, r.cpu.Seconds()/r.window.Seconds(), r.fetched, r.notMod, r.rss, load0, r.load)
		out = append(out, r)
	}
	return out, nil
}

// idleConfig is n tenants of one provider each, all on jwksURL, each with
// an issuer of its own (as tenants of their own identity providers would
// be; a shared issuer would need disjoint audiences, which the config
// validation checks pairwise).
func idleConfig(addr, caFile, jwksURL string, minTTL time.Duration, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: {admin: \"\", grpc: %q}\nlog: {level: warn}\njwks: {ca_file: %q", addr, caFile)
	if minTTL > 0 {
		fmt.Fprintf(&b, ", min_ttl: %s", minTTL)
	}
	b.WriteString("}\ntenants:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: t%d\n    hosts: [\"t%d.idle.test\"]\n    providers:\n      - id: idp\n        issuer: \"https://idp%d.idle.test/\"\n        jwks_url: %q\n        algorithms: [RS256]\n",
			i, i, i, jwksURL)
	}
	return []byte(b.String())
}

// rsaJWKS is a JWKS of n fresh RSA-2048 public keys (kids k0, k1...), the
// size of a real identity provider's set during a rotation.
func rsaJWKS(n int) ([]byte, error) {
	type jwk struct {
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
		N   string `json:"n"`
		E   string `json:"e"`
	}
	keys := make([]jwk, 0, n)
	for i := range n {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		keys = append(keys, jwk{Kty: "RSA", Kid: "k" + strconv.Itoa(i), Use: "sig", Alg: "RS256",
			N: base64.RawURLEncoding.EncodeToString(k.N.Bytes()), E: "AQAB"})
	}
	return json.Marshal(map[string]any{"keys": keys})
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
