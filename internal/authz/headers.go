package authz

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/extauthz/extauthz/internal/tenants"
)

// claimHeaders returns the headers to set from claims, and the claim
// headers of every tenant (all) left unset, to remove; both sorted by name.
// p's payload_header is never removed: upstreamToken sets it.
func claimHeaders(all []string, p *tenants.ProviderRules, claims map[string]any, maxLen int) (set []Header, remove []string) {
	if len(p.ClaimHeaders) > 0 {
		set = make([]Header, 0, len(p.ClaimHeaders))
	}
	for _, ch := range p.ClaimHeaders {
		v, ok := tenants.ClaimPath(ch.Claim).Lookup(claims)
		if !ok {
			continue
		}
		if s := sanitize(claimString(v), maxLen); s != "" {
			set = append(set, Header{Name: ch.Header, Value: s})
		}
	}
	for _, h := range all {
		if !hasHeader(set, h) && h != p.PayloadHeader {
			remove = append(remove, h)
		}
	}
	return set, remove
}

func hasHeader(hs []Header, name string) bool {
	for _, h := range hs {
		if h.Name == name {
			return true
		}
	}
	return false
}

// claimString renders a claim value for a header (see the package doc).
func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok || strings.Contains(s, ",") {
				return jsonString(v)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ",")
	default:
		return jsonString(v)
	}
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// sanitize removes control characters (C0, DEL, and invalid UTF-8), which
// HTTP field values may not carry (RFC 9110 §5.5), trims spaces, and cuts
// the value to maxLen bytes at a UTF-8 boundary.
func sanitize(s string, maxLen int) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if !clean {
		var b strings.Builder
		for _, r := range s {
			if r < 0x20 || r == 0x7f || r == utf8.RuneError || (r >= 0x80 && r < 0xa0) {
				continue
			}
			b.WriteRune(r)
		}
		s = b.String()
	}
	s = strings.TrimSpace(s)
	if maxLen > 0 && len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = strings.TrimSpace(s[:cut])
	}
	return s
}
