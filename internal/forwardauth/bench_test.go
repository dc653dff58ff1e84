package forwardauth

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/extauthz/extauthz/internal/grpcauthz"
)

// BenchmarkForwardAuth measures the HTTP forward-auth path with a real
// authz.Server and a warm key source: "inprocess" is mapping, decision and
// answer (httptest.ResponseRecorder); "loopback" adds a real HTTP/1.1
// keep-alive round trip over 127.0.0.1, as a gateway's subrequest pays;
// "grpc_check" is the same decision through grpcauthz.Server.Check in process,
// the gRPC listener's path without the network, for a side-by-side figure.
func BenchmarkForwardAuth(b *testing.B) {
	f := newFixture(b)
	h := f.handler(b, Options{})
	tok := f.token(b, "https://idp.acme.test/", nil)
	nginx := func(r *http.Request, withToken bool) {
		r.Header.Set("X-Forwarded-Host", acmeHost)
		r.Header.Set("X-Original-URI", "/orders/7?page=2")
		r.Header.Set("X-Original-Method", "GET")
		r.Header.Set("X-Request-Id", "bench")
		if withToken {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	for _, c := range []struct {
		name   string
		token  bool
		status int
	}{{"allow", true, 200}, {"deny_token_missing", false, 401}} {
		b.Run("inprocess/"+c.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/auth", nil)
			r.RemoteAddr = "127.0.0.1:40000"
			nginx(r, c.token)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != c.status {
					b.Fatalf("status %d, want %d", w.Code, c.status)
				}
			}
		})
		b.Run("grpc_check/"+c.name, func(b *testing.B) {
			grpc := grpcauthz.New(f.authz)
			headers := map[string]string{"x-request-id": "bench"}
			if c.token {
				headers["authorization"] = "Bearer " + tok
			}
			req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Host: acmeHost, Path: "/orders/7?page=2", Method: "GET", Headers: headers,
				}},
			}}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := grpc.Check(b.Context(), req)
				if err != nil {
					b.Fatal(err)
				}
				if (resp.GetOkResponse() != nil) != c.token {
					b.Fatalf("unexpected answer %v", resp.GetStatus())
				}
			}
		})
		b.Run("loopback/"+c.name, func(b *testing.B) {
			srv := httptest.NewServer(h)
			b.Cleanup(srv.Close)
			client := srv.Client()
			b.ReportAllocs()
			for b.Loop() {
				r, err := http.NewRequest("GET", srv.URL+"/auth", nil)
				if err != nil {
					b.Fatal(err)
				}
				nginx(r, c.token)
				resp, err := client.Do(r)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != c.status {
					b.Fatalf("status %d, want %d", resp.StatusCode, c.status)
				}
			}
		})
	}
}
