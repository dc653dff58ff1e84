package authz

import (
	"net/url"
	"strings"

	"github.com/extauthz/extauthz/internal/tenants"
)

// extractToken returns the token of the first source that holds a
// non-empty one, or "".
func extractToken(sources []tenants.TokenSource, r *Request) string {
	tok, _ := findToken(sources, r)
	return tok
}

// findToken returns the token of the first source that holds a non-empty
// one, and that source.
func findToken(sources []tenants.TokenSource, r *Request) (string, tenants.TokenSource) {
	for _, src := range sources {
		var tok string
		switch src.Kind {
		case tenants.SourceHeader:
			tok = fromHeader(r.Headers[src.Name], src.Prefix)
			if tok == "" && isAuthorizationBearer(src) {
				// RFC 9449 §7.1: a DPoP-bound token comes with the DPoP
				// scheme; checkSender tells the two apart.
				tok = fromHeader(r.Headers[src.Name], dpopScheme)
			}
		case tenants.SourceCookie:
			tok = fromCookie(r.Headers["cookie"], src.Name)
		case tenants.SourceParam:
			tok = fromQuery(r.Path, src.Name)
		}
		if tok != "" {
			return tok, src
		}
	}
	return "", tenants.TokenSource{}
}

// hasAnyToken reports whether any source holds a token (for the
// WWW-Authenticate error attributes of an early denial).
func hasAnyToken(sources []tenants.TokenSource, r *Request) bool {
	return extractToken(sources, r) != ""
}

// fromHeader strips prefix, compared case-insensitively (RFC 7235 §2.1), and
// surrounding spaces.
func fromHeader(v, prefix string) string {
	if v == "" || len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return ""
	}
	return strings.TrimSpace(v[len(prefix):])
}

// fromCookie finds name in a Cookie header (RFC 6265 §4.2.1:
// "name=value; name2=value2"), tolerating a quoted value.
func fromCookie(header, name string) string {
	for header != "" {
		var pair string
		pair, header, _ = strings.Cut(header, ";")
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || k != name {
			continue
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if v != "" {
			return v
		}
	}
	return ""
}

// fromQuery finds name in the query of a request target.
func fromQuery(target, name string) string {
	_, q, ok := strings.Cut(target, "?")
	if !ok {
		return ""
	}
	q, _, _ = strings.Cut(q, "#")
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != name {
			if uk, err := url.QueryUnescape(k); err != nil || uk != name {
				continue
			}
		}
		if u, err := url.QueryUnescape(v); err == nil && u != "" {
			return u
		}
	}
	return ""
}

// pathOnly drops the query and fragment of a request target, for logs: a
// query may carry the token.
func pathOnly(target string) string {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		return target[:i]
	}
	return target
}
