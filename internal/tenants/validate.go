package tenants

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/jwkscache"
)

// PathError is one configuration problem, located by its YAML path
// ("tenants[1].providers[0].jwks_url").
type PathError struct {
	Path   string
	Reason string
}

// Error implements error as "path: reason".
func (e *PathError) Error() string { return e.Path + ": " + e.Reason }

// RegistrationCheck validates one provider's layered cache registration and
// returns nil or errors.Join of *jwkscache.FieldError. The service passes
// (*jwkscache.Registry).Validate of the registry it will register into.
type RegistrationCheck func(jwkscache.Registration) error

// reservedHeaders may not carry claims: hop-by-hop headers (RFC 9110
// §7.6.1), headers that frame, route or cache the request, what proxies
// say about the client and the original request (RFC 7239 Forwarded,
// X-Real-IP), and the credentials themselves. reservedPrefixes extends it
// to whole families (X-Forwarded-Host, -For, -Proto, -Uri,
// -Client-Cert, ...; X-Original-URI, -Method, ...; Envoy's own).
var reservedHeaders = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-authenticate": true,
	"proxy-authorization": true, "proxy-connection": true, "te": true, "trailer": true,
	"trailers": true, "transfer-encoding": true, "upgrade": true,
	"host": true, "authorization": true, "content-length": true, "content-type": true,
	"content-encoding": true, "cookie": true, "set-cookie": true, "expect": true,
	"x-request-id": true, "www-authenticate": true, "cache-control": true,
	"forwarded": true, "x-real-ip": true,
	"dpop": true, // the DPoP proof (RFC 9449 §4.1): a credential
}

var reservedPrefixes = []string{"x-forwarded-", "x-original-", "x-envoy-"}

// Validate checks every value and reports every problem, each a *PathError
// naming its YAML path, errors.Join-ed (nil when the config is valid).
// check validates each provider's layered cache registration (see
// Registration); pass (*jwkscache.Registry).Validate. A nil check skips the
// cache settings. Cache-setting problems are reported at the provider's path
// when the provider sets the field, and once at "jwks." when only the jwks
// block does.
func (c *Config) Validate(check RegistrationCheck) error {
	v := &validator{}
	c.validateGlobal(v)
	validateSender(v, "", c.SenderSettings)
	c.validateDPoPReplay(v)
	if len(c.Tenants) == 0 {
		v.add("tenants", "at least one tenant is required")
	}
	tenantIDs := map[string]int{}
	hostOwner := map[string]string{} // normalised host pattern → path of first use
	tokenHeaders := c.tokenHeaders()
	for i := range c.Tenants {
		t := &c.Tenants[i]
		tp := fmt.Sprintf("tenants[%d]", i)
		switch err := jwkscache.CheckTenantID(t.ID); {
		case err != nil:
			v.add(tp+".id", err.Error())
		default:
			if j, dup := tenantIDs[t.ID]; dup {
				v.add(tp+".id", fmt.Sprintf("duplicate tenant id %q (also tenants[%d])", t.ID, j))
			} else {
				tenantIDs[t.ID] = i
			}
		}
		for j, h := range t.Hosts {
			hp := fmt.Sprintf("%s.hosts[%d]", tp, j)
			n, err := normalizePattern(h)
			if err != nil {
				v.add(hp, err.Error())
				continue
			}
			if first, dup := hostOwner[n]; dup {
				v.add(hp, fmt.Sprintf("host %q already used at %s", n, first))
				continue
			}
			hostOwner[n] = hp
		}
		validateSender(v, tp+".", t.SenderSettings)
		if len(t.Providers) == 0 {
			v.add(tp+".providers", "at least one provider is required")
		}
		providerIDs := map[string]int{}
		var issuers []issuerUse
		for j := range t.Providers {
			p := &t.Providers[j]
			pp := fmt.Sprintf("%s.providers[%d]", tp, j)
			if err := jwkscache.CheckProviderID(p.ID); err != nil {
				v.add(pp+".id", err.Error())
			} else if k, dup := providerIDs[p.ID]; dup {
				v.add(pp+".id", fmt.Sprintf("duplicate provider id %q (also providers[%d])", p.ID, k))
			} else {
				providerIDs[p.ID] = j
			}
			if u, ok := validateIssuer(v, pp, p); ok {
				u.provider = j
				if k, dup := overlapping(issuers, u); dup && u.template == nil && issuers[k].template == nil {
					v.add(u.path, fmt.Sprintf("issuer %q already used by providers[%d] of this tenant", p.Issuer, issuers[k].provider))
				} else if dup {
					v.add(u.path, fmt.Sprintf("%s could match the same iss as providers[%d] of this tenant", u, issuers[k].provider))
				} else {
					issuers = append(issuers, u)
				}
			}
			validateDiscovery(v, pp, p)
			c.validateProvider(v, pp, p, tokenHeaders)
			c.validatePayloadHeader(v, pp, p, tokenHeaders)
			validateSender(v, pp+".", p.SenderSettings)
			c.validateAllowlist(v, pp, p)
			if check != nil && (p.JWKSURL != "" || p.DiscoveryURL != "" || p.Issuer != "") {
				c.validateCache(v, pp, t.ID, p, check)
			}
		}
		t.validateRequirements(v, tp)
	}
	c.validateSharedIssuers(v)
	return v.err()
}

// validateSharedIssuers refuses an issuer used by two tenants unless both
// providers set audiences with none in common. Otherwise a token the
// issuer mints for tenant A verifies on tenant B too (same iss, same keys)
// and the tenants can see each other.
//
// Plain issuers are indexed by issuer and, within one issuer, by audience,
// so a fleet of tenants on one shared issuer (one Entra or Auth0 host, with
// an audience each) is checked in time linear in the number of providers:
// only providers that really could conflict are compared. Templates are few
// and compared with every earlier use.
func (c *Config) validateSharedIssuers(v *validator) {
	uses := c.sharedUses()
	byIssuer := map[string]*issuerGroup{}
	var templates []int // indexes into uses
	for k, u := range uses {
		for _, e := range candidates(byIssuer, templates, u) {
			if prev := uses[e]; prev.tenant != u.tenant && prev.overlaps(u.issuerUse) {
				reportShared(v, prev, u) // the same tenant is reported above
			}
		}
		if u.template != nil {
			templates = append(templates, k)
			continue
		}
		g := byIssuer[u.issuer]
		if g == nil {
			g = &issuerGroup{byAudience: map[string][]int{}}
			byIssuer[u.issuer] = g
		}
		g.all = append(g.all, k)
		if len(u.auds) == 0 {
			g.noAudience = append(g.noAudience, k)
		}
		for _, a := range u.auds {
			g.byAudience[a] = append(g.byAudience[a], k)
		}
	}
}

// sharedUses lists every provider's issuer or valid issuer_template, in
// configuration order.
func (c *Config) sharedUses() []sharedUse {
	var uses []sharedUse
	for i, t := range c.Tenants {
		for j, p := range t.Providers {
			iu, ok := issuerOf(&p)
			if !ok {
				continue
			}
			pp := fmt.Sprintf("tenants[%d].providers[%d]", i, j)
			iu.path = pp + "." + iu.key
			uses = append(uses, sharedUse{issuerUse: iu, tenant: i, prov: pp, auds: p.Audiences})
		}
	}
	return uses
}

// sharedUse is one provider's issuer, as validateSharedIssuers sees it.
type sharedUse struct {
	issuerUse
	tenant int
	prov   string
	auds   []string
}

// issuerGroup indexes the earlier uses of one plain issuer.
type issuerGroup struct {
	all        []int
	noAudience []int
	byAudience map[string][]int
}

// candidates returns, in order, the indexes of the earlier uses that could
// conflict with u: a superset of those that overlap u's issuer and either
// lack audiences or share one with u.
func candidates(byIssuer map[string]*issuerGroup, templates []int, u sharedUse) []int {
	seen := map[int]bool{}
	var out []int
	add := func(ks ...int) {
		for _, k := range ks {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	addGroup := func(g *issuerGroup) {
		if len(u.auds) == 0 {
			add(g.all...)
			return
		}
		add(g.noAudience...)
		for _, a := range u.auds {
			add(g.byAudience[a]...)
		}
	}
	add(templates...)
	if u.template == nil {
		if g := byIssuer[u.issuer]; g != nil {
			addGroup(g)
		}
	} else {
		for iss, g := range byIssuer {
			if u.template.Matches(iss) {
				addGroup(g)
			}
		}
	}
	slices.Sort(out)
	return out
}

// reportShared reports u, whose issuer could match the same iss as the
// earlier prev of another tenant, unless their audiences keep them apart.
func reportShared(v *validator, prev, u sharedUse) {
	shared := fmt.Sprintf("%s could match the same iss as %s", u, prev.prov)
	sameAs := fmt.Sprintf("whose issuer could be the same (%s)", u)
	if u.template == nil && prev.template == nil {
		shared = fmt.Sprintf("issuer %q is also used by %s", u.issuer, prev.prov)
		sameAs = fmt.Sprintf("which has the same issuer %q", u.issuer)
	}
	switch {
	case len(prev.auds) == 0 || len(u.auds) == 0:
		v.add(u.path, shared+": tenants that share an issuer must both set audiences, with none in common, or a token for one passes on the other")
	default:
		if a, ok := common(prev.auds, u.auds); ok {
			v.add(u.prov+".audiences", fmt.Sprintf("audience %q is also accepted by %s, %s: a token for one tenant would pass on the other", a, prev.prov, sameAs))
		}
	}
}

// issuerUse is a provider's issuer or compiled issuer_template.
type issuerUse struct {
	key      string // issuer or issuer_template
	path     string
	provider int
	issuer   string
	template *IssuerTemplate
}

func (u issuerUse) String() string {
	if u.template != nil {
		return fmt.Sprintf("issuer_template %q", u.template.Raw)
	}
	return fmt.Sprintf("issuer %q", u.issuer)
}

// overlaps reports whether one token's iss could match both.
func (u issuerUse) overlaps(o issuerUse) bool {
	switch {
	case u.template != nil && o.template != nil:
		return u.template.Overlaps(o.template)
	case u.template != nil:
		return u.template.Matches(o.issuer)
	case o.template != nil:
		return o.template.Matches(u.issuer)
	}
	return u.issuer == o.issuer
}

// overlapping returns the index in uses of one that overlaps u.
func overlapping(uses []issuerUse, u issuerUse) (int, bool) {
	for k, prev := range uses {
		if prev.overlaps(u) {
			return k, true
		}
	}
	return 0, false
}

// issuerOf returns p's issuer or valid issuer_template.
func issuerOf(p *Provider) (issuerUse, bool) {
	switch {
	case p.Issuer != "" && p.IssuerTemplate == "":
		return issuerUse{key: "issuer", issuer: p.Issuer}, true
	case p.Issuer == "" && p.IssuerTemplate != "":
		t, err := ParseIssuerTemplate(p.IssuerTemplate, p.TemplateValues)
		if err != nil {
			return issuerUse{}, false
		}
		return issuerUse{key: "issuer_template", template: t}, true
	}
	return issuerUse{}, false
}

// The discovery values.
const (
	DiscoveryOIDC  = "oidc"  // OpenID Connect Discovery 1.0 §4
	DiscoveryOAuth = "oauth" // RFC 8414 §3
)

// validateDiscovery checks where p's key set comes from: jwks_url, or
// discovery (from discovery_url, or the issuer's well-known location).
func validateDiscovery(v *validator, pp string, p *Provider) {
	switch p.Discovery {
	case "", DiscoveryOIDC, DiscoveryOAuth:
	default:
		v.add(pp+".discovery", fmt.Sprintf("%q must be oidc or oauth", p.Discovery))
	}
	switch {
	case p.JWKSURL != "" && (p.DiscoveryURL != "" || p.Discovery != ""):
		v.add(pp+".jwks_url", "set jwks_url, or discovery/discovery_url, not both")
	case p.JWKSURL != "" || p.DiscoveryURL != "":
	case p.IssuerTemplate != "":
		v.add(pp+".jwks_url", "required with issuer_template (or discovery_url): a template is no URL to discover from")
	case p.Issuer != "":
		if _, err := jwkscache.DiscoveryURL(p.Issuer, p.Discovery == DiscoveryOAuth); err != nil {
			v.add(pp+".issuer", err.Error()+": it is where the metadata is discovered (or set jwks_url)")
		}
	}
}

// validateIssuer checks that p has exactly one of issuer and
// issuer_template, and a valid one; it returns it.
func validateIssuer(v *validator, pp string, p *Provider) (issuerUse, bool) {
	switch {
	case p.Issuer != "" && p.IssuerTemplate != "":
		v.add(pp+".issuer_template", "set issuer or issuer_template, not both")
		return issuerUse{}, false
	case p.IssuerTemplate != "":
		if _, err := ParseIssuerTemplate(p.IssuerTemplate, p.TemplateValues); err != nil {
			if errors.Is(err, ErrTemplateValues) {
				v.add(pp+".template_values", strings.TrimPrefix(err.Error(), "template_values: "))
			} else {
				v.add(pp+".issuer_template", err.Error())
			}
			return issuerUse{}, false
		}
	case p.Issuer == "":
		v.add(pp+".issuer", "required (or issuer_template)")
		return issuerUse{}, false
	case len(p.TemplateValues) > 0:
		v.add(pp+".template_values", "only with issuer_template")
	}
	u, ok := issuerOf(p)
	u.path = pp + "." + u.key
	return u, ok
}

// common returns an element of both a and b.
func common(a, b []string) (string, bool) {
	for _, x := range a {
		if slices.Contains(b, x) {
			return x, true
		}
	}
	return "", false
}

func (c *Config) validateGlobal(v *validator) {
	if err := checkAddr(c.Listen.GRPC, false); err != nil {
		v.add("listen.grpc", err.Error())
	}
	if err := checkAddr(c.Listen.Admin, true); err != nil {
		v.add("listen.admin", err.Error())
	} else {
		c.validateAdmin(v)
	}
	c.validateForwardAuth(v)
	c.validateObserve(v)
	if err := checkAddr(c.Listen.HTTP, true); err != nil {
		v.add("listen.http", err.Error())
	}
	if c.TenantHeader != "" {
		if err := checkHeaderName(c.TenantHeader); err != nil {
			v.add("tenant_header", err.Error())
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add("log.level", fmt.Sprintf("%q must be one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		v.add("log.format", fmt.Sprintf("%q must be json or text", c.Log.Format))
	}
	if n := c.Limits.MaxTokenBytes; n < 256 || n > 1<<20 {
		v.add("limits.max_token_bytes", fmt.Sprintf("%d must be between 256 and 1048576", n))
	}
	if n := c.Limits.MaxHeaderValueBytes; n < 16 || n > 64<<10 {
		v.add("limits.max_header_value_bytes", fmt.Sprintf("%d must be between 16 and 65536", n))
	}
	if n, tok := c.Limits.MaxRequestHeaderBytes, c.Limits.MaxTokenBytes; n < 4<<10 || n > 2<<20 {
		v.add("limits.max_request_header_bytes", fmt.Sprintf("%d must be between 4096 and 2097152", n))
	} else if n < tok+1024 {
		v.add("limits.max_request_header_bytes", fmt.Sprintf("%d must leave room for limits.max_token_bytes (%d) and 1024 more bytes of request", n, tok))
	}
	if n := c.Limits.MaxConnections; n < 1 || n > 1<<16 {
		v.add("limits.max_connections", fmt.Sprintf("%d must be between 1 and 65536", n))
	}
	if n := c.Limits.MaxConcurrentStreams; n < 1 || n > 1024 {
		v.add("limits.max_concurrent_streams", fmt.Sprintf("%d must be between 1 and 1024", n))
	}
	if n := c.Limits.TokenCacheEntries; n != nil && (*n < 0 || *n > 1<<20) {
		v.add("limits.token_cache_entries", fmt.Sprintf("%d must be between 0 (off) and 1048576", *n))
	}
	if f := c.Readiness.MinAvailableShare; !(f >= 0 && f <= 1) {
		v.add("readiness.min_available_share", fmt.Sprintf("%v must be in [0, 1] (0: off)", f))
	}
	if d := time.Duration(c.Limits.ColdWait); d < 0 || d > time.Minute {
		v.add("limits.cold_wait", fmt.Sprintf("%s must be between 0s and 1m", d))
	}
	if c.JWKS.MaxConcurrentFetches < 1 {
		v.add("jwks.max_concurrent_fetches", "must be at least 1")
	}
	if c.JWKS.CAFile != "" {
		if _, err := os.Stat(c.JWKS.CAFile); err != nil {
			v.add("jwks.ca_file", fmt.Sprintf("cannot read %q: %v", c.JWKS.CAFile, errors.Unwrap(err)))
		}
	}
	if r := c.JWKS.Redis; r != nil {
		key := "jwks.redis.url"
		if r.URLFile != "" {
			key = "jwks.redis.url_file"
		}
		raw, readErr := r.ResolveURL()
		u, err := url.Parse(raw)
		switch {
		case r.URL != "" && r.URLFile != "":
			v.add("jwks.redis.url", "set url or url_file, not both")
		case r.URL == "" && r.URLFile == "":
			v.add("jwks.redis.url", "required when redis is set (or url_file)")
		case readErr != nil:
			v.add(key, fmt.Sprintf("cannot read %q: %v", r.URLFile, errors.Unwrap(readErr)))
		case err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "":
			// Never quote the URL: it may carry the password.
			v.add(key, "must be a redis:// or rediss:// URL with a host")
		}
		if r.HMACKeyFile == "" {
			v.add("jwks.redis.hmac_key_file", "required when redis is set: without it anyone who can write to Redis decides which keys every replica trusts")
		} else if _, err := redisstore.ReadHMACKeys(r.HMACKeyFile); err != nil {
			v.add("jwks.redis.hmac_key_file", err.Error())
		}
	}
}

// validateAdmin refuses an admin API that anyone on the network could use:
// without admin.token_file the listener must be on loopback.
func (c *Config) validateAdmin(v *validator) {
	a := c.Admin
	if d := time.Duration(a.RefreshMinInterval); d < time.Second || d > time.Hour {
		v.add("admin.refresh_min_interval", fmt.Sprintf("%s must be between 1s and 1h", d))
	}
	if a.TokenFile != "" {
		if _, err := os.Stat(a.TokenFile); err != nil {
			v.add("admin.token_file", fmt.Sprintf("cannot read %q: %v", a.TokenFile, errors.Unwrap(err)))
		}
		return
	}
	if c.Listen.Admin != "" && !IsLoopback(c.Listen.Admin) {
		v.add("listen.admin", fmt.Sprintf("%q is not a loopback address: set admin.token_file, or bind to 127.0.0.1", c.Listen.Admin))
	}
}

// IsLoopback reports whether the listen address addr (host:port) can only
// be reached from this host: localhost or a loopback IP. An empty host
// listens on every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hasReservedPrefix(lh string) bool {
	for _, pre := range reservedPrefixes {
		if strings.HasPrefix(lh, pre) {
			return true
		}
	}
	return false
}

// tokenHeaders maps every header any provider reads a token from
// (lowercase) to the path of its first use: a claim header of that name
// would let one provider's claim become another provider's credential.
func (c *Config) tokenHeaders() map[string]string {
	m := map[string]string{}
	for i, t := range c.Tenants {
		for j, p := range t.Providers {
			for k, h := range p.FromHeaders {
				lh := strings.ToLower(h.Name)
				if _, dup := m[lh]; !dup {
					m[lh] = fmt.Sprintf("tenants[%d].providers[%d].from_headers[%d]", i, j, k)
				}
			}
		}
	}
	return m
}

func (c *Config) validateProvider(v *validator, pp string, p *Provider, tokenHeaders map[string]string) {
	for k, a := range p.Audiences {
		if a == "" {
			v.add(fmt.Sprintf("%s.audiences[%d]", pp, k), "must not be empty")
		}
	}
	for k, a := range p.Algorithms {
		ap := fmt.Sprintf("%s.algorithms[%d]", pp, k)
		switch {
		case jwkscache.SupportedAlgorithm(a):
		case strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS"):
			// RFC 8725 §3.1/§3.2: no "none", and no shared secrets for keys
			// that come from a public JWKS.
			v.add(ap, fmt.Sprintf("%q is never allowed for a JWKS-backed provider", a))
		default:
			v.add(ap, fmt.Sprintf("unknown algorithm %q (want RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA)", a))
		}
	}
	for k, typ := range p.TokenTypes {
		if !isMediaType(typ) {
			v.add(fmt.Sprintf("%s.token_types[%d]", pp, k), fmt.Sprintf("%q is not a media type such as at+jwt or application/at+jwt (RFC 7515 §4.1.9)", typ))
		}
	}
	if p.ClockSkew != nil {
		if d := time.Duration(*p.ClockSkew); d < 0 || d > 10*time.Minute {
			v.add(pp+".clock_skew", fmt.Sprintf("%s must be between 0s and 10m", d))
		}
	}
	sourceHeaders := map[string]bool{}
	for k, h := range p.FromHeaders {
		hp := fmt.Sprintf("%s.from_headers[%d]", pp, k)
		if err := checkHeaderName(h.Name); err != nil {
			v.add(hp+".name", err.Error())
		} else {
			sourceHeaders[strings.ToLower(h.Name)] = true
		}
		for _, r := range h.ValuePrefix {
			if r < 0x20 || r > 0x7e {
				v.add(hp+".value_prefix", "must be printable ASCII")
				break
			}
		}
	}
	for k, name := range p.FromCookies {
		if !isToken(name) {
			v.add(fmt.Sprintf("%s.from_cookies[%d]", pp, k), fmt.Sprintf("%q is not a valid cookie name", name))
		}
	}
	for k, name := range p.FromParams {
		if name == "" || strings.ContainsAny(name, "&=#?; \t\r\n") {
			v.add(fmt.Sprintf("%s.from_params[%d]", pp, k), fmt.Sprintf("%q is not a valid query parameter name", name))
		}
	}
	if p.MetadataClaims != nil {
		seen := map[string]bool{}
		for k, name := range *p.MetadataClaims {
			mp := fmt.Sprintf("%s.metadata_claims[%d]", pp, k)
			switch {
			case name == "":
				v.add(mp, "must not be empty")
			case seen[name]:
				v.add(mp, fmt.Sprintf("claim %q is listed twice", name))
			}
			seen[name] = true
		}
	}
	claims := make([]string, 0, len(p.ClaimsToHeaders))
	for claim := range p.ClaimsToHeaders {
		claims = append(claims, claim)
	}
	sort.Strings(claims)
	headerClaim := map[string]string{}
	for _, claim := range claims {
		h := p.ClaimsToHeaders[claim]
		cp := fmt.Sprintf("%s.claims_to_headers.%s", pp, claim)
		if err := checkClaimPath(claim); err != nil {
			v.add(cp, err.Error())
			continue
		}
		if err := checkHeaderName(h); err != nil {
			v.add(cp, err.Error())
			continue
		}
		if reason := c.upstreamHeaderProblem(h, sourceHeaders, tokenHeaders); reason != "" {
			v.add(cp, reason)
			continue
		}
		lh := strings.ToLower(h)
		if other, dup := headerClaim[lh]; dup {
			v.add(cp, fmt.Sprintf("header %q already set from claim %q", h, other))
		}
		headerClaim[lh] = claim
	}
}

// upstreamHeaderProblem explains why the valid header name h cannot carry
// a value from a token to the upstream (a claim header or payload_header),
// or returns "": it is reserved, it carries a token (own: the provider's
// own from_headers, named as such), or it is the tenant_header.
func (c *Config) upstreamHeaderProblem(h string, own map[string]bool, tokenHeaders map[string]string) string {
	lh := strings.ToLower(h)
	switch {
	case reservedHeaders[lh]:
		return fmt.Sprintf("header %q is reserved (hop-by-hop, framing, caching, forwarding or credentials)", h)
	case strings.HasPrefix(lh, "x-envoy-"):
		return fmt.Sprintf("header %q is reserved for Envoy", h)
	case hasReservedPrefix(lh):
		return fmt.Sprintf("header %q is reserved: proxies use it to describe the original request", h)
	case own[lh]:
		return fmt.Sprintf("header %q carries the token (from_headers)", h)
	case tokenHeaders[lh] != "":
		return fmt.Sprintf("header %q carries a token at %s", h, tokenHeaders[lh])
	case lh == strings.ToLower(c.TenantHeader):
		return fmt.Sprintf("header %q is the tenant_header", h)
	}
	return ""
}

// validateAllowlist keeps a provider inside jwks.allowed_domains. The jwks
// block is registry-wide: its allowed_domains is the cache's global domain
// allowlist (jwkscache.Options.AllowedDomains), which every registration's host must be inside, like
// jwks.require_https, which a provider cannot turn off. A provider's own
// list replaces the block's in its registration (tenants layers the block
// into each), so it may narrow the global list but never widen or lift it.
func (c *Config) validateAllowlist(v *validator, pp string, p *Provider) {
	global := c.JWKS.AllowedDomains
	if len(global) == 0 || p.AllowedDomains == nil {
		return
	}
	if len(p.AllowedDomains) == 0 {
		v.add(pp+".allowed_domains", "must not be empty while jwks.allowed_domains is set (it would lift the global allowlist)")
		return
	}
	for k, d := range p.AllowedDomains {
		// A domain inside the global list is one the global list allows
		// as a host: the same rule the cache applies to the JWKS host.
		if !jwkscache.HostAllowed(d, global) {
			v.add(fmt.Sprintf("%s.allowed_domains[%d]", pp, k), fmt.Sprintf("%q is not inside jwks.allowed_domains", d))
		}
	}
}

// validateCache runs check on the provider's layered registration and
// attributes each problem to the block that set the value.
func (c *Config) validateCache(v *validator, pp, tenantID string, p *Provider, check RegistrationCheck) {
	err := check(c.Registration(tenantID, *p))
	for _, e := range Problems(err) {
		var fe *jwkscache.FieldError
		if !errors.As(e, &fe) {
			v.add(pp, e.Error())
			continue
		}
		// A list element's problem ("pinned_spki[1]") belongs to the block
		// that set the list.
		field, _, _ := strings.Cut(fe.Field, "[")
		switch {
		case fe.Field == "tenant_id" || fe.Field == "provider_id":
			// reported above with the config's own rules
		case !p.CacheSettings.sets(field) && c.JWKS.CacheSettings.sets(field):
			v.addOnce("jwks."+fe.Field, fe.Reason)
		default:
			v.add(pp+"."+fe.Field, fe.Reason)
		}
	}
}

// Problems returns the individual problems in an error Validate returned:
// the leaves of its errors.Join tree, in order (nil for nil).
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}

type validator struct {
	errs []error
	seen map[string]bool
}

func (v *validator) add(path, reason string) {
	v.errs = append(v.errs, &PathError{Path: path, Reason: reason})
}

func (v *validator) addOnce(path, reason string) {
	key := path + "\x00" + reason
	if v.seen[key] {
		return
	}
	if v.seen == nil {
		v.seen = map[string]bool{}
	}
	v.seen[key] = true
	v.add(path, reason)
}

func (v *validator) err() error { return errors.Join(v.errs...) }

func checkAddr(addr string, optional bool) error {
	if addr == "" {
		if optional {
			return nil
		}
		return errors.New("required")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	return nil
}

// checkHeaderName accepts an HTTP field name (RFC 9110 §5.1: a token).
// Pseudo-headers (":authority") are not tokens and so are refused.
func checkHeaderName(name string) error {
	if !isToken(name) {
		return fmt.Errorf("%q is not a valid header name", name)
	}
	return nil
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isMediaType accepts a JWS typ value: an RFC 9110 §8.3.1 type "/" subtype
// of tokens, or a subtype alone (RFC 7515 §4.1.9 lets "application/" be
// omitted). Parameters are not accepted: no token type uses them.
func isMediaType(s string) bool {
	typ, sub, found := strings.Cut(s, "/")
	if !found {
		return isToken(s)
	}
	return isToken(typ) && isToken(sub)
}
