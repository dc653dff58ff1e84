package tenants

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
)

// Tracing configures OpenTelemetry traces exported over OTLP. Tracing is
// off when Endpoint is empty, and then costs the Check path nothing.
type Tracing struct {
	// Endpoint is host:port for protocol grpc (as OTLP exporters take it)
	// and a URL (http://collector:4318/v1/traces) for protocol http.
	Endpoint string `yaml:"endpoint"`
	Protocol string `yaml:"protocol"` // grpc (default) or http
	// Insecure sends spans without TLS (a collector on localhost or in the
	// pod). For http, the URL's scheme decides.
	Insecure bool `yaml:"insecure"`
	// SampleRatio is the share of new traces (requests arriving without a
	// sampled caller) recorded, in [0, 1]; default 1. A caller's own
	// sampling decision (traceparent, b3) is always followed.
	SampleRatio *float64 `yaml:"sample_ratio"`
	ServiceName string   `yaml:"service_name"` // default extauthz
	// HeadersFile holds headers sent with every export (a collector's
	// credentials), one "name: value" a line; # starts a comment. It is
	// read at start, and its values are never logged.
	HeadersFile string `yaml:"headers_file"`
}

// Audit configures the decision audit log: one JSON record per decision
// on a stream of its own. Off when Path is empty.
type Audit struct {
	Path string `yaml:"path"` // a file (appended to, reopened on SIGHUP), or "-" for stdout
	// AllowSampleRatio is the share of allows written, in [0, 1]; default 1.
	// Every denial is written.
	AllowSampleRatio *float64 `yaml:"allow_sample_ratio"`
}

// Defaults of the tracing and audit blocks.
const (
	DefaultTracingProtocol    = "grpc"
	DefaultTracingServiceName = "extauthz"
)

// applyObserveDefaults fills the tracing and audit defaults.
func (c *Config) applyObserveDefaults() {
	orDefault(&c.Tracing.Protocol, DefaultTracingProtocol)
	orDefault(&c.Tracing.ServiceName, DefaultTracingServiceName)
	if c.Tracing.SampleRatio == nil {
		one := 1.0
		c.Tracing.SampleRatio = &one
	}
	if c.Audit.AllowSampleRatio == nil {
		one := 1.0
		c.Audit.AllowSampleRatio = &one
	}
}

// validateObserve checks the tracing and audit blocks.
func (c *Config) validateObserve(v *validator) {
	t := c.Tracing
	switch t.Protocol {
	case "", "grpc", "http": // "": a Config not from Parse; grpc

	default:
		v.add("tracing.protocol", fmt.Sprintf("%q must be grpc or http", t.Protocol))
	}
	if t.Endpoint != "" {
		if err := checkTracingEndpoint(t.Protocol, t.Endpoint); err != nil {
			v.add("tracing.endpoint", err.Error())
		}
	}
	if r := t.SampleRatio; r != nil && !(*r >= 0 && *r <= 1) {
		v.add("tracing.sample_ratio", fmt.Sprintf("%v must be in [0, 1]", *r))
	}
	if t.HeadersFile != "" {
		if _, err := os.Stat(t.HeadersFile); err != nil {
			v.add("tracing.headers_file", fmt.Sprintf("cannot read %q: %v", t.HeadersFile, errors.Unwrap(err)))
		}
	}
	if r := c.Audit.AllowSampleRatio; r != nil && !(*r >= 0 && *r <= 1) {
		v.add("audit.allow_sample_ratio", fmt.Sprintf("%v must be in [0, 1]", *r))
	}
}

// checkTracingEndpoint: host:port for gRPC, an http(s) URL for HTTP.
func checkTracingEndpoint(protocol, endpoint string) error {
	if protocol == "http" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q must be an http or https URL with protocol http", endpoint)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%q must be host:port with protocol grpc", endpoint)
	}
	return nil
}
