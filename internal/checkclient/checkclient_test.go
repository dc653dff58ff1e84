package checkclient_test

import (
	"bytes"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/checkclient"
	"github.com/extauthz/extauthz/internal/grpcauthz"
)

func TestRequest_CheckRequestLooksLikeEnvoys(t *testing.T) {
	req := checkclient.Request{
		Host:              "api.acme.test",
		Headers:           map[string]string{"X-Custom": "1"},
		Token:             "abc.def.ghi",
		ContextExtensions: map[string]string{"tenant": "acme"},
		ID:                "r1",
	}.CheckRequest()
	h := req.GetAttributes().GetRequest().GetHttp()
	want := map[string]string{
		":authority": "api.acme.test", ":path": "/", ":method": "GET",
		"x-custom": "1", "authorization": "Bearer abc.def.ghi", "x-request-id": "r1",
	}
	if diff := cmp.Diff(want, h.GetHeaders()); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if h.GetHost() != "api.acme.test" || h.GetPath() != "/" || h.GetMethod() != "GET" || h.GetId() != "r1" {
		t.Errorf("http attributes %v", h)
	}
	if req.GetAttributes().GetContextExtensions()["tenant"] != "acme" {
		t.Errorf("context extensions %v", req.GetAttributes().GetContextExtensions())
	}
	// Round trip through authz's own mapping: what we send is what it reads.
	r := grpcauthz.ToRequest(req)
	if r.Host != "api.acme.test" || r.RequestID != "r1" || r.Headers["authorization"] != "Bearer abc.def.ghi" {
		t.Errorf("authz reads %+v", r)
	}
}

func TestInterpret(t *testing.T) {
	tests := []struct {
		name string
		d    authz.Decision
		want checkclient.Result
	}{
		{
			name: "allow",
			d: authz.Decision{Allowed: true, HTTPStatus: 200, Reason: authz.ReasonOK, TenantID: "acme", ProviderID: "main",
				Headers: []authz.Header{{Name: "x-auth-subject", Value: "alice"}}, RemoveHeaders: []string{"x-auth-email"}},
			want: checkclient.Result{Allowed: true, Code: codes.OK, HTTPStatus: 200, Reason: "ok",
				Headers: []checkclient.Header{{Name: "x-auth-subject", Value: "alice", Action: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}},
				Removed: []string{"x-auth-email"}},
		},
		{
			name: "deny 401",
			d: authz.Decision{HTTPStatus: 401, Reason: authz.ReasonTokenExpired, WWWAuthenticate: `Bearer realm="acme"`,
				Body: []byte(`{"error":"token_expired"}`)},
			want: checkclient.Result{Code: codes.Unauthenticated, Message: "token_expired", HTTPStatus: 401, Reason: "token_expired",
				Body: `{"error":"token_expired"}`,
				Headers: []checkclient.Header{
					{Name: "content-type", Value: "application/json", Action: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
					{Name: "www-authenticate", Value: `Bearer realm="acme"`, Action: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
				}},
		},
		{
			name: "deny 503",
			d:    authz.Decision{HTTPStatus: 503, Reason: authz.ReasonJWKSUnavailable, Body: []byte(`{}`)},
			want: checkclient.Result{Code: codes.Unavailable, Message: "jwks_unavailable", HTTPStatus: 503, Reason: "jwks_unavailable", Body: `{}`,
				Headers: []checkclient.Header{{Name: "content-type", Value: "application/json", Action: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkclient.Interpret(grpcauthz.ToResponse(&tt.d))
			got.Metadata = nil // compared below for the allow case
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestResult_Print(t *testing.T) {
	var b bytes.Buffer
	d := authz.Decision{Allowed: true, HTTPStatus: 200, Reason: authz.ReasonOK, TenantID: "acme", ProviderID: "main",
		Headers: []authz.Header{{Name: "x-auth-subject", Value: "alice"}}, RemoveHeaders: []string{"x-b", "x-a"}}
	if err := checkclient.Interpret(grpcauthz.ToResponse(&d)).Print(&b); err != nil {
		t.Fatal(err)
	}
	want := "decision: ALLOW\nhttp_status: 200\ngrpc_status: OK\nreason: ok\n" +
		"set_header: x-auth-subject: alice (OVERWRITE_IF_EXISTS_OR_ADD)\nremove_header: x-a\nremove_header: x-b\n" +
		`dynamic_metadata: {"provider":"main", "tenant":"acme"}` + "\n"
	// protojson's spacing is deliberately unstable; compare without spaces.
	if strings.ReplaceAll(b.String(), " ", "") != strings.ReplaceAll(want, " ", "") {
		t.Errorf("Print:\n%s\nwant:\n%s", b.String(), want)
	}
}
