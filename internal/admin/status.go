package admin

import (
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// ProviderStatus is one provider's status as the admin API shows it (the
// ProviderStatus schema of docs/admin-openapi.yaml). Times are RFC 3339 in
// UTC, null when they have not happened or are not planned.
type ProviderStatus struct {
	TenantID   string `json:"tenant_id"`
	ProviderID string `json:"provider_id"`
	// State is Empty, Loading, Ready or Refreshing (jwkscache.State).
	State string `json:"state"`
	// Condition is the operator's view: starting, healthy, refresh_failing,
	// serving_stale or unavailable (see condition).
	Condition string `json:"condition"`
	// Stale: the key set is past expires_at and served only because
	// refreshes fail (stale-while-error).
	Stale bool `json:"stale"`
	// Available: lookups can be answered (a fresh or stale-but-allowed set).
	Available   bool       `json:"available"`
	LastRefresh *time.Time `json:"last_refresh"`
	NextRefresh *time.Time `json:"next_refresh"`
	ExpiresAt   *time.Time `json:"expires_at"`
	// ErrorCount is the number of consecutive failed refreshes.
	ErrorCount      int        `json:"error_count"`
	LastError       *string    `json:"last_error"`
	HitRate         float64    `json:"hit_rate"`
	StaleServeRatio float64    `json:"stale_serve_ratio"`
	KeyIDs          []string   `json:"key_ids"`
	Source          *string    `json:"source"`
	SourceAt        *time.Time `json:"source_at"`
}

func newProviderStatus(st jwkscache.Status) ProviderStatus {
	v := ProviderStatus{
		TenantID:        st.TenantID,
		ProviderID:      st.ProviderID,
		State:           st.State.String(),
		Condition:       condition(st),
		Stale:           st.Stale,
		Available:       available(st),
		LastRefresh:     timeOrNil(st.LastRefresh),
		NextRefresh:     timeOrNil(st.NextRefresh),
		ExpiresAt:       timeOrNil(st.ExpiresAt),
		ErrorCount:      st.ConsecutiveErrors,
		HitRate:         st.HitRate,
		StaleServeRatio: st.StaleServeRatio,
		KeyIDs:          st.KeyIDs,
		SourceAt:        timeOrNil(st.SourceAt),
	}
	if v.KeyIDs == nil {
		v.KeyIDs = []string{}
	}
	if st.LastError != "" {
		v.LastError = &st.LastError
	}
	if st.Source != jwkscache.SourceNone {
		s := string(st.Source)
		v.Source = &s
	}
	return v
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// hasSet reports whether the provider holds a key set at all.
func hasSet(st jwkscache.Status) bool {
	return st.State == jwkscache.StateReady || st.State == jwkscache.StateRefreshing
}
