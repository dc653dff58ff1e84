package tenants_test

import (
	"fmt"

	"github.com/extauthz/extauthz/internal/tenants"
)

func ExampleSet_TenantForHost() {
	c, err := tenants.Parse([]byte(`
tenants:
  - id: acme
    hosts: ["*.acme.test"]
    providers: [{id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/jwks.json"}]
  - id: acme-eu
    hosts: ["*.eu.acme.test", "api.acme.test"]
    providers: [{id: main, issuer: "https://idp.eu.acme.test/", jwks_url: "https://idp.eu.acme.test/jwks.json"}]
`))
	if err != nil {
		panic(err)
	}
	if err := c.Validate(nil); err != nil {
		panic(err)
	}
	set, err := tenants.NewSet(c)
	if err != nil {
		panic(err)
	}
	for _, host := range []string{"shop.acme.test", "API.acme.test:443", "a.b.eu.acme.test", "acme.test"} {
		t, ok := set.TenantForHost(host)
		if !ok {
			fmt.Println(host, "-> none")
			continue
		}
		fmt.Println(host, "->", t.ID)
	}
	// Output:
	// shop.acme.test -> acme
	// API.acme.test:443 -> acme-eu
	// a.b.eu.acme.test -> acme-eu
	// acme.test -> none
}
