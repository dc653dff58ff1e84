package tenants

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// SourceKind says where a token is carried.
type SourceKind int

// The token carriers.
const (
	SourceHeader SourceKind = iota // a request header, after ValuePrefix
	SourceCookie                   // a cookie of the Cookie header
	SourceParam                    // a query parameter
)

// TokenSource is one place a token may be found.
type TokenSource struct {
	Kind   SourceKind
	Name   string // header name (lowercase), cookie name or query parameter
	Prefix string // headers only: required prefix, compared case-insensitively
}

// ClaimHeader maps one claim to the request header it fills.
type ClaimHeader struct {
	Claim  string // a dotted path (see ClaimPath)
	Header string // lowercase
}

// ProviderRules are one provider's compiled settings. They are read-only.
type ProviderRules struct {
	TenantID string
	ID       string
	// Issuer is the fixed issuer; "" when Template is set.
	Issuer string
	// Template is the compiled issuer_template; nil for a fixed issuer.
	Template   *IssuerTemplate
	JWKSURL    string
	Algorithms []string // as configured
	// TokenTypes are the accepted typ values, normalised (NormalizeType);
	// empty means typ is not checked.
	TokenTypes []string
	Audiences  []string // any-of; empty means "not checked"
	ClockSkew  time.Duration
	// Sources in order: from_headers, then from_cookies, then from_params.
	Sources []TokenSource
	// ForwardToken false: the token is removed from the upstream request.
	ForwardToken bool
	// PayloadHeader receives the verified payload (base64url JSON); "" is off.
	PayloadHeader string
	// ClaimHeaders sorted by header name, for deterministic output.
	ClaimHeaders []ClaimHeader
	// MetadataClaims selects the claims that go to dynamic metadata
	// (metadata_claims; the zero value selects every claim).
	MetadataClaims ClaimNames
	// SenderConstraint, DPoPMaxAge and DPoPAlgorithms are the layered
	// sender-constraint settings (provider over tenant over global).
	SenderConstraint SenderConstraint
	DPoPMaxAge       time.Duration
	DPoPAlgorithms   []string

	algs map[string]struct{}
}

// AllowsAlg reports whether alg is one of the provider's algorithms.
func (p *ProviderRules) AllowsAlg(alg string) bool {
	_, ok := p.algs[alg]
	return ok
}

// AllowsType reports whether a token with header typ (normalised here) may
// be judged by the provider: always when the provider lists no
// token_types.
func (p *ProviderRules) AllowsType(typ string) bool {
	if len(p.TokenTypes) == 0 {
		return true
	}
	n := NormalizeType(typ)
	for _, t := range p.TokenTypes {
		if t == n {
			return true
		}
	}
	return false
}

// NormalizeType returns a JWS typ value as it is compared: lowercase (media
// types are case-insensitive, RFC 2045 §5.1) and without "application/"
// (RFC 7515 §4.1.9 recommends omitting it, so "at+jwt" and
// "application/at+jwt" are the same type).
func NormalizeType(typ string) string {
	typ = strings.ToLower(typ)
	return strings.TrimPrefix(typ, "application/")
}

// Rules are one tenant's compiled settings. They are read-only.
type Rules struct {
	ID        string
	Hosts     []string         // normalised patterns
	Providers []*ProviderRules // config order
	// Sources is the union of the providers' token sources, in provider
	// order: the provider is chosen by the token's iss, so the token must be
	// found before the provider is known.
	Sources []TokenSource
	// ClaimHeaders is the sorted union of every header a provider of the
	// tenant maps a claim (or its payload_header) to.
	ClaimHeaders []string
	// Requirements by name.
	Requirements map[string]*RequirementRules
	// Routes in config order: the first match wins.
	Routes []RouteRule
	// Default is the default_requirement; nil is the baseline (any valid
	// token of the tenant's providers).
	Default *RequirementRules
	// Shadow is mode: shadow.
	Shadow bool

	byID      map[string]*ProviderRules
	byIssuer  map[string]*ProviderRules
	templated []*ProviderRules // providers with an issuer_template
}

// Provider returns the provider with that id.
func (t *Rules) Provider(id string) (*ProviderRules, bool) {
	p, ok := t.byID[id]
	return p, ok
}

// ProviderByIssuer returns the provider whose fixed issuer equals iss
// exactly (RFC 7519 §4.1.1: a case-sensitive string comparison).
func (t *Rules) ProviderByIssuer(iss string) (*ProviderRules, bool) {
	p, ok := t.byIssuer[iss]
	return p, ok
}

// ProviderForToken returns the provider of a token with issuer iss and
// claims: the one whose fixed issuer is iss, else the one whose
// issuer_template has iss's shape (Validate refuses two providers of a
// tenant that could both match one iss). The match is that provider's
// MatchIssuer; a provider is returned with an error when iss has its
// template's shape but fails its other conditions.
func (t *Rules) ProviderForToken(iss string, claims map[string]any) (*ProviderRules, IssuerMatch, error) {
	if p, ok := t.byIssuer[iss]; ok {
		return p, IssuerMatch{}, nil
	}
	for _, p := range t.templated {
		if p.Template.Matches(iss) {
			m, err := p.MatchIssuer(iss, claims)
			return p, m, err
		}
	}
	return nil, IssuerMatch{}, ErrTemplateShape
}

// IssuerMatch is what a token's iss matched: for an issuer_template, the
// placeholder's name (Claim) and value; zero for a fixed issuer.
type IssuerMatch struct {
	Claim string
	Value string
}

// errIssuer is MatchIssuer's refusal of a fixed issuer.
var errIssuer = errors.New("iss differs from the provider's issuer")

// MatchIssuer checks that iss is p's issuer, or matches p's issuer
// template given the token's claims (see IssuerTemplate.Match).
func (p *ProviderRules) MatchIssuer(iss string, claims map[string]any) (IssuerMatch, error) {
	if p.Template == nil {
		if iss != p.Issuer {
			return IssuerMatch{}, errIssuer
		}
		return IssuerMatch{}, nil
	}
	v, err := p.Template.Match(iss, claims)
	if err != nil {
		return IssuerMatch{}, err
	}
	return IssuerMatch{Claim: p.Template.Claim, Value: v}, nil
}

// Set is an immutable, lock-free lookup structure built from a valid Config:
// tenants by id and by host, and their providers. It is safe for concurrent
// use; a reload builds a new Set and swaps it in.
type Set struct {
	tenants      []*Rules
	byID         map[string]*Rules
	exact        map[string]*Rules
	wildcard     map[string]*Rules // key: ".acme.test" for "*.acme.test"
	tenantHeader string
	limits       Limits
	dpopReplay   DPoPReplay
	trustXFCC    bool
	claimHeaders []string // sorted union over every tenant
}

// NewSet compiles c, which must be valid: NewSet re-runs c.Validate(nil) and
// fails rather than build a Set from a config with problems.
func NewSet(c *Config) (*Set, error) {
	if err := c.Validate(nil); err != nil {
		return nil, fmt.Errorf("tenants: invalid config: %w", err)
	}
	s := &Set{
		byID:         make(map[string]*Rules, len(c.Tenants)),
		exact:        map[string]*Rules{},
		wildcard:     map[string]*Rules{},
		tenantHeader: strings.ToLower(c.TenantHeader),
		limits:       c.Limits,
		dpopReplay:   c.DPoPReplay,
		trustXFCC:    c.TrustForwardedClientCert,
	}
	allClaimHeaders := map[string]bool{}
	for _, t := range c.Tenants {
		tr := &Rules{
			ID:       t.ID,
			byID:     map[string]*ProviderRules{},
			byIssuer: map[string]*ProviderRules{},
		}
		for _, h := range t.Hosts {
			n, _ := normalizePattern(h) // valid: checked by Validate
			tr.Hosts = append(tr.Hosts, n)
			if suffix, ok := strings.CutPrefix(n, "*"); ok {
				s.wildcard[suffix] = tr
			} else {
				s.exact[n] = tr
			}
		}
		seenSource := map[TokenSource]bool{}
		claimHeaders := map[string]bool{}
		for _, p := range t.Providers {
			pr := compileProvider(t.ID, p)
			pr.applySender(c.SenderSettings, t.SenderSettings, p.SenderSettings)
			tr.Providers = append(tr.Providers, pr)
			tr.byID[pr.ID] = pr
			if pr.Template != nil {
				tr.templated = append(tr.templated, pr)
			} else {
				tr.byIssuer[pr.Issuer] = pr
			}
			for _, src := range pr.Sources {
				if !seenSource[src] {
					seenSource[src] = true
					tr.Sources = append(tr.Sources, src)
				}
			}
			for _, ch := range pr.ClaimHeaders {
				claimHeaders[ch.Header] = true
			}
			if pr.PayloadHeader != "" {
				claimHeaders[pr.PayloadHeader] = true
			}
		}
		compileRequirements(tr, t)
		for h := range claimHeaders {
			tr.ClaimHeaders = append(tr.ClaimHeaders, h)
			allClaimHeaders[h] = true
		}
		sort.Strings(tr.ClaimHeaders)
		s.tenants = append(s.tenants, tr)
		s.byID[tr.ID] = tr
	}
	for h := range allClaimHeaders {
		s.claimHeaders = append(s.claimHeaders, h)
	}
	sort.Strings(s.claimHeaders)
	return s, nil
}

func compileProvider(tenantID string, p Provider) *ProviderRules {
	pr := &ProviderRules{
		TenantID:   tenantID,
		ID:         p.ID,
		Issuer:     p.Issuer,
		JWKSURL:    p.JWKSURL,
		Algorithms: append([]string(nil), p.Algorithms...),
		Audiences:  append([]string(nil), p.Audiences...),
		algs:       map[string]struct{}{},
	}
	if p.IssuerTemplate != "" {
		pr.Template, _ = ParseIssuerTemplate(p.IssuerTemplate, p.TemplateValues) // valid: checked by Validate
	}
	if len(pr.Algorithms) == 0 {
		pr.Algorithms = []string{DefaultAlgorithm}
	}
	for _, a := range pr.Algorithms {
		pr.algs[a] = struct{}{}
	}
	for _, t := range p.TokenTypes {
		pr.TokenTypes = append(pr.TokenTypes, NormalizeType(t))
	}
	pr.ClockSkew = DefaultClockSkew
	if p.ClockSkew != nil {
		pr.ClockSkew = time.Duration(*p.ClockSkew)
	}
	for _, h := range p.FromHeaders {
		pr.Sources = append(pr.Sources, TokenSource{Kind: SourceHeader, Name: strings.ToLower(h.Name), Prefix: h.ValuePrefix})
	}
	for _, c := range p.FromCookies {
		pr.Sources = append(pr.Sources, TokenSource{Kind: SourceCookie, Name: c})
	}
	for _, q := range p.FromParams {
		pr.Sources = append(pr.Sources, TokenSource{Kind: SourceParam, Name: q})
	}
	pr.ForwardToken = p.ForwardToken == nil || *p.ForwardToken
	pr.PayloadHeader = strings.ToLower(p.PayloadHeader)
	if len(pr.Sources) == 0 {
		pr.Sources = []TokenSource{{Kind: SourceHeader, Name: "authorization", Prefix: "Bearer "}}
	}
	for claim, h := range p.ClaimsToHeaders {
		pr.ClaimHeaders = append(pr.ClaimHeaders, ClaimHeader{Claim: claim, Header: strings.ToLower(h)})
	}
	sort.Slice(pr.ClaimHeaders, func(i, j int) bool { return pr.ClaimHeaders[i].Header < pr.ClaimHeaders[j].Header })
	if p.MetadataClaims != nil {
		pr.MetadataClaims = ClaimNames{names: append([]string{}, *p.MetadataClaims...), only: true}
	}
	return pr
}

// ClaimNames selects claims by their top-level name. The zero value
// selects every claim.
type ClaimNames struct {
	names []string
	only  bool
}

// All reports whether every claim is selected.
func (c ClaimNames) All() bool { return !c.only }

// Names returns the selected names in configuration order (none when All).
func (c ClaimNames) Names() []string { return c.names }

// Equal reports whether c and o select the same claims the same way.
func (c ClaimNames) Equal(o ClaimNames) bool {
	return c.only == o.only && slices.Equal(c.names, o.names)
}

// Tenants returns every tenant in config order.
func (s *Set) Tenants() []*Rules { return s.tenants }

// Tenant returns the tenant with that id (exact, case-sensitive).
func (s *Set) Tenant(id string) (*Rules, bool) {
	t, ok := s.byID[id]
	return t, ok
}

// TenantHeader returns the configured tenant header name (lowercase), or ""
// when selection by header is off.
func (s *Set) TenantHeader() string { return s.tenantHeader }

// ClaimHeaders returns the sorted union of every header any tenant's
// claims_to_headers names. An allow removes each of them that its token did
// not fill: a header one tenant's upstream trusts may be forged by a client
// of another tenant that shares the upstream or its gateway.
func (s *Set) ClaimHeaders() []string { return s.claimHeaders }

// Limits returns the request limits.
func (s *Set) Limits() Limits { return s.limits }

// DPoPReplay returns the replay cache settings.
func (s *Set) DPoPReplay() DPoPReplay { return s.dpopReplay }

// TrustForwardedClientCert reports whether x-forwarded-client-cert may
// stand for the client certificate.
func (s *Set) TrustForwardedClientCert() bool { return s.trustXFCC }

// TenantForHost returns the tenant whose host pattern matches host most
// specifically. host is normalised first (see NormalizeHost). An exact
// pattern beats any wildcard; among wildcards the longest suffix wins.
// "*.acme.test" matches every name below acme.test at any depth
// ("x.acme.test", "a.b.acme.test"), like Envoy's virtual_hosts domains, but
// never "acme.test" itself.
func (s *Set) TenantForHost(host string) (*Rules, bool) {
	h := NormalizeHost(host)
	if h == "" {
		return nil, false
	}
	if t, ok := s.exact[h]; ok {
		return t, true
	}
	if len(s.wildcard) == 0 {
		return nil, false
	}
	// Walk suffixes from the longest (".b.acme.test" for "a.b.acme.test")
	// to the shortest; the first hit is the most specific. The suffix must
	// leave a non-empty label in front of it.
	for i := 1; i < len(h); i++ {
		if h[i] == '.' {
			if t, ok := s.wildcard[h[i:]]; ok {
				return t, true
			}
		}
	}
	return nil, false
}
