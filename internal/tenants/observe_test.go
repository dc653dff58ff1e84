package tenants

import (
	"path/filepath"
	"testing"
)

func ratio(f float64) *float64 { return &f }

func TestValidate_TracingAndAudit(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string // "" means valid
	}{
		{"off by default", func(c *Config) {}, ""},
		{"grpc host:port", func(c *Config) { c.Tracing.Endpoint = "otel-collector:4317" }, ""},
		{"http URL", func(c *Config) {
			c.Tracing.Protocol, c.Tracing.Endpoint = "http", "http://otel-collector:4318/v1/traces"
		}, ""},
		{"stdout audit, no allows", func(c *Config) { c.Audit.Path, c.Audit.AllowSampleRatio = "-", ratio(0) }, ""},
		{"unknown protocol", func(c *Config) { c.Tracing.Protocol = "zipkin" }, `tracing.protocol: "zipkin" must be grpc or http`},
		{"grpc endpoint without a port", func(c *Config) { c.Tracing.Endpoint = "otel-collector" }, `tracing.endpoint: "otel-collector" must be host:port`},
		{"grpc endpoint given as a URL", func(c *Config) { c.Tracing.Endpoint = "http://otel-collector:4317" }, "tracing.endpoint:"},
		{"http endpoint without a scheme", func(c *Config) {
			c.Tracing.Protocol, c.Tracing.Endpoint = "http", "otel-collector:4318"
		}, `tracing.endpoint: "otel-collector:4318" must be an http or https URL`},
		{"sample ratio above 1", func(c *Config) { c.Tracing.SampleRatio = ratio(1.5) }, "tracing.sample_ratio: 1.5 must be in [0, 1]"},
		{"negative sample ratio", func(c *Config) { c.Tracing.SampleRatio = ratio(-0.1) }, "tracing.sample_ratio:"},
		{"missing headers file", func(c *Config) {
			c.Tracing.HeadersFile = filepath.Join(t.TempDir(), "nope")
		}, "tracing.headers_file: cannot read"},
		{"audit ratio above 1", func(c *Config) { c.Audit.AllowSampleRatio = ratio(2) }, "audit.allow_sample_ratio: 2 must be in [0, 1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, validYAML)
			tt.mutate(c)
			checkErr(t, c.Validate(nil), tt.want)
		})
	}
}

func TestParse_TracingAndAuditDefaults(t *testing.T) {
	c := mustParse(t, validYAML)
	if c.Tracing.Endpoint != "" || c.Tracing.Protocol != "grpc" || c.Tracing.ServiceName != "extauthz" ||
		c.Tracing.SampleRatio == nil || *c.Tracing.SampleRatio != 1 {
		t.Errorf("tracing defaults %+v", c.Tracing)
	}
	if c.Audit.Path != "" || c.Audit.AllowSampleRatio == nil || *c.Audit.AllowSampleRatio != 1 {
		t.Errorf("audit defaults %+v", c.Audit)
	}
	c = mustParse(t, validYAML+"tracing: {sample_ratio: 0}\naudit: {allow_sample_ratio: 0}\n")
	if *c.Tracing.SampleRatio != 0 || *c.Audit.AllowSampleRatio != 0 {
		t.Error("an explicit 0 ratio was replaced by the default")
	}
}
