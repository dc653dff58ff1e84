package tenants

import (
	"reflect"
	"strings"
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
	// The issuer is part of the trust fingerprint of shared snapshots, and
	// what a discovered metadata document must name.
	reg.Issuer = p.Issuer
	if p.IssuerTemplate != "" {
		reg.Issuer = p.IssuerTemplate
	}
	if p.JWKSURL == "" {
		reg.DiscoveryURL = p.DiscoveryURL
		if reg.DiscoveryURL == "" && p.Issuer != "" {
			reg.DiscoveryURL, _ = jwkscache.DiscoveryURL(p.Issuer, p.Discovery == DiscoveryOAuth) // checked by Validate
		}
	}
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

// sets reports whether s sets the field a jwkscache.FieldError names
// ("min_ttl", "retry_policy.jitter"), so a cache-setting error is
// attributed to the block that wrote the value. The names are the yaml
// tags of CacheSettings: the list is written once, on the struct.
func (s *CacheSettings) sets(field string) bool {
	return setsField(reflect.ValueOf(s).Elem(), field)
}

// setsField reports whether the struct v, whose fields are pointers and
// slices with nil meaning "not set", sets the field at the dotted YAML
// path. A path into a nested struct (retry_policy.jitter) looks inside it.
func setsField(v reflect.Value, path string) bool {
	name, rest, nested := strings.Cut(path, ".")
	for i := range v.NumField() {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag != name {
			continue
		}
		f := v.Field(i)
		switch {
		case f.Kind() != reflect.Pointer && f.Kind() != reflect.Slice, f.IsNil():
			return false
		case !nested:
			return true
		case f.Kind() == reflect.Pointer && f.Elem().Kind() == reflect.Struct:
			return setsField(f.Elem(), rest)
		}
		return false
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
