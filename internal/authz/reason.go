package authz

import (
	"net/http"

	"google.golang.org/grpc/codes"
)

// Reason is a stable, documented decision code (see the package doc table).
type Reason string

// The reason codes (see the package doc table and Reason's methods for
// what each answers).
const (
	ReasonOK                  Reason = "ok"                    // token valid, request allowed
	ReasonTokenMissing        Reason = "token_missing"         // no token in any source the provider reads
	ReasonTokenMalformed      Reason = "token_malformed"       // not a well-formed JWS compact JWT (shape, base64url, JSON, crit, claim types, exp missing, typ)
	ReasonTokenTooLarge       Reason = "token_too_large"       // over limits.max_token_bytes; never parsed
	ReasonAlgorithmNotAllowed Reason = "algorithm_not_allowed" // alg not in the provider's list (none and HS* never are)
	ReasonKeyNotFound         Reason = "key_not_found"         // no key for the token's kid and alg in the provider's JWKS
	ReasonSignatureInvalid    Reason = "signature_invalid"     // the signature does not verify
	ReasonTokenExpired        Reason = "token_expired"         // exp plus clock_skew is past
	ReasonTokenNotYetValid    Reason = "token_not_yet_valid"   // nbf or iat later than now plus clock_skew
	ReasonIssuerUnknown       Reason = "issuer_unknown"        // no provider of the tenant has the token's iss
	ReasonAudienceMismatch    Reason = "audience_mismatch"     // none of the provider's audiences in aud
	ReasonTenantUnknown       Reason = "tenant_unknown"        // no tenant for the request
	ReasonJWKSUnavailable     Reason = "jwks_unavailable"      // the provider has no usable keys (identity provider down, nothing cached)
	ReasonProviderNotAllowed  Reason = "provider_not_allowed"  // a valid token from a provider the route's requirement does not accept
	ReasonInsufficientScope   Reason = "insufficient_scope"    // a valid token that fails a claim matcher of the route's requirement (RFC 6750 §3.1)
	ReasonRequirementUnknown  Reason = "requirement_unknown"   // context_extensions names a requirement the tenant does not have
	ReasonPathInvalid         Reason = "path_invalid"          // routes apply and the path carries %2F, %5C, %00 or '\', or is not an origin-form path

	ReasonDPoPProofMissing      Reason = "dpop_proof_missing"      // a DPoP-bound token without a DPoP header, or presented as Bearer
	ReasonDPoPProofInvalid      Reason = "dpop_proof_invalid"      // the DPoP proof breaks a rule of RFC 9449 §4.3
	ReasonDPoPProofReplayed     Reason = "dpop_proof_replayed"     // the DPoP proof was used before
	ReasonDPoPBindingMismatch   Reason = "dpop_binding_mismatch"   // the proof's key is not the token's cnf.jkt, or the token is not DPoP-bound
	ReasonDPoPReplayUnavailable Reason = "dpop_replay_unavailable" // the replay check could not answer (Redis down, cache full): fail closed
	ReasonCertificateMissing    Reason = "certificate_missing"     // a certificate-bound token without a client certificate
	ReasonCertificateMismatch   Reason = "certificate_mismatch"    // the client certificate is not the token's cnf["x5t#S256"], or the token is not certificate-bound
)

// answer is what a front end says for one reason.
type answer struct {
	status int        // HTTP status
	code   codes.Code // gRPC status of an ext_authz CheckResponse
	// bearerError is the RFC 6750 §3.1 error code of a 401's
	// WWW-Authenticate when a token was presented; "" for no challenge.
	bearerError string
	description string // fixed, token-free error_description
}

// answers is the one table both front ends read (grpcauthz for the gRPC
// status, forwardauth and grpcauthz for the HTTP status, challenge and
// body). A reason missing here is a programming error that
// TestReasons_EveryReasonHasAnAnswer catches.
var answers = map[Reason]answer{
	ReasonOK:                  {http.StatusOK, codes.OK, "", ""},
	ReasonTokenMissing:        {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "no bearer token in the request"},
	ReasonTokenMalformed:      {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the token is malformed"},
	ReasonTokenTooLarge:       {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the token is too large"},
	ReasonAlgorithmNotAllowed: {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the token's signing algorithm is not allowed"},
	ReasonKeyNotFound:         {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "no key found for the token's key id"},
	ReasonSignatureInvalid:    {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the token's signature is invalid"},
	ReasonTokenExpired:        {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the token has expired"},
	ReasonTokenNotYetValid:    {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the token is not valid yet"},
	ReasonIssuerUnknown:       {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the token's issuer is not accepted here"},
	ReasonAudienceMismatch:    {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the token is not meant for this audience"},
	ReasonTenantUnknown:       {http.StatusForbidden, codes.PermissionDenied, "", "no tenant for this request"},
	ReasonJWKSUnavailable:     {http.StatusServiceUnavailable, codes.Unavailable, "", "the identity provider's keys are unavailable; try again later"},
	ReasonProviderNotAllowed:  {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "tokens of this issuer are not accepted on this route"},
	// A 403 whose challenge (RFC 6750 §3.1's error="insufficient_scope"
	// with the scope asked for) denyRequirement builds: it needs the
	// requirement, which this table does not know.
	ReasonInsufficientScope:  {http.StatusForbidden, codes.PermissionDenied, "", "the token lacks the scopes or claims this route requires"},
	ReasonRequirementUnknown: {http.StatusForbidden, codes.PermissionDenied, "", "the route names an unknown requirement"},
	ReasonPathInvalid:        {http.StatusBadRequest, codes.InvalidArgument, "", "the request path is ambiguous or not a valid path"},

	// The DPoP 401s carry RFC 9449 §7.1's DPoP challenge instead (see
	// denySender); their bearerError only marks them as challenged.
	ReasonDPoPProofMissing:      {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the token is DPoP-bound: send it with the DPoP scheme and one DPoP proof"},
	ReasonDPoPProofInvalid:      {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the DPoP proof is invalid"},
	ReasonDPoPProofReplayed:     {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the DPoP proof was already used"},
	ReasonDPoPBindingMismatch:   {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the DPoP proof does not match the token's key binding"},
	ReasonDPoPReplayUnavailable: {http.StatusServiceUnavailable, codes.Unavailable, "", "the DPoP proof cannot be checked right now; try again later"},
	ReasonCertificateMissing:    {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the token is bound to a client certificate, and none was presented"},
	ReasonCertificateMismatch:   {http.StatusUnauthorized, codes.Unauthenticated, "invalid_token", "the client certificate does not match the token's binding"},
}

// Reasons lists every reason code, allow first.
var Reasons = []Reason{
	ReasonOK, ReasonTokenMissing, ReasonTokenMalformed, ReasonTokenTooLarge,
	ReasonAlgorithmNotAllowed, ReasonKeyNotFound, ReasonSignatureInvalid,
	ReasonTokenExpired, ReasonTokenNotYetValid, ReasonIssuerUnknown,
	ReasonAudienceMismatch, ReasonTenantUnknown, ReasonJWKSUnavailable,
	ReasonProviderNotAllowed, ReasonInsufficientScope, ReasonRequirementUnknown,
	ReasonPathInvalid,
	ReasonDPoPProofMissing, ReasonDPoPProofInvalid, ReasonDPoPProofReplayed,
	ReasonDPoPBindingMismatch, ReasonDPoPReplayUnavailable,
	ReasonCertificateMissing, ReasonCertificateMismatch,
}

// String returns the code as it appears in bodies, logs and metrics.
func (r Reason) String() string { return string(r) }

// HTTPStatus returns the HTTP status a decision with this reason carries;
// 403 for a reason not in the table, so an unknown reason never reads as
// an allow.
func (r Reason) HTTPStatus() int {
	if a, ok := answers[r]; ok {
		return a.status
	}
	return http.StatusForbidden
}

// GRPCCode returns the gRPC status of an ext_authz CheckResponse with this
// reason; PermissionDenied for a reason not in the table.
func (r Reason) GRPCCode() codes.Code {
	if a, ok := answers[r]; ok {
		return a.code
	}
	return codes.PermissionDenied
}

// BearerError returns the RFC 6750 §3.1 error code a 401 with this reason
// carries when a token was presented ("invalid_token"), or "" when the
// answer has no Bearer challenge.
func (r Reason) BearerError() string { return answers[r].bearerError }

// Description returns the fixed, token-free error_description.
func (r Reason) Description() string { return answers[r].description }

// isDPoP reports whether r is a DPoP proof denial (RFC 9449 §7.1 challenge).
func (r Reason) isDPoP() bool {
	switch r {
	case ReasonDPoPProofMissing, ReasonDPoPProofInvalid, ReasonDPoPProofReplayed, ReasonDPoPBindingMismatch:
		return true
	}
	return false
}
