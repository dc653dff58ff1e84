package jwkscache_test

import (
	"strings"
	"testing"

	"github.com/extauthz/extauthz/jwkscache"
)

func TestCheckIDs(t *testing.T) {
	for _, tc := range []struct {
		id               string
		tenant, provider bool // valid as such
	}{
		{"acme", true, true},
		{"Acme-42", true, true},
		{strings.Repeat("a", 64), true, true},
		{"main_idp", false, true},
		{"", false, false},
		{strings.Repeat("a", 65), false, false},
		{"acme:main", false, false}, // would reach into another storage key
		{"a/b", false, false},
		{"a.b", false, false},
		{"é", false, false},
	} {
		if got := jwkscache.CheckTenantID(tc.id) == nil; got != tc.tenant {
			t.Errorf("CheckTenantID(%q) valid = %v, want %v", tc.id, got, tc.tenant)
		}
		if got := jwkscache.CheckProviderID(tc.id) == nil; got != tc.provider {
			t.Errorf("CheckProviderID(%q) valid = %v, want %v", tc.id, got, tc.provider)
		}
	}
	if err := jwkscache.CheckTenantID("ac me"); err == nil || !strings.Contains(err.Error(), `"ac me"`) {
		t.Errorf("CheckTenantID error %v does not quote the ID", err)
	}
}

func TestSupportedAlgorithm(t *testing.T) {
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"} {
		if !jwkscache.SupportedAlgorithm(alg) {
			t.Errorf("SupportedAlgorithm(%q) = false", alg)
		}
	}
	for _, alg := range []string{"none", "HS256", "HS512", "rs256", "ES256K", "Ed25519", ""} {
		if jwkscache.SupportedAlgorithm(alg) {
			t.Errorf("SupportedAlgorithm(%q) = true", alg)
		}
	}
}

func TestHostAllowed(t *testing.T) {
	list := []string{"example.com", "idp.test"}
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"example.com", true},
		{"login.example.com", true},
		{"a.b.idp.test", true},
		{"notexample.com", false}, // a suffix, but not a subdomain
		{"example.com.evil.test", false},
		{"com", false},
		{"", false},
	} {
		if got := jwkscache.HostAllowed(tc.host, list); got != tc.want {
			t.Errorf("HostAllowed(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
	if jwkscache.HostAllowed("example.com", nil) {
		t.Error("an empty allowlist allows a host")
	}
}

func TestState_String(t *testing.T) {
	for s, want := range map[jwkscache.State]string{
		jwkscache.StateEmpty:      "Empty",
		jwkscache.StateLoading:    "Loading",
		jwkscache.StateReady:      "Ready",
		jwkscache.StateRefreshing: "Refreshing",
		jwkscache.State(7):        "State(7)",
		jwkscache.State(-1):       "State(-1)",
	} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}
