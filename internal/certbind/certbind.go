// Package certbind checks certificate-bound access tokens (RFC 8705 §3):
// the token's cnf["x5t#S256"] must be the SHA-256 thumbprint of the client
// certificate of the mutual-TLS connection the token arrives on.
//
// The certificate comes from Envoy's ext_authz attributes.source.certificate
// (the URL-encoded PEM Envoy sends with include_peer_certificate: true), or,
// only where the configuration trusts the proxy in front, from the Hash of
// the closest hop's element of x-forwarded-client-cert.
package certbind

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrNoCertificate means the request carries no client certificate.
var ErrNoCertificate = errors.New("certbind: no client certificate")

// Thumbprint is RFC 8705 §3.1's x5t#S256: base64url(SHA-256(DER)).
func Thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// FromEnvoy returns the thumbprint of the first certificate in Envoy's
// attributes.source.certificate: a URL-encoded PEM ("" when the connection
// had no client certificate, or Envoy was not asked to send it).
func FromEnvoy(urlEncodedPEM string) (string, error) {
	if urlEncodedPEM == "" {
		return "", ErrNoCertificate
	}
	p, err := url.QueryUnescape(urlEncodedPEM)
	if err != nil {
		return "", fmt.Errorf("certbind: peer certificate is not URL-encoded: %w", err)
	}
	block, _ := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("certbind: peer certificate is not a PEM CERTIFICATE")
	}
	return Thumbprint(block.Bytes), nil
}

// FromXFCC returns the thumbprint in the Hash of the last element of an
// x-forwarded-client-cert header: the element the closest proxy added for
// the client it saw (Envoy appends its element). Hash is the hex SHA-256 of
// the DER, so it converts to x5t#S256 without the certificate itself.
func FromXFCC(header string) (string, error) {
	if strings.TrimSpace(header) == "" {
		return "", ErrNoCertificate
	}
	elems := splitQuoted(header, ',')
	last := elems[len(elems)-1]
	var hash string
	for _, pair := range splitQuoted(last, ';') {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(k, "Hash") {
			if hash != "" {
				return "", errors.New("certbind: x-forwarded-client-cert element has two Hash keys")
			}
			hash = strings.Trim(v, `"`)
		}
	}
	if hash == "" {
		return "", fmt.Errorf("certbind: x-forwarded-client-cert's last element has no Hash: %w", ErrNoCertificate)
	}
	sum, err := hex.DecodeString(hash)
	if err != nil || len(sum) != sha256.Size {
		return "", errors.New("certbind: x-forwarded-client-cert Hash is not a hex SHA-256")
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// splitQuoted splits s at sep outside double quotes (XFCC values such as
// Subject are quoted when they hold ',' ';' or '='; '\' escapes '"').
func splitQuoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
