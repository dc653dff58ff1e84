package jwkscache_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/extauthz/extauthz/jwkscache"
)

func ExampleRegistry() {
	// An identity provider publishing one ES256 key.
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk, _ := jwkset.NewJWKFromKey(&priv.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "2024-01"}})
	doc, _ := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(doc)
	}))
	defer idp.Close()

	// The client trusts the test server's CA, as a custom-CA client would.
	reg, err := jwkscache.New(jwkscache.Options{HTTPClient: idp.Client()})
	if err != nil {
		panic(err)
	}
	defer reg.Close()
	if err := reg.Register(context.Background(), reg.NewRegistration("acme", "okta", idp.URL+"/jwks")); err != nil {
		panic(err)
	}

	// The first lookup waits for the first fetch; later ones never wait.
	key, err := reg.Key(context.Background(), "acme", "okta", "2024-01", "ES256")
	fmt.Println(priv.PublicKey.Equal(key), err)

	_, err = reg.Key(context.Background(), "acme", "okta", "2024-01", "RS256")
	fmt.Println(errors.Is(err, jwkscache.ErrKeyNotFound))

	st, _ := reg.Status("acme", "okta")
	fmt.Println(st.KeyIDs, st.Hits, st.Requests)
	// Output:
	// true <nil>
	// true
	// [2024-01] 1 2
}

// A configuration loader checks a registration under the registry-wide
// options before any registry exists, and reports each problem with its
// field.
func ExampleOptions_ValidateRegistration() {
	opts := jwkscache.Options{AllowedDomains: []string{"idp.example.com"}}
	reg := jwkscache.DefaultRegistration("acme", "main", "http://login.example.org/jwks")
	reg.MinTTL = time.Second
	for _, err := range joined(opts.ValidateRegistration(reg)) {
		fmt.Println(err)
	}
	// Output:
	// jwks_url: must use https
	// min_ttl: must be at least 30s, got 1s
}

// joined returns the errors an errors.Join holds.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return nil
}
