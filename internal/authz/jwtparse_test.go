package authz

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/tenants"
)

// referenceParse is the parse extauthz had before it decoded tokens itself:
// golang-jwt's ParseUnverified with strict base64 and json.Number, then the
// same checks. It is the oracle the new parse must match.
func referenceParse(raw string) (tok token, err error) {
	if !wellFormed(raw) {
		return token{}, refusedShape
	}
	parser := jwt.NewParser(jwt.WithStrictDecoding(), jwt.WithJSONNumber())
	jws, _, err := parser.ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenUnverifiable) && jws != nil {
			if _, ok := jws.Header["alg"].(string); ok {
				return token{}, refuse(ReasonAlgorithmNotAllowed, err)
			}
		}
		return token{}, refuse(ReasonTokenMalformed, err)
	}
	if _, ok := jws.Header["crit"]; ok {
		return token{}, refuse(ReasonTokenMalformed, errCrit)
	}
	first, last := strings.IndexByte(raw, '.'), strings.LastIndexByte(raw, '.')
	if payload, err := base64.RawURLEncoding.DecodeString(raw[first+1 : last]); err != nil || !json.Valid(payload) {
		return token{}, refuse(ReasonTokenMalformed, errTrailingClaims)
	}
	tok = token{raw: raw, method: jws.Method, sig: jws.Signature, claims: jws.Claims.(jwt.MapClaims)}
	if v, ok := jws.Header["kid"]; ok {
		if tok.kid, ok = v.(string); !ok {
			return token{}, refuse(ReasonTokenMalformed, errKidType)
		}
	}
	if v, ok := jws.Header["typ"]; ok {
		if tok.typ, ok = v.(string); !ok {
			return token{}, refuse(ReasonTokenMalformed, errTypType)
		}
	}
	if err := checkClaimTypes(tok.claims); err != nil {
		return token{}, refuse(ReasonTokenMalformed, err)
	}
	tok.iss, _ = tok.claims["iss"].(string)
	return tok, nil
}

// sameParse fails t unless parse and referenceParse agree on raw: the same
// reason code, or the same header values, signature and claims.
func sameParse(t *testing.T, srv *Server, raw string) {
	t.Helper()
	got, gotErr := srv.parse(raw)
	want, wantErr := referenceParse(raw)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("parse(%q): error %v, reference %v", raw, gotErr, wantErr)
	}
	if gotErr != nil {
		if g, w := asRefusal(gotErr).reason, asRefusal(wantErr).reason; g != w {
			t.Fatalf("parse(%q): %s (%v), reference %s (%v)", raw, g, gotErr, w, wantErr)
		}
		return
	}
	if len(want.claims) == 0 {
		want.claims = jwt.MapClaims{} // a null payload: no claims either way
	}
	if got.method != want.method || got.kid != want.kid || got.typ != want.typ || got.iss != want.iss ||
		!bytes.Equal(got.sig, want.sig) || !reflect.DeepEqual(got.claims, want.claims) {
		t.Fatalf("parse(%q):\n got %+v\nwant %+v", raw, got, want)
	}
}

// seg is base64url without padding.
func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestParse_MatchesGolangJWT runs the cases where a token may be refused
// for more than one reason, or decoded in more than one way, through parse
// and golang-jwt.
func TestParse_MatchesGolangJWT(t *testing.T) {
	srv := newFixture(t).srv
	good := rs256(t, acmeClaims())
	sig := good[strings.LastIndexByte(good, '.')+1:]
	for _, c := range []struct{ header, payload string }{
		{`{"alg":"RS256","kid":"rsa"}`, `{"sub":"a","n":12345678901234567890,"f":1.5e3,"x":null,"b":[true,false,[],{}]}`},
		{`{"alg":"RS256","ALG":"none","Kid":5}`, `{}`},
		{`{"alg":"RS256","kid":5}`, `{}`},
		{`{"alg":"RS256","kid":null}`, `{}`},
		{`{"alg":"RS256","kid":5,"kid":"a"}`, `{}`},
		{`{"alg":"RS256","typ":["x"]}`, `{}`},
		{`{"alg":"RS256","crit":null}`, `{}`},
		{`{"alg":"RS256","CRIT":["x"]}`, `{}`},
		{`{"alg":"XX256"}`, `{"a":1}}`},
		{`{"alg":"XX256"}`, `{"a":1`},
		{`{"alg":"RS256"}`, `{"a":1}}`},
		{`{"alg":"RS256"}`, `{"a":1} `},
		{`{"alg":"RS256"}`, ` null `},
		{`{"alg":"RS256"}`, `[1]`},
		{`{"alg":"RS256"}`, `"x"`},
		{`{"alg":5}`, `{}`},
		{`{"alg":""}`, `{}`},
		{`{"alg":"none"}`, `{}`},
		{`null`, `{}`},
		{`{"alg":"RS256"} x`, `{}`},
		{`{"alg":"RS256"}`, `{"s":"\u00e9\ud800\"\\","\u006b":"v","k":"w","bad":"` + "\xff" + `"}`},
		{`{"alg":"RS256"}`, `{"exp":"1"}`},
		{`{"alg":"RS256"}`, `{"exp":1e400}`},
		{`{"alg":"RS256"}`, `{"aud":["a",1]}`},
		{"{\"alg\" : \"RS256\" ,\n\"jwk\":{\"k\":[1,{\"a\":\"}\"}]}}", "{ \"a\" : [ 1 , 2 ] , \"o\" : { } }"},
	} {
		sameParse(t, srv, seg(c.header)+"."+seg(c.payload)+"."+sig)
	}
	sameParse(t, srv, good)
	sameParse(t, srv, good[:strings.LastIndexByte(good, '.')]+".x")  // signature: bad base64
	sameParse(t, srv, good[:strings.LastIndexByte(good, '.')]+".AB") // non-zero trailing bits
}

// FuzzParse_MatchesGolangJWT: for any token, and any header and payload
// JSON put in a token, parse agrees with golang-jwt (see sameParse).
func FuzzParse_MatchesGolangJWT(f *testing.F) {
	srv := newFixture(f).srv
	f.Add(rs256(f, acmeClaims()), `{"alg":"RS256","kid":"rsa","typ":"JWT"}`, `{"sub":"a","aud":["x"],"n":1.5,"o":{"a":[null]}}`)
	f.Add("e30.e30.", `{"alg":"ES256","crit":["b64"]}`, `{"a":1}}`)
	f.Add("a.b.c", `{"alg":"RS256","kid":7}`, ` {"s":"\u00e9\ud83d\ude00\n","s":"dup"} `)
	f.Fuzz(func(t *testing.T, raw, header, payload string) {
		sameParse(t, srv, raw)
		sameParse(t, srv, seg(header)+"."+seg(payload)+".c2ln")
	})
}

// FuzzJSONReader: on any JSON text json.Valid accepts, jsonReader gives
// what encoding/json's Decoder gives with UseNumber.
func FuzzJSONReader(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e-3,true,false,null,"x\u00e9\"",{}],"a":{"b":[]}}`, ` [ ] `, `"\ud800"`, "\"\xff\"", `0`, `{"":""}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			return
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("encoding/json refused valid %q: %v", s, err)
		}
		r := jsonReader{s: s}
		r.space()
		if got := r.value(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", s, got, want)
		}
		r.i = 0
		r.space()
		r.skip()
		r.space()
		if r.i != len(s) {
			t.Fatalf("skip of %q stopped at %d", s, r.i)
		}
	})
}

// referenceClaims is the claim check extauthz had before checkClaimValues:
// golang-jwt's Validator.
func referenceClaims(p *tenants.ProviderRules, claims jwt.MapClaims, now time.Time) Reason {
	opts := []jwt.ParserOption{jwt.WithExpirationRequired(), jwt.WithLeeway(p.ClockSkew), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now })}
	if p.Template == nil {
		opts = append(opts, jwt.WithIssuer(p.Issuer))
	}
	if len(p.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(p.Audiences...))
	}
	err := jwt.NewValidator(opts...).Validate(claims)
	switch {
	case err == nil:
		return ReasonOK
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonTokenNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ReasonAudienceMismatch
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ReasonIssuerUnknown
	default:
		return ReasonTokenMalformed
	}
}

// TestCheckClaimValues_MatchesValidator compares checkClaimValues with
// golang-jwt's Validator on random claims around the edges: times within a
// second of the skew, fractional seconds, audiences empty, matching or
// not, issuers empty, right or wrong, and providers with and without
// audiences or a fixed issuer.
func TestCheckClaimValues_MatchesValidator(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 70))
	now := testNow
	providers := []*tenants.ProviderRules{
		{Issuer: "https://idp.test/", Audiences: []string{"a", "b"}, ClockSkew: 5 * time.Second},
		{Issuer: "https://idp.test/", ClockSkew: 0},
		{Template: &tenants.IssuerTemplate{}, Audiences: []string{"a"}, ClockSkew: time.Minute},
	}
	pick := func(vs ...any) any { return vs[rng.IntN(len(vs))] }
	date := func(skew time.Duration) json.Number {
		offset := time.Duration(rng.IntN(9)-4)*time.Second/2 + []time.Duration{skew, -skew, 0, time.Hour, -time.Hour}[rng.IntN(5)]
		return json.Number(jsonSeconds(now.Add(offset)))
	}
	for i := 0; i < 20000; i++ {
		p := providers[rng.IntN(len(providers))]
		claims := jwt.MapClaims{"exp": date(p.ClockSkew)}
		for _, name := range []string{"nbf", "iat"} {
			if rng.IntN(2) == 0 {
				claims[name] = date(p.ClockSkew)
			}
		}
		if rng.IntN(5) > 0 {
			claims["aud"] = pick("", "a", "b", "c", []any{}, []any{""}, []any{"c", "b"}, []any{"", "a"}, []any{"c"})
		}
		if rng.IntN(5) > 0 {
			claims["iss"] = pick("", "https://idp.test/", "https://other.test/")
		}
		if err := checkClaimTypes(claims); err != nil {
			t.Fatal(err)
		}
		want := referenceClaims(p, claims, now)
		got := ReasonOK
		if err := checkClaimValues(p, claims, timesOf(claims), now); err != nil {
			got = asRefusal(err).reason
		}
		if got != want {
			t.Fatalf("claims %v, provider %+v: %s, golang-jwt %s", claims, p, got, want)
		}
	}
}

// jsonSeconds writes t as a NumericDate, with a fraction when it has one.
func jsonSeconds(t time.Time) string {
	b, _ := json.Marshal(float64(t.UnixNano()) / 1e9)
	return string(b)
}
