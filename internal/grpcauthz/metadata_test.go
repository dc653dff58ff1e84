package grpcauthz

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/authz/authztest"
)

// referenceValue is the conversion of a claim before the slabs: one
// structpb constructor per value. It is the oracle for tree.value.
func referenceValue(v any) *structpb.Value {
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
	case []any:
		l := &structpb.ListValue{}
		for _, e := range x {
			l.Values = append(l.Values, referenceValue(e))
		}
		return structpb.NewListValue(l)
	case map[string]any:
		s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
		for k, e := range x {
			s.Fields[k] = referenceValue(e)
		}
		return structpb.NewStructValue(s)
	}
	panic("unexpected type")
}

// FuzzMetadata_MatchesStructpb: for any JSON object of claims, the
// metadata built from slabs equals the one built value by value, with and
// without the request-dependent members.
func FuzzMetadata_MatchesStructpb(f *testing.F) {
	f.Add(`{"sub":"a","n":12345678901234567890,"f":1.5,"x":null,"b":[true,{"o":[[],{}]}],"e":{}}`, "", false)
	f.Add(`{"aud":["a","b"],"exp":1767268800}`, "bench", true)
	f.Add(`{}`, "", true)
	f.Fuzz(func(t *testing.T, claimsJSON, requirement string, anonymous bool) {
		dec := json.NewDecoder(strings.NewReader(claimsJSON))
		dec.UseNumber()
		var claims map[string]any
		if dec.Decode(&claims) != nil || claims == nil {
			return
		}
		d := authz.Decision{Allowed: true, TenantID: "t", ProviderID: "p", Claims: claims, Requirement: requirement,
			Anonymous: anonymous, IssuerValues: map[string]string{"tid": "x"}}
		want := &structpb.Struct{Fields: map[string]*structpb.Value{
			"tenant": structpb.NewStringValue("t"), "provider": structpb.NewStringValue("p"),
			"claims":        referenceValue(claims),
			"issuer_values": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"tid": structpb.NewStringValue("x")}}),
		}}
		if requirement != "" {
			want.Fields["requirement"] = structpb.NewStringValue(requirement)
		}
		if anonymous {
			want.Fields["anonymous"] = structpb.NewBoolValue(true)
		}
		if diff := cmp.Diff(want, buildMetadata(&d, nil, false), protocmp.Transform()); diff != "" {
			t.Fatalf("metadata (-value by value +slabs):\n%s", diff)
		}
		if diff := cmp.Diff(want.Fields["claims"].GetStructValue(), claimsStruct(&d), protocmp.Transform()); diff != "" {
			t.Fatalf("claims (-value by value +slabs):\n%s", diff)
		}
	})
}

// TestCheck_MetadataClaims: metadata_claims selects the claims in the
// metadata (names the token lacks are left out, an object goes whole);
// [] leaves the claims member out; absent keeps every claim. The claim
// headers and the decision's claims are the same either way, and a Check
// answered from the verified-token cache gives the same metadata.
func TestCheck_MetadataClaims(t *testing.T) {
	tok := authztest.RS256(t, authztest.AcmeClaims(func(c jwt.MapClaims) {
		c["org"] = map[string]any{"id": "o-1", "tier": "gold"}
		c["groups"] = []any{"ops"}
	}))
	req := checkRequest("api.acme.test", "/orders", authztest.Bearer(tok), nil)
	all := map[string]any{"iss": "https://idp.acme.test/", "sub": "user-1", "aud": []any{"orders"},
		"exp": float64(authztest.Now.Add(time.Hour).Unix()), "iat": float64(authztest.Now.Add(-time.Minute).Unix()),
		"email": "a@acme.test", "org": map[string]any{"id": "o-1", "tier": "gold"}, "groups": []any{"ops"}}
	for _, tc := range []struct {
		setting string
		want    map[string]any // nil: no claims member
	}{
		{"", all},
		{"metadata_claims: [sub, org, missing]", map[string]any{"sub": "user-1", "org": map[string]any{"id": "o-1", "tier": "gold"}}},
		{"metadata_claims: []", nil},
	} {
		cfg := authztest.Config
		if tc.setting != "" {
			cfg = strings.Replace(cfg, "algorithms: [RS256, ES256, EdDSA]\n", "algorithms: [RS256, ES256, EdDSA]\n        "+tc.setting+"\n", 1)
		}
		for _, cache := range []string{"token_cache_entries: 0, ", ""} {
			a := authz.New(authztest.Set(t, strings.Replace(cfg, "limits: {", "limits: {"+cache, 1)), authztest.NewFakeKeys(),
				authz.Options{Now: func() time.Time { return authztest.Now }, Logger: slog.New(slog.DiscardHandler)})
			t.Cleanup(a.Close)
			srv := New(a)
			var first *authv3.CheckResponse
			for i := range 3 { // a cached token's second and third Check are hits
				resp, _ := srv.Check(t.Context(), req)
				if resp.GetOkResponse() == nil {
					t.Fatalf("%q: denied: %v", tc.setting, resp.GetStatus())
				}
				md := resp.GetDynamicMetadata().AsMap()
				got, has := md["claims"]
				if tc.want == nil && has {
					t.Errorf("%q %s: claims member %v, want none", tc.setting, cache, got)
				}
				if tc.want != nil && !cmp.Equal(tc.want, got) {
					t.Errorf("%q %s Check %d: claims %v, want %v", tc.setting, cache, i, got, tc.want)
				}
				if md["tenant"] != "acme" || md["provider"] != "main" {
					t.Errorf("%q: metadata %v", tc.setting, md)
				}
				if first == nil {
					first = resp
				} else if diff := cmp.Diff(first.GetOkResponse(), resp.GetOkResponse(), protocmp.Transform()); diff != "" {
					t.Errorf("%q %s: Check %d's headers differ (-first +this):\n%s", tc.setting, cache, i, diff)
				}
			}
		}
	}
}
