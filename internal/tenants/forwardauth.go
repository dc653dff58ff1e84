package tenants

import (
	"fmt"
	"net/netip"
	"strings"
)

// ForwardAuth configures the HTTP forward-auth listener (listen.http): the
// gateways whose forwarded headers are believed, and the prefix Envoy's
// http_service puts in front of the original path.
type ForwardAuth struct {
	// TrustedProxies are CIDRs ("10.0.0.0/8") or single addresses of the
	// gateways whose X-Forwarded-* and X-Original-* headers are believed.
	// Loopback is trusted only as listed. Absent: DefaultTrustedProxies;
	// an empty list trusts no peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// PathPrefix is removed from the front of the request path (Envoy
	// http_service's path_prefix). Empty, or starting with "/".
	PathPrefix string `yaml:"path_prefix"`
}

// DefaultTrustedProxies is forward_auth.trusted_proxies when the key is
// absent: a gateway on the same host (nginx beside extauthz), and nothing
// else of loopback. Not 127.0.0.0/8: behind an Istio sidecar every caller,
// the client included, arrives from 127.0.0.6, so trusting all of loopback
// would let any client choose its tenant with X-Forwarded-Host.
var DefaultTrustedProxies = []string{"127.0.0.1/32", "::1/128"}

// Prefixes returns TrustedProxies parsed, a single address as a /32 or
// /128 prefix. It fails on the first invalid entry; Validate reports all.
func (f *ForwardAuth) Prefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(f.TrustedProxies))
	for i, s := range f.TrustedProxies {
		p, err := parseProxy(s)
		if err != nil {
			return nil, fmt.Errorf("forward_auth.trusted_proxies[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseProxy reads a CIDR or a single address. A CIDR with host bits set
// ("10.1.2.3/8") is refused rather than silently widened or narrowed: it is
// more likely a typo than a wish.
func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or fd00::/8", s)
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, m)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: an address with a zone cannot be matched", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// validateForwardAuth checks the forward_auth block.
func (c *Config) validateForwardAuth(v *validator) {
	for i, s := range c.ForwardAuth.TrustedProxies {
		if _, err := parseProxy(s); err != nil {
			v.add(fmt.Sprintf("forward_auth.trusted_proxies[%d]", i), err.Error())
		}
	}
	p := c.ForwardAuth.PathPrefix
	switch {
	case p == "":
	case !strings.HasPrefix(p, "/"):
		v.add("forward_auth.path_prefix", fmt.Sprintf("%q must start with /", p))
	case strings.ContainsAny(p, "?#") || strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		v.add("forward_auth.path_prefix", fmt.Sprintf("%q must be a path: no query, fragment, spaces or control characters", p))
	}
}
