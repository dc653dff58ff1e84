package authz

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/extauthz/extauthz/internal/tenants"
)

// FuzzDecide feeds arbitrary tokens, hosts, paths and cookies through the
// whole decision, and tokens that the fixture signs around fuzzed claims
// (via 1: acme/main in Authorization, via 2: acme/partner in the session
// cookie), with a forged client copy of every claim header. It must never
// panic; a non-ok decision must be a well-formed denial; an allow must come
// from a token whose signature verifies (the fuzzer cannot forge one) and
// must carry exactly its provider's claim headers, well-formed, and remove
// every other claim header, so no client copy reaches the upstream.
func FuzzDecide(f *testing.F) {
	fx := newFixture(f)
	fx.srv.log = slog.New(slog.DiscardHandler)
	good := rs256(f, acmeClaims())
	f.Add("api.acme.test", "/", "Bearer "+good, "", "", uint8(0))
	f.Add("x.acme.test:1", "/?access_token="+good, "", "session="+good, "", uint8(0))
	f.Add("api.acme.test", "/", "Bearer "+padFirst(good), "", "", uint8(0))
	f.Add("API.acme.test.", "/", "Bearer e30.e30.", "", "", uint8(0))
	f.Add("[::1]:80", "/", "Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOjF9.", "session=\"x\"", "", uint8(0))
	f.Add("api.acme.test", "/", "Bearer eyJhbGciOiJSUzI1NiIsImNyaXQiOlsieCJdfQ.e30.AAAA", "", "", uint8(0))
	for _, claims := range []string{
		`"sub":"user-1","email":"a@acme.test"`,
		`"sub":" padded\u0000\u007f\r\n ","groups":["a","b"],"level":3,"uid":12345678901234567890`,
		`"sub":"` + strings.Repeat("é", 40) + `","email":null,"groups":["a,b",1],"level":{"x":[1.5e300]}`,
		`"sub":"","email":"x","uid":true,"groups":[]`,
		`"sub":"a\u007fb","email":"\ud800"`,
		`"sub":"x","sub":"y","iss":"https://idp.globex.test/"`,
	} {
		f.Add("api.acme.test", "/", "", "", claims, uint8(1))
		f.Add("api.acme.test", "/", "", "", claims, uint8(2))
	}
	set := fx.srv.Set()
	maxLen := set.Limits().MaxHeaderValueBytes
	f.Fuzz(func(t *testing.T, host, path, authorization, cookie, claims string, via uint8) {
		hdrs := map[string]string{"authorization": authorization, "cookie": cookie}
		for _, h := range set.ClaimHeaders() {
			hdrs[h] = "forged by the client"
		}
		exp, iat := testNow.Add(time.Hour).Unix(), testNow.Add(-time.Minute).Unix()
		switch via % 3 {
		case 1:
			hdrs["authorization"] = "Bearer " + rawToken(t, `{"alg":"RS256","kid":"rsa"}`,
				fmt.Sprintf(`{"iss":"https://idp.acme.test/","aud":"orders","exp":%d,"iat":%d,%s}`, exp, iat, claims))
		case 2:
			hdrs["cookie"] = "session=" + rawToken(t, `{"alg":"RS256","kid":"rsa"}`,
				fmt.Sprintf(`{"iss":"https://partner.test/","exp":%d,"iat":%d,%s}`, exp, iat, claims))
		}
		r := &Request{Host: host, Path: path, Headers: hdrs}
		d := fx.srv.Decide(context.Background(), r)
		if !d.Allowed {
			if d.Reason == "" || d.HTTPStatus < 400 || len(d.Body) == 0 || len(d.Headers) != 0 {
				t.Fatalf("malformed denial %+v", d)
			}
			return
		}
		tr, _ := set.Tenant(d.TenantID)
		raw := extractToken(tr.Sources, r)
		if _, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return &keysOnce().RSA.PublicKey, nil },
			jwt.WithTimeFunc(func() time.Time { return testNow }), jwt.WithLeeway(time.Minute)); err != nil || d.Reason != ReasonOK {
			t.Fatalf("allowed (%s) a token golang-jwt rejects: %v", d.Reason, err)
		}
		checkAllowHeaders(t, set, d, maxLen)
	})
}

// checkAllowHeaders checks an allow's headers: the tenant header names its
// tenant; every other header set is one of its provider's claim headers,
// once, with a well-formed value (a string claim's value trimmed, when it
// needs no cleaning); every claim header of any tenant not set is removed.
func checkAllowHeaders(t *testing.T, set *tenants.Set, d Decision, maxLen int) {
	t.Helper()
	tr, ok := set.Tenant(d.TenantID)
	if !ok {
		t.Fatalf("allow for unknown tenant %q", d.TenantID)
	}
	p, ok := tr.Provider(d.ProviderID)
	if !ok {
		t.Fatalf("allow for unknown provider %q", d.ProviderID)
	}
	claimOf := map[string]string{}
	for _, ch := range p.ClaimHeaders {
		claimOf[ch.Header] = ch.Claim
	}
	set1 := map[string]string{}
	for _, h := range d.Headers {
		if _, dup := set1[h.Name]; dup {
			t.Fatalf("header %q set twice", h.Name)
		}
		set1[h.Name] = h.Value
		if h.Name == set.TenantHeader() {
			if h.Value != d.TenantID {
				t.Fatalf("tenant header %q, want %q", h.Value, d.TenantID)
			}
			continue
		}
		if _, mine := claimOf[h.Name]; !mine {
			t.Fatalf("header %q is not a claim header of %s/%s", h.Name, d.TenantID, d.ProviderID)
		}
		v := h.Value
		if v == "" || len(v) > maxLen || !utf8.ValidString(v) || strings.TrimSpace(v) != v ||
			strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) {
			t.Fatalf("header %s: malformed value %q", h.Name, v)
		}
	}
	for header, claim := range claimOf {
		if v, present := d.Claims[claim]; (!present || v == nil) && set1[header] != "" {
			t.Fatalf("header %s set from an absent or null claim %s", header, claim)
		}
		s, isString := d.Claims[claim].(string)
		want := strings.TrimSpace(s)
		if !isString || len(want) > maxLen || strings.ContainsFunc(want, func(r rune) bool { return r < 0x20 || r >= 0x7f }) {
			continue // needs cleaning or rendering: checked for form above
		}
		if got, ok := set1[header]; want != "" && (!ok || got != want) {
			t.Fatalf("header %s = %q (set %v), want claim %s = %q", header, got, ok, claim, want)
		} else if want == "" && ok {
			t.Fatalf("header %s set from an empty claim %s", header, claim)
		}
	}
	removed := map[string]bool{}
	for _, h := range d.RemoveHeaders {
		removed[h] = true
		if _, isSet := set1[h]; isSet {
			t.Fatalf("header %q both set and removed", h)
		}
	}
	for _, h := range set.ClaimHeaders() {
		if _, isSet := set1[h]; !isSet && !removed[h] {
			t.Fatalf("claim header %q neither set nor removed: the client's copy would pass", h)
		}
	}
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
		p, claims, _, _, err := fx.srv.verify(context.Background(), st, acme, nil, tok, acme.Sources[0], new(string), new(*tokenEntry))
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

// FuzzSanitize fuzzes the header sanitiser alone: whatever a claim holds,
// the value is valid UTF-8 without control characters (C0, DEL, C1: RFC
// 9110 §5.5), trimmed, within maxLen bytes, and sanitising it again changes
// nothing; a clean ASCII value within the limit only loses its spaces.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"user-1", " a b ", "a\x00b\x7fc\r\n", "\xff\xfe", "é\u0085x", strings.Repeat("é", 40), "\u2028 x", ""} {
		f.Add(s, 64)
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, maxLen int) {
		got := sanitize(s, maxLen)
		if !utf8.ValidString(got) || strings.TrimSpace(got) != got || (maxLen > 0 && len(got) > maxLen) {
			t.Fatalf("sanitize(%q, %d) = %q", s, maxLen, got)
		}
		if strings.ContainsFunc(got, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) {
			t.Fatalf("sanitize(%q, %d) = %q keeps a control character", s, maxLen, got)
		}
		if again := sanitize(got, maxLen); again != got {
			t.Fatalf("sanitize not idempotent: %q then %q", got, again)
		}
		clean := !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r >= 0x7f })
		if want := strings.TrimSpace(s); clean && (maxLen <= 0 || len(want) <= maxLen) && got != want {
			t.Fatalf("sanitize(%q, %d) = %q, want %q", s, maxLen, got, want)
		}
	})
}
