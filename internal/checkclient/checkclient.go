// Package checkclient sends one Envoy ext_authz CheckRequest, or one
// grpc.health.v1 check, to a running extauthz and reports the answer the
// way an operator reads it: decision, HTTP status, headers set and removed,
// and the reason. It backs the `extauthz client` and `extauthz health`
// commands, the Docker HEALTHCHECK and the end-to-end tests.
package checkclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// Dial connects to extauthz's gRPC listener. The listener speaks plaintext
// HTTP/2, like the loopback or in-cluster hop from Envoy it is built for.
func Dial(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("checkclient: dial %s: %w", addr, err)
	}
	return conn, nil
}

// Request describes one HTTP request the way Envoy's ext_authz filter
// describes it in a CheckRequest.
type Request struct {
	Host    string
	Path    string // default "/"
	Method  string // default GET
	Headers map[string]string
	// Token, when set, is sent as "authorization: Bearer <Token>" (RFC 6750 §2.1).
	Token string
	// ContextExtensions are Envoy's per-route context_extensions (tenant, provider).
	ContextExtensions map[string]string
	// ID is the x-request-id Envoy would send; empty sends none.
	ID string
}

// CheckRequest builds the protobuf message. Header names are lowercased, as
// Envoy sends them (HTTP/2 requires lowercase names).
func (r Request) CheckRequest() *authv3.CheckRequest {
	path, method := r.Path, r.Method
	if path == "" {
		path = "/"
	}
	if method == "" {
		method = "GET"
	}
	headers := map[string]string{":authority": r.Host, ":path": path, ":method": method}
	for k, v := range r.Headers {
		headers[strings.ToLower(k)] = v
	}
	if r.Token != "" {
		headers["authorization"] = "Bearer " + r.Token
	}
	if r.ID != "" {
		headers["x-request-id"] = r.ID
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id:       r.ID,
			Method:   method,
			Path:     path,
			Host:     r.Host,
			Scheme:   "https",
			Protocol: "HTTP/1.1",
			Headers:  headers,
		}},
		ContextExtensions: r.ContextExtensions,
	}}
}

// Header is one header a response sets, with Envoy's append action.
type Header struct {
	Name, Value string
	Action      corev3.HeaderValueOption_HeaderAppendAction
}

// Result is a CheckResponse in the terms an operator reads.
type Result struct {
	Allowed    bool
	Code       codes.Code // the CheckResponse's status, not a transport error
	Message    string     // the status message
	HTTPStatus int        // 200 on allow, the denied status otherwise
	Headers    []Header   // set on the upstream request (allow) or the client response (deny)
	Removed    []string   // headers_to_remove (allow)
	Body       string     // denied body
	Reason     string     // the reason code, when the response carries one
	Metadata   *structpb.Struct
}

// Check sends req and interprets the answer. A non-nil error means no
// decision was received (transport failure or a gRPC error status).
func Check(ctx context.Context, client authv3.AuthorizationClient, req Request) (Result, error) {
	resp, err := client.Check(ctx, req.CheckRequest())
	if err != nil {
		return Result{}, fmt.Errorf("checkclient: check: %w", err)
	}
	return Interpret(resp), nil
}

// Interpret turns a CheckResponse into a Result.
func Interpret(resp *authv3.CheckResponse) Result {
	r := Result{Code: codes.Code(resp.GetStatus().GetCode()), Message: resp.GetStatus().GetMessage(), Metadata: resp.GetDynamicMetadata()}
	r.Allowed = r.Code == codes.OK
	switch h := resp.GetHttpResponse().(type) {
	case *authv3.CheckResponse_OkResponse:
		r.HTTPStatus = 200
		r.Headers = headers(h.OkResponse.GetHeaders())
		r.Removed = append([]string(nil), h.OkResponse.GetHeadersToRemove()...)
		if r.Metadata == nil {
			r.Metadata = h.OkResponse.GetDynamicMetadata()
		}
	case *authv3.CheckResponse_DeniedResponse:
		r.HTTPStatus = int(h.DeniedResponse.GetStatus().GetCode())
		r.Headers = headers(h.DeniedResponse.GetHeaders())
		r.Body = h.DeniedResponse.GetBody()
	default:
		if r.Allowed {
			r.HTTPStatus = 200
		} else {
			r.HTTPStatus = 403 // Envoy's default for a denial without an HTTP response
		}
	}
	r.Reason = reason(r)
	if r.Allowed && r.Reason == "" {
		r.Reason = "ok"
	}
	return r
}

// Header returns the value of the named header the response sets.
func (r Result) Header(name string) (string, bool) {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// reason finds the reason code: the body's "reason" field, else dynamic
// metadata "reason", else the status message.
func reason(r Result) string {
	if r.Body != "" {
		var body struct {
			Reason string `json:"reason"`
		}
		if json.Unmarshal([]byte(r.Body), &body) == nil && body.Reason != "" {
			return body.Reason
		}
	}
	if v, ok := r.Metadata.GetFields()["reason"]; ok && v.GetStringValue() != "" {
		return v.GetStringValue()
	}
	return r.Message
}

func headers(opts []*corev3.HeaderValueOption) []Header {
	out := make([]Header, 0, len(opts))
	for _, o := range opts {
		v := o.GetHeader().GetValue()
		if v == "" && len(o.GetHeader().GetRawValue()) > 0 {
			v = string(o.GetHeader().GetRawValue())
		}
		out = append(out, Header{Name: o.GetHeader().GetKey(), Value: v, Action: o.GetAppendAction()})
	}
	return out
}

// Print writes r for a human: one "key: value" line per fact.
func (r Result) Print(w io.Writer) error {
	decision := "DENY"
	if r.Allowed {
		decision = "ALLOW"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "decision: %s\n", decision)
	fmt.Fprintf(&b, "http_status: %d\n", r.HTTPStatus)
	fmt.Fprintf(&b, "grpc_status: %s\n", r.Code)
	if r.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", r.Reason)
	}
	if r.Message != "" && r.Message != r.Reason {
		fmt.Fprintf(&b, "message: %s\n", r.Message)
	}
	for _, h := range r.Headers {
		fmt.Fprintf(&b, "set_header: %s: %s (%s)\n", h.Name, h.Value, h.Action)
	}
	removed := append([]string(nil), r.Removed...)
	sort.Strings(removed)
	for _, h := range removed {
		fmt.Fprintf(&b, "remove_header: %s\n", h)
	}
	if r.Body != "" {
		fmt.Fprintf(&b, "body: %s\n", strings.TrimSpace(r.Body))
	}
	if r.Metadata != nil && len(r.Metadata.GetFields()) > 0 {
		md, err := protojson.Marshal(r.Metadata)
		if err == nil {
			fmt.Fprintf(&b, "dynamic_metadata: %s\n", md)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Health asks the grpc.health.v1 service for service ("" is the server as
// a whole) and returns its status.
func Health(ctx context.Context, client healthpb.HealthClient, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, fmt.Errorf("checkclient: health %q: %w", service, err)
	}
	return resp.GetStatus(), nil
}
