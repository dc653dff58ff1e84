package tenants

import (
	"fmt"
	"strings"
)

// validatePayloadHeader checks a provider's payload_header by the rules of
// a claim header: a valid name, not reserved, not a token source, not the
// tenant_header and not one of the provider's claim headers.
func (c *Config) validatePayloadHeader(v *validator, pp string, p *Provider) {
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
		v.add(path, fmt.Sprintf("header %q is reserved (hop-by-hop, framing or credentials)", h))
	case strings.HasPrefix(lh, "x-envoy-"):
		v.add(path, fmt.Sprintf("header %q is reserved for Envoy", h))
	case lh == strings.ToLower(c.TenantHeader):
		v.add(path, fmt.Sprintf("header %q is the tenant_header", h))
	}
	for _, s := range p.FromHeaders {
		if strings.EqualFold(s.Name, h) {
			v.add(path, fmt.Sprintf("header %q carries the token (from_headers)", h))
		}
	}
	for claim, ch := range p.ClaimsToHeaders {
		if strings.EqualFold(ch, h) {
			v.add(path, fmt.Sprintf("header %q is already set from claim %q", h, claim))
		}
	}
}
