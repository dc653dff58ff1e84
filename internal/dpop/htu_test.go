package dpop

import (
	"fmt"
	"strings"
	"testing"
)

func TestNormalizeURI(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api.acme.test/orders", "https://api.acme.test/orders"},
		{"HTTPS://API.Acme.TEST/orders", "https://api.acme.test/orders"},     // §6.2.2.1: scheme and host case
		{"https://api.acme.test:443/orders", "https://api.acme.test/orders"}, // §6.2.3: default port
		{"http://api.acme.test:80/orders", "http://api.acme.test/orders"},
		{"https://api.acme.test:/orders", "https://api.acme.test/orders"},                // empty port
		{"https://api.acme.test:8443/orders", "https://api.acme.test:8443/orders"},       // other port kept
		{"http://api.acme.test:443/x", "http://api.acme.test:443/x"},                     // 443 is not http's default
		{"https://api.acme.test", "https://api.acme.test/"},                              // empty path
		{"https://api.acme.test/orders?id=1#frag", "https://api.acme.test/orders"},       // RFC 9449 §4.3: query and fragment ignored
		{"https://api.acme.test/%7euser/%2f%2Fx", "https://api.acme.test/~user/%2F%2Fx"}, // §6.2.2.2
		{"https://api.acme.test/%7E%4a%4A%5F", "https://api.acme.test/~JJ_"},             // upper- and lower-case hex decoded alike
		{"https://api.acme.test/%30%39%3a%2D%40", "https://api.acme.test/09%3A-%40"},     // digits decoded, ':' and '@' not
		{"https://api.acme.test/a/./b/../c", "https://api.acme.test/a/c"},                // §6.2.2.3
		{"https://api.acme.test/a/..", "https://api.acme.test/"},
		{"https://api.acme.test/a/.", "https://api.acme.test/a/"},
		{"https://api.acme.test/../a", "https://api.acme.test/a"}, // more ".." than segments
		{"https://api.acme.test/..", "https://api.acme.test/"},
		{"https://api.acme.test//../a", "https://api.acme.test/a"},       // an empty segment is a segment (§5.2.4 E)
		{"https://api.acme.test/a//./b", "https://api.acme.test/a//b"},   // and is kept
		{"https://api.acme.test/Orders", "https://api.acme.test/Orders"}, // path case kept
		{"https://[::1]:443/x", "https://[::1]/x"},
	} {
		got, err := NormalizeURI(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeURI(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "/orders", "ftp://api.acme.test/x", "https:///x", "https://user@api.acme.test/x", "https://api.acme.test/%zz", "https://api.acme.test/%4"} {
		if got, err := NormalizeURI(bad); err == nil {
			t.Errorf("NormalizeURI(%q) = %q, want an error", bad, got)
		}
	}
}

// TestNormalizeURI_EveryPercentEncoding: for each of the 256 octets, in
// upper- and lower-case hex, an unreserved character (RFC 3986 §2.3) is
// decoded and any other kept encoded in upper-case hex; a '%' followed by
// anything but two hex digits is refused.
func TestNormalizeURI_EveryPercentEncoding(t *testing.T) {
	const unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
	for c := 0; c < 256; c++ {
		// Inside a segment: a decoded "." alone would be a dot segment.
		want := fmt.Sprintf("https://api.acme.test/a%%%02Xb", c)
		if strings.IndexByte(unreserved, byte(c)) >= 0 {
			want = "https://api.acme.test/a" + string(rune(c)) + "b"
		}
		for _, enc := range []string{fmt.Sprintf("%%%02X", c), fmt.Sprintf("%%%02x", c)} {
			if got, err := NormalizeURI("https://api.acme.test/a" + enc + "b"); err != nil || got != want {
				t.Errorf("NormalizeURI(%q) = %q, %v; want %q", enc, got, err, want)
			}
		}
		const hex = "0123456789abcdefABCDEF"
		_, err := NormalizeURI("https://api.acme.test/%" + string(rune(c)) + "0")
		if isHexDigit := c < 128 && strings.IndexByte(hex, byte(c)) >= 0; (err == nil) != isHexDigit {
			t.Errorf("NormalizeURI(%q): err %v", "%"+string(rune(c))+"0", err)
		}
	}
}
