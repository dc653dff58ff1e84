package forwardauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/logtest"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/internal/keytest"
	"github.com/extauthz/extauthz/internal/tenants/tenantstest"
	"github.com/extauthz/extauthz/jwkscache"
)

// testConfig has two tenants: acme, whose provider's keys are available,
// and globex, whose identity provider is down.
var testConfig = tenantstest.Config("",
	tenantstest.Acme(
		"audiences: [orders]",
		"algorithms: [ES256]",
		`from_headers: [{name: authorization, value_prefix: "Bearer "}]`,
		"from_cookies: [session]",
		"from_params: [access_token]",
		"claims_to_headers: {sub: x-auth-subject, email: x-auth-email}"),
	tenantstest.Globex("down", "algorithms: [ES256]"))

const (
	acmeHost   = "api.acme.test"
	globexHost = "globex.test"
	testKID    = "k1"
)

// fakeKeys is an authz.KeySource: provider "down" is unavailable (an
// identity provider outage), any other provider has one ES256 key.
type fakeKeys struct {
	pub crypto.PublicKey
}

func (k fakeKeys) Key(_ context.Context, _, providerID, kid, _ string) (crypto.PublicKey, error) {
	switch {
	case providerID == "down":
		return nil, jwkscache.ErrUnavailable
	case kid != testKID:
		return nil, jwkscache.ErrKeyNotFound
	}
	return k.pub, nil
}

// fixture is a real authz.Server over testConfig, and a signer for tokens
// it accepts.
type fixture struct {
	authz *authz.Server
	key   *ecdsa.PrivateKey
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	set := authztest.Set(tb, testConfig)
	key := keytest.P256()
	s := authz.New(set, fakeKeys{pub: key.Public()}, authz.Options{Logger: slog.New(slog.DiscardHandler)})
	return &fixture{authz: s, key: key}
}

// token signs claims for issuer iss, valid for an hour, with extra claims.
func (f *fixture) token(tb testing.TB, iss string, extra jwt.MapClaims) string {
	tb.Helper()
	now := time.Now()
	c := jwt.MapClaims{
		"iss": iss,
		"sub": "alice",
		"aud": "orders",
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range extra {
		c[k] = v
	}
	return authztest.Sign(tb, jwt.SigningMethodES256, f.key, testKID, c, nil)
}

// handler returns a Handler asking f's authz.Server. TrustedProxies nil
// means the default list (loopback v4 and v6 hosts): subrequests in these
// tests come from 127.0.0.1 as nginx beside extauthz would send them.
func (f *fixture) handler(tb testing.TB, opts Options) *Handler {
	tb.Helper()
	if opts.TrustedProxies == nil {
		opts.TrustedProxies = loopback
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := New(f.authz, opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return h
}

// recorder is a Decider that records the request it was asked about and
// answers a fixed decision, for tests of the mapping alone.
type recorder struct {
	mu   sync.Mutex
	got  *authz.Request
	resp authz.Decision
}

func (r *recorder) Decide(_ context.Context, req *authz.Request) authz.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = req
	return r.resp
}

func (r *recorder) last() *authz.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

// subrequest builds a forward-auth subrequest from peer for target, with
// header lines given as "Name: value".
func subrequest(t *testing.T, peer, method, target, host string, headers ...string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = peer
	r.Host = host
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("header %q: want \"Name: value\"", h)
		}
		r.Header.Add(k, strings.TrimSpace(v))
	}
	return r
}

// debugLogger returns a debug-level text logger writing into b.
func debugLogger(b *logtest.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
