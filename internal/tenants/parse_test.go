package tenants

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse_AppliesDefaults(t *testing.T) {
	c := mustParse(t, validYAML)
	if err := c.Validate(nil); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := Listen{GRPC: DefaultGRPCAddr, Admin: DefaultAdminAddr}
	if diff := cmp.Diff(want, c.Listen); diff != "" {
		t.Errorf("listen (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Log{Level: "info", Format: "json"}, c.Log); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	wantLimits := Limits{MaxTokenBytes: 16384, MaxHeaderValueBytes: 1024, ColdWait: Duration(2 * time.Second),
		MaxRequestHeaderBytes: 32768, MaxConnections: 64, MaxConcurrentStreams: 32, TokenCacheEntries: new(DefaultTokenCacheEntries)}
	if diff := cmp.Diff(wantLimits, c.Limits); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
	// Closed by default: no reflection, the admin API needs a token
	// everywhere but loopback, and the probes need it too.
	if diff := cmp.Diff(Admin{RefreshMinInterval: Duration(30 * time.Second)}, c.Admin); diff != "" {
		t.Errorf("admin (-want +got):\n%s", diff)
	}
	if c.GRPC.Reflection {
		t.Error("grpc.reflection is on by default")
	}
	if c.Readiness.MinAvailableShare != 0 {
		t.Errorf("readiness.min_available_share = %v, want 0 (off)", c.Readiness.MinAvailableShare)
	}
	g := c.Tenants[1].Providers[0]
	if diff := cmp.Diff([]string{"RS256"}, g.Algorithms); diff != "" {
		t.Errorf("algorithms (-want +got):\n%s", diff)
	}
	if g.ClockSkew == nil || time.Duration(*g.ClockSkew) != 60*time.Second {
		t.Errorf("clock_skew = %v, want 60s", g.ClockSkew)
	}
	if diff := cmp.Diff([]HeaderSource{{Name: "authorization", ValuePrefix: "Bearer "}}, g.FromHeaders); diff != "" {
		t.Errorf("from_headers (-want +got):\n%s", diff)
	}
	if c.JWKS.MaxConcurrentFetches != 16 {
		t.Errorf("max_concurrent_fetches = %d, want 16", c.JWKS.MaxConcurrentFetches)
	}
}

func TestParse_ExplicitValuesKept(t *testing.T) {
	c := mustParse(t, `
listen: {grpc: "0.0.0.0:1", admin: ""}
tenants:
  - id: a
    providers:
      - id: p
        issuer: i
        jwks_url: https://x/
        clock_skew: 0s
        from_cookies: [session]
`)
	if c.Listen.Admin != "" {
		t.Errorf("admin = %q, want explicit empty (off)", c.Listen.Admin)
	}
	p := c.Tenants[0].Providers[0]
	if time.Duration(*p.ClockSkew) != 0 {
		t.Errorf("clock_skew = %v, want 0", *p.ClockSkew)
	}
	if len(p.FromHeaders) != 0 {
		t.Errorf("from_headers = %v, want none when another source is configured", p.FromHeaders)
	}
}

func TestParse_Errors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "tenantz: []\n", "line 1: field tenantz not found"},
		{"unknown nested key", "tenants:\n  - id: a\n    hostz: []\n", "line 3: field hostz not found"},
		{"wrong type", "limits: {max_token_bytes: lots}\n", "line 1"},
		{"bad duration", "limits:\n  cold_wait: 5 parsecs\n", `line 2: invalid duration "5 parsecs"`},
		{"number as duration", "limits:\n  cold_wait: [1]\n", "line 2: want a duration string"},
		{"two documents", "log: {level: info}\n---\nlog: {level: debug}\n", "more than one YAML document"},
		{"not yaml", "{{{", "tenants: parse config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	c, err := Load(writeFile(t, validYAML))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(c.Tenants) != 2 {
		t.Errorf("tenants = %d, want 2", len(c.Tenants))
	}
	bad := writeFile(t, "nope: 1\n")
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load(bad) = %v, want an error naming the file", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("Load(missing) succeeded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(validYAML))
	f.Add([]byte("listen: {grpc: ':1'}\nlimits: {cold_wait: 1s}\n"))
	f.Add([]byte("tenants: [{id: a, hosts: ['*.x'], providers: [{id: p, issuer: i, jwks_url: 'https://x', retry_policy: {jitter: full}}]}]"))
	f.Add([]byte("jwks: {redis: {url: redis://x}, refresh_early: 1s}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		// Whatever parsed must validate (or not) without panicking, and a
		// valid config must compile into a Set.
		if c.Validate(nil) == nil {
			if _, err := NewSet(c); err != nil {
				t.Fatalf("valid config did not compile: %v", err)
			}
		}
		_ = c.Registrations()
	})
}
