// Package authz provides extauthz's authorization decision: which tenant and
// identity provider a request belongs to, whether its bearer token is valid,
// and what to tell the gateway. One gateway-neutral function, Server.Decide,
// makes every decision; it knows nothing of any gateway's protocol. The
// front ends sit beside each other over it: grpcauthz (Envoy's ext_authz
// gRPC API) and forwardauth (HTTP forward-auth). Both read the answer for a
// reason from the one table behind Reason's methods: HTTPStatus, GRPCCode,
// BearerError and Description.
//
// # Decision order
//
//  1. Tenant: Envoy's per-route context_extensions["tenant"] if set (unknown:
//     denied, no fall-back); else, when the config names a tenant_header and
//     the request carries it, that header's value (unknown: denied, no
//     fall-back); else the most specific host match of :authority.
//  2. Requirement: context_extensions["requirement"] if set
//     (unknown: requirement_unknown, no fall-back); else the first of the
//     tenant's routes matching the path normalised by internal/urlpath and
//     the method (a path it refuses: path_invalid); else the tenant's
//     default_requirement. None is the baseline: any valid token of the
//     tenant's providers.
//  3. Token: the first configured source that holds a non-empty token wins.
//     Sources are tried in the order from_headers, from_cookies, from_params;
//     when the provider is not fixed by context_extensions["provider"], the
//     tenant's providers' sources are tried in provider order (and the
//     provider the token's iss then selects must read that source, else
//     token_missing). A header
//     source's prefix ("Bearer ") is matched case-insensitively (RFC 7235
//     §2.1: the auth-scheme is case-insensitive). No token under a
//     requirement with allow_missing: an anonymous allow.
//  4. Size, then shape: at most limits.max_token_bytes, three non-empty
//     segments of the unpadded base64url alphabet only (RFC 7515 §2, §7.1).
//  5. Header and claims parse; unknown "crit" rejected (RFC 7515 §4.1.11);
//     registered claims of the wrong JSON type are malformed (RFC 7519 §4.1),
//     and so is an exp, nbf or iat beyond what int64 seconds hold. Numbers
//     are kept as json.Number, so claims reach the upstream digit for digit.
//  6. Provider (chooseProvider, the one place it is chosen):
//     context_extensions["provider"] if set, else the tenant's provider
//     whose issuer equals iss, or whose issuer_template iss matches with the
//     placeholder's value equal to the token's claim of that name and in
//     template_values (the value goes to dynamic metadata as
//     issuer_values).
//  7. typ in the provider's token_types when it lists any (RFC 8725 §3.11;
//     else token_malformed); alg in the provider's list; key from the
//     KeySource by (kid, alg) — never from jku, x5u, jwk or x5c (RFC 8725
//     §3.10); signature.
//  8. exp required; exp, nbf and iat with clock_skew; iss exact; aud any-of.
//  9. Sender constraint (the provider's sender_constraint): a token with
//     cnf.jkt needs the DPoP scheme and a valid, unreplayed DPoP proof of
//     that key (RFC 9449 §4.3, §7.1; package dpop); one with
//     cnf["x5t#S256"] needs that client certificate (RFC 8705 §3; package
//     certbind). The "Bearer " authorization source also takes "DPoP ".
//  10. The requirement: its providers (else provider_not_allowed) and every
//     claim matcher (else insufficient_scope). Matchers compare a claim at a
//     dotted path with values of the same JSON type (json.Number or float64
//     numbers alike, integers exactly); any_of and all_of also look into
//     arrays and the words of a space-delimited string. A missing claim
//     never matches.
//  11. A tenant in shadow mode turns every denial into an allow carrying
//     WouldDeny (logged at Info, counted, dynamic metadata would_deny); the
//     claim headers go upstream only when the token was valid.
//
// # Reason codes
//
// Every Decision carries one stable Reason:
//
//	reason                 HTTP  gRPC status        meaning
//	ok                     200   OK                 token valid, request allowed
//	token_missing          401   UNAUTHENTICATED    no token in any configured source
//	token_malformed        401   UNAUTHENTICATED    not a well-formed JWS compact JWT: bad segments or base64url, bad JSON, unknown crit, registered claim of the wrong type, time claim beyond int64 seconds, exp missing, typ not in token_types
//	token_too_large        401   UNAUTHENTICATED    longer than limits.max_token_bytes; not parsed
//	algorithm_not_allowed  401   UNAUTHENTICATED    alg not in the provider's algorithms (none and HS* never are)
//	key_not_found          401   UNAUTHENTICATED    the provider's key set has no key for the token's kid and alg
//	signature_invalid      401   UNAUTHENTICATED    the signature does not verify with that key
//	token_expired          401   UNAUTHENTICATED    exp (plus clock_skew) is past
//	token_not_yet_valid    401   UNAUTHENTICATED    nbf or iat is later than now plus clock_skew
//	issuer_unknown         401   UNAUTHENTICATED    no provider of the tenant has the token's iss (or the provider named by context_extensions does not exist or has another issuer)
//	audience_mismatch      401   UNAUTHENTICATED    none of the provider's audiences is in aud
//	tenant_unknown         403   PERMISSION_DENIED  no tenant for this request
//	jwks_unavailable       503   UNAVAILABLE        the provider has no usable keys (identity provider down, nothing cached): not the client's fault
//	provider_not_allowed   401   UNAUTHENTICATED    a valid token from a provider the route's requirement does not accept
//	insufficient_scope     403   PERMISSION_DENIED  a valid token failing a claim matcher of the route's requirement
//	requirement_unknown    403   PERMISSION_DENIED  context_extensions names a requirement the tenant does not have
//	path_invalid           400   INVALID_ARGUMENT   routes apply and the path has %2F, %5C, %00 or '\', or is not origin-form
//	dpop_proof_missing     401   UNAUTHENTICATED    a DPoP-bound token without a DPoP header, or not under the DPoP scheme
//	dpop_proof_invalid     401   UNAUTHENTICATED    the DPoP proof breaks a rule of RFC 9449 §4.3
//	dpop_proof_replayed    401   UNAUTHENTICATED    the DPoP proof was accepted before
//	dpop_binding_mismatch  401   UNAUTHENTICATED    the proof's key is not cnf.jkt, or the token is not DPoP-bound
//	dpop_replay_unavailable 503  UNAVAILABLE        the replay check could not answer: fail closed
//	certificate_missing    401   UNAUTHENTICATED    a certificate-bound token without a client certificate
//	certificate_mismatch   401   UNAUTHENTICATED    the client certificate is not cnf["x5t#S256"], or the token is not certificate-bound
//
// A denial's body is JSON {"error": "<reason>", "error_description": "..."}.
// 401 answers carry WWW-Authenticate: Bearer realm="<tenant>", plus
// error="invalid_token" and error_description when a token was present
// (RFC 6750 §3). insufficient_scope is a 403 with WWW-Authenticate:
// Bearer realm="<tenant>", error="insufficient_scope", scope="<scopes>"
// (RFC 6750 §3.1), scope listing the values of the requirement's matchers
// on "scope" or "scp". The dpop_* 401s carry RFC 9449 §7.1's DPoP
// challenge instead, with error="invalid_dpop_proof" and the provider's
// proof algs. Descriptions are fixed texts: they never echo the token.
//
// # Claim headers
//
// On allow, each claims_to_headers entry (a dotted claim path, looked up
// like a matcher's) the token fills sets its header,
// overwriting any value the client sent. Strings are used as they are;
// arrays of strings are joined with "," (an HTTP list, RFC 9110 §5.6.1)
// unless an element contains a comma, in which case the array is JSON-encoded
// like every other non-string value (numbers, written as the token wrote
// them, booleans, objects). Control characters are removed and values are
// cut to limits.max_header_value_bytes at a UTF-8 boundary. Every header
// that any provider of any tenant maps a claim to and that this token did
// not fill is removed from the request, so a client cannot forge it, not
// even a header only another tenant's upstream reads. When the config names a tenant_header, an allow
// also sets that header to the tenant the decision was made for, so the
// upstream never sees a tenant the client made up (a route's
// context_extensions or the host can decide the tenant while the client
// sends another, or an empty, header).
//
// A provider with forward_token: false has its token removed from the
// upstream request where it was found (RemoveHeaders, a rewritten cookie
// header, or RemoveQueryParams); one with payload_header gets the verified
// payload segment (base64url JSON) in that header.
//
// Decisions are logged with log/slog (tenant, provider, reason, status,
// latency, request_id, method, path without its query); denials at Info,
// allows at Debug. The token is never logged.
package authz
