// Package tenants provides extauthz's configuration (tenants, their hosts
// and identity providers) and maps a request to its tenant and provider.
//
// Config mirrors the YAML file one to one; Load reads and defaults it,
// Validate reports every problem with its YAML path, and NewSet compiles a
// valid Config into the Set that authz asks which tenant a request belongs
// to and what that tenant's Rules are. Registrations turns each provider
// into the jwkscache.Registration the service registers.
package tenants

import "time"

// Duration is a time.Duration written in YAML as a Go duration string ("30s").
type Duration time.Duration

// Config mirrors the YAML file one to one. Unknown keys are errors.
type Config struct {
	Listen       Listen      `yaml:"listen"`
	GRPC         GRPC        `yaml:"grpc"`          // the listen.grpc server's optional services
	Admin        Admin       `yaml:"admin"`         // the listen.admin API's access rules
	ForwardAuth  ForwardAuth `yaml:"forward_auth"`  // the listen.http listener's settings
	TenantHeader string      `yaml:"tenant_header"` // optional, e.g. x-tenant-id; off by default
	Log          Log         `yaml:"log"`
	Limits       Limits      `yaml:"limits"`
	Readiness    Readiness   `yaml:"readiness"`
	JWKS         JWKS        `yaml:"jwks"`
	Tracing      Tracing     `yaml:"tracing"` // OpenTelemetry traces; off unless tracing.endpoint is set
	Audit        Audit       `yaml:"audit"`   // decision audit log; off unless audit.path is set
	// SenderSettings at the top level are every provider's defaults.
	SenderSettings `yaml:",inline"`
	DPoPReplay     DPoPReplay `yaml:"dpop_replay"`
	// TrustForwardedClientCert makes the Hash of the closest hop's
	// x-forwarded-client-cert element stand for the client certificate
	// (RFC 8705 binding) when the request has no peer certificate of its
	// own. Off by default: only a proxy that sanitises the header may be
	// believed (on listen.http, only from forward_auth.trusted_proxies).
	TrustForwardedClientCert bool     `yaml:"trust_forwarded_client_cert"`
	Tenants                  []Tenant `yaml:"tenants"`
	// TenantsDir is a directory of tenant files, one tenant per *.yaml or
	// *.yml file, merged after Tenants (see Loader). Relative to the
	// configuration file's directory.
	TenantsDir string `yaml:"tenants_dir"`
}

// Listen holds listener addresses. Empty Admin or HTTP means off.
type Listen struct {
	GRPC  string `yaml:"grpc"`  // default 127.0.0.1:9191
	Admin string `yaml:"admin"` // default 127.0.0.1:9193
	HTTP  string `yaml:"http"`  // HTTP forward-auth listener; off unless set
}

// GRPC holds the gRPC server's optional services.
type GRPC struct {
	// Reflection registers grpc.reflection (grpcurl can then list the
	// services without their protos). Off by default: it tells any caller
	// what the server offers. The -reflection flag turns it on too.
	Reflection bool `yaml:"reflection"`
}

// Admin holds the admin API's access rules.
type Admin struct {
	// TokenFile names a file whose content (surrounding whitespace removed)
	// is the bearer token every admin request must carry (RFC 6750 §2.1).
	// Without it the admin listener must be on a loopback address.
	TokenFile string `yaml:"token_file"`
	// OpenProbes serves /healthz, /readyz and /metrics without the token
	// (for the kubelet and Prometheus); the provider API never is.
	OpenProbes bool `yaml:"open_probes"`
	// RefreshMinInterval is the least time between two forced refreshes of
	// one provider (default 30s); a refresh sooner is answered 429.
	RefreshMinInterval Duration `yaml:"refresh_min_interval"`
}

// Log configures log/slog.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // json (default) or text
}

// Readiness decides when /readyz and grpc.health.v1 report the service
// ready.
type Readiness struct {
	// MinAvailableShare, opt-in, is the share of providers, in [0, 1], that
	// must have usable keys (fresh, or stale within stale_while_error) for
	// the replica to be ready. The default, 0, is off: a provider without
	// usable keys costs only its own tenant (503 jwks_unavailable), never
	// the replica's place in the load balancer for every tenant.
	MinAvailableShare float64 `yaml:"min_available_share"`
}

// Limits bounds what a request may carry.
type Limits struct {
	MaxTokenBytes int `yaml:"max_token_bytes"` // default 16384
	// MaxHeaderValueBytes bounds each claim header value (default 1024).
	MaxHeaderValueBytes int `yaml:"max_header_value_bytes"`
	// ColdWait bounds how long a Check waits for a provider's first fetch
	// (default 2s) before answering 503 jwks_unavailable.
	ColdWait Duration `yaml:"cold_wait"`
	// MaxRequestHeaderBytes bounds the request line and headers of one
	// request (default 32768): the HTTP listeners refuse more, and it sizes
	// the largest CheckRequest the gRPC listener accepts.
	MaxRequestHeaderBytes int `yaml:"max_request_header_bytes"`
	// MaxConnections bounds the open connections of each listener
	// (default 64); further clients wait in the accept queue.
	MaxConnections int `yaml:"max_connections"`
	// MaxConcurrentStreams bounds the concurrent Checks on one gRPC
	// connection (default 32).
	MaxConcurrentStreams int `yaml:"max_concurrent_streams"`
	// TokenCacheEntries bounds the verified-token cache (default 10000;
	// 0 turns it off): a token seen again is answered without parsing or
	// verifying its signature until it expires. Absent means the default.
	TokenCacheEntries *int `yaml:"token_cache_entries"`
}

// CacheSettings are the per-provider settings of a jwkscache.Registration,
// by their YAML names. In the jwks block
// they are registry-wide defaults; in a provider they override those. A nil
// field is "not set".
type CacheSettings struct {
	RequireHTTPS       *bool        `yaml:"require_https"`
	AllowedDomains     []string     `yaml:"allowed_domains"`
	RefreshEarly       *Duration    `yaml:"refresh_early"`
	StaleWhileError    *Duration    `yaml:"stale_while_error"`
	MinTTL             *Duration    `yaml:"min_ttl"`
	MaxTTL             *Duration    `yaml:"max_ttl"`
	MaxResponseBytes   *int64       `yaml:"max_response_bytes"`
	NegativeCacheTTL   *Duration    `yaml:"negative_cache_ttl"`
	MaxRedirects       *int         `yaml:"max_redirects"`
	PinnedSPKI         []string     `yaml:"pinned_spki"`
	PrefetchJitter     *Duration    `yaml:"prefetch_jitter"`
	UnknownKIDCooldown *Duration    `yaml:"unknown_kid_cooldown"`
	RetryPolicy        *RetryPolicy `yaml:"retry_policy"`
}

// RetryPolicy mirrors jwkscache.RetryPolicy; nil fields are not set.
type RetryPolicy struct {
	MaxRetries     *int      `yaml:"max_retries"`
	AttemptTimeout *Duration `yaml:"attempt_timeout"`
	InitialBackoff *Duration `yaml:"initial_backoff"`
	MaxBackoff     *Duration `yaml:"max_backoff"`
	Deadline       *Duration `yaml:"deadline"`
	Jitter         *string   `yaml:"jitter"`
}

// JWKS is the registry-wide block.
type JWKS struct {
	CacheSettings        `yaml:",inline"`
	CAFile               string `yaml:"ca_file"`                // extra CA bundle (PEM) for internal identity providers
	MaxConcurrentFetches int    `yaml:"max_concurrent_fetches"` // default 16
	Redis                *Redis `yaml:"redis"`                  // optional snapshot sharing between replicas
}

// Redis configures snapshot sharing between replicas.
type Redis struct {
	URL       string `yaml:"url"`
	URLFile   string `yaml:"url_file"`  // a file holding the URL instead (a mounted Secret: the password goes in the URL)
	Namespace string `yaml:"namespace"` // default jwks-cache
	// HMACKeyFile holds the keys that authenticate shared snapshots, one
	// per line, each at least 32 bytes; the first signs, all verify.
	// Required: Redis is shared storage, not a trust anchor.
	HMACKeyFile string `yaml:"hmac_key_file"`
}

// Tenant is one tenant.
type Tenant struct {
	ID        string     `yaml:"id"`
	Hosts     []string   `yaml:"hosts"` // exact or "*.suffix"; port stripped, case-insensitive
	Providers []Provider `yaml:"providers"`
	// Requirements are named authorization requirements (see Requirement).
	Requirements map[string]Requirement `yaml:"requirements"`
	// Routes pick a requirement by path and method when Envoy's
	// context_extensions name none; the first match wins.
	Routes []Route `yaml:"routes"`
	// DefaultRequirement applies when neither names one; "" is any valid
	// token from any of the tenant's providers.
	DefaultRequirement string `yaml:"default_requirement"`
	// Mode is enforce (default) or shadow: in shadow, a denial is logged,
	// counted and reported as would_deny, but the request is allowed.
	Mode string `yaml:"mode"`
	// SenderSettings in a tenant are its providers' defaults.
	SenderSettings `yaml:",inline"`
}

// Provider is one identity provider of a tenant.
type Provider struct {
	ID     string `yaml:"id"`
	Issuer string `yaml:"issuer"`
	// IssuerTemplate replaces Issuer for a multi-tenant issuer: an https
	// URL with one placeholder, e.g.
	// https://login.microsoftonline.com/{tid}/v2.0. A token's iss matches
	// when the placeholder's value equals the token's claim of the same name
	// and is one of TemplateValues (["*"]: any), see IssuerTemplate.
	IssuerTemplate string   `yaml:"issuer_template"`
	TemplateValues []string `yaml:"template_values"`
	// JWKSURL is the key set's URL. Without it the key set is discovered:
	// from DiscoveryURL when set, else from the issuer's well-known
	// metadata location, which Discovery picks: oidc (default,
	// {issuer}/.well-known/openid-configuration) or oauth (RFC 8414).
	JWKSURL      string   `yaml:"jwks_url"`
	Discovery    string   `yaml:"discovery"`
	DiscoveryURL string   `yaml:"discovery_url"`
	Audiences    []string `yaml:"audiences"`
	Algorithms   []string `yaml:"algorithms"` // default [RS256]; never none or HS*
	// TokenTypes, when set, are the JWS "typ" values the provider's tokens
	// must carry (explicit typing, RFC 8725 §3.11), e.g. [at+jwt] for
	// RFC 9068 access tokens. Compared case-insensitively, with or
	// without "application/" (RFC 7515 §4.1.9). Default: typ not checked.
	TokenTypes  []string       `yaml:"token_types"`
	ClockSkew   *Duration      `yaml:"clock_skew"` // default 60s
	FromHeaders []HeaderSource `yaml:"from_headers"`
	FromCookies []string       `yaml:"from_cookies"`
	FromParams  []string       `yaml:"from_params"`
	// ClaimsToHeaders maps a dotted claim path ("org.id") to a header.
	ClaimsToHeaders map[string]string `yaml:"claims_to_headers"`
	// ForwardToken false removes the token (header, cookie or query
	// parameter, where it was found) from the request sent upstream.
	// Default true.
	ForwardToken *bool `yaml:"forward_token"`
	// PayloadHeader, when set, carries the verified payload upstream as
	// base64url JSON (like Envoy jwt_authn's forward_payload_header).
	PayloadHeader string `yaml:"payload_header"`
	// MetadataClaims names the claims (top-level names) an allow puts in
	// the gRPC answer's dynamic metadata under "claims". Absent (nil):
	// every claim, as before the key existed; [] none, and no "claims".
	MetadataClaims *[]string `yaml:"metadata_claims"`
	CacheSettings  `yaml:",inline"`
	SenderSettings `yaml:",inline"`
}

// HeaderSource names a header that carries the token, and the prefix
// before it (the default is authorization with "Bearer ").
type HeaderSource struct {
	Name        string `yaml:"name"`
	ValuePrefix string `yaml:"value_prefix"`
}
