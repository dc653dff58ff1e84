package tenants

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults applied by Parse to settings the file leaves out.
const (
	DefaultGRPCAddr            = "127.0.0.1:9191"
	DefaultAdminAddr           = "127.0.0.1:9193"
	DefaultMaxTokenBytes       = 16 << 10
	DefaultMaxHeaderValueBytes = 1024
	DefaultColdWait            = 2 * time.Second
	DefaultClockSkew           = 60 * time.Second
	DefaultAlgorithm           = "RS256"
	DefaultLogLevel            = "info"
	DefaultLogFormat           = "json"
	DefaultMaxConcurrent       = 16
	DefaultRedisNamespace      = "jwks-cache"
	// DefaultMaxRequestHeaderBytes, DefaultMaxConnections and
	// DefaultMaxConcurrentStreams keep the worst case of half-sent maximal
	// Checks (connections × streams × message bound, 144 MiB) inside
	// the shipped Deployment's 256 MiB memory limit.
	DefaultMaxRequestHeaderBytes = 32 << 10
	DefaultMaxConnections        = 64
	DefaultMaxConcurrentStreams  = 32
	// DefaultTokenCacheEntries sizes the verified-token cache: about 1 KiB
	// each for a typical token's claims, so 10 MiB at most.
	DefaultTokenCacheEntries  = 10000
	DefaultRefreshMinInterval = 30 * time.Second
)

// maxConfigBytes bounds a configuration file: a config is a few KiB, and a
// bound keeps a wrong path (a log file, /dev/zero) from exhausting memory.
const maxConfigBytes = 8 << 20

// UnmarshalYAML reads a Go duration string ("30s", "1m30s"). Plain numbers
// are refused: "30" is ambiguous (seconds? nanoseconds?).
func (d *Duration) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode || value.Tag == "!!null" {
		return fmt.Errorf("line %d: want a duration string such as \"30s\"", value.Line)
	}
	v, err := time.ParseDuration(value.Value)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q: want a Go duration such as \"30s\"", value.Line, value.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String returns the duration as a Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// Load reads and parses the configuration file at path (see Parse). It does
// not validate: call Validate.
func Load(path string) (*Config, error) {
	data, err := ReadFile(path, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("tenants: load config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a YAML configuration strictly and applies the defaults.
// Unknown keys, wrong types and more than one YAML document are errors that
// name the line. Parse does not check the values: call Validate for that.
//
// Defaults: listen.grpc 127.0.0.1:9191; listen.admin 127.0.0.1:9193 when the
// key is absent (an explicit "" turns the admin listener off); log json/info;
// limits 16 KiB tokens, 1024-byte claim headers, 2 s cold wait, 32 KiB
// request headers, 64 connections per listener, 32 streams per gRPC
// connection; admin.refresh_min_interval 30s;
// forward_auth.trusted_proxies 127.0.0.1/32 and ::1/128 when the key is
// absent; jwks.max_concurrent_fetches 16; redis namespace jwks-cache;
// dpop_replay 100000 entries, deny on Redis errors; per provider
// algorithms [RS256], clock_skew 60s, and, when the provider names no token
// source at all, from_headers [{authorization, "Bearer "}].
func Parse(data []byte) (*Config, error) {
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("tenants: config larger than %d bytes", maxConfigBytes)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("tenants: parse config: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("tenants: parse config: more than one YAML document")
	}
	// A second, lax pass tells "admin absent" (default on) from "admin: ''" (off).
	var probe struct {
		Listen struct {
			Admin *string `yaml:"admin"`
		} `yaml:"listen"`
	}
	_ = yaml.Unmarshal(data, &probe) // the strict pass above already succeeded
	c.applyDefaults(probe.Listen.Admin != nil)
	return &c, nil
}

func (c *Config) applyDefaults(adminSet bool) {
	orDefault(&c.Listen.GRPC, DefaultGRPCAddr)
	if !adminSet && c.Listen.Admin == "" {
		c.Listen.Admin = DefaultAdminAddr
	}
	orDefault(&c.Log.Level, DefaultLogLevel)
	orDefault(&c.Log.Format, DefaultLogFormat)
	orDefault(&c.Limits.MaxTokenBytes, DefaultMaxTokenBytes)
	orDefault(&c.Limits.MaxHeaderValueBytes, DefaultMaxHeaderValueBytes)
	orDefault(&c.Limits.MaxRequestHeaderBytes, DefaultMaxRequestHeaderBytes)
	orDefault(&c.Limits.MaxConnections, DefaultMaxConnections)
	orDefault(&c.Limits.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	orDefault(&c.Admin.RefreshMinInterval, Duration(DefaultRefreshMinInterval))
	orDefault(&c.Limits.ColdWait, Duration(DefaultColdWait))
	if c.Limits.TokenCacheEntries == nil {
		c.Limits.TokenCacheEntries = new(DefaultTokenCacheEntries)
	}
	if c.ForwardAuth.TrustedProxies == nil { // absent; "[]" trusts no peer
		c.ForwardAuth.TrustedProxies = slices.Clone(DefaultTrustedProxies)
	}
	orDefault(&c.JWKS.MaxConcurrentFetches, DefaultMaxConcurrent)
	c.applyObserveDefaults()
	if c.JWKS.Redis != nil && c.JWKS.Redis.Namespace == "" {
		c.JWKS.Redis.Namespace = DefaultRedisNamespace
	}
	orDefault(&c.DPoPReplay.MaxEntries, DefaultDPoPReplayEntries)
	orDefault(&c.DPoPReplay.OnRedisError, DefaultDPoPOnRedisError)
	for i := range c.Tenants {
		for j := range c.Tenants[i].Providers {
			p := &c.Tenants[i].Providers[j]
			if len(p.Algorithms) == 0 {
				p.Algorithms = []string{DefaultAlgorithm}
			}
			if p.ClockSkew == nil {
				d := Duration(DefaultClockSkew)
				p.ClockSkew = &d
			}
			if len(p.FromHeaders) == 0 && len(p.FromCookies) == 0 && len(p.FromParams) == 0 {
				p.FromHeaders = []HeaderSource{{Name: "authorization", ValuePrefix: "Bearer "}}
			}
		}
	}
}

// orDefault sets *v to d when *v is its type's zero value: the key was
// absent, or set to zero, which means the default.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}
