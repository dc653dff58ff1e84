package admin

import "github.com/extauthz/extauthz/jwkscache"

// The conditions of a provider: what an operator needs to know, where the
// cache's states (Empty, Loading, Ready, Refreshing) say what it is doing.
// A provider whose identity provider keeps failing moves between Empty and
// Loading, or stays Ready on stale keys; its condition says it is failing.
const (
	ConditionStarting       = "starting"        // no fetch has finished yet
	ConditionHealthy        = "healthy"         // fresh keys, last refresh succeeded
	ConditionRefreshFailing = "refresh_failing" // fresh keys still, but the last refresh(es) failed
	ConditionServingStale   = "serving_stale"   // keys past expires_at, served within stale_while_error
	ConditionUnavailable    = "unavailable"     // no usable keys after a failed fetch: Checks get 503 jwks_unavailable
)

// condition names st's condition.
func condition(st jwkscache.Status) string {
	switch {
	case !available(st) && st.ConsecutiveErrors == 0 && !st.Unusable:
		return ConditionStarting
	case !available(st):
		return ConditionUnavailable
	case st.Stale:
		return ConditionServingStale
	case st.ConsecutiveErrors > 0:
		return ConditionRefreshFailing
	default:
		return ConditionHealthy
	}
}
