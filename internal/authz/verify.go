package authz

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/jwkscache"
)

// Internal causes, for logs; the client sees only the Reason.
var (
	errShape      = errors.New("token is not three unpadded base64url segments")
	errCrit       = errors.New("token has a crit header: no extension is understood (RFC 7515 §4.1.11)")
	errKidType    = errors.New("kid header is not a string")
	errTypType    = errors.New("typ header is not a string")
	errTyp        = errors.New("typ header is not one of the provider's token_types")
	errExpMissing = errors.New("exp claim is required")
	errAudMissing = errors.New("aud claim is required by this provider")
	errAlg        = errors.New("alg is not in the provider's algorithms")
	errNilKey     = errors.New("key source returned no key")
	// The decoding's (parse), in golang-jwt's words.
	errHeaderB64      = errors.New("could not base64 decode header")
	errHeaderJSON     = errors.New("could not JSON decode header")
	errClaimsB64      = errors.New("could not base64 decode claim")
	errClaimsJSON     = errors.New("could not JSON decode claim")
	errAlgMissing     = errors.New("signing method (alg) is unspecified")
	errAlgUnknown     = errors.New("signing method (alg) is unavailable")
	errSigB64         = errors.New("could not base64 decode signature")
	errClaimsShape    = errors.New("claims are not a JSON object")
	errTrailingClaims = errors.New("claims: data after the JSON object") // more than one JSON value
	// The claim checks' (checkClaimValues): golang-jwt's "required".
	errAudRequired = errors.New("aud claim is required")
	errIssRequired = errors.New("iss claim is required")
)

// refusal is a denial's reason with its internal cause. The steps of
// verify return it as their error.
type refusal struct {
	reason Reason
	cause  error // for the log; never shown to the client
}

func (r *refusal) Error() string { return string(r.reason) + ": " + r.cause.Error() }
func (r *refusal) Unwrap() error { return r.cause }

func refuse(reason Reason, cause error) error { return &refusal{reason: reason, cause: cause} }

// refusedShape is the refusal of a token that is not three base64url
// segments, made once: a flood of garbage tokens allocates nothing for it.
var refusedShape = &refusal{reason: ReasonTokenMalformed, cause: errShape}

// asRefusal returns err's refusal; any other error is token_malformed.
func asRefusal(err error) *refusal {
	if rf, ok := err.(*refusal); ok { // the steps return it unwrapped
		return rf
	}
	var rf *refusal
	if errors.As(err, &rf) {
		return rf
	}
	return &refusal{reason: ReasonTokenMalformed, cause: err}
}

// token is a parsed JWS whose signature is not yet verified.
type token struct {
	raw    string
	method jwt.SigningMethod // by the header's alg
	sig    []byte
	claims jwt.MapClaims // numbers are json.Number
	kid    string
	typ    string // "" when absent
	iss    string
}

// verify runs the token steps (package doc, steps 3 to 7) and returns the
// chosen provider with the verified claims, or the provider known so far
// (nil before the choice) with a *refusal. It sets *kid to the token's kid once
// the header is parsed (for traces), and *entry to the token's entry in the
// verified-token cache when it has one.
//
// Parsing, the signature and the claim checks are separate steps rather
// than golang-jwt's Parser.ParseWithClaims because the provider (and so its
// algorithms, issuer and audiences) is chosen by the token's iss, which is
// only known after parsing; one parse then serves every check, and each
// failure maps to its own reason code (ParseWithClaims reports an alg
// outside WithValidMethods as a signature error).
func (s *Server) verify(ctx context.Context, st *state, t *tenants.Rules, route *tenants.ProviderRules, raw string, src tenants.TokenSource, kid *string, entry **tokenEntry) (*tenants.ProviderRules, jwt.MapClaims, tenants.IssuerMatch, CacheResult, error) {
	tc := s.tokens.Load()
	var sum [sha256.Size]byte
	result := CacheNotUsed
	if tc != nil {
		// A cached token was well-formed when it was verified, and a
		// SHA-256 match is that token: a hit needs no wellFormed, which
		// costs about what the hash does.
		sum = tokenSum(raw)
		e, found := tc.get(sum)
		if found || wellFormed(raw) {
			result = CacheMiss
		}
		if found {
			if p, m, ok, err := s.reuse(ctx, st, t, route, src, e); ok {
				*kid = e.kid
				if err != nil {
					return p, nil, m, CacheHit, err
				}
				*entry = e
				return p, e.claims, m, CacheHit, nil
			}
		}
	}
	tok, err := s.parse(raw)
	if err != nil {
		return route, nil, tenants.IssuerMatch{}, result, err
	}
	*kid = tok.kid
	p, m, err := chooseProvider(t, route, &tok, src)
	if err != nil {
		return p, nil, m, result, err
	}
	if err := checkHeader(p, &tok); err != nil {
		return p, nil, m, result, err
	}
	key, err := s.key(ctx, time.Duration(st.set.Limits().ColdWait), p, tok.kid, tok.method.Alg())
	if err != nil {
		return p, nil, m, result, err
	}
	if err := tok.verifySignature(key); err != nil {
		return p, nil, m, result, err
	}
	times, err := checkClaims(p, tok.claims, s.now())
	if err != nil {
		return p, nil, m, result, err
	}
	if tc != nil {
		e := newTokenEntry(p, &tok, key, times)
		tc.put(sum, e, s.now())
		*entry = e
	}
	return p, tok.claims, m, result, nil
}

// checkHeader checks the header against the chosen provider: typ, when the
// provider lists token_types (explicit typing, RFC 8725 §3.11, RFC 9068
// §2.1), and alg.
func checkHeader(p *tenants.ProviderRules, tok *token) error {
	if !p.AllowsType(tok.typ) {
		return refuse(ReasonTokenMalformed, errTyp)
	}
	if !p.AllowsAlg(tok.method.Alg()) {
		return refuse(ReasonAlgorithmNotAllowed, errAlg)
	}
	return nil
}

// key finds the verification key in p's JWKS by kid and alg; jku, x5u, jwk
// and x5c are never looked at (RFC 8725 §3.10). A lookup that waits for a
// first fetch is bounded by coldWait (0: unbounded but for ctx).
func (s *Server) key(ctx context.Context, coldWait time.Duration, p *tenants.ProviderRules, kid, alg string) (crypto.PublicKey, error) {
	if coldWait > 0 {
		cw := newColdWait(ctx, coldWait)
		defer cw.stop()
		ctx = cw
	}
	key, err := s.keys.Key(ctx, p.TenantID, p.ID, kid, alg)
	switch {
	case err == nil && key == nil:
		return nil, refuse(ReasonKeyNotFound, errNilKey)
	case err == nil:
		return key, nil
	case errors.Is(err, jwkscache.ErrKeyNotFound):
		return nil, refuse(ReasonKeyNotFound, err)
	case errors.Is(err, jwkscache.ErrUnknownProvider):
		return nil, refuse(ReasonIssuerUnknown, err)
	default:
		// ErrUnavailable, a cold wait that timed out, or any other failure
		// of the key source: the identity provider's problem, not the
		// client's, so 503 rather than 401.
		return nil, refuse(ReasonJWKSUnavailable, err)
	}
}

// verifySignature checks the JWS signature over header.payload (RFC 7515
// §5.2).
func (tok *token) verifySignature(key crypto.PublicKey) error {
	signed := tok.raw[:strings.LastIndexByte(tok.raw, '.')]
	if err := tok.method.Verify(signed, tok.sig, key); err != nil {
		return refuse(ReasonSignatureInvalid, err)
	}
	return nil
}

// checkClaims applies p's claim rules (package doc, step 7) at now and
// returns the token's times for later checks of a cached token.
func checkClaims(p *tenants.ProviderRules, claims jwt.MapClaims, now time.Time) (claimTimes, error) {
	if _, ok := claims["exp"]; !ok {
		return claimTimes{}, refuse(ReasonTokenMalformed, errExpMissing)
	}
	if _, ok := claims["aud"]; !ok && len(p.Audiences) > 0 {
		return claimTimes{}, refuse(ReasonAudienceMismatch, errAudMissing)
	}
	times := timesOf(claims)
	if err := checkClaimValues(p, claims, times, now); err != nil {
		return claimTimes{}, err
	}
	return times, nil
}

// wellFormed checks the JWS compact shape before any decoding (RFC 7515
// §7.1, §2 base64url without padding): three segments of [A-Za-z0-9_-],
// header and payload non-empty (an empty signature is left to the alg
// check, so "none" is reported as algorithm_not_allowed). Go's base64
// decoder would otherwise skip '\r' and '\n'.
func wellFormed(raw string) bool {
	dots, segLen := 0, 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if base64URL[c] {
			segLen++
			continue
		}
		if c != '.' || segLen == 0 || segLen%4 == 1 {
			return false
		}
		dots++
		segLen = 0
	}
	return dots == 2 && segLen%4 != 1
}

// base64URL holds the base64url alphabet (RFC 4648 §5): one table load per
// byte, where a switch of ranges cost a quarter of a cached token's Check.
var base64URL = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()

// checkClaimTypes enforces the JSON types of the registered claims (RFC
// 7519 §4.1): a token whose exp is a string is malformed, not "no exp".
func checkClaimTypes(c jwt.MapClaims) error {
	for _, name := range [...]string{"iss", "sub", "jti"} {
		if v, ok := c[name]; ok {
			if _, ok := v.(string); !ok {
				return fmt.Errorf("claim %s is not a string", name)
			}
		}
	}
	for _, name := range [...]string{"exp", "nbf", "iat"} {
		if v, ok := c[name]; ok {
			if err := checkNumericDate(v); err != nil {
				return fmt.Errorf("claim %s: %w", name, err)
			}
		}
	}
	if v, ok := c["aud"]; ok {
		switch a := v.(type) {
		case string:
		case []any:
			for _, e := range a {
				if _, ok := e.(string); !ok {
					return errors.New("claim aud has a non-string element")
				}
			}
		default:
			return errors.New("claim aud is neither a string nor an array of strings")
		}
	}
	return nil
}

// unixToInternal is how many seconds before 1970 time.Time's own clock
// starts (January 1, year 1): a Unix second beyond MaxInt64 minus this
// overflows time.Unix.
const unixToInternal = 62135596800

// checkNumericDate accepts a NumericDate (RFC 7519 §2: seconds since the
// epoch, a JSON number) that int64 seconds, and so time.Time, can hold. A
// larger one would wrap to a date in the past or the far future when
// converted, turning a "never expires" token into an expired one or back.
func checkNumericDate(v any) error {
	n, ok := v.(json.Number)
	if !ok {
		return errors.New("not a number")
	}
	f, err := n.Float64()
	if err != nil || !(f >= -0x1p63 && f < 0x1p63) || int64(f) > math.MaxInt64-unixToInternal {
		return errors.New("beyond the range of int64 seconds")
	}
	return nil
}
