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

	ReasonDPoPProofMissing      Reason = "dpop_proof_missing"      // 401: a DPoP-bound token without a DPoP header, or presented as Bearer
	ReasonDPoPProofInvalid      Reason = "dpop_proof_invalid"      // 401: the DPoP proof breaks a rule of RFC 9449 §4.3
	ReasonDPoPProofReplayed     Reason = "dpop_proof_replayed"     // 401: the DPoP proof was used before
	ReasonDPoPBindingMismatch   Reason = "dpop_binding_mismatch"   // 401: the proof's key is not the token's cnf.jkt, or the token is not DPoP-bound
	ReasonDPoPReplayUnavailable Reason = "dpop_replay_unavailable" // 503: the replay check could not answer (Redis down, cache full); fail closed
	ReasonCertificateMissing    Reason = "certificate_missing"     // 401: a certificate-bound token without a client certificate
	ReasonCertificateMismatch   Reason = "certificate_mismatch"    // 401: the client certificate is not the token's cnf["x5t#S256"], or the token is not certificate-bound
)

// Reasons lists every reason code, allow first.
var Reasons = []Reason{
	ReasonOK, ReasonTokenMissing, ReasonTokenMalformed, ReasonTokenTooLarge,
	ReasonAlgorithmNotAllowed, ReasonKeyNotFound, ReasonSignatureInvalid,
	ReasonTokenExpired, ReasonTokenNotYetValid, ReasonIssuerUnknown,
	ReasonAudienceMismatch, ReasonTenantUnknown, ReasonJWKSUnavailable,
	ReasonDPoPProofMissing, ReasonDPoPProofInvalid, ReasonDPoPProofReplayed,
	ReasonDPoPBindingMismatch, ReasonDPoPReplayUnavailable,
	ReasonCertificateMissing, ReasonCertificateMismatch,
}

// HTTPStatus returns the HTTP status a decision with this reason carries.
func (r Reason) HTTPStatus() int {
	switch r {
	case ReasonOK:
		return http.StatusOK
	case ReasonTenantUnknown:
		return http.StatusForbidden
	case ReasonJWKSUnavailable, ReasonDPoPReplayUnavailable:
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
	case ReasonDPoPProofMissing:
		return "the token is DPoP-bound: send it with the DPoP scheme and one DPoP proof"
	case ReasonDPoPProofInvalid:
		return "the DPoP proof is invalid"
	case ReasonDPoPProofReplayed:
		return "the DPoP proof was already used"
	case ReasonDPoPBindingMismatch:
		return "the DPoP proof does not match the token's key binding"
	case ReasonDPoPReplayUnavailable:
		return "the DPoP proof cannot be checked right now; try again later"
	case ReasonCertificateMissing:
		return "the token is bound to a client certificate, and none was presented"
	case ReasonCertificateMismatch:
		return "the client certificate does not match the token's binding"
	}
	return ""
}

// isDPoP reports whether r is a DPoP proof denial (RFC 9449 §7.1 challenge).
func (r Reason) isDPoP() bool {
	switch r {
	case ReasonDPoPProofMissing, ReasonDPoPProofInvalid, ReasonDPoPProofReplayed, ReasonDPoPBindingMismatch:
		return true
	}
	return false
}
