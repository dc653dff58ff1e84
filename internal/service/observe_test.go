package service

import (
	"slices"
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
