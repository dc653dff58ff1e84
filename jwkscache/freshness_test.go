package jwkscache

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestFreshness_CacheHeaderEdgeCases covers RFC 9111's corner cases of
// Cache-Control, Expires and Age, with min_ttl 30 s and max_ttl 1 h.
func TestFreshness_CacheHeaderEdgeCases(t *testing.T) {
	const minTTL, maxTTL = 30 * time.Second, time.Hour
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	httpDate := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	for _, tc := range []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"no headers", http.Header{}, minTTL},
		{"max-age", http.Header{"Cache-Control": {"max-age=600"}}, 600 * time.Second},
		{"max-age=0", http.Header{"Cache-Control": {"max-age=0"}}, minTTL},
		{"max-age below min_ttl", http.Header{"Cache-Control": {"max-age=5"}}, minTTL},
		{"max-age above max_ttl", http.Header{"Cache-Control": {"max-age=604800"}}, maxTTL},
		{"huge max-age saturates (§1.2.2)", http.Header{"Cache-Control": {"max-age=99999999999999999999999"}}, maxTTL},
		{"negative max-age is stale", http.Header{"Cache-Control": {"max-age=-600"}, "Expires": {httpDate(time.Hour)}}, minTTL},
		{"non-numeric max-age is stale", http.Header{"Cache-Control": {"max-age=10m"}}, minTTL},
		{"quoted max-age", http.Header{"Cache-Control": {`max-age="600"`}}, 600 * time.Second},
		{"directive names are case-insensitive", http.Header{"Cache-Control": {"Max-Age=600"}}, 600 * time.Second},
		{"several directives and lines", http.Header{"Cache-Control": {"public, must-revalidate", " max-age=600 , immutable"}}, 600 * time.Second},
		{"no-cache wins over max-age", http.Header{"Cache-Control": {"max-age=600, no-cache"}}, minTTL},
		{"no-store wins over max-age", http.Header{"Cache-Control": {"no-store, max-age=600"}}, minTTL},
		{"conflicting max-age is stale (§4.2.1)", http.Header{"Cache-Control": {"max-age=600, max-age=3000"}}, minTTL},
		{"repeated equal max-age", http.Header{"Cache-Control": {"max-age=600", "max-age=600"}}, 600 * time.Second},
		{"s-maxage is for shared caches", http.Header{"Cache-Control": {"s-maxage=600"}}, minTTL},
		{"max-age beats Expires", http.Header{"Cache-Control": {"max-age=600"}, "Expires": {httpDate(-time.Hour)}}, 600 * time.Second},
		{"Expires minus Date", http.Header{"Expires": {httpDate(10 * time.Minute)}, "Date": {httpDate(0)}}, 10 * time.Minute},
		{"Expires in the past", http.Header{"Expires": {httpDate(-time.Hour)}, "Date": {httpDate(0)}}, minTTL},
		{"invalid Expires is stale", http.Header{"Expires": {"0"}}, minTTL},
		{"Age reduces max-age", http.Header{"Cache-Control": {"max-age=600"}, "Age": {"100"}}, 500 * time.Second},
		{"Age reduces Expires too (§4.2.3)", http.Header{"Expires": {httpDate(10 * time.Minute)}, "Date": {httpDate(0)}, "Age": {"300"}}, 5 * time.Minute},
		{"Age beyond the lifetime", http.Header{"Cache-Control": {"max-age=600"}, "Age": {"900"}}, minTTL},
		{"huge Age saturates and makes it stale", http.Header{"Cache-Control": {"max-age=600"}, "Age": {"99999999999999999999999"}}, minTTL},
		{"Age after an Expires centuries past does not wrap around", http.Header{"Expires": {"Thu, 01 Jan 0001 00:00:00 GMT"}, "Age": {"1"}}, minTTL},
		{"invalid Age ignored", http.Header{"Cache-Control": {"max-age=600"}, "Age": {"-5"}}, 600 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := freshness(tc.h, now, minTTL, maxTTL); got != tc.want {
				t.Fatalf("freshness(%v) = %v, want %v", tc.h, got, tc.want)
			}
		})
	}
}

// FuzzFreshness feeds hostile cache headers (the identity provider's, or a
// proxy's) to freshness. Whatever they say, the lifetime stays within
// [min_ttl, max_ttl]; no-store or no-cache anywhere means min_ttl; an Age
// never lengthens it; and a lone max-age=N means N clamped.
func FuzzFreshness(f *testing.F) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	date := now.Format(http.TimeFormat)
	later := now.Add(10 * time.Minute).Format(http.TimeFormat)
	for _, s := range [][4]string{
		{"max-age=600", "", "", ""},
		{`public, Max-Age="600" , immutable`, "", "", "100"},
		{"max-age=600, max-age=3000", "", "", ""},
		{"max-age=99999999999999999999999", "", "", "99999999999999999999999"},
		{"max-age=-600", later, date, "-5"},
		{"s-maxage=600,no-cache", later, date, ""},
		{"", later, date, "300"},
		{"", "0", "garbage", ""},
		{"max-age", "Thu, 01 Jan 1970 00:00:00 GMT", "", " 7 "},
	} {
		f.Add(s[0], s[1], s[2], s[3], uint32(600), uint16(30), uint32(3600))
	}
	f.Fuzz(func(t *testing.T, cc, expires, dateHdr, age string, n uint32, minS uint16, maxS uint32) {
		minTTL := time.Duration(max(minS, 1)) * time.Second
		maxTTL := max(time.Duration(maxS)*time.Second, minTTL)
		h := http.Header{}
		for name, v := range map[string]string{"Cache-Control": cc, "Expires": expires, "Date": dateHdr, "Age": age} {
			if v != "" {
				h.Set(name, v)
			}
		}
		got := freshness(h, now, minTTL, maxTTL)
		if got < minTTL || got > maxTTL {
			t.Fatalf("freshness(%v) = %v, outside [%v, %v]", h, got, minTTL, maxTTL)
		}
		if again := freshness(h.Clone(), now, minTTL, maxTTL); again != got {
			t.Fatalf("freshness(%v) = %v, then %v", h, got, again)
		}
		for _, d := range []string{"no-store", "No-Cache"} {
			h2 := h.Clone()
			h2.Add("Cache-Control", d)
			if ttl := freshness(h2, now, minTTL, maxTTL); ttl != minTTL {
				t.Fatalf("freshness(%v) = %v, want min_ttl for %s", h2, ttl, d)
			}
		}
		h3 := h.Clone()
		h3.Del("Age")
		if without := freshness(h3, now, minTTL, maxTTL); got > without {
			t.Fatalf("Age %q lengthened the lifetime: %v > %v", age, got, without)
		}
		lone := http.Header{"Cache-Control": {fmt.Sprintf("max-age=%d", n)}}
		want := min(max(time.Duration(n)*time.Second, minTTL), maxTTL)
		if ttl := freshness(lone, now, minTTL, maxTTL); ttl != want {
			t.Fatalf("freshness(%v) = %v, want %v", lone, ttl, want)
		}
	})
}
