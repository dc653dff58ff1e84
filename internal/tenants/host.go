package tenants

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// A host is matched in one canonical form: a lowercase name of LDH labels
// (RFC 1123 §2.1, RFC 5890 §2.3.1: letters, digits and '-', no '-' at
// either end of a label; an internationalised name in its punycode "xn--"
// form) without a trailing dot, or an IP address as netip writes it
// (IPv6 compressed, lowercase, no brackets, no zone). Config patterns are
// checked against it at load (normalizePattern) and request authorities at
// request time (NormalizeHost), so that nothing the host of a request
// could smuggle (userinfo, a path, NUL, a bracketed name, non-ASCII) ever
// reaches a lookup.

// normalizePattern checks a host pattern ("api.acme.test", "*.acme.test",
// "10.0.0.1", "::1" or "[::1]") and returns its canonical form.
func normalizePattern(h string) (string, error) {
	if h == "" {
		return "", errors.New("host must not be empty")
	}
	if a, ok := parseIPLiteral(h); ok {
		return a, nil
	}
	n := strings.TrimSuffix(strings.ToLower(h), ".")
	name, wild := strings.CutPrefix(n, "*.")
	switch {
	case strings.ContainsAny(n, ":[]"):
		return "", fmt.Errorf("host %q must not carry a port (ports are stripped before matching)", h)
	case strings.Contains(name, "*"):
		return "", fmt.Errorf("host %q: only a leading \"*.\" wildcard is supported", h)
	case !isASCII(name):
		msg := fmt.Sprintf("host %q is not ASCII: write an internationalised name in its punycode form", h)
		if a, err := idna.Lookup.ToASCII(name); err == nil {
			msg += fmt.Sprintf(" (%q)", a)
		}
		return "", errors.New(msg)
	case wild && isIPv4(name):
		return "", fmt.Errorf("host %q: a wildcard needs a host name, not an IP address", h)
	}
	if !isHostName(name) {
		return "", fmt.Errorf("host %q is not a valid host name (letters, digits and '-' in dot-separated labels of at most 63 characters; not all-numeric at the end unless an IPv4 address)", h)
	}
	if wild {
		return "*." + name, nil
	}
	return name, nil
}

// parseIPLiteral reads an IPv4 address, or an IPv6 address with or without
// brackets, into its canonical form.
func parseIPLiteral(s string) (string, bool) {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return a.String(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", false
	}
	return a.String(), true
}

// NormalizeHost returns the host of an HTTP Host/:authority value in the
// canonical form patterns are matched in: port stripped (including
// "[v6]:port"), lowercase, without a trailing dot. It returns "" for an
// authority that is not host[:port] with a host name or IP literal
// (RFC 9110 §7.2, RFC 3986 §3.2.2): userinfo, a path, NUL or any control
// character, a bracketed name, a zone, non-ASCII, a non-numeric port. ""
// matches no tenant.
func NormalizeHost(authority string) string {
	host := authority
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 || !isPort(host[end+1:]) {
			return ""
		}
		a, err := netip.ParseAddr(host[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "" // brackets around a name, or an IPv6 zone
		}
		return a.String()
	}
	if i := strings.IndexByte(host, ':'); i >= 0 {
		if !isPort(host[i:]) {
			return "" // a bare IPv6 address, a second ':' or a bad port
		}
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	lower := true
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			lower = false
			break
		}
	}
	if !lower {
		host = strings.ToLower(host)
	}
	if !isHostName(host) {
		return ""
	}
	return host
}

// isPort accepts "" or ":" followed by digits only.
func isPort(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != ':' || len(s) > 6 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isHostName reports whether s (lowercase) is a name of LDH labels, at
// most 253 bytes, whose last label is not all-numeric unless s is an IPv4
// address (RFC 3696 §2: a top-level domain is never all-numeric, so
// "1.2.3.999" is neither a name nor an address).
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	start, numeric := 0, true
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			n := i - start
			if n == 0 || n > 63 || s[start] == '-' || s[i-1] == '-' {
				return false
			}
			if i < len(s) {
				start, numeric = i+1, true
			}
			continue
		}
		switch c := s[i]; {
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'z', c == '-':
			numeric = false
		default:
			return false
		}
	}
	return !numeric || isIPv4(s)
}

func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
