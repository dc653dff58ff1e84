package admin_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSpec_RejectsWhatItDoesNotDescribe shows the OpenAPI check can fail, so
// the other tests' validation means something.
func TestSpec_RejectsWhatItDoesNotDescribe(t *testing.T) {
	s := loadSpec(t)
	okStatus := `{"tenant_id":"a","provider_id":"p","state":"Ready","condition":"healthy","stale":false,"available":true,` +
		`"last_refresh":null,"next_refresh":null,"expires_at":"2026-01-01T00:00:00Z","error_count":0,"last_error":null,` +
		`"hit_rate":1,"stale_serve_ratio":0,"key_ids":["k"],"source":"identity_provider","source_at":null}`
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name         string
		method, path string
		status       int
		body         string
		wantErr      string // "" means valid
	}{
		{"valid status", "GET", "/v1/providers/a/p", 200, okStatus, ""},
		{"unknown state", "GET", "/v1/providers/a/p", 200, strings.Replace(okStatus, `"Ready"`, `"Broken"`, 1), "state"},
		{"unknown condition", "GET", "/v1/providers/a/p", 200, strings.Replace(okStatus, `"healthy"`, `"fine"`, 1), "condition"},
		{"extra field", "GET", "/v1/providers/a/p", 200, strings.Replace(okStatus, `{`, `{"secret":1,`, 1), "secret"},
		{"missing field", "GET", "/v1/providers/a/p", 200, strings.Replace(okStatus, `"stale":false,`, ``, 1), "stale"},
		{"hit rate over 1", "GET", "/v1/providers/a/p", 200, strings.Replace(okStatus, `"hit_rate":1`, `"hit_rate":2`, 1), "hit_rate"},
		{"undocumented status", "GET", "/v1/providers/a/p", 500, okStatus, "status"},
		{"undocumented path", "GET", "/v2/things", 200, `{}`, "not in the OpenAPI document"},
		{"wrong method", "DELETE", "/v1/providers/a/p", 200, `{}`, "not in the OpenAPI document"},
		{"readyz without unavailable", "GET", "/readyz", 503, `{"ready":false,"config_loaded":true,"shutting_down":false,"started":false,"pending":1,"providers":1,"available":0,"required":0}`, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			err := s.check(req, tt.status, jsonHeader, []byte(tt.body))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("accepted; want an error about %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %v; want one about %q", err, tt.wantErr)
			}
		})
	}
}
