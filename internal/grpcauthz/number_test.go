package grpcauthz

import (
	"context"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/internal/authz/authztest"
)

func TestExactFloat(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"0", true}, {"-0", true}, {"42", true}, {"-7", true}, {"1.5", true}, {"0.1", true},
		{"1e3", true}, {"1.50E+3", true}, {"1700000000", true},
		{"9007199254740992", true},                           // 2^53
		{"9007199254740993", false},                          // 2^53+1 rounds
		{"1234567890123456789", false},                       // a 64-bit ID
		{"1152921504606846976", false},                       // 2^60: exact in binary, but printed as 1152921504606847000
		{"-9223372036854775808", false},                      // int64 min
		{"0.30000000000000001", false},                       // more digits than float64 keeps
		{"1e999", false}, {"1e-99999999999999999999", false}, // out of range
	}
	for _, tt := range tests {
		f, ok := exactFloat(tt.in)
		if ok != tt.ok {
			t.Errorf("exactFloat(%s) ok = %v, want %v", tt.in, ok, tt.ok)
			continue
		}
		if ok {
			if want, _ := strconv.ParseFloat(tt.in, 64); f != want {
				t.Errorf("exactFloat(%s) = %v", tt.in, f)
			}
		}
	}
}

// Claims that reach the upstream: a 64-bit integer claim reaches dynamic
// metadata digit for digit, as a string; one float64 holds stays a number.
func TestCheck_64BitIntegerClaimsReachMetadataDigitForDigit(t *testing.T) {
	srv, _ := newServer(t)
	exp := strconv.FormatInt(authztest.Now.Add(time.Hour).Unix(), 10)
	tok := authztest.RawToken(t, `{"alg":"RS256","kid":"rsa"}`,
		`{"iss":"https://idp.acme.test/","aud":"orders","exp":`+exp+`,"sub":"u","uid":1234567890123456789,`+
			`"n":42,"r":1.5,"ids":[9007199254740993,7],"org":{"id":18446744073709551615,"ok":true,"x":null}}`)
	resp, err := srv.Check(context.Background(), checkRequest("api.acme.test", "/", authztest.Bearer(tok), nil))
	if err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("Check: %v %v", resp.GetStatus(), err)
	}
	c := resp.GetDynamicMetadata().GetFields()["claims"].GetStructValue().GetFields()
	want := map[string]*structpb.Value{
		"uid": structpb.NewStringValue("1234567890123456789"),
		"n":   structpb.NewNumberValue(42),
		"r":   structpb.NewNumberValue(1.5),
		"exp": structpb.NewNumberValue(float64(authztest.Now.Add(time.Hour).Unix())),
	}
	for k, w := range want {
		if !proto(c[k], w) {
			t.Errorf("claims.%s = %v, want %v", k, c[k], w)
		}
	}
	ids := c["ids"].GetListValue().GetValues()
	if len(ids) != 2 || ids[0].GetStringValue() != "9007199254740993" || ids[1].GetNumberValue() != 7 {
		t.Errorf("claims.ids = %v", ids)
	}
	org := c["org"].GetStructValue().GetFields()
	if org["id"].GetStringValue() != "18446744073709551615" || !org["ok"].GetBoolValue() || org["x"].GetNullValue() != structpb.NullValue_NULL_VALUE {
		t.Errorf("claims.org = %v", org)
	}
}

func proto(a, b *structpb.Value) bool {
	ab, _ := a.MarshalJSON()
	bb, _ := b.MarshalJSON()
	return a != nil && string(ab) == string(bb)
}
