package service

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/internal/tracing"
	"github.com/extauthz/extauthz/jwkscache"
)

// maxCABytes bounds jwks.ca_file: a CA bundle is kilobytes, the system
// bundle about 200 KiB.
const maxCABytes = 4 << 20

// Bounds of admin.token_file's token: long enough not to be guessed, short
// enough to be a token and not some other file.
const (
	minAdminTokenBytes = 16
	maxAdminTokenBytes = 4 << 10
)

// readAdminToken returns the token in path (surrounding whitespace, such as
// the newline of `echo TOKEN > file`, removed), or nil when path is empty.
func readAdminToken(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := tenants.ReadFile(path, maxAdminTokenBytes)
	if err != nil {
		return nil, fmt.Errorf("admin.token_file: %w", err)
	}
	tok := bytes.TrimSpace(b)
	switch {
	case len(tok) < minAdminTokenBytes:
		return nil, fmt.Errorf("admin.token_file: %s holds %d bytes of token, want at least %d", path, len(tok), minAdminTokenBytes)
	case bytes.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r > '~' }):
		// RFC 6750 §2.1: a b64token; anything else could not be sent.
		return nil, fmt.Errorf("admin.token_file: %s: the token must be printable ASCII without spaces", path)
	}
	return tok, nil
}

// ConfigError is an invalid configuration: every problem, each naming its
// YAML path (tenants[1].providers[0].jwks_url: must use https).
type ConfigError struct {
	Err error
}

// Error implements error with one problem per line.
func (e *ConfigError) Error() string {
	return "invalid configuration:\n  " + strings.Join(Problems(e.Err), "\n  ")
}

// Unwrap returns the joined problems.
func (e *ConfigError) Unwrap() error { return e.Err }

// Problems returns the leaves of an errors.Join tree (ConfigError
// included) as strings, one problem each.
func Problems(err error) []string {
	var ce *ConfigError
	if errors.As(err, &ce) && ce.Err != err {
		err = ce.Err
	}
	var out []string
	for _, e := range tenants.Problems(err) {
		out = append(out, e.Error())
	}
	return out
}

// CheckConfig reads the configuration at path and its tenants_dir and
// validates them exactly as the server would at start (cache settings
// included, against a registry built from the file's jwks block) without
// serving or fetching anything. It returns nil or a *ConfigError listing
// every problem, a broken tenant file's by its path (the server would start
// without that tenant).
func CheckConfig(path string) error {
	l := tenants.NewLoader(path, nil)
	in, err := l.Read()
	if err != nil {
		return &ConfigError{Err: err}
	}
	ld, err := l.Load(in, validateAll)
	if err != nil {
		return &ConfigError{Err: err}
	}
	if len(ld.Problems) > 0 {
		errs := make([]error, len(ld.Problems))
		for i, p := range ld.Problems {
			errs[i] = p
		}
		return &ConfigError{Err: errors.Join(errs...)}
	}
	return nil
}

// validateAll checks cfg as CheckConfig does: tenants' rules, each
// provider's cache registration against the registry cfg's jwks block
// describes, and the contents of jwks.ca_file. It returns nil or the
// errors.Join of every problem.
func validateAll(cfg *tenants.Config) error {
	var errs []error
	if cfg.JWKS.CAFile != "" {
		if _, err := os.Stat(cfg.JWKS.CAFile); err == nil { // a missing file is reported by Validate
			if _, err := httpClient(cfg.JWKS.CAFile); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if f := cfg.Tracing.HeadersFile; f != "" {
		if _, err := os.Stat(f); err == nil { // a missing file is reported by Validate
			if err := tracing.CheckHeadersFile(f); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if cfg.Admin.TokenFile != "" {
		if _, err := os.Stat(cfg.Admin.TokenFile); err == nil { // a missing file is reported by Validate
			if _, err := readAdminToken(cfg.Admin.TokenFile); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// Each provider's registration is checked under the registry-wide
	// options the service would build its registry with.
	if ro := registryOptions(cfg, nil, nil, nil); ro.Validate() != nil {
		errs = append(errs, fmt.Errorf("jwks: %w", ro.Validate()))
		errs = append(errs, cfg.Validate(nil))
	} else {
		errs = append(errs, cfg.Validate(ro.ValidateRegistration))
	}
	return errors.Join(errs...)
}

func registryOptions(cfg *tenants.Config, client *http.Client, log *slog.Logger, obs jwkscache.Observer) jwkscache.Options {
	return jwkscache.Options{
		InsecureAllowHTTP:    cfg.JWKS.RequireHTTPS != nil && !*cfg.JWKS.RequireHTTPS,
		AllowedDomains:       cfg.JWKS.AllowedDomains,
		HTTPClient:           client,
		MaxConcurrentFetches: cfg.JWKS.MaxConcurrentFetches,
		Logger:               log,
		Observer:             obs,
	}
}

// newRegistry builds the key cache from the registry-wide part of cfg: the
// extra CA of jwks.ca_file, HTTPS required unless jwks.require_https is
// false, and the concurrency bound. Per-provider settings arrive through
// Register (tenants layers the jwks block into each registration).
func newRegistry(cfg *tenants.Config, log *slog.Logger, obs jwkscache.Observer, coord jwkscache.Coordinator, tracer jwkscache.Tracer) (*jwkscache.Registry, error) {
	client, err := httpClient(cfg.JWKS.CAFile)
	if err != nil {
		return nil, err
	}
	opts := registryOptions(cfg, client, log, obs)
	opts.Coordinator = coord // jwks.redis: snapshots and leases shared with the other replicas
	opts.Tracer = tracer     // tracing: refresh and wait spans
	// admin.RefreshLog (in obs) reports each change of a provider's refresh
	// outcome; the cache's line after every failed refresh is Debug.
	opts.QuietRefreshFailures = true
	reg, err := jwkscache.New(opts)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return reg, nil
}

// httpClient returns the client the cache fetches JWKS documents with. The
// CA bundle in caFile is trusted in addition to the system roots, so an
// internal identity provider works without replacing the public ones.
func httpClient(caFile string) (*http.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	t.ResponseHeaderTimeout = 10 * time.Second
	if caFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool() // no system roots (e.g. scratch image): the CA file alone
		}
		pem, err := tenants.ReadFile(caFile, maxCABytes)
		if err != nil {
			return nil, fmt.Errorf("jwks.ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("jwks.ca_file: %s holds no PEM certificate", caFile)
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: t}, nil
}

// newLogger returns the JSON (default) or text slog logger of cfg.Log, with
// its level in a LevelVar so a reload can change it.
func newLogger(w io.Writer, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	opts.ReplaceAttr = durationWithUnit
	return slog.New(slog.NewJSONHandler(w, opts))
}

// durationWithUnit writes a duration as Go's duration string ("1.5ms")
// where slog's JSON handler would write a bare number of nanoseconds that
// a reader cannot tell from milliseconds or seconds.
func durationWithUnit(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo // Validate has refused anything else
	}
	return l
}
