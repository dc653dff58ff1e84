package redisstore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// SetClientLogger sends go-redis's own log lines to l at debug level. By
// default go-redis prints every failed dial to stderr, once per call during
// an outage; the store already logs each change of Redis health once, so
// the client's lines are detail. go-redis's logger is process-wide: call
// this once, at start, from main's wiring.
func SetClientLogger(l *slog.Logger) {
	redis.SetLogger(clientLogger{l})
}

type clientLogger struct{ l *slog.Logger }

// Printf implements go-redis's logger interface.
func (c clientLogger) Printf(ctx context.Context, format string, v ...any) {
	c.l.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
