// Package grpcauthz provides extauthz's Envoy ext_authz gRPC front end
// (envoy.service.auth.v3.Authorization): it maps a CheckRequest to an
// authz.Request, asks authz.Server.Decide, and maps the Decision back to a
// CheckResponse. It makes no decision of its own; forwardauth is the HTTP
// front end over the same Decide.
//
// # Answers
//
//   - Allow: OkHttpResponse with one header per claim header the token
//     filled (append_action OVERWRITE_IF_EXISTS_OR_ADD), headers_to_remove
//     listing every other claim header (and the token's header under
//     forward_token: false), query_parameters_to_remove (a token found in
//     the query under forward_token: false), and dynamic metadata {tenant,
//     provider, claims}, plus requirement (the name of the requirement
//     applied), anonymous: true (an allow without a valid token) and
//     would_deny (the reason a shadow-mode tenant's request would have been
//     denied with) when they apply.
//   - Deny: DeniedHttpResponse with the reason's HTTP status,
//     WWW-Authenticate (RFC 6750 §3), content-type and the JSON body, and
//     the reason's gRPC status (authz.Reason.GRPCCode) with the reason as
//     its message.
//
// # Claims in dynamic metadata
//
// The claims member holds the claims the provider's metadata_claims
// selects (every claim by default; none, and no member, for []).
// Claims are decoded with json.Number, so a number arrives as it was
// written. A number reaches the metadata as a protobuf number (a float64)
// when float64 carries it digit for digit: its shortest float64 rendering
// has the same value as the token's literal. Any other number (a 64-bit ID
// such as 1234567890123456789, which float64 would round to
// 1234567890123456800) arrives as a string holding the token's literal, so
// no upstream ever sees a rounded ID.
package grpcauthz

import (
	"context"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/authz"
)

// Server is the ext_authz gRPC service over an authz.Server.
type Server struct {
	// decider is the concrete type, not an interface: a call through an
	// interface would move each Check's authz.Request to the heap.
	decider *authz.Server
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// New returns the ext_authz service answering with d's decisions.
func New(d *authz.Server) *Server { return &Server{decider: d} }

// Check implements Envoy's envoy.service.auth.v3.Authorization. It never
// returns an error: Envoy would apply status_on_error or
// failure_mode_allow to it instead of our answer.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	var r authz.Request // on the stack: Decide does not keep it
	fill(&r, req)
	d := s.decider.Decide(ctx, &r)
	return ToResponse(&d), nil
}

// ToRequest maps an ext_authz CheckRequest to an authz.Request: host from
// attributes.request.http.host (:authority), headers (from headers, or from
// header_map when Envoy sends raw headers), path, method, x-request-id, the
// route's context_extensions, and for sender-constrained tokens the scheme
// (attributes.request.http.scheme), the client certificate
// (attributes.source.certificate) and x-forwarded-client-cert.
func ToRequest(req *authv3.CheckRequest) *authz.Request {
	r := new(authz.Request)
	fill(r, req)
	return r
}

// fill is ToRequest into a Request the caller owns.
func fill(r *authz.Request, req *authv3.CheckRequest) {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	*r = authz.Request{
		Host:              h.GetHost(),
		Path:              h.GetPath(),
		Method:            h.GetMethod(),
		Headers:           h.GetHeaders(),
		ContextExtensions: attrs.GetContextExtensions(),
		Scheme:            h.GetScheme(),
		PeerCertificate:   attrs.GetSource().GetCertificate(),
	}
	if len(r.Headers) == 0 && len(h.GetHeaderMap().GetHeaders()) > 0 {
		r.Headers = make(map[string]string, len(h.GetHeaderMap().GetHeaders()))
		for _, hv := range h.GetHeaderMap().GetHeaders() {
			k := strings.ToLower(hv.GetKey())
			v := hv.GetValue()
			if v == "" {
				v = string(hv.GetRawValue())
			}
			if prev, ok := r.Headers[k]; ok {
				sep := ","
				if k == "cookie" {
					sep = "; " // RFC 6265 §5.4
				}
				v = prev + sep + v
			}
			r.Headers[k] = v
		}
	}
	if r.Host == "" {
		r.Host = r.Headers[":authority"]
	}
	// The downstream client as Envoy saw it (attributes.source), for the
	// audit log.
	r.ClientAddress = attrs.GetSource().GetAddress().GetSocketAddress().GetAddress()
	r.ForwardedClientCert = r.Headers["x-forwarded-client-cert"]
	r.RequestID = r.Headers["x-request-id"]
	if r.RequestID == "" {
		r.RequestID = h.GetId()
	}
}

// ToResponse maps a Decision to Envoy's CheckResponse (see the package
// doc). append_action is set explicitly because Envoy 1.37 changed the
// meaning of an unset one. Parts of an allow's response may be shared with
// other responses for the same token (see memo): a CheckResponse is
// read-only.
func ToResponse(d *authz.Decision) *authv3.CheckResponse {
	if d.Allowed {
		var m *memo
		if d.ClaimsMemo != nil {
			m = d.ClaimsMemo.Get(func() any { return newMemo(d) }).(*memo)
		}
		ok := &authv3.OkHttpResponse{HeadersToRemove: d.RemoveHeaders, QueryParametersToRemove: d.RemoveQueryParams}
		if len(d.Headers) > 0 {
			if m != nil && sameSlice(m.headers, d.Headers) {
				ok.Headers = m.options
			} else {
				ok.Headers = headerOptions(d.Headers)
			}
		}
		return &authv3.CheckResponse{
			Status:          &status.Status{Code: int32(codes.OK)},
			HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
			DynamicMetadata: m.metadata(d),
		}
	}
	code := d.Reason.GRPCCode()
	if code == codes.OK {
		// A denial must never read as an allow.
		code = codes.PermissionDenied
	}
	denied := &authv3.DeniedHttpResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.HTTPStatus)},
		Headers: []*corev3.HeaderValueOption{headerOption("content-type", "application/json")},
		Body:    string(d.Body),
	}
	if d.WWWAuthenticate != "" {
		denied.Headers = append(denied.Headers, headerOption("www-authenticate", d.WWWAuthenticate))
	}
	return &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(code), Message: string(d.Reason)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: denied},
	}
}

// headerOptions maps headers to options that overwrite: three allocations
// for all of them, not two per header.
func headerOptions(hs []authz.Header) []*corev3.HeaderValueOption {
	n := len(hs)
	out := make([]*corev3.HeaderValueOption, n)
	opts, values := make([]corev3.HeaderValueOption, n), make([]corev3.HeaderValue, n)
	for i, h := range hs {
		values[i].Key, values[i].Value = h.Name, h.Value
		opts[i].Header, opts[i].AppendAction = &values[i], corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		out[i] = &opts[i]
	}
	return out
}

func headerOption(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}
