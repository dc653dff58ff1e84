package jwkscache

import (
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
		{"invalid Age ignored", http.Header{"Cache-Control": {"max-age=600"}, "Age": {"-5"}}, 600 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := freshness(tc.h, now, minTTL, maxTTL); got != tc.want {
				t.Fatalf("freshness(%v) = %v, want %v", tc.h, got, tc.want)
			}
		})
	}
}
