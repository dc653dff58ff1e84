package admin_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/extauthz/extauthz/internal/admin"
)

// TestAdmin_ConfigStatusNamesRefusedTenantFiles: GET /v1/config answers the
// hash in effect and each refused tenant file by path, as the OpenAPI
// document describes (the fixture validates every exchange); without a
// Config source there is no such endpoint.
func TestAdmin_ConfigStatusNamesRefusedTenantFiles(t *testing.T) {
	want := admin.ConfigStatus{
		Hash: "0123456789abcdef", LoadedAt: t0, Tenants: 3,
		Problems: []admin.ConfigProblem{
			{Source: "/etc/extauthz/tenants/acme.yaml", Problems: []string{"providers[0].jwks_url: must use https"}, Kept: true},
			{Source: "/etc/extauthz/tenants/new.yaml", Problems: []string{"parse: line 2: bad"}},
		},
	}
	f := newFixture(t, func(o *admin.Options) { o.Config = func() admin.ConfigStatus { return want } })
	r := f.do(t, http.MethodGet, "/v1/config")
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/config: %d %s", r.status, r.body)
	}
	var got admin.ConfigStatus
	r.decode(t, &got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/v1/config (-want +got):\n%s", diff)
	}

	clean := newFixture(t, func(o *admin.Options) {
		o.Config = func() admin.ConfigStatus {
			return admin.ConfigStatus{Hash: "fedcba9876543210", LoadedAt: t0.Add(time.Minute)}
		}
	})
	if r := clean.do(t, http.MethodGet, "/v1/config"); r.status != http.StatusOK || !strings.Contains(string(r.body), `"problems":[]`) {
		t.Errorf("no problems: %d %s, want an empty list", r.status, r.body)
	}
	if x := newFixture(t).send(http.MethodGet, "/v1/config"); x.err != nil || x.res.status != http.StatusNotFound {
		t.Errorf("without a Config source: %v %d, want 404", x.err, x.res.status)
	}
	// Not a probe: with a token it needs it, open probes or not.
	guarded := newFixture(t, func(o *admin.Options) {
		o.Config = func() admin.ConfigStatus { return want }
		o.Token, o.OpenProbes = []byte("s3cret-admin-token"), true
	})
	if r := guarded.do(t, http.MethodGet, "/v1/config"); r.status != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", r.status)
	}
}
