package dpop

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/MicahParks/jwkset"
)

// JWK is a public key from a proof's jwk header with its RFC 7638
// thumbprint.
type JWK struct {
	Key        any    // *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey
	Thumbprint string // base64url(SHA-256(required members)), RFC 7638 §3
}

// Errors of ParseJWK.
var (
	ErrPrivateJWK = errors.New("dpop: jwk carries private key members")
	ErrJWKType    = errors.New("dpop: jwk is not an EC, RSA or OKP public key")
)

// ParseJWK reads a public JWK (RFC 7517) as a DPoP proof carries it. A key
// with private members (d, p, q, dp, dq, qi, oth) or a symmetric key (kty
// oct, k) is refused: RFC 9449 §4.3 check 7.
func ParseJWK(raw json.RawMessage) (JWK, error) {
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return JWK{}, fmt.Errorf("dpop: jwk: %w", err)
	}
	if m.D != "" || m.P != "" || m.Q != "" || m.DP != "" || m.DQ != "" || m.QI != "" || len(m.OTH) > 0 || m.K != "" {
		return JWK{}, ErrPrivateJWK
	}
	tp, err := Thumbprint(m)
	if err != nil {
		return JWK{}, err
	}
	k, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return JWK{}, fmt.Errorf("dpop: jwk: %w", err)
	}
	return JWK{Key: k.Key(), Thumbprint: tp}, nil
}

// Thumbprint returns the RFC 7638 thumbprint of a public JWK: SHA-256 of
// the JSON object of its required members in lexicographic order without
// whitespace (§3.2, §3.3: EC crv/kty/x/y, RSA e/kty/n, OKP crv/kty/x per
// RFC 8037 §2), base64url-encoded without padding.
func Thumbprint(m jwkset.JWKMarshal) (string, error) {
	var members [][2]string
	switch m.KTY {
	case jwkset.KtyEC:
		members = [][2]string{{"crv", string(m.CRV)}, {"kty", "EC"}, {"x", m.X}, {"y", m.Y}}
	case jwkset.KtyRSA:
		members = [][2]string{{"e", m.E}, {"kty", "RSA"}, {"n", m.N}}
	case jwkset.KtyOKP:
		members = [][2]string{{"crv", string(m.CRV)}, {"kty", "OKP"}, {"x", m.X}}
	default:
		return "", ErrJWKType
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, kv := range members {
		if kv[1] == "" {
			return "", fmt.Errorf("dpop: jwk: %s key without %q", m.KTY, kv[0])
		}
		if i > 0 {
			b.WriteByte(',')
		}
		// Member values are base64url or registered names: no character
		// JSON would escape, so quoting by hand is the canonical form.
		for _, c := range kv[1] {
			if c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
				return "", fmt.Errorf("dpop: jwk: member %q has characters outside printable ASCII", kv[0])
			}
		}
		b.WriteString(`"` + kv[0] + `":"` + kv[1] + `"`)
	}
	b.WriteByte('}')
	sum := sha256.Sum256([]byte(b.String()))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
