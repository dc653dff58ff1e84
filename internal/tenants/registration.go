package tenants

import (
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// Registrations returns one jwkscache.Registration per provider, in config
// order, layered as jwkscache.DefaultRegistration ← the jwks block ← the
// provider's own overrides. These are what the service registers.
func (c *Config) Registrations() []jwkscache.Registration {
	var regs []jwkscache.Registration
	for _, t := range c.Tenants {
		for _, p := range t.Providers {
			regs = append(regs, c.Registration(t.ID, p))
		}
	}
	return regs
}

// Registration returns the layered registration of one provider of tenant
// tenantID (see Registrations).
func (c *Config) Registration(tenantID string, p Provider) jwkscache.Registration {
	reg := jwkscache.DefaultRegistration(tenantID, p.ID, p.JWKSURL)
	reg.Issuer = p.Issuer // part of the trust fingerprint of shared snapshots
	c.JWKS.CacheSettings.applyTo(&reg)
	p.CacheSettings.applyTo(&reg)
	return reg
}

// applyTo overwrites every field of reg that s sets.
func (s *CacheSettings) applyTo(reg *jwkscache.Registration) {
	setBool(&reg.RequireHTTPS, s.RequireHTTPS)
	if s.AllowedDomains != nil {
		reg.AllowedDomains = append([]string(nil), s.AllowedDomains...)
	}
	setDur(&reg.RefreshEarly, s.RefreshEarly)
	setDur(&reg.StaleWhileError, s.StaleWhileError)
	setDur(&reg.MinTTL, s.MinTTL)
	setDur(&reg.MaxTTL, s.MaxTTL)
	if s.MaxResponseBytes != nil {
		reg.MaxResponseBytes = *s.MaxResponseBytes
	}
	setDur(&reg.NegativeCacheTTL, s.NegativeCacheTTL)
	if s.MaxRedirects != nil {
		reg.MaxRedirects = *s.MaxRedirects
	}
	if s.PinnedSPKI != nil {
		reg.PinnedSPKI = append([]string(nil), s.PinnedSPKI...)
	}
	setDur(&reg.PrefetchJitter, s.PrefetchJitter)
	setDur(&reg.UnknownKIDCooldown, s.UnknownKIDCooldown)
	if rp := s.RetryPolicy; rp != nil {
		if rp.MaxRetries != nil {
			reg.RetryPolicy.MaxRetries = *rp.MaxRetries
		}
		setDur(&reg.RetryPolicy.AttemptTimeout, rp.AttemptTimeout)
		setDur(&reg.RetryPolicy.InitialBackoff, rp.InitialBackoff)
		setDur(&reg.RetryPolicy.MaxBackoff, rp.MaxBackoff)
		setDur(&reg.RetryPolicy.Deadline, rp.Deadline)
		if rp.Jitter != nil {
			reg.RetryPolicy.Jitter = jwkscache.Jitter(*rp.Jitter)
		}
	}
}

// sets reports whether s sets the field a jwkscache.FieldError names, so a
// cache-setting error is attributed to the block that wrote the value.
func (s *CacheSettings) sets(field string) bool {
	switch field {
	case "require_https":
		return s.RequireHTTPS != nil
	case "allowed_domains":
		return s.AllowedDomains != nil
	case "refresh_early":
		return s.RefreshEarly != nil
	case "stale_while_error":
		return s.StaleWhileError != nil
	case "min_ttl":
		return s.MinTTL != nil
	case "max_ttl":
		return s.MaxTTL != nil
	case "max_response_bytes":
		return s.MaxResponseBytes != nil
	case "negative_cache_ttl":
		return s.NegativeCacheTTL != nil
	case "max_redirects":
		return s.MaxRedirects != nil
	case "pinned_spki":
		return s.PinnedSPKI != nil
	case "prefetch_jitter":
		return s.PrefetchJitter != nil
	case "unknown_kid_cooldown":
		return s.UnknownKIDCooldown != nil
	}
	if rp := s.RetryPolicy; rp != nil {
		switch field {
		case "retry_policy":
			return true
		case "retry_policy.max_retries":
			return rp.MaxRetries != nil
		case "retry_policy.attempt_timeout":
			return rp.AttemptTimeout != nil
		case "retry_policy.initial_backoff":
			return rp.InitialBackoff != nil
		case "retry_policy.max_backoff":
			return rp.MaxBackoff != nil
		case "retry_policy.deadline":
			return rp.Deadline != nil
		case "retry_policy.jitter":
			return rp.Jitter != nil
		}
	}
	return false
}

func setBool(dst *bool, v *bool) {
	if v != nil {
		*dst = *v
	}
}

func setDur(dst *time.Duration, v *Duration) {
	if v != nil {
		*dst = time.Duration(*v)
	}
}
