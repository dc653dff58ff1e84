package service

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/tenants"
)

func TestObserveChanged(t *testing.T) {
	r := func(f float64) *float64 { return &f }
	base := func() *tenants.Config {
		return &tenants.Config{
			Tracing: tenants.Tracing{Endpoint: "otel:4317", Protocol: "grpc", SampleRatio: r(0.1), ServiceName: "extauthz"},
			Audit:   tenants.Audit{Path: "-", AllowSampleRatio: r(1)},
		}
	}
	tests := []struct {
		name   string
		mutate func(c *tenants.Config)
		want   []string
	}{
		{"same values in new pointers", func(c *tenants.Config) {}, nil},
		{"endpoint", func(c *tenants.Config) { c.Tracing.Endpoint = "otel:4318" }, []string{"tracing"}},
		{"sample ratio", func(c *tenants.Config) { c.Tracing.SampleRatio = r(0.2) }, []string{"tracing"}},
		{"headers file", func(c *tenants.Config) { c.Tracing.HeadersFile = "/etc/h" }, []string{"tracing"}},
		{"audit path", func(c *tenants.Config) { c.Audit.Path = "/var/log/a" }, []string{"audit"}},
		{"audit ratio", func(c *tenants.Config) { c.Audit.AllowSampleRatio = r(0) }, []string{"audit"}},
		{"both", func(c *tenants.Config) { c.Tracing.Insecure, c.Audit.Path = true, "" }, []string{"tracing", "audit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.mutate(cfg)
			if got := observeChanged(base(), cfg); !slices.Equal(got, tt.want) {
				t.Errorf("observeChanged = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCheckConfig_TracingHeadersFile: -check reads tracing.headers_file
// as the service would and names the bad line, never its value.
func TestCheckConfig_TracingHeadersFile(t *testing.T) {
	f := newFixture(t)
	headers := filepath.Join(t.TempDir(), "otlp-headers")
	for _, tt := range []struct {
		content, want string
	}{
		{"authorization: Bearer s3cret\n", ""},
		{"# ok\nauthorization Bearer s3cret\n", "tracing.headers_file: line 2"},
	} {
		if err := os.WriteFile(headers, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		f.write(t, fmt.Sprintf("tracing: {endpoint: \"127.0.0.1:4317\", insecure: true, headers_file: %q}\n", headers))
		err := CheckConfig(f.cfgPath)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckConfig: %v", err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cret")):
			t.Errorf("CheckConfig: %v, want an error naming %q without the value", err, tt.want)
		}
	}
}
