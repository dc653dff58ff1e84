package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/logtest"
)

// nginxConfTemplate wraps the documented snippet into a complete nginx
// configuration that runs in the foreground, as this user, with every
// path in the test's temp dir. Placeholders: %[1]s the temp dir, %[2]s the
// snippet.
const nginxConfTemplate = `
daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`

// The addresses in the documented nginx snippet, replaced by the test's.
const (
	nginxDocExtauthz = "127.0.0.1:9192"
	nginxDocListen   = "127.0.0.1:8080"
	nginxDocUpstream = "127.0.0.1:8081"
)

// nginxSnippet returns the nginx configuration documented in
// docs/forward-auth.md (its one nginx code block) with the test's
// addresses, so the test proves the documented snippet works.
func nginxSnippet(t *testing.T, listen, authAddr, upstream string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "forward-auth.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "\n```nginx\n")
	if !ok {
		t.Fatal("docs/forward-auth.md has no ```nginx block")
	}
	snippet, _, ok := strings.Cut(rest, "\n```\n")
	if !ok {
		t.Fatal("docs/forward-auth.md: the ```nginx block is not closed")
	}
	for _, r := range []struct{ doc, test string }{
		{nginxDocExtauthz, authAddr}, {nginxDocListen, listen}, {nginxDocUpstream, upstream},
	} {
		if n := strings.Count(snippet, r.doc); n != 1 {
			t.Fatalf("docs/forward-auth.md nginx snippet names %s %d times, want once", r.doc, n)
		}
		snippet = strings.Replace(snippet, r.doc, r.test, 1)
	}
	return snippet
}

// nginxBinary finds the nginx under test: $EXTAUTHZ_NGINX, nginx on PATH,
// or Debian's /usr/sbin/nginx.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("EXTAUTHZ_NGINX"); p != "" {
		return p
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Fatal("nginx not found (set EXTAUTHZ_NGINX, or run `bash scripts/test.sh`, which installs Debian's nginx)")
	return ""
}

// nginxEcho is the upstream behind nginx: it answers with the headers it
// received as JSON, and counts its requests.
type nginxEcho struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func nginxStartEcho(t *testing.T) *nginxEcho {
	t.Helper()
	e := &nginxEcho{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// nginxStart writes the configuration for an nginx in front of upstream,
// asking extauthz at authAddr, starts it on a free loopback port and waits
// until it accepts connections. It returns nginx's base URL.
func nginxStart(t *testing.T, authAddr, upstream string) string {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	conf := filepath.Join(dir, "nginx.conf")
	cfg := fmt.Sprintf(nginxConfTemplate, dir, nginxSnippet(t, addr, authAddr, upstream))
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &logtest.Buffer{}
	// -e: the error log nginx uses before it has read the configuration
	// (the default, /var/log/nginx/error.log, may not be writable).
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // graceful shutdown
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nnginx error.log:\n%s", out.String(), log)
		}
	})
	waitListening(t, "nginx", addr, done, func() string {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return out.String() + "\n" + string(log)
	})
	return "http://" + addr
}

// waitListening waits until addr accepts TCP connections; if done closes
// first, the process (what) exited and the test fails with its output.
func waitListening(t *testing.T, what, addr string, done <-chan struct{}, output func() string) {
	t.Helper()
	eventually(t, func() bool {
		select {
		case <-done:
			t.Fatalf("%s exited:\n%s", what, output())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, "%s on %s", what, addr)
}

// nginxResponse is what the client of nginx got.
type nginxResponse struct {
	status int
	header http.Header
	body   []byte
}

// nginxGet sends GET base+path with Host host and the given headers.
func nginxGet(t *testing.T, base, host, path string, headers map[string]string) nginxResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", path, host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return nginxResponse{status: resp.StatusCode, header: resp.Header, body: body}
}

// upstreamSaw decodes the echo upstream's answer: the headers it received.
func (r nginxResponse) upstreamSaw(t *testing.T) http.Header {
	t.Helper()
	var h http.Header
	if err := json.Unmarshal(r.body, &h); err != nil {
		t.Fatalf("upstream answer %q: %v", r.body, err)
	}
	return h
}

// TestNginx_AuthRequest puts a real nginx with auth_request in front of an
// echo upstream, asking extauthz's HTTP forward-auth listener.
func TestNginx_AuthRequest(t *testing.T) {
	acme := newIdP(t, "ES256")
	down := newIdP(t, "ES256")
	down.down.Store(true) // down from cold: never served a key set
	// acme also accepts the token in the access_token query parameter, to
	// show the original URI reaches extauthz and a forged one does not.
	const querySource = `        from_headers: [{name: authorization, value_prefix: "Bearer "}]
        from_params: [access_token]
`
	authAddr, _ := nginxStartExtauthz(t, "",
		tenant{id: "acme", host: "api.acme.test", idp: acme, extra: querySource},
		tenant{id: "globex", host: "globex.test", idp: down})
	echo := nginxStartEcho(t)
	base := nginxStart(t, authAddr, echo.srv.Listener.Addr().String())

	t.Run("valid token: upstream sees the claim headers", func(t *testing.T) {
		tok := acme.token(t, "alice", map[string]any{"email": "alice@acme.test"})
		r := nginxGet(t, base, "api.acme.test", "/orders/7", map[string]string{"Authorization": "Bearer " + tok})
		if r.status != http.StatusOK {
			t.Fatalf("status %d, want 200: %s", r.status, r.body)
		}
		saw := r.upstreamSaw(t)
		if got := saw.Values("X-Auth-Subject"); len(got) != 1 || got[0] != "alice" {
			t.Errorf("upstream X-Auth-Subject %q, want [alice]", got)
		}
		if got := saw.Values("X-Auth-Email"); len(got) != 1 || got[0] != "alice@acme.test" {
			t.Errorf("upstream X-Auth-Email %q, want [alice@acme.test]", got)
		}
	})

	t.Run("forged claim headers removed", func(t *testing.T) {
		tok := acme.token(t, "alice", nil) // no email claim
		r := nginxGet(t, base, "api.acme.test", "/orders", map[string]string{
			"Authorization":  "Bearer " + tok,
			"X-Auth-Subject": "mallory",
			"X-Auth-Email":   "forged@evil.test",
		})
		if r.status != http.StatusOK {
			t.Fatalf("status %d, want 200: %s", r.status, r.body)
		}
		saw := r.upstreamSaw(t)
		if got := saw.Values("X-Auth-Subject"); len(got) != 1 || got[0] != "alice" {
			t.Errorf("upstream X-Auth-Subject %q, want [alice]", got)
		}
		if got := saw.Values("X-Auth-Email"); len(got) != 0 {
			t.Errorf("upstream X-Auth-Email %q, want none: the client's forged value got through", got)
		}
	})

	t.Run("token in the original URI's query", func(t *testing.T) {
		tok := acme.token(t, "alice", nil)
		r := nginxGet(t, base, "api.acme.test", "/orders?access_token="+tok, nil)
		if r.status != http.StatusOK {
			t.Fatalf("status %d, want 200: %s", r.status, r.body)
		}
		if got := r.upstreamSaw(t).Get("X-Auth-Subject"); got != "alice" {
			t.Errorf("upstream X-Auth-Subject %q, want alice", got)
		}
	})

	// Every denial below must stop at nginx: the upstream is not asked.
	before := echo.hits.Load()

	t.Run("no token: 401 with WWW-Authenticate", func(t *testing.T) {
		r := nginxGet(t, base, "api.acme.test", "/orders", map[string]string{"X-Auth-Subject": "mallory"})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401: %s", r.status, r.body)
		}
		if got, want := r.header.Get("WWW-Authenticate"), `Bearer realm="acme"`; got != want {
			t.Errorf("WWW-Authenticate %q, want %q", got, want)
		}
	})

	t.Run("invalid token: 401 with the RFC 6750 error", func(t *testing.T) {
		tok := acme.token(t, "alice", nil)
		r := nginxGet(t, base, "api.acme.test", "/orders", map[string]string{"Authorization": "Bearer " + tok[:len(tok)-4] + "AAAA"})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401: %s", r.status, r.body)
		}
		if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate %q lacks error=\"invalid_token\"", got)
		}
	})

	tok := acme.token(t, "alice", nil)
	for _, tt := range []struct {
		name, host string
		headers    map[string]string
		want       int
	}{
		{"unknown host: 403", "nobody.test", map[string]string{"Authorization": "Bearer " + tok}, http.StatusForbidden},
		{"client's X-Forwarded-Host cannot pick the tenant", "nobody.test", map[string]string{
			"Authorization":    "Bearer " + tok,
			"X-Forwarded-Host": "api.acme.test",
		}, http.StatusForbidden},
		{"client's X-Forwarded-Uri cannot replace the original URI", "api.acme.test", map[string]string{
			"X-Forwarded-Uri":    "/orders?access_token=" + tok,
			"X-Forwarded-Method": "GET",
		}, http.StatusUnauthorized},
		{"identity provider down from cold: 503 at the client", "globex.test", map[string]string{"Authorization": "Bearer " + down.token(t, "bob", nil)}, http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if r := nginxGet(t, base, tt.host, "/orders", tt.headers); r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
		})
	}

	if got := echo.hits.Load(); got != before {
		t.Errorf("upstream received %d denied requests", got-before)
	}
}

// nginxStartExtauthz starts the real extauthz binary with the harness's
// configuration for ts, listen.http on a free loopback port and the
// top-level YAML extra, waits until that listener accepts connections and
// returns its address and the process.
func nginxStartExtauthz(t *testing.T, extra string, ts ...tenant) (string, *proc) {
	t.Helper()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	cfg := config(grpcAddr, caFile(t, ts[0].idp.srv), ts...)
	// The harness's config turns the admin listener off; add the HTTP one
	// to the same flow mapping.
	const off = `admin: ""}`
	if n := strings.Count(cfg, off); n != 1 {
		t.Fatalf("harness config has %d %q, want one listen mapping to extend:\n%s", n, off, cfg)
	}
	cfg = strings.Replace(cfg, off, `admin: "", http: `+strconv.Quote(httpAddr)+`}`, 1)
	// Ready (so the harness's wait for SERVING ends) with one provider of
	// two down from cold, as the 503 case needs.
	cfg += "readiness: {min_available_share: 0.5}\n" + extra
	p := start(t, grpcAddr, cfg)
	// Logged once the listener's socket is bound: connections are accepted
	// from then on.
	p.waitLog(fmt.Sprintf(`"msg":"serving","listen.http":%q`, httpAddr), 1)
	return httpAddr, p
}

// TestForwardAuth_EnvoyHTTPServiceThroughBinary asks the binary's HTTP
// listener the way Envoy's http_service does: the original Host, method
// and path behind forward_auth.path_prefix, no forwarded headers. It shows
// the forward_auth block reaches the listener.
func TestForwardAuth_EnvoyHTTPServiceThroughBinary(t *testing.T) {
	acme := newIdP(t, "ES256")
	addr, p := nginxStartExtauthz(t, "forward_auth: {path_prefix: /extauthz, trusted_proxies: [\"10.0.0.0/8\"]}\n",
		tenant{id: "acme", host: "api.acme.test", idp: acme,
			extra: `        from_headers: [{name: authorization, value_prefix: "Bearer "}]
        from_params: [access_token]
`})
	tok := acme.token(t, "alice", nil) // no email claim
	tests := []struct {
		name, path string
		headers    map[string]string
		want       int
	}{
		{"token in the query behind the prefix", "/extauthz/orders?access_token=" + tok, nil, 200},
		{"bearer token", "/extauthz/orders", map[string]string{"Authorization": "Bearer " + tok}, 200},
		{"no token", "/extauthz/orders", nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "prefix-" + strings.ReplaceAll(tt.name, " ", "-")
			headers := map[string]string{"X-Request-Id": id}
			for k, v := range tt.headers {
				headers[k] = v
			}
			r := nginxGet(t, "http://"+addr, "api.acme.test", tt.path, headers)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
			if tt.want != 200 {
				// This request's decision log line (found by its request
				// id: earlier requests logged the same path) names the
				// original path: the prefix from forward_auth.path_prefix
				// was stripped.
				p.waitLog(`"request_id":"`+id+`"`, 1)
				for _, line := range strings.Split(p.stderr.String(), "\n") {
					if strings.Contains(line, `"request_id":"`+id+`"`) && !strings.Contains(line, `"path":"/orders"`) {
						t.Errorf("decision logged without the prefix stripped: %s", line)
					}
				}
				return
			}
			if got := r.header.Get("X-Auth-Subject"); got != "alice" {
				t.Errorf("X-Auth-Subject %q, want alice", got)
			}
			if got := r.header.Get("X-Envoy-Auth-Headers-To-Remove"); got != "x-auth-email" {
				t.Errorf("x-envoy-auth-headers-to-remove %q, want x-auth-email", got)
			}
		})
	}
}
