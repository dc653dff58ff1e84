// Package dpop checks DPoP proofs (RFC 9449): the proof JWT a client sends
// in the DPoP header to show that it holds the private key a sender-
// constrained access token is bound to.
//
// Checker.Check applies RFC 9449 §4.3: typ dpop+jwt, an asymmetric alg from
// the allowlist, a public jwk in the header (private members refused), the
// signature with that key, htm and htu equal to the request's method and URI
// (normalised as RFC 3986 §6 says), iat within the window, a jti, ath equal
// to the hash of the access token, and the token's cnf.jkt equal to the RFC
// 7638 thumbprint of the proof's jwk (RFC 9449 §6.1). A jti is accepted once
// within its window (§11.1) through a ReplayCache: one per replica
// (MemoryReplay, bounded, refusing when full) or one per fleet (Redis).
//
// Server-provided nonces (RFC 9449 §8) are not supported yet.
package dpop
