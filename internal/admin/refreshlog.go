package admin

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/extauthz/extauthz/jwkscache"
)

// RefreshLog is a jwkscache.Observer that logs one line per change of a
// provider's refresh outcome: the first outcome, a success after failures
// (Info) and a failure after successes (Warn). A provider failing every
// retry for an hour logs once, not once per attempt, and never anything
// per request. A refresh cut short by Close is not logged. It is safe for
// concurrent use.
type RefreshLog struct {
	log *slog.Logger

	mu     sync.Mutex
	failed map[[2]string]bool // last outcome per (tenant, provider)
}

// NewRefreshLog returns a RefreshLog writing to log.
func NewRefreshLog(log *slog.Logger) *RefreshLog {
	return &RefreshLog{log: log, failed: map[[2]string]bool{}}
}

// RefreshDone implements jwkscache.Observer.
func (l *RefreshLog) RefreshDone(ev jwkscache.RefreshEvent) {
	k := [2]string{ev.TenantID, ev.ProviderID}
	failed := ev.Result == jwkscache.RefreshError
	if failed && errors.Is(ev.Err, context.Canceled) {
		// Cut short by Close or a provider's removal: nothing is known
		// of the identity provider, and at shutdown of a large fleet
		// this would be one Warn line per provider.
		return
	}
	l.mu.Lock()
	last, seen := l.failed[k]
	l.failed[k] = failed
	l.mu.Unlock()
	if seen && last == failed {
		return
	}
	attrs := []any{"tenant", ev.TenantID, "provider", ev.ProviderID, "result", string(ev.Result), "http_status", ev.HTTPStatus, "duration", ev.Duration}
	if failed {
		// The error names the URL and each attempt's cause; never a key.
		l.log.Warn("jwks refresh failing", append(attrs, "error", errString(ev.Err))...)
		return
	}
	l.log.Info("jwks refresh ok", append(attrs, "keys", ev.Keys, "expires_at", ev.ExpiresAt)...)
}

// Forget drops a removed provider, so re-adding it logs its first outcome.
func (l *RefreshLog) Forget(tenantID, providerID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failed, [2]string{tenantID, providerID})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
