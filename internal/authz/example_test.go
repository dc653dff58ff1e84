package authz_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/jwkscache"
)

// staticKeys is a one-key KeySource; the service uses *jwkscache.Registry.
type staticKeys struct {
	kid string
	key crypto.PublicKey
}

func (s staticKeys) Key(_ context.Context, _, _, kid, _ string) (crypto.PublicKey, error) {
	if kid != s.kid {
		return nil, jwkscache.ErrKeyNotFound
	}
	return s.key, nil
}

func Example() {
	cfg, err := tenants.Parse([]byte(`
tenants:
  - id: acme
    hosts: ["*.acme.test"]
    providers:
      - id: main
        issuer: https://idp.acme.test/
        jwks_url: https://idp.acme.test/jwks.json
        algorithms: [ES256]
        claims_to_headers: {sub: x-auth-subject}
`))
	if err != nil {
		panic(err)
	}
	set, err := tenants.NewSet(cfg)
	if err != nil {
		panic(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := authz.New(set, staticKeys{kid: "k1", key: &key.PublicKey}, authz.Options{
		Logger: slog.New(slog.DiscardHandler),
	})

	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://idp.acme.test/", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = "k1"
	signed, _ := tok.SignedString(key)

	d := srv.Decide(context.Background(), &authz.Request{
		Host:    "shop.acme.test:443",
		Path:    "/cart",
		Headers: map[string]string{"authorization": "Bearer " + signed},
	})
	fmt.Println(d.Allowed, d.Reason, d.TenantID, d.ProviderID, d.Headers)

	d = srv.Decide(context.Background(), &authz.Request{Host: "shop.acme.test", Path: "/cart"})
	fmt.Println(d.Allowed, d.HTTPStatus, d.Reason, d.WWWAuthenticate)
	// Output:
	// true ok acme main [{x-auth-subject alice}]
	// false 401 token_missing Bearer realm="acme"
}
