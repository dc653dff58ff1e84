package forwardauth

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/extauthz/extauthz/internal/authz"
)

// The forwarded headers, in Go's canonical form (X-Original-URI arrives as
// X-Original-Uri). From an untrusted peer every one of them is ignored.
const (
	hForwardedHost   = "X-Forwarded-Host"
	hForwardedURI    = "X-Forwarded-Uri"
	hForwardedMethod = "X-Forwarded-Method"
	hForwardedProto  = "X-Forwarded-Proto"
	hForwardedFor    = "X-Forwarded-For"
	hForwardedPrefix = "X-Forwarded-Prefix"
	hOriginalURI     = "X-Original-Uri"
	hOriginalMethod  = "X-Original-Method"
	hForwarded       = "Forwarded" // RFC 7239
	hClientCert      = "X-Forwarded-Client-Cert"
)

var forwardedHeaders = [...]string{
	hForwardedHost, hForwardedURI, hForwardedMethod, hForwardedProto,
	hForwardedFor, hForwardedPrefix, hOriginalURI, hOriginalMethod, hForwarded,
	hClientCert,
}

func isForwarded(canonical string) bool {
	for _, f := range forwardedHeaders {
		if canonical == f {
			return true
		}
	}
	return false
}

// request maps a subrequest to the authz.Request of the original request
// (see the package doc for the precedence of each gateway's headers).
func (h *Handler) request(r *http.Request) *authz.Request {
	trusted := h.trusts(r.RemoteAddr)
	req := &authz.Request{
		Host:    r.Host,
		Path:    h.ownTarget(r),
		Method:  r.Method,
		Headers: make(map[string]string, len(r.Header)),
	}
	var ignored []string
	for name, vals := range r.Header {
		if !trusted && isForwarded(name) {
			ignored = append(ignored, name)
			continue
		}
		k := strings.ToLower(name)
		sep := ","
		if k == "cookie" {
			sep = "; " // RFC 6265 §5.4
		}
		req.Headers[k] = strings.Join(vals, sep)
	}
	req.RequestID = req.Headers["x-request-id"]
	req.ClientAddress = peerHost(r.RemoteAddr)
	// The subrequest's own scheme, unless a trusted proxy says what the
	// client used (DPoP's htu is checked against it).
	req.Scheme = "http"
	if r.TLS != nil {
		req.Scheme = "https"
	}
	if !trusted {
		if len(ignored) > 0 {
			// Names only: X-Forwarded-Uri may carry a token in its query.
			h.log.LogAttrs(r.Context(), slog.LevelDebug, "forwarded headers ignored: peer is not a trusted proxy",
				slog.String("peer", r.RemoteAddr), slog.Any("headers", ignored))
		}
		return req
	}
	var ambiguous []string
	pick := func(dst *string, name string, list bool) bool {
		v, present, ok := forwarded(r.Header, name, list)
		if !present {
			return false
		}
		if !ok {
			ambiguous = append(ambiguous, name)
		}
		*dst = v
		return true
	}
	if xff := strings.TrimSpace(r.Header.Get(hForwardedFor)); xff != "" {
		// The proxy's X-Forwarded-For, as it sent it: the client address
		// first, then the proxies (audit log only; never a decision input).
		req.ClientAddress = xff
	}
	pick(&req.Host, hForwardedHost, true)
	forwardedTarget := pick(&req.Path, hForwardedURI, false) || pick(&req.Path, hOriginalURI, false)
	if name, ok := requirementFromPath(r.URL.Path); ok && forwardedTarget {
		// The gateway's own auth URL names the requirement. Only when the
		// original target arrived in a forwarded header is the
		// subrequest's path the gateway's, not the client's.
		req.ContextExtensions = map[string]string{"requirement": name}
	}
	if !pick(&req.Method, hForwardedMethod, false) {
		pick(&req.Method, hOriginalMethod, false)
	}
	var proto string
	if pick(&proto, hForwardedProto, true) {
		req.Scheme = strings.ToLower(proto)
	}
	// The client certificate's hash, believed only with
	// trust_forwarded_client_cert (authz checks that) and only from here.
	req.ForwardedClientCert = r.Header.Get(hClientCert)
	if len(ambiguous) > 0 {
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "ambiguous forwarded headers taken as empty",
			slog.String("peer", r.RemoteAddr), slog.Any("headers", ambiguous))
	}
	return req
}

// RequirementSegment is the path segment of a forward-auth URL before the
// name of the requirement to apply: ".../requirement/orders-admin".
const RequirementSegment = "requirement"

// requirementFromPath returns <name> of a path ending in
// "/requirement/<name>".
func requirementFromPath(p string) (string, bool) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", false
	}
	name, rest := p[i+1:], p[:i]
	if name == "" || !strings.HasSuffix(rest, "/"+RequirementSegment) {
		return "", false
	}
	return name, true
}

// forwarded returns the single value of a forwarded header. present is
// false when the header is absent. A header sent more than once, or (for
// list) a comma-separated list, is not ok and its value is "": proxies that
// append rather than overwrite would let the client's own value through, so
// ambiguity fails closed instead of guessing which entry a proxy wrote.
func forwarded(h http.Header, name string, list bool) (v string, present, ok bool) {
	vals := h[name]
	switch {
	case len(vals) == 0:
		return "", false, true
	case len(vals) > 1:
		return "", true, false
	}
	v = strings.TrimSpace(vals[0])
	if list && strings.Contains(v, ",") {
		return "", true, false
	}
	return v, true, true
}

// ownTarget is the subrequest's own request target (path and query, as
// received) without the configured prefix: Envoy's http_service sends
// path_prefix followed by the original target.
func (h *Handler) ownTarget(r *http.Request) string {
	t := r.RequestURI
	if !strings.HasPrefix(t, "/") { // absolute-form, "*", or a hand-built request
		t = r.URL.RequestURI()
	}
	if h.prefix == "" {
		return t
	}
	rest, ok := strings.CutPrefix(t, h.prefix)
	if !ok {
		return t
	}
	switch {
	case rest == "":
		return "/"
	case rest[0] == '/':
		return rest
	case rest[0] == '?':
		return "/" + rest
	}
	return t // "/extauthzfoo" is not under the prefix "/extauthz"
}

// peerHost is the address part of remoteAddr ("ip:port"), or remoteAddr.
func peerHost(remoteAddr string) string {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().String()
	}
	return remoteAddr
}

// trusts reports whether the peer at remoteAddr ("ip:port") is inside a
// trusted prefix. Loopback is not trusted unless listed: behind a sidecar
// proxy (Istio's arrives from 127.0.0.6) every client is a loopback peer.
func (h *Handler) trusts(remoteAddr string) bool {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(remoteAddr); err != nil {
		return false // a Unix socket or an unknown peer: not trusted
	}
	a = a.Unmap().WithZone("")
	for _, p := range h.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
