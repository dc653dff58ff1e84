package admin

import (
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

func TestCondition(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		st   jwkscache.Status
		want string
	}{
		{"registered, first fetch running", jwkscache.Status{State: jwkscache.StateLoading}, ConditionStarting},
		{"registered, nothing tried yet", jwkscache.Status{State: jwkscache.StateEmpty}, ConditionStarting},
		{"first fetches keep failing, between tries", jwkscache.Status{State: jwkscache.StateEmpty, ConsecutiveErrors: 3}, ConditionUnavailable},
		{"first fetches keep failing, retry running", jwkscache.Status{State: jwkscache.StateLoading, ConsecutiveErrors: 3}, ConditionUnavailable},
		{"fresh keys", jwkscache.Status{State: jwkscache.StateReady, LastRefresh: at}, ConditionHealthy},
		{"fresh keys, refreshing", jwkscache.Status{State: jwkscache.StateRefreshing, LastRefresh: at}, ConditionHealthy},
		{"fresh keys, refreshes failing", jwkscache.Status{State: jwkscache.StateReady, ConsecutiveErrors: 2}, ConditionRefreshFailing},
		{"stale keys within stale_while_error", jwkscache.Status{State: jwkscache.StateReady, Stale: true, ConsecutiveErrors: 4}, ConditionServingStale},
		{"stale keys past stale_while_error", jwkscache.Status{State: jwkscache.StateReady, Stale: true, Unusable: true, ConsecutiveErrors: 9}, ConditionUnavailable},
		{"stale keys retrying past stale_while_error", jwkscache.Status{State: jwkscache.StateRefreshing, Stale: true, Unusable: true, ConsecutiveErrors: 9}, ConditionUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := condition(tt.st); got != tt.want {
				t.Fatalf("condition = %q, want %q", got, tt.want)
			}
		})
	}
}
