package tenants

import (
	"fmt"
	"strings"
)

// validatePayloadHeader checks a provider's payload_header by the rules of
// a claim header: a valid name, not reserved, not a token source of any
// provider, not the tenant_header and not one of the provider's claim
// headers.
func (c *Config) validatePayloadHeader(v *validator, pp string, p *Provider, tokenHeaders map[string]string) {
	h := p.PayloadHeader
	if h == "" {
		return
	}
	path := pp + ".payload_header"
	if err := checkHeaderName(h); err != nil {
		v.add(path, err.Error())
		return
	}
	lh := strings.ToLower(h)
	switch {
	case reservedHeaders[lh]:
		v.add(path, fmt.Sprintf("header %q is reserved (hop-by-hop, framing, caching, forwarding or credentials)", h))
	case strings.HasPrefix(lh, "x-envoy-"):
		v.add(path, fmt.Sprintf("header %q is reserved for Envoy", h))
	case hasReservedPrefix(lh):
		v.add(path, fmt.Sprintf("header %q is reserved: proxies use it to describe the original request", h))
	case tokenHeaders[lh] != "":
		v.add(path, fmt.Sprintf("header %q carries a token at %s", h, tokenHeaders[lh]))
	case lh == strings.ToLower(c.TenantHeader):
		v.add(path, fmt.Sprintf("header %q is the tenant_header", h))
	}
	for claim, ch := range p.ClaimsToHeaders {
		if strings.EqualFold(ch, h) {
			v.add(path, fmt.Sprintf("header %q is already set from claim %q", h, claim))
		}
	}
}
