package tenants

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
)

// validYAML is a valid configuration of two tenants: acme (two hosts, one
// provider with audiences, algorithms and claim headers) and globex.
var validYAML = tenantstest.Config("",
	tenantstest.Tenant("acme", `["api.acme.test", "*.acme.test"]`, tenantstest.Main(
		"audiences: [orders]",
		"algorithms: [RS256, ES256]",
		"claims_to_headers: {sub: x-auth-subject, email: x-auth-email}")),
	tenantstest.Globex("main"))

// mustParse parses y, failing t on error.
func mustParse(t testing.TB, y string) *Config {
	t.Helper()
	c, err := Parse([]byte(y))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// mustSet parses y and compiles it into a Set, failing t on error.
func mustSet(t testing.TB, y string) *Set {
	t.Helper()
	s, err := NewSet(mustParse(t, y))
	if err != nil {
		t.Fatalf("NewSet: %v", err)
	}
	return s
}

// checkErr fails t unless err is nil when want is "", or an error whose
// text contains want otherwise. It reports whether err was as wanted.
func checkErr(t *testing.T, err error, want string) bool {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("error %v, want nil", err)
		return false
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("error %v\nwant one containing %q", err, want)
		return false
	}
	return true
}

// writeFile writes content to a new file and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
