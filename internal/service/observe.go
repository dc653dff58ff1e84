package service

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/extauthz/extauthz/internal/audit"
	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/internal/tracing"
	"github.com/extauthz/extauthz/jwkscache"
)

// observeStopTimeout bounds the export of the last spans and the write of
// the last audit records at shutdown.
const observeStopTimeout = 5 * time.Second

// startTracing starts the OTLP exporter of cfg.Tracing (nil when tracing
// is off) and puts Redis's commands in it.
func (s *Service) startTracing(ctx context.Context, cfg *tenants.Config) error {
	if cfg.Tracing.Endpoint == "" {
		return nil
	}
	tr, err := tracing.Start(ctx, cfg.Tracing, version())
	if err != nil {
		return err
	}
	s.tracing = tr
	s.log.Info("tracing", "endpoint", cfg.Tracing.Endpoint, "protocol", cfg.Tracing.Protocol, "sample_ratio", *cfg.Tracing.SampleRatio)
	return nil
}

// instrumentRedis records the store's commands as spans, when both are on.
func (s *Service) instrumentRedis(store *redisstore.Store) error {
	if s.tracing == nil || store == nil {
		return nil
	}
	return store.InstrumentTracing(s.tracing.TracerProvider())
}

// cacheTracer is the registry's Tracer (nil when tracing is off).
func (s *Service) cacheTracer() jwkscache.Tracer {
	if s.tracing == nil {
		return nil
	}
	return s.tracing
}

// authzHooks fills the decision hooks: a span per decision, an audit record.
func (s *Service) authzHooks(opts authz.Options) authz.Options {
	if s.tracing != nil {
		opts.Tracer = s.tracing
	}
	if s.audit != nil {
		opts.Recorder = s.audit
	}
	return opts
}

// openAudit opens the audit log of cfg.Audit (none when off) and exposes
// its drop counter.
func (s *Service) openAudit(cfg *tenants.Config) error {
	var dropped func() uint64
	if cfg.Audit.Path != "" {
		l, err := audit.Open(cfg.Audit.Path, audit.Options{
			AllowSampleRatio: *cfg.Audit.AllowSampleRatio,
			Logger:           s.log.With("component", "audit"),
		})
		if err != nil {
			return err
		}
		s.audit = l
		dropped = l.Dropped
	}
	return s.metrics.CollectAudit(dropped)
}

// reopenAudit reopens the audit file (SIGHUP: log rotation moved it).
func (s *Service) reopenAudit(ctx context.Context) {
	if s.audit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, observeStopTimeout)
	defer cancel()
	if err := s.audit.Reopen(ctx); err == nil {
		s.log.Info("audit log reopened", "path", s.currentConfig().Audit.Path)
	} // a failure is logged by the audit log, which keeps the old file
}

// stopObserving writes the last audit records and exports the last spans.
func (s *Service) stopObserving() {
	ctx, cancel := context.WithTimeout(context.Background(), observeStopTimeout)
	defer cancel()
	if s.audit != nil {
		if err := s.audit.Close(ctx); err != nil {
			s.log.Warn("audit log not flushed", "error", err)
		}
	}
	if s.tracing != nil {
		if err := s.tracing.Shutdown(ctx); err != nil {
			s.log.Warn("last spans not exported", "error", err)
		}
	}
}

// observeChanged reports the tracing and audit settings that differ:
// both are built at start, so a change needs a restart.
func observeChanged(old, cfg *tenants.Config) []string {
	var out []string
	a, b := old.Tracing, cfg.Tracing
	if a.Endpoint != b.Endpoint || a.Protocol != b.Protocol || a.Insecure != b.Insecure ||
		a.ServiceName != b.ServiceName || a.HeadersFile != b.HeadersFile || !sameRatio(a.SampleRatio, b.SampleRatio) {
		out = append(out, "tracing")
	}
	if old.Audit.Path != cfg.Audit.Path || !sameRatio(old.Audit.AllowSampleRatio, cfg.Audit.AllowSampleRatio) {
		out = append(out, "audit")
	}
	return out
}

func sameRatio(a, b *float64) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// version is the module version stamped in the binary ("(devel)" in a
// development build), the service.version of every span.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
