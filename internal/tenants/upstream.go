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
	if reason := c.upstreamHeaderProblem(h, nil, tokenHeaders); reason != "" {
		v.add(path, reason)
	}
	for claim, ch := range p.ClaimsToHeaders {
		if strings.EqualFold(ch, h) {
			v.add(path, fmt.Sprintf("header %q is already set from claim %q", h, claim))
		}
	}
}
