package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/checkclient"
)

// TestCheckFlag_NamesBrokenTenantFiles: -check validates tenants_dir too
// and fails naming each broken tenant file by its path, while the server
// itself starts and serves every other tenant.
func TestCheckFlag_NamesBrokenTenantFiles(t *testing.T) {
	acme, globex := newIdP(t, "ES256"), newIdP(t, "ES256")
	addr := freeAddr(t)
	cfg := config(addr, caFile(t, acme.srv), tenant{id: "acme", host: "api.acme.test", idp: acme}) + "tenants_dir: tenants.d\n"
	root := t.TempDir()
	path := filepath.Join(root, "extauthz.yaml")
	dir := filepath.Join(root, "tenants.d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	write("globex.yaml", "id: globex\nhosts: [api.globex.test]\nproviders:\n  - id: main\n    issuer: "+globex.Issuer()+"\n    jwks_url: "+globex.jwksURL()+"\n    audiences: [orders]\n    algorithms: [ES256]\n")
	if code, stdout, stderr := run(t, "-config", path, "-check"); code != 0 {
		t.Fatalf("-check with a good tenants_dir: exit %d\n%s%s", code, stdout, stderr)
	}
	broken := write("initech.yaml", "id: initech\nhosts: [api.initech.test]\nproviders:\n  - id: main\n    issuer: https://initech.test/\n    jwks_url: https://initech.test/jwks\n    algorithms: [HS256]\n")
	code, _, stderr := run(t, "-config", path, "-check")
	if code != 1 || !strings.Contains(stderr, broken+": providers[0].algorithms[0]") {
		t.Fatalf("-check with a broken tenant file: exit %d, want 1 naming %s:\n%s", code, broken, stderr)
	}

	p := startCmd(t, addr, "-config", path)
	p.waitLog(`"source":"`+broken+`"`, 1)
	for host, idp := range map[string]*idp{"api.acme.test": acme, "api.globex.test": globex} {
		if res := p.check(checkclient.Request{Host: host, Token: idp.token(t, "alice", nil)}); !res.Allowed {
			t.Errorf("%s beside a broken tenant file: %s", host, res.Reason)
		}
	}
}
