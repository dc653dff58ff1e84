package tracing

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/extauthz/extauthz/internal/forwardauth"
)

// TestForwardAuth_ContinuesTheHTTPRequestsTrace: on the forward-auth
// listener the check span continues the trace of the subrequest's own
// headers (nginx auth_request and Traefik pass the client's on).
func TestForwardAuth_ContinuesTheHTTPRequestsTrace(t *testing.T) {
	f := newFixture(t, 0, false) // sample_ratio 0: only the caller's decision records it
	f.warm(t)
	h, err := forwardauth.New(f.authz, forwardauth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		headers map[string]string
	}{
		{"traceparent", map[string]string{"Traceparent": callerParent}},
		{"b3 single header", map[string]string{"B3": callerTrace + "-" + callerSpan + "-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.exp.Reset()
			req := httptest.NewRequest(http.MethodGet, "http://api.acme.test/orders", nil)
			req.Header.Set("Authorization", "Bearer "+f.token(t))
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			s, ok := f.spans(t)[SpanCheck]
			if !ok {
				t.Fatal("no check span for a sampled caller")
			}
			if s.SpanContext.TraceID().String() != callerTrace || s.Parent.SpanID().String() != callerSpan {
				t.Errorf("span in trace %s under %s, want the caller's %s under %s",
					s.SpanContext.TraceID(), s.Parent.SpanID(), callerTrace, callerSpan)
			}
		})
	}
}
