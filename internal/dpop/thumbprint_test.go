package dpop

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/MicahParks/jwkset"
)

// rfc7638Key is the RSA key of RFC 7638 §3.1.
const rfc7638Key = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`

// rfc9449Key is the EC key of the RFC 9449 §4.1 proof example; §6.1 gives
// its thumbprint as the token's cnf.jkt.
const rfc9449Key = `{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`

func TestParseJWK_RFCThumbprints(t *testing.T) {
	for _, tc := range []struct{ name, jwk, want string }{
		{"RFC 7638 §3.1", rfc7638Key, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{"RFC 9449 §6.1", rfc9449Key, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseJWK(json.RawMessage(tc.jwk))
			if err != nil {
				t.Fatal(err)
			}
			if k.Thumbprint != tc.want {
				t.Errorf("thumbprint %s, want %s", k.Thumbprint, tc.want)
			}
			if k.Key == nil {
				t.Error("no key")
			}
		})
	}
}

func TestParseJWK_RefusesPrivateSymmetricAndIncomplete(t *testing.T) {
	ec := `"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"`
	for _, tc := range []struct {
		name, jwk string
		want      error
	}{
		{"EC d", `{` + ec + `,"d":"AAAA"}`, ErrPrivateJWK},
		{"RSA p", `{"kty":"RSA","n":"AQAB","e":"AQAB","p":"AQAB"}`, ErrPrivateJWK},
		{"RSA q", `{"kty":"RSA","n":"AQAB","e":"AQAB","q":"AQAB"}`, ErrPrivateJWK},
		{"RSA dp", `{"kty":"RSA","n":"AQAB","e":"AQAB","dp":"AQAB"}`, ErrPrivateJWK},
		{"RSA dq", `{"kty":"RSA","n":"AQAB","e":"AQAB","dq":"AQAB"}`, ErrPrivateJWK},
		{"RSA qi", `{"kty":"RSA","n":"AQAB","e":"AQAB","qi":"AQAB"}`, ErrPrivateJWK},
		{"RSA oth", `{"kty":"RSA","n":"AQAB","e":"AQAB","oth":[{"r":"AQAB"}]}`, ErrPrivateJWK},
		{"oct k", `{"kty":"oct","k":"c2VjcmV0"}`, ErrPrivateJWK},
		{"oct", `{"kty":"oct"}`, ErrJWKType},
		{"no kty", `{"x":"AAAA"}`, ErrJWKType},
		{"EC without y", `{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"}`, nil},
		{"EC off the curve", `{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"AAAA"}`, nil},
		{"not an object", `"EC"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJWK(json.RawMessage(tc.jwk))
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// TestThumbprint_PrintableASCIIBounds: a member value is quoted by hand, so
// it may hold exactly the printable ASCII characters, space and '~'
// included, and nothing below 0x20 or above 0x7e.
func TestThumbprint_PrintableASCIIBounds(t *testing.T) {
	for _, tc := range []struct {
		x  string
		ok bool
	}{
		{"a b~", true},
		{"a\x1fb", false},
		{"a\x7fb", false},
		{"a\"b", false},
		{`a\b`, false},
		{"aéb", false},
	} {
		tp, err := Thumbprint(jwkset.JWKMarshal{KTY: jwkset.KtyOKP, CRV: jwkset.CrvEd25519, X: tc.x})
		if !tc.ok {
			if err == nil {
				t.Errorf("x %q: accepted", tc.x)
			}
			continue
		}
		sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + tc.x + `"}`))
		if want := base64.RawURLEncoding.EncodeToString(sum[:]); err != nil || tp != want {
			t.Errorf("x %q: %q, %v; want %q", tc.x, tp, err, want)
		}
	}
}
