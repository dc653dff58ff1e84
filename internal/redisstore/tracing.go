package redisstore

import (
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentTracing records every Redis command of the store as a span of
// tp (go-redis's own OpenTelemetry hook). The command's arguments are not
// recorded: a snapshot is a JWKS document, and key names carry tenant ids
// only. Call it once, before the store is used.
func (s *Store) InstrumentTracing(tp trace.TracerProvider) error {
	if err := redisotel.InstrumentTracing(s.client,
		redisotel.WithTracerProvider(tp),
		redisotel.WithDBStatement(false),
	); err != nil {
		return fmt.Errorf("redisstore: tracing: %w", err)
	}
	return nil
}
