package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/jwkscache"
)

// Internal causes, for logs; the client sees only the Reason.
var (
	errShape       = errors.New("token is not three unpadded base64url segments")
	errCrit        = errors.New("token has a crit header: no extension is understood (RFC 7515 §4.1.11)")
	errKidType     = errors.New("kid header is not a string")
	errExpMissing  = errors.New("exp claim is required")
	errAudMissing  = errors.New("aud claim is required by this provider")
	errNoProvider  = errors.New("no provider of the tenant has the token's issuer")
	errIssMismatch = errors.New("token issuer differs from the provider named by context_extensions")
	errAlg         = errors.New("alg is not in the provider's algorithms")
	errNilKey      = errors.New("key source returned no key")
	errWrongSource = errors.New("token found in a source its provider does not read")
)

// verify checks raw and returns its claims and provider, or the reason it is
// refused with the cause for the log. It sets *kidOut to the token's kid
// once the header is parsed.
//
// golang-jwt's ParseUnverified, SigningMethod.Verify and Validator are used
// as separate steps rather than Parser.ParseWithClaims because the provider
// (and so its algorithms, issuer and audiences) is chosen by the token's iss,
// which is only known after parsing; one parse then serves every check, and
// each failure maps to its own reason code (ParseWithClaims reports an alg
// outside WithValidMethods as a signature error).
func (s *Server) verify(ctx context.Context, st *state, t *tenants.TenantRules, fixed *tenants.ProviderRules, raw string, src tenants.TokenSource, coldWait time.Duration, kidOut *string) (jwt.MapClaims, *tenants.ProviderRules, Reason, error) {
	p := fixed
	if !wellFormed(raw) {
		return nil, p, ReasonTokenMalformed, errShape
	}
	tok, _, err := s.parser.ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenUnverifiable) && tok != nil {
			if _, ok := tok.Header["alg"].(string); ok {
				// A syntactically fine alg golang-jwt does not know.
				return nil, p, ReasonAlgorithmNotAllowed, err
			}
		}
		return nil, p, ReasonTokenMalformed, err
	}
	if _, ok := tok.Header["crit"]; ok {
		return nil, p, ReasonTokenMalformed, errCrit
	}
	var kid string
	if v, ok := tok.Header["kid"]; ok {
		if kid, ok = v.(string); !ok {
			return nil, p, ReasonTokenMalformed, errKidType
		}
		*kidOut = kid
	}
	claims := tok.Claims.(jwt.MapClaims)
	if err := checkClaimTypes(claims); err != nil {
		return nil, p, ReasonTokenMalformed, err
	}
	iss, _ := claims["iss"].(string)
	if p == nil {
		var ok bool
		if p, ok = t.ProviderByIssuer(iss); !ok {
			return nil, nil, ReasonIssuerUnknown, errNoProvider
		}
		if !slices.Contains(p.Sources, src) {
			// The tenant's sources are the union of its providers'; a
			// provider accepts tokens only from its own (one that reads
			// headers must not accept a token from a query string, which
			// leaks into access logs).
			return nil, p, ReasonTokenMissing, errWrongSource
		}
	} else if iss != p.Issuer {
		return nil, p, ReasonIssuerUnknown, errIssMismatch
	}
	alg := tok.Method.Alg()
	if !p.AllowsAlg(alg) {
		return nil, p, ReasonAlgorithmNotAllowed, errAlg
	}
	// The key comes from the provider's JWKS only, by kid and alg; jku, x5u,
	// jwk and x5c are never looked at (RFC 8725 §3.10).
	kctx := ctx
	if coldWait > 0 {
		cw := newColdWait(ctx, coldWait)
		defer cw.stop()
		kctx = cw
	}
	key, err := s.keys.Key(kctx, t.ID, p.ID, kid, alg)
	switch {
	case err == nil && key == nil:
		return nil, p, ReasonKeyNotFound, errNilKey
	case err == nil:
	case errors.Is(err, jwkscache.ErrKeyNotFound):
		return nil, p, ReasonKeyNotFound, err
	case errors.Is(err, jwkscache.ErrUnknownProvider):
		return nil, p, ReasonIssuerUnknown, err
	default:
		// ErrUnavailable, a cold wait that timed out, or any other failure
		// of the key source: the identity provider's problem, not the
		// client's, so 503 rather than 401.
		return nil, p, ReasonJWKSUnavailable, err
	}
	signed := raw[:strings.LastIndexByte(raw, '.')]
	if err := tok.Method.Verify(signed, tok.Signature, key); err != nil {
		return nil, p, ReasonSignatureInvalid, err
	}
	if _, ok := claims["exp"]; !ok {
		return nil, p, ReasonTokenMalformed, errExpMissing
	}
	if _, ok := claims["aud"]; !ok && len(p.Audiences) > 0 {
		return nil, p, ReasonAudienceMismatch, errAudMissing
	}
	if err := st.validators[p].Validate(claims); err != nil {
		return nil, p, claimsReason(err), err
	}
	return claims, p, ReasonOK, nil
}

// claimsReason maps a golang-jwt Validator error; with several problems the
// first in this order wins.
func claimsReason(err error) Reason {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonTokenNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ReasonAudienceMismatch
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ReasonIssuerUnknown
	default:
		return ReasonTokenMalformed
	}
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
		switch {
		case c == '.':
			if segLen == 0 || segLen%4 == 1 {
				return false
			}
			dots++
			segLen = 0
			continue
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		segLen++
	}
	return dots == 2 && segLen%4 != 1
}

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
			if _, ok := v.(float64); !ok {
				return fmt.Errorf("claim %s is not a number", name)
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
