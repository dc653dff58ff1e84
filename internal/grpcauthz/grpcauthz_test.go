package grpcauthz

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	protov2 "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/authz/authztest"
	"github.com/extauthz/extauthz/jwkscache"
)

// newServer returns the service over authz's fixture (authztest) and the
// fixture's key source.
func newServer(t testing.TB) (*Server, *authztest.FakeKeys) {
	t.Helper()
	keys := authztest.NewFakeKeys()
	a := authz.New(authztest.Set(t, authztest.Config), keys, authz.Options{
		Now: func() time.Time { return authztest.Now }, Logger: slog.New(slog.DiscardHandler),
	})
	return New(a), keys
}

// startGRPC serves srv over an in-process gRPC connection and returns the
// go-control-plane Authorization client.
func startGRPC(t *testing.T, srv authv3.AuthorizationServer) authv3.AuthorizationClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, srv)
	go gs.Serve(lis) //nolint:errcheck // ends with Stop
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

func checkRequest(host, path string, headers, ext map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "envoy-id", Method: "GET", Host: host, Path: path, Headers: headers,
		}},
		ContextExtensions: ext,
	}}
}

func overwrite(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func TestCheck_AllowOverGRPC(t *testing.T) {
	srv, _ := newServer(t)
	client := startGRPC(t, srv)
	tok := authztest.RS256(t, authztest.AcmeClaims())
	h := authztest.Bearer(tok)
	h["x-auth-email"] = "forged@evil.test"
	h["x-auth-groups"] = "forged"
	resp, err := client.Check(context.Background(), checkRequest("api.acme.test:443", "/orders?page=2", h, nil))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("status = %v, want OK", resp.GetStatus())
	}
	wantOK := &authv3.OkHttpResponse{
		Headers: []*corev3.HeaderValueOption{
			overwrite("x-auth-email", "a@acme.test"),
			overwrite("x-auth-subject", "user-1"),
			overwrite("x-tenant-id", "acme"), // the fixture's tenant_header
		},
		HeadersToRemove: []string{"x-auth-groups", "x-auth-level", "x-auth-uid", "x-globex-org", "x-partner-subject"},
	}
	if diff := cmp.Diff(wantOK, resp.GetOkResponse(), protocmp.Transform()); diff != "" {
		t.Errorf("OkHttpResponse (-want +got):\n%s", diff)
	}
	md := resp.GetDynamicMetadata().AsMap()
	claims, _ := md["claims"].(map[string]any)
	if md["tenant"] != "acme" || md["provider"] != "main" || claims["sub"] != "user-1" || claims["email"] != "a@acme.test" {
		t.Errorf("dynamic metadata = %v", md)
	}
	if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != "orders" {
		t.Errorf("metadata claims.aud = %v", claims["aud"])
	}
}

func TestCheck_DenialsOverGRPC(t *testing.T) {
	srv, keys := newServer(t)
	keys.Fail("globex", "main", jwkscache.ErrUnavailable)
	client := startGRPC(t, srv)
	k := authztest.Keys()
	globexTok := authztest.Sign(t, jwt.SigningMethodRS256, k.Globex, "globex", jwt.MapClaims{"iss": "https://idp.globex.test/", "exp": 2e9}, nil)
	expired := authztest.RS256(t, authztest.AcmeClaims(func(c jwt.MapClaims) { c["exp"] = float64(authztest.Now.Unix() - 3600) }))
	tests := []struct {
		name       string
		req        *authv3.CheckRequest
		wantCode   codes.Code
		wantStatus int32
		wantReason authz.Reason
		wantWWW    string
	}{
		{"expired", checkRequest("api.acme.test", "/", authztest.Bearer(expired), nil), codes.Unauthenticated, 401, authz.ReasonTokenExpired,
			`Bearer realm="acme", error="invalid_token", error_description="the token has expired"`},
		{"missing", checkRequest("api.acme.test", "/", nil, nil), codes.Unauthenticated, 401, authz.ReasonTokenMissing, `Bearer realm="acme"`},
		{"unknown tenant", checkRequest("nobody.test", "/", authztest.Bearer(expired), nil), codes.PermissionDenied, 403, authz.ReasonTenantUnknown, ""},
		{"unknown tenant by extension", checkRequest("api.acme.test", "/", authztest.Bearer(expired), map[string]string{"tenant": "x"}), codes.PermissionDenied, 403, authz.ReasonTenantUnknown, ""},
		{"keys unavailable", checkRequest("globex.test", "/", authztest.Bearer(globexTok), nil), codes.Unavailable, 503, authz.ReasonJWKSUnavailable, ""},
		{"no attributes at all", &authv3.CheckRequest{}, codes.PermissionDenied, 403, authz.ReasonTenantUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Check(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("Check returned a gRPC error: %v", err)
			}
			if got := codes.Code(resp.GetStatus().GetCode()); got != tt.wantCode {
				t.Errorf("rpc status = %v, want %v", got, tt.wantCode)
			}
			den := resp.GetDeniedResponse()
			if den == nil || resp.GetOkResponse() != nil {
				t.Fatalf("want a DeniedHttpResponse, got %v", resp)
			}
			if int32(den.GetStatus().GetCode()) != tt.wantStatus {
				t.Errorf("http status = %v, want %d", den.GetStatus().GetCode(), tt.wantStatus)
			}
			want := []*corev3.HeaderValueOption{overwrite("content-type", "application/json")}
			if tt.wantWWW != "" {
				want = append(want, overwrite("www-authenticate", tt.wantWWW))
			}
			if diff := cmp.Diff(want, den.GetHeaders(), protocmp.Transform()); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			var body map[string]string
			if err := json.Unmarshal([]byte(den.GetBody()), &body); err != nil {
				t.Fatalf("body %q: %v", den.GetBody(), err)
			}
			if body["error"] != string(tt.wantReason) || body["error_description"] == "" {
				t.Errorf("body = %v, want error %s", body, tt.wantReason)
			}
			if resp.GetDynamicMetadata() != nil {
				t.Errorf("denial carries metadata %v", resp.GetDynamicMetadata())
			}
		})
	}
}

func TestToRequest(t *testing.T) {
	tok := "a.b.c"
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "envoy-id", Method: "POST", Path: "/p?q=1",
			HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				{Key: ":authority", Value: "API.acme.test"},
				{Key: "Authorization", RawValue: []byte("Bearer " + tok)},
				{Key: "cookie", Value: "a=1"},
				{Key: "cookie", Value: "b=2"},
				{Key: "x-request-id", Value: "rid"},
			}},
		}},
		ContextExtensions: map[string]string{"tenant": "acme"},
	}}
	got := ToRequest(req)
	want := &authz.Request{
		Host: "API.acme.test", Path: "/p?q=1", Method: "POST", RequestID: "rid",
		Headers: map[string]string{
			":authority": "API.acme.test", "authorization": "Bearer " + tok, "cookie": "a=1; b=2", "x-request-id": "rid",
		},
		ContextExtensions: map[string]string{"tenant": "acme"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Request (-want +got):\n%s", diff)
	}
	// Without x-request-id, Envoy's request id is used.
	got = ToRequest(checkRequest("h", "/", nil, nil))
	if got.RequestID != "envoy-id" {
		t.Errorf("RequestID = %q, want envoy-id", got.RequestID)
	}
}

func TestToResponse_MetadataWithoutClaims(t *testing.T) {
	resp := ToResponse(&authz.Decision{Allowed: true, HTTPStatus: 200, Reason: authz.ReasonOK, TenantID: "t", ProviderID: "p"})
	want := &structpb.Struct{Fields: map[string]*structpb.Value{
		"tenant": structpb.NewStringValue("t"), "provider": structpb.NewStringValue("p"),
	}}
	if diff := cmp.Diff(want, resp.GetDynamicMetadata(), protocmp.Transform()); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
}

// TestToResponse_RequirementFields: what a requirement adds to an allow
// reaches Envoy: requirement, anonymous and would_deny in the metadata,
// query parameters to remove.
func TestToResponse_RequirementFields(t *testing.T) {
	resp := ToResponse(&authz.Decision{
		Allowed: true, HTTPStatus: 200, Reason: authz.ReasonOK, TenantID: "t",
		Requirement: "public", Anonymous: true, WouldDeny: authz.ReasonTokenMissing,
		RemoveHeaders: []string{"x-auth-subject"}, RemoveQueryParams: []string{"access_token"},
	})
	want := &structpb.Struct{Fields: map[string]*structpb.Value{
		"tenant": structpb.NewStringValue("t"), "provider": structpb.NewStringValue(""),
		"requirement": structpb.NewStringValue("public"), "anonymous": structpb.NewBoolValue(true),
		"would_deny": structpb.NewStringValue("token_missing"),
	}}
	if diff := cmp.Diff(want, resp.GetDynamicMetadata(), protocmp.Transform()); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	ok := resp.GetOkResponse()
	if diff := cmp.Diff([]string{"access_token"}, ok.GetQueryParametersToRemove()); diff != "" {
		t.Errorf("query_parameters_to_remove (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"x-auth-subject"}, ok.GetHeadersToRemove()); diff != "" {
		t.Errorf("headers_to_remove (-want +got):\n%s", diff)
	}
}

// TestToResponse_ReadsTheReasonTable: the gRPC status of every reason is
// the one authz's table gives, and a denial never carries OK.
func TestToResponse_ReadsTheReasonTable(t *testing.T) {
	want := map[authz.Reason]codes.Code{
		authz.ReasonOK: codes.OK, authz.ReasonTenantUnknown: codes.PermissionDenied,
		authz.ReasonJWKSUnavailable: codes.Unavailable, authz.ReasonInsufficientScope: codes.PermissionDenied,
		authz.ReasonRequirementUnknown: codes.PermissionDenied, authz.ReasonPathInvalid: codes.InvalidArgument,
		authz.ReasonDPoPReplayUnavailable: codes.Unavailable,
	}
	for _, r := range authz.Reasons {
		d := authz.Decision{Allowed: r == authz.ReasonOK, Reason: r, HTTPStatus: r.HTTPStatus()}
		got := codes.Code(ToResponse(&d).GetStatus().GetCode())
		w, ok := want[r]
		if !ok {
			w = codes.Unauthenticated
		}
		if got != w || got != r.GRPCCode() {
			t.Errorf("%s: gRPC %v, want %v (table %v)", r, got, w, r.GRPCCode())
		}
	}
	d := authz.Decision{Reason: authz.ReasonOK, HTTPStatus: 403} // a denial mislabelled ok
	if got := codes.Code(ToResponse(&d).GetStatus().GetCode()); got == codes.OK {
		t.Error("a denial answered OK")
	}
}

// TestCheck_CachedTokenMetadataSharedAndUnchanged checks Checks answered
// from the verified-token cache, concurrently and marshalled as gRPC does:
// each response equals the uncached server's, and the claims metadata is
// built once and shared.
func TestCheck_CachedTokenMetadataSharedAndUnchanged(t *testing.T) {
	opts := authz.Options{Now: func() time.Time { return authztest.Now }, Logger: slog.New(slog.DiscardHandler)}
	cachedAuthz := authz.New(authztest.Set(t, authztest.Config), authztest.NewFakeKeys(), opts)
	t.Cleanup(cachedAuthz.Close)
	cached := New(cachedAuthz)
	uncached := New(authz.New(authztest.Set(t, strings.Replace(authztest.Config, "limits: {", "limits: {token_cache_entries: 0, ", 1)), authztest.NewFakeKeys(), opts))
	req := checkRequest("api.acme.test", "/orders", authztest.Bearer(authztest.RS256(t, authztest.AcmeClaims())), nil)
	want, err := uncached.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cached.Check(t.Context(), req); err != nil { // fills the cache
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	resps := make([]*authv3.CheckResponse, 8)
	for i := range resps {
		wg.Go(func() {
			resp, err := cached.Check(context.Background(), req)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := protov2.Marshal(resp); err != nil {
				t.Error(err)
			}
			resps[i] = resp
		})
	}
	wg.Wait()
	for i, resp := range resps {
		if !protov2.Equal(want, resp) {
			t.Fatalf("response %d differs from the uncached one:\n%v\n%v", i, resp, want)
		}
	}
	claims := func(r *authv3.CheckResponse) *structpb.Struct {
		return r.GetDynamicMetadata().GetFields()["claims"].GetStructValue()
	}
	if claims(resps[0]) == nil || claims(resps[0]) != claims(resps[1]) {
		t.Fatal("cached Checks rebuilt the claims metadata")
	}
	if resps[0].GetDynamicMetadata() != resps[1].GetDynamicMetadata() {
		t.Error("cached Checks rebuilt the metadata")
	}
	if h0, h1 := resps[0].GetOkResponse().GetHeaders(), resps[1].GetOkResponse().GetHeaders(); len(h0) == 0 || &h0[0] != &h1[0] {
		t.Error("cached Checks rebuilt the header options")
	}
	// A request-dependent member (here the token's cookie under
	// forward_token: false would be one; a requirement another) gets
	// metadata of its own, around the same claims.
	d := cachedAuthz.Decide(t.Context(), ToRequest(req))
	d.Requirement = "r"
	md := ToResponse(&d).GetDynamicMetadata()
	if md == resps[0].GetDynamicMetadata() || md.GetFields()["requirement"].GetStringValue() != "r" ||
		md.GetFields()["claims"].GetStructValue() != claims(resps[0]) {
		t.Errorf("metadata with a requirement: %v", md)
	}
	if resps[0].GetDynamicMetadata().GetFields()["requirement"] != nil {
		t.Error("the shared metadata took the requirement")
	}
}

// TestToResponse_IssuerValues: the value an issuer_template matched reaches
// Envoy's dynamic metadata as issuer_values.
func TestToResponse_IssuerValues(t *testing.T) {
	resp := ToResponse(&authz.Decision{
		Allowed: true, HTTPStatus: 200, Reason: authz.ReasonOK, TenantID: "t", ProviderID: "entra",
		IssuerValues: map[string]string{"tid": "contoso"},
	})
	want := &structpb.Struct{Fields: map[string]*structpb.Value{
		"tenant": structpb.NewStringValue("t"), "provider": structpb.NewStringValue("entra"),
		"issuer_values": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"tid": structpb.NewStringValue("contoso"),
		}}),
	}}
	if diff := cmp.Diff(want, resp.GetDynamicMetadata(), protocmp.Transform()); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
}
