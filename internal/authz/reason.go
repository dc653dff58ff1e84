package authz

import "net/http"

// Reason is a stable, documented decision code (see the package doc table).
type Reason string

// The reason codes, with their HTTP status (see the package doc table).
const (
	ReasonOK                  Reason = "ok"                    // 200: token valid, request allowed
	ReasonTokenMissing        Reason = "token_missing"         // 401: no token in any source the provider reads
	ReasonTokenMalformed      Reason = "token_malformed"       // 401: not a well-formed JWS compact JWT (shape, base64url, JSON, crit, claim types, exp missing)
	ReasonTokenTooLarge       Reason = "token_too_large"       // 401: over limits.max_token_bytes; never parsed
	ReasonAlgorithmNotAllowed Reason = "algorithm_not_allowed" // 401: alg not in the provider's list (none and HS* never are)
	ReasonKeyNotFound         Reason = "key_not_found"         // 401: no key for the token's kid and alg in the provider's JWKS
	ReasonSignatureInvalid    Reason = "signature_invalid"     // 401: the signature does not verify
	ReasonTokenExpired        Reason = "token_expired"         // 401: exp plus clock_skew is past
	ReasonTokenNotYetValid    Reason = "token_not_yet_valid"   // 401: nbf or iat later than now plus clock_skew
	ReasonIssuerUnknown       Reason = "issuer_unknown"        // 401: no provider of the tenant has the token's iss
	ReasonAudienceMismatch    Reason = "audience_mismatch"     // 401: none of the provider's audiences in aud
	ReasonTenantUnknown       Reason = "tenant_unknown"        // 403: no tenant for the request
	ReasonJWKSUnavailable     Reason = "jwks_unavailable"      // 503: the provider has no usable keys (identity provider down, nothing cached)
	ReasonProviderNotAllowed  Reason = "provider_not_allowed"  // 401: a valid token from a provider the route's requirement does not accept
	ReasonInsufficientScope   Reason = "insufficient_scope"    // 403: a valid token that fails a claim matcher of the route's requirement (RFC 6750 §3.1)
	ReasonRequirementUnknown  Reason = "requirement_unknown"   // 403: context_extensions names a requirement the tenant does not have
	ReasonPathInvalid         Reason = "path_invalid"          // 400: the path carries %2F, %5C, %00 or '\', or is not an origin-form path; routes cannot be matched
)

// Reasons lists every reason code, allow first.
var Reasons = []Reason{
	ReasonOK, ReasonTokenMissing, ReasonTokenMalformed, ReasonTokenTooLarge,
	ReasonAlgorithmNotAllowed, ReasonKeyNotFound, ReasonSignatureInvalid,
	ReasonTokenExpired, ReasonTokenNotYetValid, ReasonIssuerUnknown,
	ReasonAudienceMismatch, ReasonTenantUnknown, ReasonJWKSUnavailable,
	ReasonProviderNotAllowed, ReasonInsufficientScope, ReasonRequirementUnknown,
	ReasonPathInvalid,
}

// HTTPStatus returns the HTTP status a decision with this reason carries.
func (r Reason) HTTPStatus() int {
	switch r {
	case ReasonOK:
		return http.StatusOK
	case ReasonTenantUnknown, ReasonInsufficientScope, ReasonRequirementUnknown:
		return http.StatusForbidden
	case ReasonPathInvalid:
		return http.StatusBadRequest
	case ReasonJWKSUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusUnauthorized
	}
}

// description is the fixed, token-free text sent as error_description.
func (r Reason) description() string {
	switch r {
	case ReasonTokenMissing:
		return "no bearer token in the request"
	case ReasonTokenMalformed:
		return "the token is malformed"
	case ReasonTokenTooLarge:
		return "the token is too large"
	case ReasonAlgorithmNotAllowed:
		return "the token's signing algorithm is not allowed"
	case ReasonKeyNotFound:
		return "no key found for the token's key id"
	case ReasonSignatureInvalid:
		return "the token's signature is invalid"
	case ReasonTokenExpired:
		return "the token has expired"
	case ReasonTokenNotYetValid:
		return "the token is not valid yet"
	case ReasonIssuerUnknown:
		return "the token's issuer is not accepted here"
	case ReasonAudienceMismatch:
		return "the token is not meant for this audience"
	case ReasonTenantUnknown:
		return "no tenant for this request"
	case ReasonJWKSUnavailable:
		return "the identity provider's keys are unavailable; try again later"
	case ReasonProviderNotAllowed:
		return "tokens of this issuer are not accepted on this route"
	case ReasonInsufficientScope:
		return "the token lacks the scopes or claims this route requires"
	case ReasonRequirementUnknown:
		return "the route names an unknown requirement"
	case ReasonPathInvalid:
		return "the request path is ambiguous or not a valid path"
	}
	return ""
}
