package demo

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/tenants"
)

func startServer(t *testing.T) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func get(t *testing.T, c *http.Client, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func trusting(s *Server) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CA.Pool()}}}
}

// verify checks tok against the JWKS with an independent library (keyfunc),
// the way any relying party would.
func verify(t *testing.T, jwks []byte, tok string, opts ...jwt.ParserOption) (*jwt.Token, error) {
	t.Helper()
	kf, err := keyfunc.NewJWKSetJSON(jwks)
	if err != nil {
		t.Fatalf("JWKS does not parse: %v\n%s", err, jwks)
	}
	return jwt.Parse(tok, kf.Keyfunc, opts...)
}

func TestServer_TokenEndpointMintsTokenVerifiableWithPublishedJWKS(t *testing.T) {
	s := startServer(t)
	c := trusting(s)
	code, hdr, jwks := get(t, c, s.JWKSURL())
	if code != http.StatusOK {
		t.Fatalf("JWKS status %d", code)
	}
	if got := hdr.Get("Cache-Control"); got != "max-age=300" {
		t.Errorf("Cache-Control = %q, want max-age=300", got)
	}
	if strings.Contains(string(jwks), `"d"`) {
		t.Fatalf("JWKS leaks private key material: %s", jwks)
	}
	code, _, body := get(t, c, s.URL()+TokenPath+"?sub=alice&tenant=demo&email=a@example.test&scope=orders:read+orders:write")
	if code != http.StatusOK {
		t.Fatalf("token status %d: %s", code, body)
	}
	tok, err := verify(t, jwks, strings.TrimSpace(string(body)),
		jwt.WithIssuer(s.IdP.Issuer()), jwt.WithAudience(Audience), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	claims := tok.Claims.(jwt.MapClaims)
	for k, want := range map[string]string{"sub": "alice", "tenant": "demo", "email": "a@example.test", "scope": "orders:read orders:write"} {
		if claims[k] != want {
			t.Errorf("claim %s = %v, want %q", k, claims[k], want)
		}
	}
	if tok.Header["kid"] != s.IdP.KeyID() {
		t.Errorf("kid = %v, want %s", tok.Header["kid"], s.IdP.KeyID())
	}
	if got := s.IdP.JWKSRequests(); got != 1 {
		t.Errorf("JWKSRequests = %d, want 1", got)
	}
}

func TestServer_UntrustedClientRefused(t *testing.T) {
	s := startServer(t)
	_, err := http.Get(s.JWKSURL()) // system roots only: the demo CA is not in them
	if err == nil {
		t.Fatal("a client without the demo CA reached the identity provider")
	}
}

func TestIdP_ServeHTTPErrors(t *testing.T) {
	idp, err := NewIdP(IdPOptions{Issuer: "https://idp.test/"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, target string
		want                 int
	}{
		{"bad ttl", http.MethodGet, TokenPath + "?ttl=soon", http.StatusBadRequest},
		{"post", http.MethodPost, JWKSPath, http.StatusMethodNotAllowed},
		{"unknown path", http.MethodGet, "/admin", http.StatusNotFound},
		{"jwks", http.MethodGet, JWKSPath, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			idp.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
		})
	}
}

func TestIdP_AlgorithmsSignVerifiably(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			idp, err := NewIdP(IdPOptions{Issuer: "https://idp.test/", Algorithm: alg})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := idp.Mint("bob", time.Minute, nil)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := verify(t, idp.JWKS(), tok, jwt.WithValidMethods([]string{alg}))
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if parsed.Method.Alg() != alg {
				t.Errorf("alg %s, want %s", parsed.Method.Alg(), alg)
			}
		})
	}
	if _, err := NewIdP(IdPOptions{Issuer: "https://idp.test/", Algorithm: "HS256"}); err == nil {
		t.Error("HS256 accepted: the demo must only use asymmetric keys")
	}
	if _, err := NewIdP(IdPOptions{}); err == nil {
		t.Error("an identity provider without an issuer was accepted")
	}
}

func TestIdP_Rotate(t *testing.T) {
	idp, err := NewIdP(IdPOptions{Issuer: "https://idp.test/"})
	if err != nil {
		t.Fatal(err)
	}
	oldTok, err := idp.Mint("carol", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldKID := idp.KeyID()

	kid, err := idp.Rotate("ES256", true)
	if err != nil {
		t.Fatal(err)
	}
	if kid == oldKID || idp.KeyID() != kid {
		t.Fatalf("rotation kept kid %s", oldKID)
	}
	if _, err := verify(t, idp.JWKS(), oldTok); err != nil {
		t.Errorf("graceful rotation dropped the old key: %v", err)
	}
	if kids := kidsOf(t, idp.JWKS()); len(kids) != 2 {
		t.Errorf("graceful rotation publishes %v, want two keys", kids)
	}

	if _, err := idp.Rotate("ES256", false); err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, idp.JWKS(), oldTok); err == nil {
		t.Error("hard rotation still verifies a token of a removed key")
	}
	if kids := kidsOf(t, idp.JWKS()); len(kids) != 1 || kids[0] != idp.KeyID() {
		t.Errorf("hard rotation publishes %v, want only %s", kids, idp.KeyID())
	}
}

func TestIdP_ExpiredToken(t *testing.T) {
	idp, err := NewIdP(IdPOptions{Issuer: "https://idp.test/"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := idp.Mint("dave", -time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = verify(t, idp.JWKS(), tok)
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("verify expired token: %v, want ErrTokenExpired", err)
	}
	c := idp.Claims("dave", -time.Minute)
	if c["iat"].(int64) >= c["exp"].(int64) {
		t.Errorf("expired token issued at %v, after its expiry %v", c["iat"], c["exp"])
	}
}

func kidsOf(t *testing.T, jwks []byte) []string {
	t.Helper()
	var doc struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &doc); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range doc.Keys {
		kids = append(kids, k.KID)
	}
	return kids
}

func TestConfig_ParsesStrictly(t *testing.T) {
	cfg, err := tenants.Parse(Config(ConfigParams{
		GRPCAddr: "127.0.0.1:9191",
		Issuer:   "https://127.0.0.1:8443/",
		JWKSURL:  "https://127.0.0.1:8443" + JWKSPath,
		CAFile:   "/tmp/ca.pem",
	}))
	if err != nil {
		t.Fatalf("demo config does not parse: %v", err)
	}
	if len(cfg.Tenants) != 1 || cfg.Tenants[0].ID != TenantID || cfg.Tenants[0].Providers[0].ID != ProviderID {
		t.Fatalf("unexpected tenants: %+v", cfg.Tenants)
	}
	if cfg.Listen.Admin != "" {
		t.Errorf("admin listener %q, want off", cfg.Listen.Admin)
	}
	if cfg.JWKS.CAFile != "/tmp/ca.pem" {
		t.Errorf("ca_file %q", cfg.JWKS.CAFile)
	}
}

func TestInstructions_ShowAllowAndDenyCommands(t *testing.T) {
	var b strings.Builder
	if err := Instructions(&b, "extauthz", "127.0.0.1:9191", "VALID", "EXPIRED"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"extauthz client -addr 127.0.0.1:9191 -host " + Host + " -path /orders -token VALID",
		"extauthz client -addr 127.0.0.1:9191 -host " + Host + " -path /orders -token EXPIRED",
		"extauthz health -addr 127.0.0.1:9191",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("instructions lack %q:\n%s", want, b.String())
		}
	}
}

// TestIdP_WaitJWKSRequests: a waiter is woken by the request that
// completes the count, and gives up when its context ends first.
func TestIdP_WaitJWKSRequests(t *testing.T) {
	s := startServer(t)
	c := trusting(s)
	go func() {
		for range 2 {
			if resp, err := c.Get(s.URL() + JWKSPath); err == nil {
				resp.Body.Close()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang, not a speed measurement
	defer cancel()
	if err := s.IdP.WaitJWKSRequests(ctx, 2); err != nil {
		t.Fatalf("WaitJWKSRequests(2) after two requests: %v", err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelShort()
	if err := s.IdP.WaitJWKSRequests(short, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitJWKSRequests(3) with two requests = %v, want the context's deadline", err)
	}
}
