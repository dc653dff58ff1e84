package tenants

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
)

var forwardAuthBase = tenantstest.Config("", tenantstest.Acme())

func TestParse_ForwardAuth(t *testing.T) {
	c, err := Parse([]byte(`
listen: {http: "127.0.0.1:9192"}
forward_auth:
  trusted_proxies: ["10.0.0.0/8", "192.0.2.7", "fd00::/8", "2001:db8::1"]
  path_prefix: /extauthz
` + forwardAuthBase))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := c.Validate(nil); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := c.ForwardAuth.PathPrefix; got != "/extauthz" {
		t.Errorf("path_prefix %q", got)
	}
	got, err := c.ForwardAuth.Prefixes()
	if err != nil {
		t.Fatalf("Prefixes: %v", err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("2001:db8::1/128"),
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("prefixes (-want +got):\n%s", diff)
	}
}

// TestParse_ForwardAuthDefaults: without the key, trusted_proxies holds
// the loopback hosts 127.0.0.1 and ::1 only (not 127.0.0.0/8, which would
// trust every client behind an Istio sidecar, arriving from 127.0.0.6);
// an explicit empty list trusts nobody.
func TestParse_ForwardAuthDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []netip.Prefix
	}{
		{"key absent", forwardAuthBase, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}},
		{"empty list", forwardAuthBase + "forward_auth: {trusted_proxies: []}\n", []netip.Prefix{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := c.Validate(nil); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			p, err := c.ForwardAuth.Prefixes()
			if err != nil || c.ForwardAuth.PathPrefix != "" {
				t.Fatalf("prefixes %v (err %v), path_prefix %q", p, err, c.ForwardAuth.PathPrefix)
			}
			if diff := cmp.Diff(tc.want, p, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("prefixes (-want +got):\n%s", diff)
			}
			for _, sidecar := range []string{"127.0.0.6", "127.0.0.2"} {
				for _, pre := range p {
					if pre.Contains(netip.MustParseAddr(sidecar)) {
						t.Errorf("default trusts %s (%s)", sidecar, pre)
					}
				}
			}
		})
	}
}

func TestValidate_ForwardAuthProblems(t *testing.T) {
	tests := []struct {
		name, block string
		want        []string
	}{
		{"bad CIDR", `{trusted_proxies: ["10.0.0.0/33"]}`,
			[]string{`forward_auth.trusted_proxies[0]: "10.0.0.0/33" is not a CIDR such as 10.0.0.0/8 or fd00::/8`}},
		{"host bits set", `{trusted_proxies: ["10.0.0.0/8", "10.1.2.3/8"]}`,
			[]string{`forward_auth.trusted_proxies[1]: "10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?`}},
		{"not an address", `{trusted_proxies: ["gateway.internal"]}`,
			[]string{`forward_auth.trusted_proxies[0]: "gateway.internal" is neither an IP address nor a CIDR`}},
		{"zone", `{trusted_proxies: ["fe80::1%eth0"]}`,
			[]string{`forward_auth.trusted_proxies[0]: "fe80::1%eth0": an address with a zone cannot be matched`}},
		{"relative prefix", `{path_prefix: extauthz}`,
			[]string{`forward_auth.path_prefix: "extauthz" must start with /`}},
		{"prefix with a query", `{path_prefix: "/auth?x=1"}`,
			[]string{`forward_auth.path_prefix: "/auth?x=1" must be a path: no query, fragment, spaces or control characters`}},
		{"every problem at once", `{trusted_proxies: ["x", "10.0.0.0/8", "y"], path_prefix: "a"}`,
			[]string{
				`forward_auth.trusted_proxies[0]: "x" is neither an IP address nor a CIDR`,
				`forward_auth.trusted_proxies[2]: "y" is neither an IP address nor a CIDR`,
				`forward_auth.path_prefix: "a" must start with /`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte("forward_auth: " + tt.block + "\n" + forwardAuthBase))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = c.Validate(nil)
			if err == nil {
				t.Fatal("Validate accepted the config")
			}
			var got []string
			for _, e := range Problems(err) {
				if strings.HasPrefix(e.Error(), "forward_auth.") {
					got = append(got, e.Error())
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if strings.Contains(strings.Join(tt.want, "\n"), "trusted_proxies") {
				if _, err := c.ForwardAuth.Prefixes(); err == nil {
					t.Error("Prefixes accepted what Validate refused")
				}
			}
		})
	}
}
