package authz

import (
	"encoding/json"
	"math"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/tenants"
)

// The claim checks are golang-jwt's Validator (WithExpirationRequired,
// WithLeeway of the provider's clock_skew, WithIssuedAt, WithIssuer for a
// fixed issuer, WithAudience any-of), rewritten over the claims extauthz
// has already type-checked (checkClaimTypes) so that a Check allocates
// nothing for them: the Validator converts every time claim to a
// *NumericDate and the audience to a slice, and collects its findings in
// a slice, on every Check. TestCheckClaimValues_MatchesValidator runs both
// over random claims and compares the reason codes.

// claimTimes are a token's exp, nbf and iat, as golang-jwt's NumericDate
// reads a JSON number: seconds, the fraction in nanoseconds, truncated to
// jwt.TimePrecision.
type claimTimes struct {
	exp, nbf, iat  time.Time
	hasNbf, hasIat bool
}

// timesOf reads the time claims of claims that passed checkClaimTypes and
// have an exp.
func timesOf(claims jwt.MapClaims) claimTimes {
	t := claimTimes{exp: numericDate(claims["exp"])}
	if v, ok := claims["nbf"]; ok {
		t.nbf, t.hasNbf = numericDate(v), true
	}
	if v, ok := claims["iat"]; ok {
		t.iat, t.hasIat = numericDate(v), true
	}
	return t
}

// numericDate is golang-jwt's conversion of a json.Number (checkNumericDate
// has checked its range).
func numericDate(v any) time.Time {
	n, _ := v.(json.Number)
	f, _ := n.Float64()
	round, frac := math.Modf(f)
	return time.Unix(int64(round), int64(frac*1e9)).Truncate(jwt.TimePrecision)
}

// checkClaimValues checks exp, nbf and iat against now with p's clock skew,
// the audience against p's audiences (any of them) and, for a fixed
// issuer, iss against it: chooseProvider has matched iss already, so that
// is defence in depth. With several problems the reason is the first of
// expired, not yet valid, audience, issuer; an empty aud or iss claim that
// p requires is token_malformed (golang-jwt's ErrTokenRequiredClaimMissing).
func checkClaimValues(p *tenants.ProviderRules, claims jwt.MapClaims, t claimTimes, now time.Time) error {
	skew := p.ClockSkew
	switch {
	case !now.Before(t.exp.Add(skew)):
		return refuse(ReasonTokenExpired, jwt.ErrTokenExpired)
	case t.hasNbf && now.Before(t.nbf.Add(-skew)):
		return refuse(ReasonTokenNotYetValid, jwt.ErrTokenNotValidYet)
	case t.hasIat && now.Before(t.iat.Add(-skew)):
		return refuse(ReasonTokenNotYetValid, jwt.ErrTokenUsedBeforeIssued)
	}
	audMissing := false
	if len(p.Audiences) > 0 {
		var match bool
		match, audMissing = audienceMatch(claims["aud"], p.Audiences)
		if !match && !audMissing {
			return refuse(ReasonAudienceMismatch, jwt.ErrTokenInvalidAudience)
		}
	}
	issMissing := false
	if p.Template == nil {
		iss, _ := claims["iss"].(string)
		if iss != "" && iss != p.Issuer {
			return refuse(ReasonIssuerUnknown, jwt.ErrTokenInvalidIssuer)
		}
		issMissing = iss == ""
	}
	switch {
	case audMissing:
		return refuse(ReasonTokenMalformed, errAudRequired)
	case issMissing:
		return refuse(ReasonTokenMalformed, errIssRequired)
	}
	return nil
}

// audienceMatch reports whether the aud claim (a string or an array of
// strings: checkClaimTypes) names one of want, or is empty (absent, no
// value, or only "").
func audienceMatch(aud any, want []string) (match, empty bool) {
	switch a := aud.(type) {
	case nil:
		return false, true
	case string:
		return a != "" && slices.Contains(want, a), a == ""
	case []any:
		if len(a) == 0 || len(a) == 1 && a[0] == "" {
			return false, true
		}
		for _, e := range a {
			if s, _ := e.(string); slices.Contains(want, s) {
				return true, false
			}
		}
	}
	return false, false
}
