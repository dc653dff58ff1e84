package service

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/extauthz/extauthz/internal/demo"
)

// waitLimit only turns a hang into a failure.
const waitLimit = 30 * time.Second

// tenantFileYAML is one tenants_dir file: tenant id on host, trusting the
// fixture's identity provider for the audience id-api (tenants sharing an
// issuer need their own audiences); extra is appended to the provider.
func (f *fixture) tenantFileYAML(id, host, extra string) string {
	return "id: " + id + "\nhosts: [" + host + "]\nproviders:\n  - id: main\n    issuer: " + f.idp.IdP.Issuer() +
		"\n    jwks_url: " + f.idp.JWKSURL() + "\n    audiences: [" + id + "-api]\n    algorithms: [ES256]\n" + extra
}

// audToken is a token of the fixture's identity provider for audience aud.
func (f *fixture) audToken(t *testing.T, aud string) string {
	t.Helper()
	tok, err := f.idp.IdP.Mint("alice", time.Hour, map[string]any{"aud": aud})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// configMap lays files out as a Kubernetes ConfigMap volume does: each
// key a symbolic link through ..data to a timestamped directory, which an
// update replaces by swapping ..data.
type configMap struct {
	dir     string
	version int
}

func newConfigMap(t *testing.T, files map[string]string) *configMap {
	t.Helper()
	cm := &configMap{dir: filepath.Join(t.TempDir(), "cm")}
	if err := os.Mkdir(cm.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cm.update(t, files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(cm.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return cm
}

// update writes a new version and swaps ..data to it atomically.
func (cm *configMap) update(t *testing.T, files map[string]string) {
	t.Helper()
	cm.version++
	name := "..2026_12_02_" + strings.Repeat("v", cm.version)
	if err := os.Mkdir(filepath.Join(cm.dir, name), 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(cm.dir, name, k), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(cm.dir, "..data_tmp")
	if err := os.Symlink(name, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(cm.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// TestWatch_ConfigMapSwapReloadsWithoutSignal: a ConfigMap update (the
// ..data swap) reaches the running service without a SIGHUP, once, with the
// unchanged provider's warm cache kept; a SIGHUP for the same bytes then
// loads nothing again.
func TestWatch_ConfigMapSwapReloadsWithoutSignal(t *testing.T) {
	f := newFixture(t)
	base, err := os.ReadFile(f.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cm := newConfigMap(t, map[string]string{"config.yaml": string(base)})
	r := runService(t, Options{ConfigPath: filepath.Join(cm.dir, "config.yaml"), DrainDelay: -1, WatchConfig: true, WatchDebounce: 20 * time.Millisecond})
	tok, extraTok := f.token(t), f.extraToken(t)
	if res := r.check(t, "api.extra.test", extraTok); res.Reason != "tenant_unknown" {
		t.Fatalf("before the update: %s, want tenant_unknown", res.Reason)
	}
	if res := r.check(t, demo.Host, tok); !res.Allowed {
		t.Fatalf("before the update: %s", res.Reason)
	}
	fetches := f.idp.IdP.JWKSRequests()

	cm.update(t, map[string]string{"config.yaml": string(base) + f.extraTenant("")})
	if !r.logs.WaitCount("config reloaded", 1, waitLimit) {
		t.Fatalf("the ConfigMap update was not reloaded:\n%s", r.logs.String())
	}
	if res := r.check(t, "api.extra.test", extraTok); !res.Allowed {
		t.Fatalf("tenant added by the ConfigMap update: %s", res.Reason)
	}
	if res := r.check(t, demo.Host, tok); !res.Allowed {
		t.Fatalf("the unchanged tenant: %s", res.Reason)
	}
	// The new tenant's provider fetched once; the unchanged one did not.
	if got := f.idp.IdP.JWKSRequests(); got != fetches+1 {
		t.Errorf("%d JWKS requests after the reload, want %d (one for the new provider)", got, fetches+1)
	}

	r.signals <- syscall.SIGHUP
	if !r.logs.WaitCount("config unchanged since the last load", 1, waitLimit) {
		t.Fatalf("SIGHUP for the same bytes was not recognised:\n%s", r.logs.String())
	}
	if n := strings.Count(r.logs.String(), "config reloaded"); n != 1 {
		t.Errorf("%d reloads for one update, want 1", n)
	}
}

// TestTenantsDir_BrokenFileIsolatedAndReported: a broken tenants_dir file
// does not block the others and keeps its tenant at its last good version
// (or absent, for a file that never loaded); each is reported by path in
// the log, extauthz_config_reload_errors_total{source}, the admin API's
// config status and -check. extauthz_config_info carries the hash in
// effect.
func TestTenantsDir_BrokenFileIsolatedAndReported(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(filepath.Dir(f.cfgPath), "tenants.d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeTenant := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	extra := writeTenant("extra.yaml", f.tenantFileYAML("extra", "api.extra.test", ""))
	f.write(t, "tenants_dir: tenants.d\n")
	r := runService(t, Options{ConfigPath: f.cfgPath, DrainDelay: -1})
	extraTok, thirdTok, laterTok := f.audToken(t, "extra-api"), f.audToken(t, "third-api"), f.audToken(t, "later-api")
	if res := r.check(t, "api.extra.test", extraTok); !res.Allowed {
		t.Fatalf("tenant from tenants_dir: %s", res.Reason)
	}
	first := r.svc.configStatus()
	if len(first.Problems) != 0 || first.Tenants != 2 || infoHash(t, r) != first.Hash {
		t.Fatalf("config status %+v, info hash %q", first, infoHash(t, r))
	}

	// extra.yaml breaks (an unknown key), later.yaml never parses, a third
	// file is fine: the reload goes through.
	writeTenant("extra.yaml", f.tenantFileYAML("extra", "api.extra.test", "    surprise: 1\n"))
	later := writeTenant("later.yaml", "id: later\nhosts: [api.later.test\n")
	writeTenant("third.yaml", f.tenantFileYAML("third", "api.third.test", ""))
	if err := r.svc.Reload(context.Background()); err != nil {
		t.Fatalf("Reload with broken tenant files: %v", err)
	}
	if res := r.check(t, "api.extra.test", extraTok); !res.Allowed {
		t.Errorf("broken file's tenant, last good version: %s", res.Reason)
	}
	if res := r.check(t, "api.third.test", thirdTok); !res.Allowed {
		t.Errorf("tenant of a good file beside broken ones: %s", res.Reason)
	}
	if res := r.check(t, "api.later.test", laterTok); res.Reason != "tenant_unknown" {
		t.Errorf("tenant of a file that never loaded: %s, want tenant_unknown", res.Reason)
	}
	st := r.svc.configStatus()
	if len(st.Problems) != 2 || st.Problems[0].Source != extra || !st.Problems[0].Kept || st.Problems[1].Source != later || st.Problems[1].Kept {
		t.Fatalf("config status problems %+v, want extra.yaml kept and later.yaml absent", st.Problems)
	}
	if !strings.Contains(st.Problems[0].Problems[0], "surprise") {
		t.Errorf("extra.yaml problem %q does not name the bad key", st.Problems[0].Problems[0])
	}
	logs := r.logs.String()
	for _, want := range []string{`its last good version stays in use" source=` + extra, `its tenant is absent" source=` + later} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	for _, src := range []string{extra, later} {
		if got := counter(t, r, "extauthz_config_reload_errors_total", "source", src); got != 1 {
			t.Errorf("extauthz_config_reload_errors_total{source=%s} = %v, want 1", src, got)
		}
	}
	if h := infoHash(t, r); h != st.Hash || h == first.Hash {
		t.Errorf("info hash %q, status hash %q, first %q: want the new hash", h, st.Hash, first.Hash)
	}
	err := CheckConfig(f.cfgPath)
	if err == nil || !strings.Contains(err.Error(), extra+": ") || !strings.Contains(err.Error(), later+": ") {
		t.Errorf("-check: %v, want both files named", err)
	}

	// The main file's own problem refuses the reload, counted under its path.
	f.write(t, "tenants_dir: tenants.d\nsurprise: 1\n")
	if err := r.svc.Reload(context.Background()); err == nil {
		t.Fatal("Reload accepted a broken main file")
	}
	if got := counter(t, r, "extauthz_config_reload_errors_total", "source", f.cfgPath); got != 1 {
		t.Errorf("errors under the main file = %v, want 1", got)
	}
}

// infoHash returns the hash label of extauthz_config_info, failing unless
// there is exactly one series with value 1.
func infoHash(t *testing.T, r *running) string {
	t.Helper()
	ms := family(t, r, "extauthz_config_info")
	if len(ms) != 1 || ms[0].GetGauge().GetValue() != 1 {
		t.Fatalf("extauthz_config_info: %v, want one series at 1", ms)
	}
	return ms[0].GetLabel()[0].GetValue()
}

func counter(t *testing.T, r *running, name, label, value string) float64 {
	t.Helper()
	for _, m := range family(t, r, name) {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func family(t *testing.T, r *running, name string) []*dto.Metric {
	t.Helper()
	fams, err := r.svc.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range fams {
		if fam.GetName() == name {
			return fam.GetMetric()
		}
	}
	return nil
}
