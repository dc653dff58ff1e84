package tenants

import (
	"strings"
	"testing"
)

// FuzzNormalizeHost: whatever an authority holds, NormalizeHost returns ""
// or a canonical host that a config pattern could name exactly and that
// normalises to itself; it never panics.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"api.acme.test", "API.acme.test.:443", "[2001:db8::1]:80", "user@h", "[h]", "h\x00", "10.0.0.1", "xn--mnchen-3ya.test", "a..b", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, authority string) {
		h := NormalizeHost(authority)
		if h == "" {
			return
		}
		if p, err := normalizePattern(h); err != nil || p != h {
			t.Fatalf("NormalizeHost(%q) = %q, which as a pattern is %q, %v", authority, h, p, err)
		}
		back := h
		if strings.Contains(h, ":") {
			back = "[" + h + "]" // an IPv6 literal in an authority
		}
		if again := NormalizeHost(back); again != h {
			t.Fatalf("NormalizeHost(%q) = %q, not itself", h, again)
		}
	})
}
