package tenants

import (
	"math"
	"testing"
)

func TestConfigHash(t *testing.T) {
	config := func(coldWait, audience string) string {
		return `
limits: {cold_wait: ` + coldWait + `}
tenants:
  - id: acme
    hosts: ["api.acme.test"]
    providers:
      - {id: main, issuer: "https://idp.acme.test/", jwks_url: "https://idp.acme.test/j", audiences: [` + audience + `]}
`
	}
	base := config("2s", "orders")
	hash := func(c *Config) [32]byte {
		t.Helper()
		h, err := configHash(c)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	want := hash(mustParse(t, base))
	same := `
# the same settings, written otherwise
tenants:
  - providers:
      - audiences: [orders]
        jwks_url: "https://idp.acme.test/j"
        issuer: "https://idp.acme.test/"
        id: main
    hosts: ["api.acme.test"]
    id: acme
limits:
  cold_wait: 2000ms
`
	if got := hash(mustParse(t, same)); got != want {
		t.Error("the same settings in another layout hash differently")
	}
	for name, y := range map[string]string{
		"audience": config("2s", "invoices"),
		"limit":    config("3s", "orders"),
	} {
		if hash(mustParse(t, y)) == want {
			t.Errorf("changed %s: same hash", name)
		}
	}

	// A value JSON cannot encode (NaN) falls back to the YAML encoding:
	// still a hash, and still one that follows the setting.
	nan := mustParse(t, base)
	nan.Readiness.MinAvailableShare = math.NaN()
	other := mustParse(t, base)
	other.Readiness.MinAvailableShare = math.Inf(1)
	if hash(nan) == hash(other) || hash(nan) == want {
		t.Error("the YAML fallback does not follow the settings")
	}
}
