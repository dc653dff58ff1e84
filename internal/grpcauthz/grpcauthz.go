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
	"encoding/json"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

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
// meaning of an unset one.
func ToResponse(d *authz.Decision) *authv3.CheckResponse {
	if d.Allowed {
		ok := &authv3.OkHttpResponse{HeadersToRemove: d.RemoveHeaders, QueryParametersToRemove: d.RemoveQueryParams}
		if n := len(d.Headers); n > 0 {
			// Three allocations for all the header options, not two per header.
			ok.Headers = make([]*corev3.HeaderValueOption, n)
			opts, values := make([]corev3.HeaderValueOption, n), make([]corev3.HeaderValue, n)
			for i, h := range d.Headers {
				values[i].Key, values[i].Value = h.Name, h.Value
				opts[i].Header, opts[i].AppendAction = &values[i], corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
				ok.Headers[i] = &opts[i]
			}
		}
		return &authv3.CheckResponse{
			Status:          &status.Status{Code: int32(codes.OK)},
			HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
			DynamicMetadata: metadata(d),
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

func headerOption(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// metadata builds {tenant, provider, claims, issuer_values, requirement,
// anonymous, would_deny}.
func metadata(d *authz.Decision) *structpb.Struct {
	fields := map[string]*structpb.Value{
		"tenant":   structpb.NewStringValue(d.TenantID),
		"provider": structpb.NewStringValue(d.ProviderID),
	}
	if d.Claims != nil {
		var cs *structpb.Struct
		if d.ClaimsMemo != nil {
			// The same token's claims, from the verified-token cache: built
			// once and shared (only ever read, as gRPC marshals it).
			claims := d.Claims
			cs = d.ClaimsMemo.Get(func() any { return claimsStruct(claims) }).(*structpb.Struct)
		} else {
			cs = claimsStruct(d.Claims)
		}
		fields["claims"] = structpb.NewStructValue(cs)
	}
	if len(d.IssuerValues) > 0 {
		iv := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(d.IssuerValues))}
		for k, v := range d.IssuerValues {
			iv.Fields[k] = structpb.NewStringValue(v)
		}
		fields["issuer_values"] = structpb.NewStructValue(iv)
	}
	if d.Requirement != "" {
		fields["requirement"] = structpb.NewStringValue(d.Requirement)
	}
	if d.Anonymous {
		fields["anonymous"] = structpb.NewBoolValue(true)
	}
	if d.WouldDeny != "" {
		fields["would_deny"] = structpb.NewStringValue(string(d.WouldDeny))
	}
	return &structpb.Struct{Fields: fields}
}

func claimsStruct(m map[string]any) *structpb.Struct {
	s := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(m))}
	for k, v := range m {
		s.Fields[k] = value(v)
	}
	return s
}

// value converts a claim decoded by encoding/json with UseNumber: strings,
// booleans, null, json.Number, []any and map[string]any.
func value(v any) *structpb.Value {
	switch x := v.(type) {
	case nil:
		return structpb.NewNullValue()
	case string:
		return structpb.NewStringValue(x)
	case bool:
		return structpb.NewBoolValue(x)
	case json.Number:
		if f, ok := exactFloat(string(x)); ok {
			return structpb.NewNumberValue(f)
		}
		return structpb.NewStringValue(string(x))
	case float64:
		return structpb.NewNumberValue(x)
	case []any:
		l := &structpb.ListValue{Values: make([]*structpb.Value, len(x))}
		for i, e := range x {
			l.Values[i] = value(e)
		}
		return structpb.NewListValue(l)
	case map[string]any:
		return structpb.NewStructValue(claimsStruct(x))
	default:
		// Not produced by encoding/json; kept visible rather than dropped.
		b, _ := json.Marshal(x)
		return structpb.NewStringValue(string(b))
	}
}
