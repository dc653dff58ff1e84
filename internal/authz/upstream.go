package authz

import (
	"strings"

	"github.com/extauthz/extauthz/internal/tenants"
)

// upstreamToken applies provider p's forward_token and payload_header to
// the allow d of token raw, found in src of r. d's header slices may be
// shared (allow): they are only appended to, which copies them.
func upstreamToken(d *Decision, p *tenants.ProviderRules, src tenants.TokenSource, raw string, r *Request) {
	if p.PayloadHeader != "" {
		// The payload segment is already base64url JSON, which is what
		// Envoy jwt_authn's forward_payload_header sends (RFC 7515 §7.1).
		payload := raw[strings.IndexByte(raw, '.')+1 : strings.LastIndexByte(raw, '.')]
		// claimHeaders leaves it out of the headers to remove.
		d.Headers = withHeader(d.Headers, Header{Name: p.PayloadHeader, Value: payload})
	}
	if p.ForwardToken {
		return
	}
	switch src.Kind {
	case tenants.SourceHeader:
		d.RemoveHeaders = append(d.RemoveHeaders, src.Name)
	case tenants.SourceCookie:
		if rest := withoutCookie(r.Headers["cookie"], src.Name); rest != "" {
			d.Headers = withHeader(d.Headers, Header{Name: "cookie", Value: rest})
		} else {
			d.RemoveHeaders = append(d.RemoveHeaders, "cookie")
		}
	case tenants.SourceParam:
		d.RemoveQueryParams = append(d.RemoveQueryParams, src.Name)
	}
}

// withoutCookie returns a Cookie header without the cookies named name
// (RFC 6265 §4.2.1), the others kept in order.
func withoutCookie(header, name string) string {
	var kept []string
	for header != "" {
		var pair string
		pair, header, _ = strings.Cut(header, ";")
		pair = strings.TrimSpace(pair)
		if k, _, _ := strings.Cut(pair, "="); pair == "" || k == name {
			continue
		}
		kept = append(kept, pair)
	}
	return strings.Join(kept, "; ")
}
