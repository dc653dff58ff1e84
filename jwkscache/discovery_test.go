package jwkscache_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// idpServer is a real HTTPS identity provider that serves only metadata
// documents and key sets, by path.
type idpServer struct {
	*httptest.Server

	mu         sync.Mutex
	meta       map[string][]byte // path → metadata document
	metaStatus int               // when set, every metadata request gets it
	metaCC     string            // Cache-Control of metadata
	metaETag   string
	jwks       map[string][]byte // path → key set
	jwksETag   map[string]string
	gate       map[string]chan struct{} // path → closed when the request may be answered
	requested  chan string              // paths, as requests arrive
	hits       map[string]int
	conditions map[string][]string // path → If-None-Match of each request
	redirect   map[string]string   // path → Location of a 302
}

func newIDPServer(t testing.TB) *idpServer {
	t.Helper()
	s := &idpServer{
		meta: map[string][]byte{}, jwks: map[string][]byte{}, jwksETag: map[string]string{},
		gate: map[string]chan struct{}{}, requested: make(chan string, 100),
		hits: map[string]int{}, conditions: map[string][]string{}, metaCC: "max-age=60", redirect: map[string]string{},
	}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *idpServer) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	s.mu.Lock()
	s.hits[p]++
	s.conditions[p] = append(s.conditions[p], r.Header.Get("If-None-Match"))
	gate := s.gate[p]
	meta, isMeta := s.meta[p]
	status, cc, metaETag := s.metaStatus, s.metaCC, s.metaETag
	keys, isKeys := s.jwks[p]
	keysETag := s.jwksETag[p]
	location := s.redirect[p]
	s.mu.Unlock()
	select {
	case s.requested <- p:
	default:
	}
	if gate != nil {
		<-gate
	}
	switch {
	case location != "":
		http.Redirect(w, r, location, http.StatusFound)
	case isMeta && status != 0:
		w.WriteHeader(status)
	case isMeta:
		w.Header().Set("Cache-Control", cc)
		if metaETag != "" {
			w.Header().Set("ETag", metaETag)
			if r.Header.Get("If-None-Match") == metaETag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(meta)
	case isKeys:
		w.Header().Set("Cache-Control", "max-age=3600")
		if keysETag != "" {
			w.Header().Set("ETag", keysETag)
			if r.Header.Get("If-None-Match") == keysETag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		_, _ = w.Write(keys)
	default:
		http.NotFound(w, r)
	}
}

func (s *idpServer) set(f func(s *idpServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *idpServer) hitsOf(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// host is the server's host:port, which replaces {{HOST}} in fixtures.
func (s *idpServer) host() string { return strings.TrimPrefix(s.URL, "https://") }

// vendorDoc loads testdata/discovery/name.json with {{HOST}} rewritten to
// the test server, and returns it with its issuer and jwks_uri.
func (s *idpServer) vendorDoc(t testing.TB, name string) (doc []byte, issuer, jwksURI string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "discovery", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	doc = []byte(strings.ReplaceAll(string(raw), "{{HOST}}", s.host()))
	var fields struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(doc, &fields); err != nil {
		t.Fatal(err)
	}
	return doc, fields.Issuer, fields.JWKSURI
}

// oidcPath is where an OpenID provider at a host's root serves its
// discovery document.
const oidcPath = "/.well-known/openid-configuration"

// publishKey makes s an OpenID provider whose issuer is its own URL: the
// discovery document names s.URL+"/keys" as jwks_uri, where key is served
// as kid k1 (ES256). Call it inside set.
func (s *idpServer) publishKey(t testing.TB, key *ecdsa.PrivateKey) {
	s.meta[oidcPath] = metaDoc(t, s.URL, s.URL+"/keys")
	s.jwks["/keys"] = jwksDoc(t, jwkJSON(t, &key.PublicKey, "k1", "ES256"))
}

// metaDoc is a minimal metadata document.
func metaDoc(t testing.TB, issuer, jwksURI string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"issuer": issuer, "jwks_uri": jwksURI, "id_token_signing_alg_values_supported": []string{"RS256"}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pathOf(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

// discoveryFixture is a registry on a fake clock whose provider acme/main
// discovers its keys from idp.
type discoveryFixture struct {
	*fixture
	idp *idpServer
	du  string // the OpenID discovery URL of the issuer idp.URL
}

func newDiscoveryFixture(t testing.TB, mutate ...func(*jwkscache.Options)) *discoveryFixture {
	t.Helper()
	idp := newIDPServer(t)
	f := newFixture(t, &jwksServer{Server: idp.Server}, mutate...)
	du, err := jwkscache.DiscoveryURL(idp.URL, false)
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryFixture{fixture: f, idp: idp, du: du}
}

func (f *discoveryFixture) registration(issuer, discoveryURL string, mutate ...func(*jwkscache.Registration)) jwkscache.Registration {
	reg := f.reg.NewRegistration("acme", "main", "")
	reg.Issuer, reg.DiscoveryURL = issuer, discoveryURL
	reg.RetryPolicy.MaxRetries = 0
	for _, m := range mutate {
		m(&reg)
	}
	return reg
}

func (f *discoveryFixture) registerDiscovery(t testing.TB, issuer, discoveryURL string, mutate ...func(*jwkscache.Registration)) jwkscache.RefreshEvent {
	t.Helper()
	if err := f.reg.Register(context.Background(), f.registration(issuer, discoveryURL, mutate...)); err != nil {
		t.Fatal(err)
	}
	return f.next(t)
}

// newMovingFixture returns a discovery fixture whose document names the
// jwks_uri /keys/v1, serving oldKey as kid "old", while /keys/v2 already
// serves newKey as kid "new" for when moveJWKSURI points the document there.
func newMovingFixture(t testing.TB) (f *discoveryFixture, oldKey, newKey *ecdsa.PrivateKey) {
	t.Helper()
	f = newDiscoveryFixture(t)
	oldKey, newKey = newECKey(t), newECKey(t)
	f.idp.set(func(s *idpServer) {
		s.meta[oidcPath] = metaDoc(t, s.URL, s.URL+"/keys/v1")
		s.jwks["/keys/v1"] = jwksDoc(t, jwkJSON(t, &oldKey.PublicKey, "old", "ES256"))
		s.jwks["/keys/v2"] = jwksDoc(t, jwkJSON(t, &newKey.PublicKey, "new", "ES256"))
	})
	return f, oldKey, newKey
}

// moveJWKSURI makes the document of a newMovingFixture name /keys/v2. Call
// it inside set.
func (s *idpServer) moveJWKSURI(t testing.TB) {
	s.meta[oidcPath] = metaDoc(t, s.URL, s.URL+"/keys/v2")
}

// newRevalidatingFixture returns a discovery fixture whose identity
// provider publishes key (publishKey) with the ETag "v1", so that a key set
// refresh is a conditional request answered 304.
func newRevalidatingFixture(t testing.TB) (*discoveryFixture, *ecdsa.PrivateKey) {
	t.Helper()
	key := newECKey(t)
	f := newDiscoveryFixture(t)
	f.idp.set(func(s *idpServer) {
		s.publishKey(t, key)
		s.jwksETag["/keys"] = `"v1"`
	})
	return f, key
}

// registerIDP registers idp.URL as the issuer, discovered at f.du, and
// waits for the first refresh.
func (f *discoveryFixture) registerIDP(t testing.TB, mutate ...func(*jwkscache.Registration)) jwkscache.RefreshEvent {
	t.Helper()
	return f.registerDiscovery(t, f.idp.URL, f.du, mutate...)
}

func TestDiscoveryURL(t *testing.T) {
	tests := []struct {
		issuer    string
		oauth     bool
		want      string
		wantError bool
	}{
		{"https://accounts.google.test", false, "https://accounts.google.test/.well-known/openid-configuration", false},
		{"https://tenant.auth0.test/", false, "https://tenant.auth0.test/.well-known/openid-configuration", false},
		{"https://kc.test/realms/acme", false, "https://kc.test/realms/acme/.well-known/openid-configuration", false},
		{"https://kc.test/realms/acme/", false, "https://kc.test/realms/acme/.well-known/openid-configuration", false},
		// RFC 8414 §3.1: inserted between host and path.
		{"https://okta.test/oauth2/default", true, "https://okta.test/.well-known/oauth-authorization-server/oauth2/default", false},
		{"https://as.test:8443", true, "https://as.test:8443/.well-known/oauth-authorization-server", false},
		{"https://as.test/", true, "https://as.test/.well-known/oauth-authorization-server", false},
		{"https://as.test/?tenant=1", false, "", true},
		{"https://as.test/#x", false, "", true},
		{"/relative", false, "", true},
		{"https://user@as.test/", false, "", true},
	}
	for _, tt := range tests {
		got, err := jwkscache.DiscoveryURL(tt.issuer, tt.oauth)
		if (err != nil) != tt.wantError || got != tt.want {
			t.Errorf("DiscoveryURL(%q, oauth %v) = %q, %v; want %q (error %v)", tt.issuer, tt.oauth, got, err, tt.want, tt.wantError)
		}
	}
}

// TestDiscovery_VendorDocuments discovers the key set from the metadata
// documents of real identity providers, as their documentation shows them.
func TestDiscovery_VendorDocuments(t *testing.T) {
	key := newECKey(t)
	tests := []struct {
		vendor string
		oauth  bool   // RFC 8414 location
		issuer string // configured; "" is the document's own
	}{
		{vendor: "keycloak"},
		{vendor: "entra"},
		{vendor: "google"},
		{vendor: "auth0"},
		{vendor: "okta"},
		{vendor: "okta", oauth: true},
		// Entra's multi-tenant document names its issuer with a
		// placeholder; an issuer_template with another name matches it.
		{vendor: "entra-common", issuer: "https://{{HOST}}/{tid}/v2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.vendor, func(t *testing.T) {
			f := newDiscoveryFixture(t)
			doc, docIssuer, jwksURI := f.idp.vendorDoc(t, tt.vendor)
			issuer := docIssuer
			if tt.issuer != "" {
				issuer = strings.ReplaceAll(tt.issuer, "{{HOST}}", f.idp.host())
			}
			lookup := docIssuer
			if tt.issuer != "" {
				lookup = strings.ReplaceAll(docIssuer, "{tenantid}", "common")
			}
			du, err := jwkscache.DiscoveryURL(lookup, tt.oauth)
			if err != nil {
				t.Fatal(err)
			}
			f.idp.set(func(s *idpServer) {
				s.meta[pathOf(t, du)] = doc
				s.jwks[pathOf(t, jwksURI)] = jwksDoc(t, jwkJSON(t, &key.PublicKey, "k1", "ES256"))
			})
			ev := f.registerDiscovery(t, issuer, du)
			if ev.Result != "fetched" {
				t.Fatalf("first refresh = %s (%v), want fetched", ev.Result, ev.Err)
			}
			f.mustKey(t, "k1", key)
			st := f.status(t)
			if st.JWKSURI != jwksURI || st.DiscoveryURL != du || !st.MetadataFetchedAt.Equal(t0) || !st.MetadataExpiresAt.Equal(t0.Add(time.Minute)) || st.MetadataError != "" {
				t.Fatalf("status: discovery %q, jwks_uri %q, metadata %s..%s, error %q; want %q, %q, %s..%s",
					st.DiscoveryURL, st.JWKSURI, st.MetadataFetchedAt, st.MetadataExpiresAt, st.MetadataError, du, jwksURI, t0, t0.Add(time.Minute))
			}
		})
	}
}

// TestDiscovery_RefusedDocuments: a document naming another issuer, or a
// jwks_uri that a configured jwks_url could not be, is refused before any
// key is fetched, and from cold that is ErrUnavailable (503), never a
// client error.
func TestDiscovery_RefusedDocuments(t *testing.T) {
	tests := []struct {
		name    string
		issuer  func(base string) string // the document's
		jwksURI func(base string) string
		mutate  func(*jwkscache.Registration)
		want    string
	}{
		{"issuer differs", func(b string) string { return b + "/other" }, func(b string) string { return b + "/keys" }, nil, "differs from the configured issuer"},
		{"issuer differs by a trailing slash", func(b string) string { return b + "/" }, func(b string) string { return b + "/keys" }, nil, "differs from the configured issuer"},
		{"jwks_uri outside the allowlist", func(b string) string { return b }, func(string) string { return "https://evil.test/keys" },
			func(r *jwkscache.Registration) { r.AllowedDomains = []string{"127.0.0.1"} }, `host "evil.test" is not inside the allowed domains`},
		{"jwks_uri over http", func(b string) string { return b }, func(b string) string { return "http" + strings.TrimPrefix(b, "https") + "/keys" }, nil, "must use https"},
		{"jwks_uri relative", func(b string) string { return b }, func(string) string { return "/keys" }, nil, "not an absolute URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDiscoveryFixture(t)
			f.idp.set(func(s *idpServer) {
				s.publishKey(t, newECKey(t))
				// The same key set, under a document the registration refuses.
				s.meta[oidcPath] = metaDoc(t, tt.issuer(s.URL), tt.jwksURI(s.URL))
			})
			var mutate []func(*jwkscache.Registration)
			if tt.mutate != nil {
				mutate = append(mutate, tt.mutate)
			}
			ev := f.registerIDP(t, mutate...)
			if ev.Result != "error" {
				t.Fatalf("first refresh = %s, want error", ev.Result)
			}
			_, err := f.key("k1", "ES256")
			wantErr(t, err, jwkscache.ErrUnavailable)
			if st := f.status(t); !strings.Contains(st.MetadataError, tt.want) || st.JWKSURI != "" {
				t.Fatalf("status: metadata error %q, jwks_uri %q; want an error containing %q and no jwks_uri", st.MetadataError, st.JWKSURI, tt.want)
			}
			if n := f.idp.hitsOf("/keys"); n != 0 {
				t.Fatalf("key set fetched %d times from a refused document", n)
			}
		})
	}
}

// TestDiscovery_MetadataDown: from cold, a metadata server that fails is
// ErrUnavailable; warm, the keys keep serving and being revalidated at the
// last verified jwks_uri.
func TestDiscovery_MetadataDown(t *testing.T) {
	f, key := newRevalidatingFixture(t)
	f.idp.set(func(s *idpServer) { s.metaStatus = http.StatusServiceUnavailable })
	if ev := f.registerIDP(t); ev.Result != "error" {
		t.Fatalf("cold refresh = %s, want error", ev.Result)
	}
	_, err := f.key("k1", "ES256")
	wantErr(t, err, jwkscache.ErrUnavailable)

	// The server recovers: the retry (after backoff) discovers and fetches.
	f.idp.set(func(s *idpServer) { s.metaStatus = 0 })
	if ev, _ := f.drive(t, time.Minute); ev.Result != "fetched" {
		t.Fatalf("refresh after recovery = %s (%v), want fetched", ev.Result, ev.Err)
	}
	f.mustKey(t, "k1", key)

	// Down again while warm: the scheduled refresh at the metadata's
	// expiry keeps the jwks_uri and revalidates the keys.
	f.idp.set(func(s *idpServer) { s.metaStatus = http.StatusInternalServerError })
	ev, _ := f.drive(t, 2*time.Minute)
	if ev.Result != "not_modified" {
		t.Fatalf("warm refresh with metadata down = %s (%v), want not_modified", ev.Result, ev.Err)
	}
	f.mustKey(t, "k1", key)
	if st := f.status(t); !strings.Contains(st.MetadataError, "503") && !strings.Contains(st.MetadataError, "500") || st.JWKSURI != f.idp.URL+"/keys" {
		t.Fatalf("status: metadata error %q, jwks_uri %q", st.MetadataError, st.JWKSURI)
	}
}

// TestDiscovery_MetadataCachedLikeKeySets: the document is revalidated with
// its ETag, and its lifetime comes from Cache-Control clamped to
// [min_ttl, max_ttl].
func TestDiscovery_MetadataCachedLikeKeySets(t *testing.T) {
	tests := []struct {
		cc   string
		want time.Duration
	}{
		{"max-age=5", 30 * time.Second},    // min_ttl
		{"max-age=600", 10 * time.Minute},  // as sent
		{"max-age=999999", 24 * time.Hour}, // max_ttl
		{"no-store", 30 * time.Second},     // min_ttl
	}
	for _, tt := range tests {
		t.Run(tt.cc, func(t *testing.T) {
			f := newDiscoveryFixture(t)
			f.idp.set(func(s *idpServer) {
				s.publishKey(t, newECKey(t))
				s.metaCC, s.metaETag = tt.cc, `"m1"`
			})
			f.registerIDP(t, func(r *jwkscache.Registration) { r.RefreshEarly = 10 * time.Second })
			if st := f.status(t); !st.MetadataExpiresAt.Equal(t0.Add(tt.want)) {
				t.Fatalf("metadata expires %s, want %s", st.MetadataExpiresAt.Sub(t0), tt.want)
			}
			f.clk.Advance(tt.want)
			if ev := f.next(t); ev.Result == "error" {
				t.Fatalf("refresh at metadata expiry: %v", ev.Err)
			}
			f.idp.mu.Lock()
			conds := f.idp.conditions[oidcPath]
			f.idp.mu.Unlock()
			if len(conds) != 2 || conds[1] != `"m1"` {
				t.Fatalf("metadata requests' If-None-Match = %q, want a second, conditional request", conds)
			}
			if st := f.status(t); !st.MetadataFetchedAt.Equal(t0.Add(tt.want)) || st.MetadataError != "" {
				t.Fatalf("after the 304: metadata fetched %s, error %q", st.MetadataFetchedAt.Sub(t0), st.MetadataError)
			}
		})
	}
}

// TestDiscovery_JWKSURIMovesWithoutGap: when the document names a new
// jwks_uri, the old keys keep verifying while the new set is fetched (in
// full: the old URL's validators mean nothing to the new one), and then
// the new set serves.
func TestDiscovery_JWKSURIMovesWithoutGap(t *testing.T) {
	f, oldKey, newKey := newMovingFixture(t)
	f.idp.set(func(s *idpServer) {
		s.jwksETag["/keys/v1"] = `"same"`
		s.jwksETag["/keys/v2"] = `"same"`
	})
	f.registerIDP(t)
	f.mustKey(t, "old", oldKey)

	gate := make(chan struct{})
	f.idp.set(func(s *idpServer) {
		s.moveJWKSURI(t)
		s.gate["/keys/v2"] = gate
	})
	for len(f.idp.requested) > 0 {
		<-f.idp.requested
	}
	d, ok := f.clk.Next()
	if !ok || d != time.Minute {
		t.Fatalf("next timer in %s, want the metadata's expiry (1m)", d)
	}
	f.clk.Advance(d)
	for p := range f.idp.requested {
		if p == "/keys/v2" {
			break
		}
	}
	// The new set is being fetched: the old key still verifies.
	f.mustKey(t, "old", oldKey)
	close(gate)
	if ev := f.next(t); ev.Result != "fetched" {
		t.Fatalf("refresh at the new jwks_uri = %s (%v), want fetched", ev.Result, ev.Err)
	}
	f.mustKey(t, "new", newKey)
	_, err := f.key("old", "ES256")
	wantErr(t, err, jwkscache.ErrKeyNotFound)
	if st := f.status(t); st.JWKSURI != f.idp.URL+"/keys/v2" {
		t.Fatalf("jwks_uri = %q, want the new one", st.JWKSURI)
	}
	f.idp.mu.Lock()
	conds := f.idp.conditions["/keys/v2"]
	f.idp.mu.Unlock()
	if len(conds) == 0 || conds[0] != "" {
		t.Fatalf("new jwks_uri's If-None-Match = %q, want an unconditional first request", conds)
	}
}

// TestDiscovery_Validate: a discovering registration needs an issuer and
// a discovery URL that passes the jwks_url guards, and no jwks_url.
func TestDiscovery_Validate(t *testing.T) {
	f := newDiscoveryFixture(t, func(o *jwkscache.Options) { o.AllowedDomains = []string{"idp.test"} })
	tests := []struct {
		name   string
		reg    jwkscache.Registration
		fields []string
	}{
		{"valid", f.registration("https://idp.test", "https://idp.test/.well-known/openid-configuration"), nil},
		{"no issuer", f.registration("", "https://idp.test/.well-known/openid-configuration"), []string{"issuer"}},
		{"http", f.registration("https://idp.test", "http://idp.test/.well-known/openid-configuration"), []string{"discovery_url"}},
		{"outside the allowlist", f.registration("https://evil.test", "https://evil.test/.well-known/openid-configuration"), []string{"discovery_url"}},
		{"both", f.registration("https://idp.test", "https://idp.test/.well-known/openid-configuration", func(r *jwkscache.Registration) { r.JWKSURL = "https://idp.test/keys" }), []string{"jwks_url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range problems(f.reg.Validate(tt.reg)) {
				got = append(got, e.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Fatalf("fields = %v, want %v", got, tt.fields)
			}
		})
	}
}

func problems(err error) []*jwkscache.FieldError {
	if err == nil {
		return nil
	}
	var out []*jwkscache.FieldError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		out = append(out, e.(*jwkscache.FieldError))
	}
	return out
}

// TestDiscovery_RefreshRereadsMetadata: a forced refresh fetches the
// metadata document again although it is fresh, and follows a new jwks_uri.
func TestDiscovery_RefreshRereadsMetadata(t *testing.T) {
	f, _, newKey := newMovingFixture(t)
	f.idp.set(func(s *idpServer) { s.metaCC = "max-age=3600" })
	f.registerIDP(t)
	f.idp.set(func(s *idpServer) { s.moveJWKSURI(t) })
	if err := f.reg.Refresh(context.Background(), "acme", "main"); err != nil {
		t.Fatal(err)
	}
	f.mustKey(t, "new", newKey)
	if n := f.idp.hitsOf(oidcPath); n != 2 {
		t.Fatalf("metadata fetched %d times, want 2", n)
	}
}

// TestDiscovery_FetchGuards: the metadata document and the key set at its
// jwks_uri are fetched under the provider's guards: SPKI pins, the size
// limit and the redirect rules.
func TestDiscovery_FetchGuards(t *testing.T) {
	other := sha256.Sum256([]byte("another key"))
	tests := []struct {
		name   string
		setup  func(s *idpServer, base string)
		mutate func(*jwkscache.Registration)
		want   string // in the refresh error
	}{
		{"pin mismatch", nil, func(r *jwkscache.Registration) { r.PinnedSPKI = []string{base64.StdEncoding.EncodeToString(other[:])} }, "pinned_spki"},
		{"metadata over max_response_bytes", func(s *idpServer, base string) {
			s.meta[oidcPath] = []byte(`{"issuer":"` + base + `","jwks_uri":"` + base + `/keys","pad":"` + strings.Repeat("x", 2048) + `"}`)
		}, func(r *jwkscache.Registration) { r.MaxResponseBytes = 1024 }, "max_response_bytes"},
		{"jwks_uri redirected past max_redirects", func(s *idpServer, base string) {
			s.meta[oidcPath] = metaDoc(t, base, base+"/moved")
			s.redirect["/moved"] = base + "/keys"
		}, func(r *jwkscache.Registration) { r.MaxRedirects = 0 }, "max_redirects"},
		{"jwks_uri redirected outside the allowlist", func(s *idpServer, base string) {
			s.meta[oidcPath] = metaDoc(t, base, base+"/moved")
			s.redirect["/moved"] = "https://evil.test/keys"
		}, func(r *jwkscache.Registration) { r.AllowedDomains = []string{"127.0.0.1"} }, "outside the allowed domains"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDiscoveryFixture(t)
			f.idp.set(func(s *idpServer) {
				s.publishKey(t, newECKey(t))
				if tt.setup != nil {
					tt.setup(s, s.URL)
				}
			})
			ev := f.registerIDP(t, tt.mutate)
			if ev.Err == nil || !strings.Contains(ev.Err.Error(), tt.want) {
				t.Fatalf("first refresh error %v, want one about %s", ev.Err, tt.want)
			}
			_, err := f.key("k1", "ES256")
			wantErr(t, err, jwkscache.ErrUnavailable)
			if n := f.idp.hitsOf("/keys"); n != 0 {
				t.Fatalf("key set fetched %d times past a guard", n)
			}
		})
	}
}

// TestCoordinated_DiscoveredKeySetsShared: replicas discovering from the
// same metadata document share the key set one of them fetched, through
// Redis under the fleet's MAC; a replica discovering from another document
// (another trust fingerprint) never adopts it.
func TestCoordinated_DiscoveredKeySetsShared(t *testing.T) {
	idp := newIDPServer(t)
	base := idp.URL
	key := newECKey(t)
	idp.set(func(s *idpServer) {
		s.publishKey(t, key)
		s.meta["/other"+oidcPath] = metaDoc(t, base, base+"/keys")
	})
	f := newFleet(t, &jwksServer{Server: idp.Server}, 3)
	discovering := func(r *replica, du string) jwkscache.Registration {
		reg := r.reg.NewRegistration("acme", "main", "")
		reg.Issuer, reg.DiscoveryURL = base, du
		reg.RetryPolicy.MaxRetries = 0
		return reg
	}
	du, _ := jwkscache.DiscoveryURL(base, false)
	first, second, third := f.replicas[0], f.replicas[1], f.replicas[2]
	if err := first.reg.Register(context.Background(), discovering(first, du)); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	if n := idp.hitsOf("/keys"); n != 1 {
		t.Fatalf("first replica fetched the key set %d times, want 1", n)
	}
	if err := second.reg.Register(context.Background(), discovering(second, du)); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	if st := second.status(t); st.Source != jwkscache.SourceRedis || idp.hitsOf("/keys") != 1 {
		t.Fatalf("second replica: source %q after %d key set fetches, want redis after 1", st.Source, idp.hitsOf("/keys"))
	}
	if err := third.reg.Register(context.Background(), discovering(third, base+"/other/.well-known/openid-configuration")); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	st := third.status(t)
	if st.Source != jwkscache.SourceIdentityProvider || st.SnapshotsRejected[jwkscache.RejectFingerprint] == 0 {
		t.Fatalf("replica with another discovery_url: source %q, rejected %v; want its own fetch and a fingerprint rejection", st.Source, st.SnapshotsRejected)
	}
}
