package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/extauthz/extauthz/internal/checkclient"
	"github.com/extauthz/extauthz/internal/demo"
)

// metadataIdP is an HTTPS identity provider that serves only its OpenID
// Connect metadata document (at metaPath) and its key set (at every path
// under keysDir, so the document can move it).
type metadataIdP struct {
	*demo.IdP
	srv      *httptest.Server
	issuer   string // the IdP signs as issuer
	metaPath string
	keysDir  string
	down     atomic.Bool // the metadata document answers 503
	mu       sync.Mutex
	doc      []byte // the metadata document; nil: one naming issuer and jwksPath
	jwksPath string
	hits     map[string]int
}

// newMetadataIdP is a Keycloak-like provider: issuer /realms/acme, key
// set at /keys/v1.
func newMetadataIdP(t *testing.T) *metadataIdP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	return startMetadataIdP(t, &metadataIdP{
		srv: srv, issuer: "https://" + srv.Listener.Addr().String() + "/realms/acme",
		metaPath: "/realms/acme/.well-known/openid-configuration", keysDir: "/keys/", jwksPath: "/keys/v1",
	})
}

// startMetadataIdP makes i's signer and starts i.srv (unstarted) serving i.
func startMetadataIdP(t *testing.T, i *metadataIdP) *metadataIdP {
	t.Helper()
	p, err := demo.NewIdP(demo.IdPOptions{Issuer: i.issuer, Audience: "orders", Algorithm: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	i.IdP, i.hits = p, map[string]int{}
	i.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.mu.Lock()
		i.hits[r.URL.Path]++
		jwksPath, doc := i.jwksPath, i.doc
		i.mu.Unlock()
		switch {
		case r.URL.Path == i.metaPath && i.down.Load():
			http.Error(w, "down", http.StatusServiceUnavailable)
		case r.URL.Path == i.metaPath:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "max-age=300")
			if doc != nil {
				_, _ = w.Write(doc)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{
				"issuer":                                i.issuer,
				"jwks_uri":                              i.srv.URL + jwksPath,
				"id_token_signing_alg_values_supported": []string{"RS256", "HS256"},
			})
		case strings.HasPrefix(r.URL.Path, i.keysDir):
			w.Header().Set("Content-Type", "application/jwk-set+json")
			_, _ = w.Write(p.JWKS())
		default:
			http.NotFound(w, r)
		}
	})
	i.srv.StartTLS()
	t.Cleanup(i.srv.Close)
	return i
}

func (i *metadataIdP) hitsOf(path string) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hits[path]
}

// TestDiscovery_ProviderConfiguredByIssuerAlone runs the real binary with
// a provider that has an issuer and no jwks_url, beside a multi-tenant
// provider with an issuer_template: -check fetches nothing; the metadata
// server down from cold is 503 jwks_unavailable; once it is up, tokens
// verify with keys from the discovered jwks_uri, which the admin API and
// the metrics show; a moved jwks_uri is followed without a refused Check;
// warm, a metadata outage leaves the keys serving.
func TestDiscovery_ProviderConfiguredByIssuerAlone(t *testing.T) {
	idp := newMetadataIdP(t)
	idp.down.Store(true)
	addr, adminAddr := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`listen: {grpc: %q, admin: %q}
log: {level: debug}
admin: {refresh_min_interval: 1s}
jwks:
  ca_file: %q
tenants:
  - id: acme
    hosts: [api.acme.test]
    providers:
      - id: main
        issuer: %q
        audiences: [orders]
        algorithms: [ES256]
        retry_policy: {max_retries: 0, attempt_timeout: 2s, deadline: 2s}
      - id: entra
        issuer_template: %q
        template_values: [contoso]
        jwks_url: %q
        audiences: [orders]
        algorithms: [ES256]
        claims_to_headers: {tid: x-directory}
`, addr, adminAddr, caFile(t, idp.srv), idp.issuer, "https://"+idp.srv.Listener.Addr().String()+"/{tid}/v2.0", idp.srv.URL+"/keys/fixed")
	path := t.TempDir() + "/extauthz.yaml"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "-config", path, "-check"); code != 0 {
		t.Fatalf("-check exit %d: %s", code, stderr)
	}
	if n := idp.hitsOf("/realms/acme/.well-known/openid-configuration"); n != 0 {
		t.Fatalf("-check fetched the metadata %d times", n)
	}

	p := launchConfig(t, addr, cfg)
	// Ready although main has no keys: readiness.min_available_share is off.
	p.waitHealth(healthpb.HealthCheckResponse_SERVING)
	base := "http://" + adminAddr
	tok, err := idp.Mint("alice", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Cold, with the metadata server down: 503, never 401.
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: tok}); res.Reason != "jwks_unavailable" || res.HTTPStatus != http.StatusServiceUnavailable {
		t.Fatalf("cold, metadata down: %s %d, want jwks_unavailable 503", res.Reason, res.HTTPStatus)
	}
	idp.down.Store(false)
	if res := forceRefresh(t, base); res.status != http.StatusOK {
		t.Fatalf("forced refresh: %d %s", res.status, res.body)
	}
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: tok}); !res.Allowed {
		t.Fatalf("after discovery: %s, want allowed", res.Reason)
	}
	wantURI := func(uri string) {
		t.Helper()
		res := adminDo(http.MethodGet, base+"/v1/providers/acme/main")
		var st struct {
			Discovery *struct {
				URL       string  `json:"url"`
				JWKSURI   string  `json:"jwks_uri"`
				ExpiresAt string  `json:"expires_at"`
				LastError *string `json:"last_error"`
			} `json:"discovery"`
		}
		if err := json.Unmarshal([]byte(res.body), &st); err != nil || st.Discovery == nil || st.Discovery.JWKSURI != uri || st.Discovery.ExpiresAt == "" {
			t.Fatalf("admin status %d %s: want discovery.jwks_uri %s", res.status, res.body, uri)
		}
		m := adminDo(http.MethodGet, base+"/metrics")
		if !strings.Contains(m.body, fmt.Sprintf(`jwks_cache_discovered_jwks_uri_info{jwks_uri=%q,provider="main",tenant="acme"} 1`, uri)) ||
			!strings.Contains(m.body, `jwks_cache_metadata_expires_at_seconds{provider="main",tenant="acme"}`) {
			t.Fatalf("metrics lack the discovered jwks_uri %s or the metadata expiry", uri)
		}
	}
	wantURI(idp.srv.URL + "/keys/v1")

	// The multi-tenant provider: a token of a listed directory passes, with
	// its value in the metadata and its claim header; another does not.
	claims := idp.Claims("bob", time.Hour)
	claims["iss"] = "https://" + idp.srv.Listener.Addr().String() + "/contoso/v2.0"
	claims["tid"] = "contoso"
	res := p.check(checkclient.Request{Host: "api.acme.test", Token: mint(t, idp.IdP, claims)})
	if !res.Allowed || res.Metadata.GetFields()["issuer_values"].GetStructValue().GetFields()["tid"].GetStringValue() != "contoso" || !hasHeader(res.Headers, "x-directory", "contoso") {
		t.Fatalf("templated issuer: allowed %v (%s), metadata %v, headers %v", res.Allowed, res.Reason, res.Metadata, res.Headers)
	}
	claims["iss"] = "https://" + idp.srv.Listener.Addr().String() + "/evilcorp/v2.0"
	claims["tid"] = "evilcorp"
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: mint(t, idp.IdP, claims)}); res.Reason != "issuer_unknown" {
		t.Fatalf("unlisted directory: %s, want issuer_unknown", res.Reason)
	}

	// The document moves the key set; Checks run throughout the move.
	stop := make(chan struct{})
	refused := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			res, err := checkclient.Check(ctx, authv3.NewAuthorizationClient(p.conn), checkclient.Request{Host: "api.acme.test", Token: tok})
			cancel()
			if err != nil {
				res.Reason = err.Error()
			}
			if !res.Allowed {
				select {
				case refused <- res.Reason:
				default:
				}
			}
		}
	})
	idp.mu.Lock()
	idp.jwksPath = "/keys/v2"
	idp.mu.Unlock()
	if res := forceRefresh(t, base); res.status != http.StatusOK {
		t.Fatalf("forced refresh after the move: %d %s", res.status, res.body)
	}
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: tok}); !res.Allowed {
		t.Fatalf("after the move: %s", res.Reason)
	}
	close(stop)
	wg.Wait()
	select {
	case r := <-refused:
		t.Fatalf("a Check was refused (%s) while the jwks_uri moved", r)
	default:
	}
	if idp.hitsOf("/keys/v2") == 0 {
		t.Fatal("the new jwks_uri was never fetched")
	}
	wantURI(idp.srv.URL + "/keys/v2")

	// Warm, the metadata server goes down: the keys keep serving.
	idp.down.Store(true)
	forceRefresh(t, base)
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: tok}); !res.Allowed {
		t.Fatalf("warm, metadata down: %s, want allowed", res.Reason)
	}
	if res := adminDo(http.MethodGet, base+"/v1/providers/acme/main"); !strings.Contains(res.body, `"last_error":"metadata`) && !strings.Contains(res.body, "503") {
		t.Fatalf("admin status does not show the metadata error: %s", res.body)
	}
}

// forceRefresh asks the admin API for a refresh of acme/main, again while
// it answers 429 (refresh_min_interval), and returns the final answer.
func forceRefresh(t *testing.T, base string) adminResponse {
	t.Helper()
	var res adminResponse
	eventually(t, func() bool {
		res = adminDo(http.MethodPost, base+"/v1/providers/acme/main/refresh")
		return res.status != http.StatusTooManyRequests
	}, "a forced refresh not refused as too soon (last: %s)", &res.body)
	return res
}

func hasHeader(hs []checkclient.Header, name, value string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) && h.Value == value {
			return true
		}
	}
	return false
}

// TestDiscovery_IssuerTemplateFromDiscoveryURL runs the real binary with a
// multi-tenant provider configured by issuer_template and discovery_url
// alone, against an HTTPS identity provider that serves only Microsoft
// Entra's shared ("common") metadata document, whose issuer names the
// placeholder {tenantid}, and the key set it names: -check fetches
// nothing; a token of a listed directory verifies with keys from the
// discovered jwks_uri, its directory in the metadata and a header; a token
// of another directory, or whose tid disagrees with its iss, is refused;
// the admin API shows the discovered jwks_uri; a document naming another
// issuer is refused (503 once the set it gave expires, never keys from it).
func TestDiscovery_IssuerTemplateFromDiscoveryURL(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	host := srv.Listener.Addr().String()
	raw, err := os.ReadFile("../testdata/discovery/entra-common.json")
	if err != nil {
		t.Fatal(err)
	}
	const metaPath, keysPath = "/common/v2.0/.well-known/openid-configuration", "/common/discovery/v2.0/keys"
	idp := startMetadataIdP(t, &metadataIdP{
		srv: srv, issuer: "https://" + host + "/contoso/v2.0", metaPath: metaPath, keysDir: keysPath,
		doc: []byte(strings.ReplaceAll(string(raw), "{{HOST}}", host)),
	})

	addr, adminAddr := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`listen: {grpc: %q, admin: %q}
admin: {refresh_min_interval: 1s}
jwks:
  ca_file: %q
tenants:
  - id: acme
    hosts: [api.acme.test]
    providers:
      - id: main
        issuer_template: %q
        template_values: [contoso, fabrikam]
        discovery_url: %q
        audiences: [orders]
        algorithms: [ES256]
        claims_to_headers: {tid: x-directory}
`, addr, adminAddr, caFile(t, srv), "https://"+host+"/{tid}/v2.0", srv.URL+metaPath)
	path := t.TempDir() + "/extauthz.yaml"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "-config", path, "-check"); code != 0 {
		t.Fatalf("-check exit %d: %s", code, stderr)
	}
	if n := idp.hitsOf(metaPath) + idp.hitsOf(keysPath); n != 0 {
		t.Fatalf("-check made %d requests to the identity provider", n)
	}

	p := start(t, addr, cfg)
	token := func(dir, tid string) string {
		claims := idp.Claims("bob", time.Hour)
		claims["iss"] = "https://" + host + "/" + dir + "/v2.0"
		claims["tid"] = tid
		return mint(t, idp.IdP, claims)
	}
	var res checkclient.Result
	eventually(t, func() bool {
		res = p.check(checkclient.Request{Host: "api.acme.test", Token: token("contoso", "contoso")})
		return res.Allowed
	}, "a listed directory's token is never allowed (last: %s)", &res.Reason)
	if res.Metadata.GetFields()["issuer_values"].GetStructValue().GetFields()["tid"].GetStringValue() != "contoso" || !hasHeader(res.Headers, "x-directory", "contoso") {
		t.Fatalf("listed directory: metadata %v, headers %v; want tid contoso in both", res.Metadata, res.Headers)
	}
	if res := p.check(checkclient.Request{Host: "api.acme.test", Token: token("fabrikam", "fabrikam")}); !res.Allowed {
		t.Fatalf("second listed directory: %s", res.Reason)
	}
	for name, tok := range map[string]string{
		"unlisted directory":     token("evilcorp", "evilcorp"),
		"tid disagrees with iss": token("contoso", "evilcorp"),
	} {
		if res := p.check(checkclient.Request{Host: "api.acme.test", Token: tok}); res.Allowed || res.Reason != "issuer_unknown" {
			t.Errorf("%s: allowed %v (%s), want issuer_unknown", name, res.Allowed, res.Reason)
		}
	}
	if idp.hitsOf(metaPath) == 0 || idp.hitsOf(keysPath) == 0 {
		t.Fatalf("metadata fetched %d times, keys %d times: the keys were not discovered", idp.hitsOf(metaPath), idp.hitsOf(keysPath))
	}
	base := "http://" + adminAddr
	st := adminDo(http.MethodGet, base+"/v1/providers/acme/main")
	if !strings.Contains(st.body, fmt.Sprintf(`"jwks_uri":%q`, srv.URL+keysPath)) {
		t.Fatalf("admin status lacks the discovered jwks_uri %s: %s", srv.URL+keysPath, st.body)
	}

	// The document now names another issuer: a forced refresh refuses it
	// and fetches no keys from it; the last verified jwks_uri stays.
	idp.mu.Lock()
	idp.doc = []byte(strings.ReplaceAll(string(idp.doc), "https://"+host+"/{tenantid}/v2.0", "https://evil.test/{tenantid}/v2.0"))
	rewritten := strings.Contains(string(idp.doc), "evil.test")
	idp.mu.Unlock()
	if !rewritten {
		t.Fatal("the fixture's issuer was not rewritten")
	}
	forceRefresh(t, base)
	st = adminDo(http.MethodGet, base+"/v1/providers/acme/main")
	if !strings.Contains(st.body, "metadata issuer differs") || !strings.Contains(st.body, fmt.Sprintf(`"jwks_uri":%q`, srv.URL+keysPath)) {
		t.Fatalf("admin status after a document naming another issuer: %s", st.body)
	}
}
