package jwkscache

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Validate reports what New refuses in o: a bad allowlist entry or a
// negative bound. The error wraps one *FieldError per problem.
func (o Options) Validate() error {
	var errs []error
	for i, d := range o.AllowedDomains {
		if reason := domainProblem(d); reason != "" {
			errs = append(errs, &FieldError{Field: fmt.Sprintf("allowed_domains[%d]", i), Reason: reason})
		}
	}
	if o.MaxConcurrentFetches < 0 {
		errs = append(errs, &FieldError{Field: "max_concurrent_fetches", Reason: "must not be negative"})
	}
	if o.DefaultRefreshEarly < 0 || o.DefaultStaleWhileError < 0 {
		errs = append(errs, &FieldError{Field: "defaults", Reason: "refresh_early and stale_while_error must not be negative"})
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("jwkscache: invalid options: %w", err)
	}
	return nil
}

// Validate checks reg as Register would: against every rule noted on
// Registration's fields and the registry's options. The error joins one
// *FieldError per problem (errors.Join).
func (r *Registry) Validate(reg Registration) error {
	return r.impl.opts.ValidateRegistration(reg)
}

// ValidateRegistration checks reg against every rule noted on
// Registration's fields, under the registry-wide options o (HTTPS
// required unless InsecureAllowHTTP, the global allowlist), without a
// Registry. The error joins one *FieldError per problem (errors.Join).
func (o Options) ValidateRegistration(reg Registration) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if err := CheckTenantID(reg.TenantID); err != nil {
		bad("tenant_id", "%v", err)
	}
	if err := CheckProviderID(reg.ProviderID); err != nil {
		bad("provider_id", "%v", err)
	}
	if !reg.RequireHTTPS && !o.InsecureAllowHTTP {
		bad("require_https", "cannot be false: the registry requires HTTPS")
	}
	for i, d := range reg.AllowedDomains {
		if reason := domainProblem(d); reason != "" {
			bad(fmt.Sprintf("allowed_domains[%d]", i), "%s", reason)
		}
	}
	field, target := "jwks_url", reg.JWKSURL
	if reg.DiscoveryURL != "" {
		field, target = "discovery_url", reg.DiscoveryURL
		if reg.JWKSURL != "" {
			bad("jwks_url", "must be empty with discovery_url: the metadata's jwks_uri is used")
		}
		if reg.Issuer == "" {
			bad("issuer", "required with discovery_url: the metadata document must name it")
		}
	}
	u, err := url.Parse(target)
	switch {
	case err != nil:
		// url.Parse's error quotes the whole URL, credentials included.
		bad(field, "not a URL: %v", errors.Unwrap(err))
	case !u.IsAbs() || u.Host == "" || u.Hostname() == "":
		bad(field, "must be an absolute URL with a host, got %q", redactURL(u))
	case u.Scheme != "https" && u.Scheme != "http":
		bad(field, "scheme %q is not https", u.Scheme)
	case u.Scheme == "http" && (reg.RequireHTTPS || !o.InsecureAllowHTTP):
		bad(field, "must use https")
	default:
		host := canonicalHost(u)
		if len(reg.AllowedDomains) > 0 && !HostAllowed(host, reg.AllowedDomains) {
			bad(field, "host %q is not inside allowed_domains", host)
		}
		if g := o.AllowedDomains; len(g) > 0 && !HostAllowed(host, g) {
			bad(field, "host %q is not inside the registry's allowed domains", host)
		}
	}
	if reg.RefreshEarly < time.Second {
		bad("refresh_early", "must be at least 1s, got %s", reg.RefreshEarly)
	} else if reg.RefreshEarly >= reg.MaxTTL {
		bad("refresh_early", "must be less than max_ttl (%s), got %s", reg.MaxTTL, reg.RefreshEarly)
	}
	if reg.StaleWhileError < 0 {
		bad("stale_while_error", "must not be negative, got %s", reg.StaleWhileError)
	}
	if reg.MinTTL < 30*time.Second {
		bad("min_ttl", "must be at least 30s, got %s", reg.MinTTL)
	}
	if reg.MaxTTL < reg.MinTTL {
		bad("max_ttl", "must be at least min_ttl (%s), got %s", reg.MinTTL, reg.MaxTTL)
	}
	if reg.MaxResponseBytes <= 0 {
		bad("max_response_bytes", "must be positive, got %d", reg.MaxResponseBytes)
	}
	if reg.NegativeCacheTTL != 0 && reg.NegativeCacheTTL < time.Second {
		bad("negative_cache_ttl", "must be 0 (off) or at least 1s, got %s", reg.NegativeCacheTTL)
	}
	if reg.MaxRedirects < 0 || reg.MaxRedirects > 10 {
		bad("max_redirects", "must be between 0 and 10, got %d", reg.MaxRedirects)
	}
	for i, pin := range reg.PinnedSPKI {
		if _, err := decodePin(pin); err != nil {
			bad(fmt.Sprintf("pinned_spki[%d]", i), "%v", err)
		}
	}
	if reg.PrefetchJitter < 0 {
		bad("prefetch_jitter", "must not be negative, got %s", reg.PrefetchJitter)
	}
	if reg.UnknownKIDCooldown < time.Second {
		bad("unknown_kid_cooldown", "must be at least 1s, got %s", reg.UnknownKIDCooldown)
	}
	rp := reg.RetryPolicy
	if rp.MaxRetries < 0 || rp.MaxRetries > 10 {
		bad("retry_policy.max_retries", "must be between 0 and 10, got %d", rp.MaxRetries)
	}
	if rp.AttemptTimeout < 100*time.Millisecond {
		bad("retry_policy.attempt_timeout", "must be at least 100ms, got %s", rp.AttemptTimeout)
	}
	if rp.InitialBackoff <= 0 {
		bad("retry_policy.initial_backoff", "must be positive, got %s", rp.InitialBackoff)
	}
	if rp.MaxBackoff < rp.InitialBackoff {
		bad("retry_policy.max_backoff", "must be at least initial_backoff (%s), got %s", rp.InitialBackoff, rp.MaxBackoff)
	}
	if rp.Deadline < rp.AttemptTimeout {
		bad("retry_policy.deadline", "must be at least attempt_timeout (%s), got %s", rp.AttemptTimeout, rp.Deadline)
	}
	switch rp.Jitter {
	case JitterNone, JitterFull, JitterDecorrelated:
	default:
		bad("retry_policy.jitter", "must be none, full or decorrelated, got %q", rp.Jitter)
	}
	return errors.Join(errs...)
}

// domainProblem explains why d is not a canonical host name (lowercase, no
// trailing dot, no scheme, port or path), or returns "".
func domainProblem(d string) string {
	switch {
	case d == "":
		return "must not be empty"
	case d != strings.ToLower(d):
		return fmt.Sprintf("%q must be lowercase", d)
	case strings.HasSuffix(d, "."):
		return fmt.Sprintf("%q must not end with a dot", d)
	}
	if net.ParseIP(d) != nil {
		return ""
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Sprintf("%q is not a host name", d)
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Sprintf("%q is not a host name", d)
			}
		}
	}
	return ""
}

// decodePin reads a SHA-256 SPKI fingerprint in standard base64 (the HPKP
// pin-sha256 form, RFC 7469 §2.4) or hex.
func decodePin(pin string) ([]byte, error) {
	if b, err := hex.DecodeString(pin); err == nil && len(b) == 32 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(pin); err == nil && len(b) == 32 {
		return b, nil
	}
	return nil, fmt.Errorf("%q is not a SHA-256 fingerprint (32 bytes, base64 or hex)", pin)
}

// decodePins decodes validated pins.
func decodePins(pins []string) [][]byte {
	var out [][]byte
	for _, p := range pins {
		if b, err := decodePin(p); err == nil {
			out = append(out, b)
		}
	}
	return out
}
