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
//  2. Token: the first configured source that holds a non-empty token wins.
//     Sources are tried in the order from_headers, from_cookies, from_params;
//     when the provider is not fixed by context_extensions["provider"], the
//     tenant's providers' sources are tried in provider order (and the
//     provider the token's iss then selects must read that source, else
//     token_missing). A header
//     source's prefix ("Bearer ") is matched case-insensitively (RFC 7235
//     §2.1: the auth-scheme is case-insensitive).
//  3. Size, then shape: at most limits.max_token_bytes, three non-empty
//     segments of the unpadded base64url alphabet only (RFC 7515 §2, §7.1).
//  4. Header and claims parse; unknown "crit" rejected (RFC 7515 §4.1.11);
//     registered claims of the wrong JSON type are malformed (RFC 7519 §4.1),
//     and so is an exp, nbf or iat beyond what int64 seconds hold. Numbers
//     are kept as json.Number, so claims reach the upstream digit for digit.
//  5. Provider (chooseProvider, the one place it is chosen):
//     context_extensions["provider"] if set, else the tenant's provider
//     whose issuer equals iss.
//  6. typ in the provider's token_types when it lists any (RFC 8725 §3.11;
//     else token_malformed); alg in the provider's list; key from the
//     KeySource by (kid, alg) — never from jku, x5u, jwk or x5c (RFC 8725
//     §3.10); signature.
//  7. exp required; exp, nbf and iat with clock_skew; iss exact; aud any-of.
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
//
// A denial's body is JSON {"error": "<reason>", "error_description": "..."}.
// 401 answers carry WWW-Authenticate: Bearer realm="<tenant>", plus
// error="invalid_token" and error_description when a token was present
// (RFC 6750 §3). Descriptions are fixed texts: they never echo the token.
//
// # Claim headers
//
// On allow, each claims_to_headers entry the token fills sets its header,
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
// Decisions are logged with log/slog (tenant, provider, reason, status,
// latency, request_id, method, path without its query); denials at Info,
// allows at Debug. The token is never logged.
package authz
