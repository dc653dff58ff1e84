package authz

import (
	"context"
	"errors"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/certbind"
	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/tenants"
)

// Internal causes of sender-constraint denials, for logs.
var (
	errCnfType        = errors.New("cnf claim is not an object of strings")
	errDPoPAsBearer   = errors.New("DPoP-bound token (cnf.jkt) presented without the DPoP scheme (RFC 9449 §7.1)")
	errNoProof        = errors.New("no DPoP header")
	errNotDPoPBound   = errors.New("token has no cnf.jkt: not DPoP-bound")
	errNotCertBound   = errors.New(`token has no cnf["x5t#S256"]: not certificate-bound`)
	errCertThumbprint = errors.New(`client certificate does not match cnf["x5t#S256"]`)
)

// dpopScheme is the auth-scheme of a DPoP-bound token (RFC 9449 §7.1).
const dpopScheme = "DPoP "

// isAuthorizationBearer reports whether src is an Authorization header read
// with the Bearer scheme: such a source also takes the DPoP scheme.
func isAuthorizationBearer(src tenants.TokenSource) bool {
	return src.Kind == tenants.SourceHeader && src.Name == "authorization" && strings.EqualFold(src.Prefix, "Bearer ")
}

// presentedWithDPoP reports whether the token came as "Authorization: DPoP"
// (through a Bearer source, or one configured with the DPoP prefix).
func presentedWithDPoP(r *Request, src tenants.TokenSource) bool {
	v := r.Headers["authorization"]
	return src.Kind == tenants.SourceHeader && src.Name == "authorization" &&
		len(v) >= len(dpopScheme) && strings.EqualFold(v[:len(dpopScheme)], dpopScheme)
}

// confirmation reads the token's cnf claim (RFC 7800 §3.1): jkt (RFC 9449
// §6.1) and x5t#S256 (RFC 8705 §3.1).
func confirmation(claims jwt.MapClaims) (jkt, x5t string, err error) {
	v, ok := claims["cnf"]
	if !ok {
		return "", "", nil
	}
	cnf, ok := v.(map[string]any)
	if !ok {
		return "", "", errCnfType
	}
	if v, ok := cnf["jkt"]; ok {
		if jkt, ok = v.(string); !ok || jkt == "" {
			return "", "", errCnfType
		}
	}
	if v, ok := cnf["x5t#S256"]; ok {
		if x5t, ok = v.(string); !ok || x5t == "" {
			return "", "", errCnfType
		}
	}
	return jkt, x5t, nil
}

// checkSender applies the provider's sender_constraint to a verified token:
// a token bound by cnf must be proven as cnf says (if_bound), dpop and mtls
// require that binding, off ignores cnf.
func (s *Server) checkSender(ctx context.Context, st *state, r *Request, p *tenants.ProviderRules, claims jwt.MapClaims, raw string, src tenants.TokenSource) (Reason, error) {
	if p.SenderConstraint == tenants.SenderOff {
		return ReasonOK, nil
	}
	jkt, x5t, err := confirmation(claims)
	if err != nil {
		return ReasonTokenMalformed, err
	}
	withDPoP := presentedWithDPoP(r, src)
	switch {
	case p.SenderConstraint == tenants.SenderDPoP && jkt == "":
		return ReasonDPoPBindingMismatch, errNotDPoPBound
	case p.SenderConstraint == tenants.SenderMTLS && x5t == "":
		return ReasonCertificateMismatch, errNotCertBound
	}
	if jkt != "" || withDPoP {
		// The DPoP scheme with a bearer token (no jkt) goes on to
		// dpop.Check, which refuses it as a binding mismatch.
		if !withDPoP {
			return ReasonDPoPProofMissing, errDPoPAsBearer
		}
		proof, ok := r.Headers["dpop"]
		if !ok || proof == "" {
			return ReasonDPoPProofMissing, errNoProof
		}
		pol := dpop.Policy{Algorithms: p.DPoPAlgorithms, MaxAge: p.DPoPMaxAge, ClockSkew: p.ClockSkew}
		err := s.dpop.Check(ctx, &pol, &dpop.Request{
			Proof:       proof,
			Method:      r.Method,
			URI:         r.Scheme + "://" + r.Host + r.Path,
			AccessToken: raw,
			JKT:         jkt,
		})
		switch {
		case err == nil:
		case errors.Is(err, dpop.ErrBindingMismatch):
			return ReasonDPoPBindingMismatch, err
		case errors.Is(err, dpop.ErrReplayed):
			return ReasonDPoPProofReplayed, err
		case errors.Is(err, dpop.ErrReplayUnavailable):
			return ReasonDPoPReplayUnavailable, err
		default:
			return ReasonDPoPProofInvalid, err
		}
	}
	if x5t != "" {
		tp, err := certbind.FromEnvoy(r.PeerCertificate)
		if errors.Is(err, certbind.ErrNoCertificate) && st.set.TrustForwardedClientCert() {
			tp, err = certbind.FromXFCC(r.ForwardedClientCert)
		}
		switch {
		case errors.Is(err, certbind.ErrNoCertificate):
			return ReasonCertificateMissing, err
		case err != nil:
			return ReasonCertificateMismatch, err
		case tp != x5t:
			return ReasonCertificateMismatch, errCertThumbprint
		}
	}
	return ReasonOK, nil
}

// denySender is deny with, for the DPoP reasons, RFC 9449 §7.1's challenge:
// the DPoP scheme, error="invalid_dpop_proof" and the proof algorithms
// the provider accepts.
func denySender(reason Reason, tenantID string, p *tenants.ProviderRules) Decision {
	d := deny(reason, tenantID, p.ID, true)
	if d.HTTPStatus != 401 || !reason.isDPoP() {
		return d
	}
	var b strings.Builder
	b.WriteString(`DPoP realm="`)
	b.WriteString(tenantID)
	b.WriteString(`", error="invalid_dpop_proof", error_description="`)
	b.WriteString(d.Description)
	b.WriteString(`", algs="`)
	b.WriteString(strings.Join(p.DPoPAlgorithms, " ")) // validated alg names: no quoting needed
	b.WriteString(`"`)
	d.WWWAuthenticate = b.String()
	return d
}
