package dpop

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxProofBytes bounds the DPoP header: a proof with an RSA-4096 jwk is
// about 1.5 KiB, and a bound keeps a client from making the service parse
// megabytes.
const MaxProofBytes = 8 << 10

// The outcomes of Check, told apart with errors.Is. Each error Check
// returns wraps one of them with the rule that failed (never a token).
var (
	// ErrInvalidProof: the proof breaks a rule of RFC 9449 §4.3.
	ErrInvalidProof = errors.New("dpop: invalid proof")
	// ErrBindingMismatch: a valid proof made with another key than the
	// one the token's cnf.jkt names (RFC 9449 §6.1).
	ErrBindingMismatch = errors.New("dpop: proof key does not match the token's cnf.jkt")
	// ErrReplayed: this proof was accepted before (RFC 9449 §11.1).
	ErrReplayed = errors.New("dpop: proof replayed")
	// ErrReplayUnavailable: the replay cache could not answer (Redis
	// unreachable, or this replica's cache is full); the proof is refused.
	ErrReplayUnavailable = errors.New("dpop: replay check unavailable")
)

// Policy is one provider's DPoP settings.
type Policy struct {
	Algorithms []string      // allowed proof algs: asymmetric only
	MaxAge     time.Duration // how old a proof's iat may be
	ClockSkew  time.Duration // added on both sides of the iat window
}

// Request is what a proof is checked against.
type Request struct {
	Proof       string // the DPoP header's value
	Method      string // the request's method
	URI         string // the request's URI: scheme://authority/path (a query is ignored)
	AccessToken string // the access token, for ath
	JKT         string // the token's cnf.jkt
}

// Checker checks proofs. It is safe for concurrent use.
type Checker struct {
	replay ReplayCache
	now    func() time.Time
	parser *jwt.Parser
}

// NewChecker returns a Checker recording jti values in replay and reading
// time from now (time.Now when nil).
func NewChecker(replay ReplayCache, now func() time.Time) *Checker {
	if now == nil {
		now = time.Now
	}
	return &Checker{
		replay: replay,
		now:    now,
		// Claims are checked below, with the proof's own rules (RFC 9449
		// §4.3 checks 9-12); strict decoding gives a proof one encoding.
		parser: jwt.NewParser(jwt.WithStrictDecoding(), jwt.WithoutClaimsValidation()),
	}
}

// proofClaims are the claims RFC 9449 §4.2 defines.
type proofClaims struct {
	JTI string   `json:"jti"`
	HTM string   `json:"htm"`
	HTU string   `json:"htu"`
	IAT *float64 `json:"iat"`
	ATH string   `json:"ath"`
}

func (proofClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (proofClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (proofClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (proofClaims) GetIssuer() (string, error)                   { return "", nil }
func (proofClaims) GetSubject() (string, error)                  { return "", nil }
func (proofClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// Check applies RFC 9449 §4.3 to r.Proof, then the binding (cnf.jkt), then
// the replay cache: a proof is recorded only once every other check passed,
// so invalid proofs cannot fill the cache.
func (c *Checker) Check(ctx context.Context, pol *Policy, r *Request) error {
	if len(r.Proof) > MaxProofBytes {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidProof, MaxProofBytes)
	}
	// One DPoP header (§4.3 check 1): gateways join repeated headers with
	// ",", which the base64url segments of a JWS never contain, so joined
	// headers fail the parse below.
	var key JWK
	var claims proofClaims
	_, err := c.parser.ParseWithClaims(r.Proof, &claims, func(t *jwt.Token) (any, error) {
		// §4.3 check 4: typ is dpop+jwt (media types compare
		// case-insensitively, RFC 7515 §4.1.9).
		if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "dpop+jwt") {
			return nil, errors.New("typ is not dpop+jwt")
		}
		// No extension is understood (RFC 7515 §4.1.11).
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New("crit header: no extension is understood")
		}
		// §4.3 check 5: an asymmetric alg the server supports; the
		// configured list holds only those.
		if !slices.Contains(pol.Algorithms, t.Method.Alg()) {
			return nil, fmt.Errorf("alg %s is not allowed", t.Method.Alg())
		}
		// §4.3 check 6-7: a public jwk.
		raw, err := json.Marshal(t.Header["jwk"])
		if err != nil || t.Header["jwk"] == nil {
			return nil, errors.New("no jwk header")
		}
		if _, ok := t.Header["jwk"].(map[string]any); !ok {
			return nil, errors.New("jwk header is not an object")
		}
		key, err = ParseJWK(raw)
		if err != nil {
			return nil, err
		}
		return key.Key, nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	if err := c.checkClaims(pol, r, &claims); err != nil {
		return err
	}
	// RFC 9449 §6.1: the token is bound to the proof's key.
	if r.JKT == "" || key.Thumbprint != r.JKT {
		return ErrBindingMismatch
	}
	// The jti is remembered until the proof would fail the iat check
	// anyway; it is scoped by the key, as two clients may pick one jti.
	ttl := time.Duration((*claims.IAT)*float64(time.Second)) - time.Duration(c.now().UnixNano()) + pol.MaxAge + pol.ClockSkew + time.Second
	sum := sha256.Sum256([]byte(key.Thumbprint + "\x00" + claims.JTI))
	fresh, err := c.replay.Once(ctx, base64.RawURLEncoding.EncodeToString(sum[:]), ttl)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrReplayUnavailable, err)
	case !fresh:
		return ErrReplayed
	}
	return nil
}

// checkClaims applies RFC 9449 §4.3 checks 2 and 9-12.
func (c *Checker) checkClaims(pol *Policy, r *Request, cl *proofClaims) error {
	switch {
	case cl.JTI == "":
		return fmt.Errorf("%w: no jti", ErrInvalidProof)
	case cl.HTM != r.Method: // RFC 9110 §9.1: methods are case-sensitive
		return fmt.Errorf("%w: htm is not the request method", ErrInvalidProof)
	case cl.IAT == nil || math.IsNaN(*cl.IAT) || math.IsInf(*cl.IAT, 0):
		return fmt.Errorf("%w: no iat", ErrInvalidProof)
	}
	htu, err := NormalizeURI(cl.HTU)
	if err != nil {
		return fmt.Errorf("%w: htu: %w", ErrInvalidProof, err)
	}
	want, err := NormalizeURI(r.URI)
	if err != nil || htu != want {
		return fmt.Errorf("%w: htu is not the request URI", ErrInvalidProof)
	}
	now := float64(c.now().UnixNano()) / float64(time.Second)
	if iat := *cl.IAT; iat > now+pol.ClockSkew.Seconds() || iat < now-(pol.MaxAge+pol.ClockSkew).Seconds() {
		return fmt.Errorf("%w: iat outside the accepted window", ErrInvalidProof)
	}
	if cl.ATH != AccessTokenHash(r.AccessToken) {
		return fmt.Errorf("%w: ath is not the hash of the access token", ErrInvalidProof)
	}
	return nil
}

// AccessTokenHash is the ath of a token: base64url(SHA-256(ASCII of the
// token)), RFC 9449 §4.2.
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
