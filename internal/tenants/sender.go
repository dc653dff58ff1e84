package tenants

import (
	"fmt"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// SenderConstraint says which proof of possession a provider's tokens
// need: RFC 9449 DPoP, RFC 8705 mutual-TLS certificate binding, or none.
type SenderConstraint string

// The sender_constraint values.
const (
	// SenderIfBound (the default): a token carrying cnf must be proven as
	// its cnf says (cnf.jkt: DPoP; cnf["x5t#S256"]: client certificate);
	// a token without cnf is a bearer token.
	SenderIfBound SenderConstraint = "if_bound"
	// SenderDPoP: every token must be DPoP-bound and proven.
	SenderDPoP SenderConstraint = "dpop"
	// SenderMTLS: every token must be certificate-bound and proven.
	SenderMTLS SenderConstraint = "mtls"
	// SenderOff: cnf is ignored; every token is a bearer token.
	SenderOff SenderConstraint = "off"
)

// Defaults of the sender-constraint settings.
const (
	DefaultSenderConstraint   = SenderIfBound
	DefaultDPoPMaxAge         = 60 * time.Second
	DefaultDPoPReplayEntries  = 100_000
	DefaultDPoPOnRedisError   = "deny"
	maxDPoPReplayEntries      = 10_000_000
	maxDPoPMaxAge             = 10 * time.Minute
	dpopOnRedisErrorFallBack  = "per_replica"
	dpopOnRedisErrorFailClose = "deny"
)

// DefaultDPoPAlgorithms are the proof algorithms accepted when no level of
// the configuration lists any.
var DefaultDPoPAlgorithms = []string{"ES256", "EdDSA", "RS256", "PS256"}

// SenderSettings are the sender-constraint settings of a provider. Set at
// the top level of the config they are global defaults, in a tenant that
// tenant's defaults; a provider's own value wins, field by field.
type SenderSettings struct {
	SenderConstraint SenderConstraint `yaml:"sender_constraint"` // if_bound (default), dpop, mtls, off
	DPoP             *DPoP            `yaml:"dpop"`
}

// DPoP tunes the check of DPoP proofs (RFC 9449). Nil fields are not set.
type DPoP struct {
	// MaxAge is how old a proof's iat may be (default 60s), plus the
	// provider's clock_skew; it also bounds how long a jti is remembered.
	MaxAge *Duration `yaml:"max_age"`
	// Algorithms are the proof algorithms accepted (asymmetric only;
	// default ES256, EdDSA, RS256, PS256). The WWW-Authenticate algs
	// parameter lists them.
	Algorithms []string `yaml:"algorithms"`
}

// DPoPReplay configures the memory of accepted proofs (service-wide).
type DPoPReplay struct {
	// MaxEntries bounds this replica's own replay cache (default 100000):
	// when it is full of unexpired proofs, new proofs are refused (503),
	// never let through by forgetting an old one.
	MaxEntries int `yaml:"max_entries"`
	// OnRedisError says what happens to DPoP proofs when jwks.redis is set
	// but does not answer: "deny" (default: 503, fail closed, since a
	// replica alone cannot see a proof replayed to another one) or
	// "per_replica" (check against this replica's own cache).
	OnRedisError string `yaml:"on_redis_error"`
}

// FallBack reports whether a Redis failure falls back to the replica's
// own replay cache.
func (d DPoPReplay) FallBack() bool { return d.OnRedisError == dpopOnRedisErrorFallBack }

// applySender layers provider over tenant over global settings into pr.
func (pr *ProviderRules) applySender(levels ...SenderSettings) {
	pr.SenderConstraint = DefaultSenderConstraint
	pr.DPoPMaxAge = DefaultDPoPMaxAge
	pr.DPoPAlgorithms = DefaultDPoPAlgorithms
	for _, s := range levels { // global first, provider last
		if s.SenderConstraint != "" {
			pr.SenderConstraint = s.SenderConstraint
		}
		if s.DPoP == nil {
			continue
		}
		if s.DPoP.MaxAge != nil {
			pr.DPoPMaxAge = time.Duration(*s.DPoP.MaxAge)
		}
		if s.DPoP.Algorithms != nil {
			pr.DPoPAlgorithms = append([]string(nil), s.DPoP.Algorithms...)
		}
	}
}

// validateSender checks one level's sender settings; prefix is "" for the
// top level, else the tenant's or provider's path followed by ".".
func validateSender(v *validator, prefix string, s SenderSettings) {
	switch s.SenderConstraint {
	case "", SenderIfBound, SenderDPoP, SenderMTLS, SenderOff:
	default:
		v.add(prefix+"sender_constraint", fmt.Sprintf("%q must be one of if_bound, dpop, mtls, off", s.SenderConstraint))
	}
	if s.DPoP == nil {
		return
	}
	if d := s.DPoP.MaxAge; d != nil && (*d <= 0 || time.Duration(*d) > maxDPoPMaxAge) {
		v.add(prefix+"dpop.max_age", fmt.Sprintf("%s must be more than 0s and at most %s", time.Duration(*d), maxDPoPMaxAge))
	}
	if s.DPoP.Algorithms != nil && len(s.DPoP.Algorithms) == 0 {
		v.add(prefix+"dpop.algorithms", "must not be empty when set")
	}
	for k, a := range s.DPoP.Algorithms {
		if !jwkscache.SupportedAlgorithm(a) {
			// RFC 9449 §4.3 check 5: asymmetric algorithms only.
			v.add(fmt.Sprintf("%sdpop.algorithms[%d]", prefix, k), fmt.Sprintf("%q is not an asymmetric JWS algorithm (want RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA)", a))
		}
	}
}

// validateDPoPReplay checks the dpop_replay block.
func (c *Config) validateDPoPReplay(v *validator) {
	if n := c.DPoPReplay.MaxEntries; n < 1 || n > maxDPoPReplayEntries {
		v.add("dpop_replay.max_entries", fmt.Sprintf("%d must be between 1 and %d", n, maxDPoPReplayEntries))
	}
	switch c.DPoPReplay.OnRedisError {
	case dpopOnRedisErrorFailClose, dpopOnRedisErrorFallBack:
	default:
		v.add("dpop_replay.on_redis_error", fmt.Sprintf("%q must be deny or per_replica", c.DPoPReplay.OnRedisError))
	}
}
