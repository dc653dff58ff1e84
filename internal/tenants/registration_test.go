package tenants

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCacheSettings_SetsKnowsEveryFieldByItsYAMLName(t *testing.T) {
	d, n, b, i64, j := Duration(time.Second), 1, true, int64(1), "full"
	cases := []struct {
		field string
		s     CacheSettings
	}{
		{"require_https", CacheSettings{RequireHTTPS: &b}},
		{"allowed_domains", CacheSettings{AllowedDomains: []string{}}},
		{"refresh_early", CacheSettings{RefreshEarly: &d}},
		{"stale_while_error", CacheSettings{StaleWhileError: &d}},
		{"min_ttl", CacheSettings{MinTTL: &d}},
		{"max_ttl", CacheSettings{MaxTTL: &d}},
		{"max_response_bytes", CacheSettings{MaxResponseBytes: &i64}},
		{"negative_cache_ttl", CacheSettings{NegativeCacheTTL: &d}},
		{"max_redirects", CacheSettings{MaxRedirects: &n}},
		{"pinned_spki", CacheSettings{PinnedSPKI: []string{}}},
		{"prefetch_jitter", CacheSettings{PrefetchJitter: &d}},
		{"unknown_kid_cooldown", CacheSettings{UnknownKIDCooldown: &d}},
		{"retry_policy", CacheSettings{RetryPolicy: &RetryPolicy{}}},
		{"retry_policy.max_retries", CacheSettings{RetryPolicy: &RetryPolicy{MaxRetries: &n}}},
		{"retry_policy.attempt_timeout", CacheSettings{RetryPolicy: &RetryPolicy{AttemptTimeout: &d}}},
		{"retry_policy.initial_backoff", CacheSettings{RetryPolicy: &RetryPolicy{InitialBackoff: &d}}},
		{"retry_policy.max_backoff", CacheSettings{RetryPolicy: &RetryPolicy{MaxBackoff: &d}}},
		{"retry_policy.deadline", CacheSettings{RetryPolicy: &RetryPolicy{Deadline: &d}}},
		{"retry_policy.jitter", CacheSettings{RetryPolicy: &RetryPolicy{Jitter: &j}}},
	}
	// The table covers every field, so a new setting cannot go unattributed.
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.field] = true
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[CacheSettings](), reflect.TypeFor[RetryPolicy]()} {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if typ == reflect.TypeFor[RetryPolicy]() {
				name = "retry_policy." + name
			}
			if !covered[name] {
				t.Errorf("field %s (%s) is not in the table", f.Name, name)
			}
		}
	}
	for _, tc := range cases {
		if !tc.s.sets(tc.field) {
			t.Errorf("%s set, but sets(%q) = false", tc.field, tc.field)
		}
		if (&CacheSettings{}).sets(tc.field) {
			t.Errorf("nothing set, but sets(%q) = true", tc.field)
		}
		for _, other := range cases {
			want := other.field == tc.field || other.field == "retry_policy" && strings.HasPrefix(tc.field, "retry_policy")
			if got := tc.s.sets(other.field); got != want {
				t.Errorf("only %s set: sets(%q) = %v", tc.field, other.field, got)
			}
		}
	}
	all := CacheSettings{AllowedDomains: []string{"x.test"}, RetryPolicy: &RetryPolicy{Jitter: &j}}
	for _, field := range []string{"allowed_domains[0]", "retry_policy.jitter.x", "retry_policy.nope", "ca_file", ""} {
		if all.sets(field) {
			t.Errorf("sets(%q) = true", field)
		}
	}
}
