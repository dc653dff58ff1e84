// Package forwardauth provides extauthz's HTTP forward-auth endpoint: the
// "auth subrequest" that nginx auth_request, Traefik forwardAuth, Caddy
// forward_auth and Envoy's ext_authz http_service send before they pass a
// request on. It answers every path, and makes no decision of its own: it
// maps the subrequest to an authz.Request, asks the Decider (authz.Server's
// Decide, the same function the gRPC listener uses) and writes the Decision
// back as HTTP.
//
// # Answers
//
//   - Allow: 200 with one response header per claim header the token filled
//     (for auth_request_set, authResponseHeaders, copy_headers or
//     allowed_upstream_headers), and x-envoy-auth-headers-to-remove listing
//     the tenant's claim headers the token did not fill, so Envoy's
//     http_service removes a client's forged values as headers_to_remove does
//     on gRPC.
//   - Deny: the Decision's status (401, 403 or 503), its WWW-Authenticate
//     (RFC 6750 §3), and its JSON body {"error", "error_description"} with
//     the same reason codes as the gRPC listener.
//
// # The original request
//
// Each gateway describes the request it is guarding in its own way:
//
//	                 host                     target (path?query)       method
//	nginx            X-Forwarded-Host (set)   X-Original-URI (set)      X-Original-Method (set)
//	Traefik          X-Forwarded-Host         X-Forwarded-Uri           X-Forwarded-Method
//	Caddy            X-Forwarded-Host, Host   X-Forwarded-Uri           X-Forwarded-Method
//	Envoy http       Host (:authority)        the request's own path,   the request's own method
//	                                          after Options.PathPrefix
//
// ("set": nginx sends them only when its config says proxy_set_header.)
// The target comes from X-Forwarded-Uri, else X-Original-URI, else the
// request's own target with PathPrefix stripped; the method from
// X-Forwarded-Method, else X-Original-Method, else the request's own; the
// host from X-Forwarded-Host, else Host. X-Forwarded-* come first because
// Traefik (with trustForwardHeader off) and Caddy always write them,
// replacing a client's, while they pass any other client header (a forged
// X-Original-URI among them) through. nginx passes every client header into
// its subrequest, so the documented snippet sets X-Forwarded-Host and
// X-Original-* and clears X-Forwarded-Uri and X-Forwarded-Method
// (docs/forward-auth.md). The token is then found by the tenant's
// configured sources in the subrequest's headers and cookies and in the
// query of the original target, by authz's own extraction code.
//
// # Requirements
//
// A location names the requirement it needs (authz's per-route
// requirements) in the path of its auth URL: a subrequest to
// ".../requirement/orders-admin" is decided as Envoy's context_extensions
// {"requirement": "orders-admin"} would be. That path is read only when
// the original target came in X-Forwarded-Uri or X-Original-URI from a
// trusted peer (nginx, Traefik, Caddy), because only then is the
// subrequest's own path the gateway's configuration rather than the
// client's: Envoy's http_service sends the client's path there, so behind
// it the tenant's routes choose the requirement.
//
// # Trust
//
// Forwarded headers name the tenant (X-Forwarded-Host) and so must come from
// a gateway that sets them, never from a client. They are believed only when
// the peer (the TCP connection's address) is inside one of
// Options.TrustedProxies, loopback included only if listed (behind an Istio
// sidecar every client arrives from 127.0.0.6); from any other peer they are ignored and removed
// from what authz sees, and a debug log says so. The request's own Host,
// path and method are used instead, which is what Envoy's http_service
// sends. A forwarded header that arrives more than once, or an
// X-Forwarded-Host that is a comma-separated list, is ambiguous and fails
// closed: its value is taken as empty (an empty host belongs to no tenant).
package forwardauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/extauthz/extauthz/internal/authz"
)

// Decider makes the authorization decision for one request;
// *authz.Server satisfies it.
type Decider interface {
	Decide(ctx context.Context, r *authz.Request) authz.Decision
}

// Options configure a Handler.
type Options struct {
	// TrustedProxies are the peer networks whose forwarded headers are
	// believed. Loopback is not trusted unless it is in the list.
	TrustedProxies []netip.Prefix
	// PathPrefix is removed from the front of the request's own target
	// when that target is the original one (Envoy http_service's
	// path_prefix). Empty, or starting with "/"; a trailing "/" is ignored.
	PathPrefix string
	// Logger receives the debug log of ignored forwarded headers
	// (default slog.Default()). Decisions are logged by the Decider.
	Logger *slog.Logger
}

// HeadersToRemove is the response header that tells Envoy's ext_authz
// http_service which request headers to remove before the request goes
// upstream: a comma-separated list.
const HeadersToRemove = "x-envoy-auth-headers-to-remove"

// Handler is the forward-auth http.Handler. It is safe for concurrent use.
type Handler struct {
	decider Decider
	trusted []netip.Prefix
	prefix  string
	log     *slog.Logger
}

// New returns a Handler asking d. It fails on a PathPrefix that does not
// start with "/" or an invalid trusted prefix.
func New(d Decider, opts Options) (*Handler, error) {
	if d == nil {
		return nil, errors.New("forwardauth: no decider")
	}
	prefix := strings.TrimRight(opts.PathPrefix, "/")
	if opts.PathPrefix != "" && !strings.HasPrefix(opts.PathPrefix, "/") {
		return nil, fmt.Errorf("forwardauth: path prefix %q must start with /", opts.PathPrefix)
	}
	h := &Handler{decider: d, prefix: prefix, log: opts.Logger}
	for i, p := range opts.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("forwardauth: trusted proxy %d is not a valid prefix", i)
		}
		// An IPv4 prefix written as IPv4-mapped IPv6 would never match the
		// unmapped peer address compared against it.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		h.trusted = append(h.trusted, p.Masked())
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h, nil
}

// ServeHTTP answers one forward-auth subrequest (any path, any method).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hasBody := r.ContentLength != 0 || len(r.TransferEncoding) > 0
	if hasBody {
		// An auth subrequest has no body, and a decision never needs one:
		// answer at once and close, rather than let net/http wait for (and
		// discard) a body the client may send as slowly as it likes.
		w.Header().Set("Connection", "close")
	}
	req := h.request(r)
	d := h.decider.Decide(r.Context(), req)
	write(w, &d)
	if hasBody {
		// net/http reads up to 256 KiB of an unread body after the handler,
		// even on a connection it then closes; an expired read deadline
		// ends that read at once. The answer is already buffered.
		_ = http.NewResponseController(w).SetReadDeadline(time.Unix(1, 0))
	}
}

// write maps d to the HTTP answer.
func write(w http.ResponseWriter, d *authz.Decision) {
	hdr := w.Header()
	// An authorization answer is about one request and one credential:
	// no cache may reuse it for another (RFC 9111 §5.2.2.5).
	hdr.Set("Cache-Control", "no-store")
	if d.Allowed {
		for _, c := range d.Headers {
			hdr.Set(c.Name, c.Value)
		}
		if len(d.RemoveHeaders) > 0 {
			hdr.Set(HeadersToRemove, strings.Join(d.RemoveHeaders, ", "))
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	status := d.HTTPStatus
	if status < 400 || status > 599 {
		// A denial must never read as an allow to a gateway that only
		// looks at the status.
		status = http.StatusForbidden
	}
	if d.WWWAuthenticate != "" {
		hdr.Set("WWW-Authenticate", d.WWWAuthenticate)
	}
	hdr.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(d.Body)
}
