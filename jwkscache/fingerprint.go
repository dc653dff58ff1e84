package jwkscache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
)

// fingerprint is a registration's trust fingerprint: a SHA-256 over every
// setting that decides which keys may be trusted for it (the JWKS URL or discovery URL, the
// issuer, the pins, the allowlists, require_https and the fetch limits),
// in a fixed order with each value length-prefixed. Two registrations with
// the same fingerprint accept the same key sets; a shared snapshot fetched
// under another fingerprint is never adopted. Timing settings (TTLs,
// retries) are left out: they change how often keys are fetched, not which.
func fingerprint(reg Registration, globalAllowed []string) string {
	h := sha256.New()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	list := func(l []string) {
		l = slices.Clone(l)
		slices.Sort(l)
		field(strconv.Itoa(len(l)))
		for _, v := range l {
			field(v)
		}
	}
	field("extauthz trust fingerprint v1")
	field(reg.JWKSURL)
	field(reg.Issuer)
	list(reg.PinnedSPKI)
	list(reg.AllowedDomains)
	list(globalAllowed)
	field(strconv.FormatBool(reg.RequireHTTPS))
	field(strconv.FormatInt(reg.MaxResponseBytes, 10))
	field(strconv.Itoa(reg.MaxRedirects))
	if reg.DiscoveryURL != "" {
		// Keys discovered from another metadata document are not these
		// (appended only when set: other fingerprints stay as they were).
		field("discovery_url")
		field(reg.DiscoveryURL)
	}
	return hex.EncodeToString(h.Sum(nil))
}
