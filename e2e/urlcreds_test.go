package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJWKSURLCredentialsNeverShown: credentials in a JWKS
// URL (user info, a query secret) and in a redirect target reach neither
// the log, nor the admin API, nor /metrics of a real process whose fetches
// fail: one identity provider refuses connections, the other redirects to
// a plain-http URL carrying a secret.
func TestJWKSURLCredentialsNeverShown(t *testing.T) {
	const secret, redirSecret = "S3CRET-in-url", "S3CRET-in-redirect"
	down := httptest.NewTLSServer(http.NotFoundHandler())
	downURL := strings.Replace(down.URL, "https://", "https://client:"+secret+"@", 1) + "/jwks?client_secret=" + secret
	down.Close()
	redir := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://user:"+redirSecret+"@127.0.0.1:1/jwks?token="+redirSecret, http.StatusFound)
	}))
	t.Cleanup(redir.Close)
	redirURL := redir.URL + "/jwks?key=" + secret

	addr, admin := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`listen: {grpc: %q, admin: %q}
log: {level: debug}
jwks:
  ca_file: %q
tenants:
`, addr, admin, caFile(t, redir))
	for _, p := range []struct{ id, url string }{{"down", downURL}, {"redir", redirURL}} {
		cfg += fmt.Sprintf(`  - id: %s
    hosts: [%s.test]
    providers:
      - id: main
        issuer: https://%s.test/
        jwks_url: %q
        retry_policy: {max_retries: 0, attempt_timeout: 2s, deadline: 2s}
`, p.id, p.id, p.id, p.url)
	}
	path := filepath.Join(t.TempDir(), "extauthz.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := launch(t, addr, "-config", path)
	get := func(path string) string {
		resp, err := http.Get("http://" + admin + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// Both first fetches have failed once the admin API shows both errors.
	eventually(t, func() bool {
		return strings.Count(get("/v1/providers"), `"error_count":`) == 2 && !strings.Contains(get("/v1/providers"), `"error_count":0`)
	}, "both providers' first fetch to fail")
	p.waitLog("redirect to non-https URL", 1)

	for where, text := range map[string]string{
		"admin provider list": get("/v1/providers"),
		"admin provider":      get("/v1/providers/redir/main"),
		"metrics":             get("/metrics"),
		"readyz":              get("/readyz"),
		"log":                 p.stderr.String(),
	} {
		for _, s := range []string{secret, redirSecret} {
			if strings.Contains(text, s) {
				t.Errorf("%s shows a URL credential (%s):\n%s", where, s, text)
			}
		}
	}
	if providers := get("/v1/providers"); !strings.Contains(providers, "connect") || !strings.Contains(providers, "redirect to non-https URL") {
		t.Errorf("admin API does not say what failed:\n%s", providers)
	}
}
