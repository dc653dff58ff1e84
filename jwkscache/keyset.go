package jwkscache

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
)

// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3 requires
// 2048 bits for RS*/PS*). maxRSABits is the largest: crypto/rsa verifies any
// size, and a verification costs the square of the modulus length, so one
// huge key in a JWKS would make every token it signs a CPU sink. 8192 bits is
// also crypto/tls's limit for peer keys.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// algSet is a bit set of the JWS algorithms (RFC 7518 §3.1) a key fits.
type algSet uint16

const (
	algRS256 algSet = 1 << iota
	algRS384
	algRS512
	algPS256
	algPS384
	algPS512
	algES256
	algES384
	algES512
	algEdDSA

	algsRSA = algRS256 | algRS384 | algRS512 | algPS256 | algPS384 | algPS512
)

// curveAlgs is the one algorithm an ECDSA key on each supported curve
// signs with (RFC 7518 §3.4).
var curveAlgs = map[elliptic.Curve]algSet{
	elliptic.P256(): algES256,
	elliptic.P384(): algES384,
	elliptic.P521(): algES512,
}

// algBit maps a token's alg header to its bit; 0 for anything this cache
// never verifies (none, HS*, unknown). A switch on a string allocates nothing.
func algBit(alg string) algSet {
	switch alg {
	case "RS256":
		return algRS256
	case "RS384":
		return algRS384
	case "RS512":
		return algRS512
	case "PS256":
		return algPS256
	case "PS384":
		return algPS384
	case "PS512":
		return algPS512
	case "ES256":
		return algES256
	case "ES384":
		return algES384
	case "ES512":
		return algES512
	case "EdDSA":
		return algEdDSA
	}
	return 0
}

// verifyKey is one usable public key and the algorithms it may verify.
type verifyKey struct {
	kid  string
	pub  crypto.PublicKey
	algs algSet
}

// keySet is an immutable snapshot of one provider's keys. A refresh builds a
// new one and swaps it in; readers never see a partial set.
type keySet struct {
	byKID map[string][]*verifyKey // RFC 7517 §4.5: kid selects the key; kty may differ under one kid
	keys  []*verifyKey            // every usable key, in document order
	kids  []string                // sorted, for Status

	fetchedAt  time.Time // when the document was fetched (or revalidated)
	expiresAt  time.Time
	staleUntil time.Time // expiresAt + stale_while_error
	// phase is fresh, stale or unusable. Timers on the Clock advance it at
	// expiresAt and staleUntil, so a warm lookup reads one atomic word
	// instead of the clock (reading the clock costs more than the rest of
	// a lookup). It is a pointer because a 304 copies the set.
	phase        *atomic.Uint32
	etag         string
	lastModified string
	cacheHeader  http.Header // freshness fields of the response, for a later 304; read-only
	raw          []byte      // the document as served, kept to share with other replicas (Coordinator)
	source       Source
	from         string // the discovered jwks_uri it was fetched from; "" without discovery
}

// find returns the key with kid that fits alg, or nil. An empty kid matches
// only when exactly one usable key fits alg (RFC 7515 §4.1.4 makes kid
// optional; guessing among several keys would be trying keys blindly).
func (s *keySet) find(kid string, alg algSet) *verifyKey {
	if kid == "" {
		var found *verifyKey
		for _, k := range s.keys {
			if k.algs&alg != 0 {
				if found != nil {
					return nil
				}
				found = k
			}
		}
		return found
	}
	for _, k := range s.byKID[kid] {
		if k.algs&alg != 0 {
			return k
		}
	}
	return nil
}

// The phases of a key set, in the order time moves them.
const (
	phaseFresh uint32 = iota
	phaseStale
	phaseUnusable
)

// setExpiry sets when s stops being fresh and when it stops being usable,
// and its phase at now.
func (s *keySet) setExpiry(now, expiresAt time.Time, staleWhileError time.Duration) {
	s.expiresAt = expiresAt
	s.staleUntil = expiresAt.Add(staleWhileError)
	s.phase = new(atomic.Uint32)
	s.advance(s.phaseAt(now))
}

// phaseAt computes the phase at now from the instants.
func (s *keySet) phaseAt(now time.Time) uint32 {
	switch {
	case !now.Before(s.staleUntil):
		return phaseUnusable
	case !now.Before(s.expiresAt):
		return phaseStale
	}
	return phaseFresh
}

// advance moves the phase forward to ph; it never moves back, whatever
// order timers fire in.
func (s *keySet) advance(ph uint32) {
	for {
		cur := s.phase.Load()
		if cur >= ph || s.phase.CompareAndSwap(cur, ph) {
			return
		}
	}
}

// withExpiry returns a copy of s with new freshness, for a 304 (RFC 9111
// §4.3.4: the stored response is updated, the keys are not re-parsed).
func (s *keySet) withExpiry(now, expiresAt time.Time, staleWhileError time.Duration, etag, lastModified string, cacheHeader http.Header) *keySet {
	c := *s
	c.cacheHeader = cacheHeader
	c.fetchedAt = now
	c.setExpiry(now, expiresAt, staleWhileError)
	if etag != "" {
		c.etag = etag
	}
	if lastModified != "" {
		c.lastModified = lastModified
	}
	return &c
}

// carried returns a copy of s for a provider that replaces the one holding
// s (Register with changed settings): same keys, validators and expires_at,
// with the new provider's stale_while_error and its own phase.
func (s *keySet) carried(now time.Time, staleWhileError time.Duration) *keySet {
	c := *s
	c.setExpiry(now, s.expiresAt, staleWhileError)
	return &c
}

// skippedKey says why one JWK of a document was not used.
type skippedKey struct {
	index int
	kid   string
	err   error
}

// parseKeySet turns a JWKS document (RFC 7517 §5) into a key set. Each JWK
// is built on its own, so one malformed, unsupported or refused key is
// skipped and reported without discarding the others. A document without a
// single usable key is an error: the caller keeps its previous set.
func parseKeySet(raw []byte) (*keySet, []skippedKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, nil, fmt.Errorf("invalid JWKS JSON: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New(`invalid JWKS: no "keys" member`)
	}
	s := &keySet{byKID: make(map[string][]*verifyKey, len(doc.Keys))}
	var skipped []skippedKey
	for i, rawKey := range doc.Keys {
		k, err := parseKey(rawKey)
		if err != nil {
			skipped = append(skipped, skippedKey{index: i, kid: kidOf(rawKey), err: err})
			continue
		}
		s.keys = append(s.keys, k)
		if len(s.byKID[k.kid]) == 0 {
			s.kids = append(s.kids, k.kid)
		}
		s.byKID[k.kid] = append(s.byKID[k.kid], k)
	}
	if len(s.keys) == 0 {
		return nil, skipped, fmt.Errorf("no usable key in JWKS (%d keys, %d skipped)", len(doc.Keys), len(skipped))
	}
	slices.Sort(s.kids)
	s.raw = raw
	return s, skipped, nil
}

// kidOf extracts a JWK's kid for reporting, best effort.
func kidOf(raw json.RawMessage) string {
	var m struct {
		KID any `json:"kid"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	kid, _ := m.KID.(string)
	return kid
}

// parseKey builds one JWK with jwkset and decides which algorithms it fits.
func parseKey(raw json.RawMessage) (*verifyKey, error) {
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("malformed JWK: %w", err)
	}
	if m.KTY == jwkset.KtyOct {
		// Symmetric keys in a public JWKS would let anyone forge tokens.
		return nil, errors.New(`symmetric key (kty "oct") refused`)
	}
	// Private: false keeps only public material, whatever the document holds;
	// GetX5U nil means x5u is never fetched.
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: false}, jwkset.JWKValidateOptions{})
	if err != nil {
		return nil, err
	}
	var fits algSet
	pub := jwk.Key()
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits || n > maxRSABits {
			return nil, fmt.Errorf("RSA key of %d bits refused (allowed %d to %d)", n, minRSABits, maxRSABits)
		}
		fits = algsRSA
	case *ecdsa.PublicKey:
		fits = curveAlgs[k.Curve]
	case ed25519.PublicKey:
		fits = algEdDSA
	case *ecdh.PublicKey:
		return nil, errors.New("X25519 key cannot verify signatures")
	}
	if fits == 0 {
		return nil, fmt.Errorf("unsupported key type %T", pub)
	}
	// RFC 7517 §4.2–4.4: use, key_ops and alg restrict what a key may do.
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf("key use %q is not %q", shortKID(string(m.USE)), jwkset.UseSig)
	}
	if len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify) {
		return nil, fmt.Errorf("key_ops (%d) do not include %q", len(m.KEYOPS), jwkset.KeyOpsVerify)
	}
	if m.ALG != "" {
		bit := algBit(string(m.ALG))
		if bit&fits == 0 {
			return nil, fmt.Errorf("key alg %q does not fit kty %q", shortKID(string(m.ALG)), shortKID(string(m.KTY)))
		}
		fits = bit
	}
	return &verifyKey{kid: m.KID, pub: pub, algs: fits}, nil
}
