package tenants

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
)

var dirMain = tenantstest.Config("tenants_dir: tenants.d\n", tenantstest.Tenant("main", "[api.main.test]",
	tenantstest.Provider("idp", "https://idp.main.test/", "https://idp.main.test/jwks")))

// tenantYAML is one tenant file's content; extra is appended to its
// provider.
func tenantYAML(id, host, extra string) string {
	return "id: " + id + "\nhosts: [" + host + "]\nproviders:\n  - id: idp\n    issuer: https://idp." + id +
		".test/\n    jwks_url: https://idp." + id + ".test/jwks\n" + extra
}

// badAlg makes a provider invalid: HMAC is never accepted for JWKS keys.
const badAlg = "    algorithms: [HS256]\n"

// dirFixture is a configuration file with a tenants_dir beside it.
type dirFixture struct {
	main, dir string
	loader    *Loader
}

func newDirFixture(t *testing.T) *dirFixture {
	t.Helper()
	root := t.TempDir()
	f := &dirFixture{main: filepath.Join(root, "config.yaml"), dir: filepath.Join(root, "tenants.d")}
	if err := os.Mkdir(f.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.main, []byte(dirMain), 0o600); err != nil {
		t.Fatal(err)
	}
	f.loader = NewLoader(f.main, nil)
	return f
}

func (f *dirFixture) write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// load loads and, like the service, commits what it loaded.
func (f *dirFixture) load(t *testing.T) *Loaded {
	t.Helper()
	in, err := f.loader.Read()
	if err != nil {
		t.Fatal(err)
	}
	ld, err := f.loader.Load(in, func(c *Config) error { return c.Validate(nil) })
	if err != nil {
		t.Fatal(err)
	}
	f.loader.Commit(ld)
	return ld
}

// tenantHosts maps each loaded tenant id to its first host.
func tenantHosts(ld *Loaded) map[string]string {
	out := map[string]string{}
	for _, t := range ld.Config.Tenants {
		out[t.ID] = t.Hosts[0]
	}
	return out
}

// problemSummary is "source: kept: problems" with the directory cut off.
func problemSummary(f *dirFixture, ld *Loaded) []string {
	var out []string
	for _, p := range ld.Problems {
		kept := "absent"
		if p.Kept {
			kept = "kept"
		}
		out = append(out, strings.TrimPrefix(p.Source, f.dir+"/")+" "+kept+": "+strings.Join(p.Problems, "; "))
	}
	return out
}

// TestLoader_BrokenTenantFileDoesNotBlockOthers walks tenants_dir through
// the cases of a control plane writing one file per tenant: every file's
// tenant merged after the main file's; a broken file (parse error, invalid
// value, an id or host another tenant has) leaves its tenant at its last
// good version, or absent if it never loaded, while every other file loads;
// a fixed file comes back.
func TestLoader_BrokenTenantFileDoesNotBlockOthers(t *testing.T) {
	f := newDirFixture(t)
	f.write(t, "acme.yaml", tenantYAML("acme", "api.acme.test", ""))
	f.write(t, "globex.yml", tenantYAML("globex", "api.globex.test", ""))
	f.write(t, ".hidden.yaml", "not: [a tenant")
	f.write(t, "README.md", "ignored")
	ld := f.load(t)
	if diff := cmp.Diff(map[string]string{"main": "api.main.test", "acme": "api.acme.test", "globex": "api.globex.test"}, tenantHosts(ld)); diff != "" {
		t.Fatalf("tenants (-want +got):\n%s", diff)
	}
	if len(ld.Problems) != 0 || len(ld.Config.Tenants[1].Providers[0].Algorithms) != 1 {
		t.Fatalf("problems %v, defaults %+v", ld.Problems, ld.Config.Tenants[1].Providers[0])
	}
	firstHash := ld.Hash

	steps := []struct {
		name         string
		files        map[string]string // written before the load; "" removes
		wantTenants  map[string]string
		wantProblems []string
	}{
		{
			name:         "parse error keeps the last good version; a new broken file stays absent",
			files:        map[string]string{"acme.yaml": "id: acme\nhosts: [api.acme.test\n", "initech.yaml": "id: initech\nsurprise: 1\n"},
			wantTenants:  map[string]string{"main": "api.main.test", "acme": "api.acme.test", "globex": "api.globex.test"},
			wantProblems: []string{"acme.yaml kept: parse: ", "initech.yaml absent: parse: "},
		},
		{
			name:         "invalid value keeps the last good version",
			files:        map[string]string{"acme.yaml": tenantYAML("acme", "api.acme.test", badAlg), "initech.yaml": ""},
			wantTenants:  map[string]string{"main": "api.main.test", "acme": "api.acme.test", "globex": "api.globex.test"},
			wantProblems: []string{"acme.yaml kept: providers[0].algorithms"},
		},
		{
			name:         "a host the main file has is refused; the new tenant stays absent",
			files:        map[string]string{"acme.yaml": tenantYAML("acme", "api.acme.test", ""), "hijack.yaml": tenantYAML("hijack", "api.main.test", "")},
			wantTenants:  map[string]string{"main": "api.main.test", "acme": "api.acme.test", "globex": "api.globex.test"},
			wantProblems: []string{`hijack.yaml absent: hosts[0]: host "api.main.test" already used at tenants[0].hosts[0]`},
		},
		{
			name: "a last good version that no longer fits is left out",
			// aaa.yaml sorts first and takes globex's host while globex.yml breaks.
			files:        map[string]string{"hijack.yaml": "", "aaa.yaml": tenantYAML("aaa", "api.globex.test", ""), "globex.yml": "- two\n- tenants\n"},
			wantTenants:  map[string]string{"main": "api.main.test", "acme": "api.acme.test", "aaa": "api.globex.test"},
			wantProblems: []string{"globex.yml absent: parse: , last good version: hosts[0]: "},
		},
		{
			name:        "fixed and removed files",
			files:       map[string]string{"aaa.yaml": "", "globex.yml": tenantYAML("globex", "api.globex.test", "")},
			wantTenants: map[string]string{"main": "api.main.test", "acme": "api.acme.test", "globex": "api.globex.test"},
		},
	}
	for _, step := range steps {
		for name, content := range step.files {
			if content == "" {
				if err := os.Remove(filepath.Join(f.dir, name)); err != nil {
					t.Fatal(err)
				}
				continue
			}
			f.write(t, name, content)
		}
		ld := f.load(t)
		if diff := cmp.Diff(step.wantTenants, tenantHosts(ld)); diff != "" {
			t.Errorf("%s: tenants (-want +got):\n%s", step.name, diff)
		}
		got := problemSummary(f, ld)
		if len(got) != len(step.wantProblems) {
			t.Errorf("%s: problems %q, want %d", step.name, got, len(step.wantProblems))
			continue
		}
		for i, want := range step.wantProblems {
			for _, part := range strings.Split(want, ", ") {
				if !strings.Contains(got[i], part) {
					t.Errorf("%s: problem %q lacks %q", step.name, got[i], part)
				}
			}
		}
	}
	if ld := f.load(t); ld.Hash != firstHash {
		t.Errorf("hash %s after returning to the first files, want %s", ld.Hash, firstHash)
	}
}

// TestLoader_MainFileProblemsRefuseTheLoad: the main file's own problems
// are not isolated: the load is refused, naming the file and the path.
func TestLoader_MainFileProblemsRefuseTheLoad(t *testing.T) {
	f := newDirFixture(t)
	f.write(t, "acme.yaml", tenantYAML("acme", "api.acme.test", ""))
	if err := os.WriteFile(f.main, []byte(dirMain+"        algorithms: [HS256]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := f.loader.Read()
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.loader.Load(in, func(c *Config) error { return c.Validate(nil) })
	if err == nil || !strings.Contains(err.Error(), "tenants[0].providers[0].algorithms") {
		t.Fatalf("Load: %v, want the problem's path", err)
	}
	if err := os.RemoveAll(f.dir); err != nil {
		t.Fatal(err)
	}
	if _, err := f.loader.Read(); err == nil || !strings.Contains(err.Error(), "tenants_dir: cannot read directory") {
		t.Fatalf("Read without the directory: %v", err)
	}
}

// TestLoader_KubernetesConfigMapLayout: a ConfigMap volume holds each key
// as a symbolic link through ..data to a timestamped directory; the links
// are followed and the hidden entries skipped, and the fingerprint changes
// when the ..data link is swapped to new contents.
func TestLoader_KubernetesConfigMapLayout(t *testing.T) {
	f := newDirFixture(t)
	mkVersion := func(name, content string) {
		d := filepath.Join(f.dir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "acme.yaml"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mkVersion("..2026_01_01", tenantYAML("acme", "api.acme.test", ""))
	if err := os.Symlink("..2026_01_01", filepath.Join(f.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/acme.yaml", filepath.Join(f.dir, "acme.yaml")); err != nil {
		t.Fatal(err)
	}
	in, err := f.loader.Read()
	if err != nil {
		t.Fatal(err)
	}
	ld := f.load(t)
	if diff := cmp.Diff(map[string]string{"main": "api.main.test", "acme": "api.acme.test"}, tenantHosts(ld)); diff != "" || len(ld.Problems) != 0 {
		t.Fatalf("tenants (-want +got):\n%s\nproblems %v", diff, ld.Problems)
	}
	mkVersion("..2026_01_02", tenantYAML("acme", "www.acme.test", ""))
	tmp := filepath.Join(f.dir, "..data_tmp")
	if err := os.Symlink("..2026_01_02", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	in2, err := f.loader.Read()
	if err != nil {
		t.Fatal(err)
	}
	if in2.Fingerprint() == in.Fingerprint() {
		t.Fatal("fingerprint unchanged after the ..data swap")
	}
	if got := tenantHosts(f.load(t))["acme"]; got != "www.acme.test" {
		t.Fatalf("acme host after the swap: %s", got)
	}
}
