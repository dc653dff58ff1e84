package authz

import (
	"context"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
)

var _ authv3.AuthorizationServer = (*Server)(nil)

// Check implements Envoy's envoy.service.auth.v3.Authorization. It maps the
// CheckRequest to a Request, calls Decide, and maps the Decision back. It
// never returns an error: Envoy would apply status_on_error or
// failure_mode_allow to it instead of our answer.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	var r Request // on the stack: Decide does not keep it
	fillFromEnvoy(&r, req)
	d := s.Decide(ctx, &r)
	return ToCheckResponse(&d), nil
}

// RequestFromEnvoy maps an ext_authz CheckRequest to a Request: host from
// attributes.request.http.host (:authority), headers (from headers, or from
// header_map when Envoy sends raw headers), path, method, x-request-id and
// the route's context_extensions.
func RequestFromEnvoy(req *authv3.CheckRequest) *Request {
	r := new(Request)
	fillFromEnvoy(r, req)
	return r
}

// fillFromEnvoy is RequestFromEnvoy into a Request the caller owns.
func fillFromEnvoy(r *Request, req *authv3.CheckRequest) {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	*r = Request{
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
	r.ForwardedClientCert = r.Headers["x-forwarded-client-cert"]
	r.RequestID = r.Headers["x-request-id"]
	if r.RequestID == "" {
		r.RequestID = h.GetId()
	}
}

// ToCheckResponse maps a Decision to Envoy's CheckResponse: OkHttpResponse
// with the claim headers (append_action OVERWRITE_IF_EXISTS_OR_ADD, set
// explicitly because Envoy 1.37 changed the meaning of an unset append),
// headers_to_remove, and dynamic metadata {tenant, provider, claims}; or
// DeniedHttpResponse with status, WWW-Authenticate, JSON body and
// content-type, and rpc status UNAUTHENTICATED, PERMISSION_DENIED or
// UNAVAILABLE.
func ToCheckResponse(d *Decision) *authv3.CheckResponse {
	if d.Allowed {
		ok := &authv3.OkHttpResponse{HeadersToRemove: d.RemoveHeaders}
		if len(d.Headers) > 0 {
			ok.Headers = make([]*corev3.HeaderValueOption, 0, len(d.Headers))
		}
		for _, h := range d.Headers {
			ok.Headers = append(ok.Headers, headerOption(h.Name, h.Value))
		}
		return &authv3.CheckResponse{
			Status:          &status.Status{Code: int32(codes.OK)},
			HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
			DynamicMetadata: metadata(d),
		}
	}
	code := codes.Unauthenticated
	switch d.Reason {
	case ReasonTenantUnknown:
		code = codes.PermissionDenied
	case ReasonJWKSUnavailable, ReasonDPoPReplayUnavailable:
		code = codes.Unavailable
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

// metadata builds {tenant, provider, claims}. Claims decoded from JSON are
// always representable; should one not be, the claims are left out rather
// than failing an allowed request.
func metadata(d *Decision) *structpb.Struct {
	fields := map[string]*structpb.Value{
		"tenant":   structpb.NewStringValue(d.TenantID),
		"provider": structpb.NewStringValue(d.ProviderID),
	}
	if d.Claims != nil {
		if c, err := structpb.NewStruct(d.Claims); err == nil {
			fields["claims"] = structpb.NewStructValue(c)
		}
	}
	return &structpb.Struct{Fields: fields}
}
