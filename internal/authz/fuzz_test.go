package authz

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzDecide feeds arbitrary tokens, hosts, paths and cookies through the
// whole decision. It must never panic, and a non-ok decision must be a
// well-formed denial; an allow must come from a token whose signature
// verifies (the fuzzer cannot forge one, so allows only come from seeds).
func FuzzDecide(f *testing.F) {
	fx := newFixture(f)
	fx.srv.log = slog.New(slog.DiscardHandler)
	good := rs256(f, acmeClaims())
	f.Add("api.acme.test", "/", "Bearer "+good, "")
	f.Add("x.acme.test:1", "/?access_token="+good, "", "session="+good)
	f.Add("api.acme.test", "/", "Bearer "+padFirst(good), "")
	f.Add("API.acme.test.", "/", "Bearer e30.e30.", "")
	f.Add("[::1]:80", "/", "Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOjF9.", "session=\"x\"")
	f.Add("api.acme.test", "/", "Bearer eyJhbGciOiJSUzI1NiIsImNyaXQiOlsieCJdfQ.e30.AAAA", "")
	f.Fuzz(func(t *testing.T, host, path, authorization, cookie string) {
		r := &Request{Host: host, Path: path, Headers: map[string]string{"authorization": authorization, "cookie": cookie}}
		d := fx.srv.Decide(context.Background(), r)
		if d.Allowed {
			raw := extractToken(fx.srv.Set().Tenants()[0].Sources, r)
			if _, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return &keysOnce().RSA.PublicKey, nil },
				jwt.WithTimeFunc(func() time.Time { return testNow }), jwt.WithLeeway(time.Minute)); err != nil || d.Reason != ReasonOK {
				t.Fatalf("allowed (%s) a token golang-jwt rejects: %v", d.Reason, err)
			}
			return
		}
		if d.Reason == "" || d.HTTPStatus < 400 || len(d.Body) == 0 {
			t.Fatalf("malformed denial %+v", d)
		}
	})
}

// FuzzParseToken fuzzes the token checks alone.
func FuzzParseToken(f *testing.F) {
	fx := newFixture(f)
	fx.srv.log = slog.New(slog.DiscardHandler)
	f.Add(rs256(f, acmeClaims()))
	f.Add("a.b.c")
	f.Add("..")
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOiJ4In0.")
	f.Fuzz(func(t *testing.T, tok string) {
		st := fx.srv.state.Load()
		acme, _ := st.set.Tenant("acme")
		p, claims, _, err := fx.srv.verify(context.Background(), st, acme, nil, tok, acme.Sources[0], new(string))
		if err == nil && (p == nil || claims == nil) {
			t.Fatal("verified without a provider or claims")
		}
		if err != nil && asRefusal(err).reason == "" {
			t.Fatal("empty reason")
		}
		wellFormed(tok)
		fromCookie(tok, "session")
		fromQuery(tok, "access_token")
		fromHeader(tok, "Bearer ")
	})
}
