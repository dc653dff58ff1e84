package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/redisstore/redistest"
	"github.com/extauthz/extauthz/jwkscache"
)

// TestInstrumentTracing: every command against a real Redis is a span, and
// no span carries the command's arguments (a snapshot is a JWKS document).
func TestInstrumentTracing(t *testing.T) {
	srv := redistest.Start(t)
	store, err := redisstore.Open(srv.URL(), "t", redisstore.Options{Timeout: time.Second, HMACKeys: [][]byte{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	if err := store.InstrumentTracing(tp); err != nil {
		t.Fatal(err)
	}
	const marker = "secret-looking-jwks-body"
	jwks := []byte(`{"keys":[],"x":"` + marker + `"}`)
	coord := store.Coordinator()
	if err := coord.Save(context.Background(), jwkscache.SharedSnapshot{
		TenantID: "acme", ProviderID: "main", JWKS: jwks,
		ExpiresAt: time.Now().Add(time.Hour), PersistedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) == 0 {
		t.Fatal("no span for a Redis command")
	}
	for _, s := range spans {
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.Emit(), marker) {
				t.Errorf("span %s attribute %s carries the snapshot", s.Name, kv.Key)
			}
		}
	}
}
