package jwkscache

import (
	"fmt"
	"strings"
)

// The rules below are exported so that code building registrations (a
// configuration loader, a store keyed by tenant and provider) applies the
// very same ones the registry does, rather than a copy that may drift.

// maxIDLen bounds tenant and provider IDs. IDs appear in metric labels,
// log lines and storage keys, so they are short and of a small alphabet.
const maxIDLen = 64

// CheckTenantID reports why id is not a valid tenant ID (1-64 ASCII
// letters, digits or '-'), or nil. With no ':' or '/' allowed, an ID can
// never reach into another tenant's storage key or URL path.
func CheckTenantID(id string) error {
	if !validID(id, false) {
		return fmt.Errorf("%q must be 1-64 characters of A-Z, a-z, 0-9 and '-'", id)
	}
	return nil
}

// CheckProviderID reports why id is not a valid provider ID (1-64 ASCII
// letters, digits, '-' or '_'), or nil.
func CheckProviderID(id string) error {
	if !validID(id, true) {
		return fmt.Errorf("%q must be 1-64 characters of A-Z, a-z, 0-9, '-' and '_'", id)
	}
	return nil
}

// validID checks a tenant ID (letters, digits, '-') or, with underscore, a
// provider ID.
func validID(s string, underscore bool) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		case c == '_' && underscore:
		default:
			return false
		}
	}
	return true
}

// SupportedAlgorithm reports whether the registry looks keys up for alg:
// the public-key JWS algorithms RS256/384/512, PS256/384/512 (RFC 7518
// §3.3, §3.5), ES256/384/512 (RFC 7518 §3.4) and EdDSA (RFC 8037 §3.1).
// "none" and the HMAC algorithms are not among them: a key published in a
// JWKS is public, so it cannot be a shared secret (RFC 8725 §3.1, §3.2).
func SupportedAlgorithm(alg string) bool { return algBit(alg) != 0 }

// HostAllowed reports whether host equals an entry of allowlist or is a
// subdomain of one. Both are canonical host names (lowercase, no trailing
// dot), as Registration.AllowedDomains must be.
func HostAllowed(host string, allowlist []string) bool {
	for _, d := range allowlist {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}
