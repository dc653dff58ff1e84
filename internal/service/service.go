// Package service runs extauthz: it loads and validates the configuration
// (the file and its tenants_dir), builds the JWKS cache and the
// authorization server, serves Envoy's envoy.service.auth.v3.Authorization
// with grpc.health.v1 (and, when asked, reflection) on one gRPC listener,
// reloads the configuration on SIGHUP and when its files change, and drains
// on SIGTERM. cmd/extauthz only parses flags and calls it.
package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/extauthz/extauthz/internal/admin"
	"github.com/extauthz/extauthz/internal/audit"
	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/grpcauthz"
	"github.com/extauthz/extauthz/internal/metrics"
	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/internal/tracing"
	"github.com/extauthz/extauthz/jwkscache"
)

// Defaults of the shutdown sequence.
const (
	// DefaultDrainDelay is how long the server keeps answering after health
	// turned NOT_SERVING, so Envoy's health checks notice and move traffic
	// before connections close.
	DefaultDrainDelay = 3 * time.Second
	// DefaultStopTimeout bounds the graceful stop that follows the drain.
	DefaultStopTimeout = 10 * time.Second
)

// Options configure a Service.
type Options struct {
	// ConfigPath is the YAML file read at start and again on every reload.
	ConfigPath string
	// Config is the YAML used when ConfigPath is empty (the demo's built-in
	// configuration); a reload re-reads these same bytes.
	Config []byte
	// LogFormat, when set ("json" or "text"), overrides log.format.
	LogFormat string
	// LogOutput receives the logs (default os.Stderr).
	LogOutput io.Writer
	// DrainDelay: see DefaultDrainDelay. Negative means none.
	DrainDelay time.Duration
	// StopTimeout: see DefaultStopTimeout; after it, connections are closed.
	StopTimeout time.Duration
	// WatchConfig reloads the configuration when ConfigPath, its directory
	// or tenants_dir change (see watch.go); cmd/extauthz turns it on.
	WatchConfig bool
	// WatchDebounce: see DefaultWatchDebounce.
	WatchDebounce time.Duration
	// Reflection registers grpc.reflection even when grpc.reflection is
	// off in the configuration (the -reflection flag).
	Reflection bool
	// HTTPTimeouts bound the HTTP listeners' connections; zero fields take
	// DefaultHTTPTimeouts'.
	HTTPTimeouts HTTPTimeouts
}

// Service is a running extauthz: listener bound, providers registered.
type Service struct {
	opts     Options
	log      *slog.Logger
	level    *slog.LevelVar
	registry *jwkscache.Registry
	redis    *redisstore.Store // jwks.redis; nil when not set
	authz    *authz.Server
	metrics  *metrics.Metrics
	admin    *admin.Handler
	nudge    admin.Nudge      // wakes the readiness watcher after each refresh
	tracing  *tracing.Tracing // tracing block; nil when off
	audit    *audit.Log       // audit block; nil when off
	health   *health.Server
	// stopListeners stops the admin and forward-auth listeners (set by Run).
	stopListeners func()
	// stopWatch stops the config watcher (set by Run when it watches).
	stopWatch func()
	grpc      *grpc.Server
	lis       net.Listener

	mu  sync.Mutex // serialises reloads; guards cfg and the fields below
	cfg *tenants.Config
	// loader reads the file and tenants_dir, keeping each tenant file's
	// last good version.
	loader *tenants.Loader
	// lastInput is the fingerprint of the inputs of the last load attempt:
	// the same bytes are not loaded twice.
	lastInput string
	// loaded is the configuration in effect: its hash and tenant file
	// problems, for the admin API.
	loaded     *tenants.Loaded
	loadedAt   time.Time
	tenantsDir string // resolved tenants_dir of the last read, for the watcher
}

// HealthServices are the grpc.health.v1 service names the server reports:
// the server as a whole ("") and the authorization service.
var HealthServices = []string{"", authv3.Authorization_ServiceDesc.ServiceName}

// New loads and validates the configuration, registers every provider
// (their first fetches start in the background), binds the gRPC listener
// and returns a Service ready to Run. An invalid configuration is a
// *ConfigError listing every problem.
func New(ctx context.Context, opts Options) (*Service, error) {
	if opts.LogOutput == nil {
		opts.LogOutput = os.Stderr
	}
	if opts.DrainDelay == 0 {
		opts.DrainDelay = DefaultDrainDelay
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	opts.HTTPTimeouts = opts.HTTPTimeouts.withDefaults()
	if opts.LogFormat != "" && opts.LogFormat != "json" && opts.LogFormat != "text" {
		return nil, fmt.Errorf("service: log format %q: want json or text", opts.LogFormat)
	}
	loader := tenants.NewLoader(opts.ConfigPath, opts.Config)
	in, err := loader.Read()
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	ld, err := loader.Load(in, validateAll)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	cfg := ld.Config
	s := &Service{opts: opts, level: new(slog.LevelVar), cfg: cfg, loader: loader, lastInput: in.Fingerprint(), tenantsDir: in.TenantsDir()}
	s.level.Set(parseLevel(cfg.Log.Level))
	format := cfg.Log.Format
	if opts.LogFormat != "" {
		format = opts.LogFormat
	}
	s.log = newLogger(opts.LogOutput, format, s.level)

	set, err := tenants.NewSet(cfg)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	s.metrics = metrics.New()
	s.nudge = admin.NewNudge()
	refreshLog := admin.NewRefreshLog(s.log.With("component", "jwkscache"))
	if err := s.startTracing(ctx, cfg); err != nil {
		return nil, &ConfigError{Err: err}
	}
	if s.redis, err = openRedis(cfg, s.log); err != nil {
		s.stopObserving()
		return nil, &ConfigError{Err: err}
	}
	if err := s.instrumentRedis(s.redis); err != nil {
		_ = s.redis.Close()
		s.stopObserving()
		return nil, err
	}
	s.registry, err = newRegistry(cfg, s.log.With("component", "jwkscache"), observers{s.metrics, s.nudge, refreshLog}, coordinator(s.redis), s.cacheTracer())
	if err != nil {
		if s.redis != nil {
			_ = s.redis.Close()
		}
		s.stopObserving()
		return nil, &ConfigError{Err: err}
	}
	if err := s.metrics.CollectCache(s.registry); err != nil {
		_ = s.closeRegistry()
		return nil, fmt.Errorf("service: metrics: %w", err)
	}
	if err := s.openAudit(cfg); err != nil {
		_ = s.closeRegistry()
		return nil, &ConfigError{Err: err}
	}
	s.metrics.ConfigLoaded(time.Now())
	adminToken, err := readAdminToken(cfg.Admin.TokenFile)
	if err != nil {
		_ = s.closeRegistry()
		return nil, &ConfigError{Err: err}
	}
	s.admin = admin.New(admin.Options{
		Registry:           s.registry,
		Metrics:            s.metrics.Handler(),
		MinAvailableShare:  cfg.Readiness.MinAvailableShare,
		ColdWait:           time.Duration(cfg.Limits.ColdWait),
		Config:             s.configStatus,
		Logger:             s.log.With("component", "admin"),
		Token:              adminToken,
		OpenProbes:         cfg.Admin.OpenProbes,
		RefreshMinInterval: time.Duration(cfg.Admin.RefreshMinInterval),
	})
	for _, reg := range cfg.Registrations() {
		if err := s.registry.Register(ctx, reg); err != nil {
			_ = s.closeRegistry()
			return nil, fmt.Errorf("service: register %s/%s: %w", reg.TenantID, reg.ProviderID, err)
		}
	}
	s.authz = authz.New(set, s.registry, s.authzHooks(authz.Options{
		Logger:     s.log.With("component", "authz"),
		Observer:   s.metrics,
		DPoPReplay: dpopReplay(cfg, s.redis),
	}))
	s.adopt(ld)

	lis, err := net.Listen("tcp", cfg.Listen.GRPC)
	if err != nil {
		_ = s.closeRegistry()
		return nil, fmt.Errorf("service: listen.grpc: %w", err)
	}
	s.lis = limitListener(lis, cfg.Limits.MaxConnections)
	s.grpc = grpc.NewServer(grpcServerOptions(cfg.Limits)...)
	authv3.RegisterAuthorizationServer(s.grpc, grpcauthz.New(s.authz))
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if cfg.GRPC.Reflection || opts.Reflection {
		// Off by default: it lists what the server offers to anyone who
		// can reach the port.
		reflection.Register(s.grpc)
	}
	// Health follows readiness (see startListeners): NOT_SERVING until
	// every provider's first fetch attempt finished or limits.cold_wait
	// passed, so Envoy's health checks keep a cold replica out of rotation.
	// A Check that reaches it anyway waits up to limits.cold_wait, then
	// answers 503 jwks_unavailable.
	for _, name := range HealthServices {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	return s, nil
}

// Addr returns the gRPC listener's address (useful with port 0).
func (s *Service) Addr() net.Addr { return s.lis.Addr() }

// Logger returns the service's logger.
func (s *Service) Logger() *slog.Logger { return s.log }

// Registry returns the JWKS cache.
func (s *Service) Registry() *jwkscache.Registry { return s.registry }

// Run serves until ctx ends or a SIGTERM or SIGINT arrives on signals, then
// shuts down (see Shutdown) and returns nil after a clean stop. A SIGHUP
// reloads the configuration (see Reload); a second stop signal during the
// shutdown skips what is left of the drain.
func (s *Service) Run(ctx context.Context, signals <-chan os.Signal) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.grpc.Serve(s.lis) }()
	stopListeners, err := s.startListeners(ctx)
	if err != nil {
		s.grpc.Stop()
		_ = s.closeRegistry()
		return err
	}
	// Shutdown stops them before the registry closes, so no HTTP answer is
	// made from a closed cache; the defer covers the other exits.
	s.stopListeners = sync.OnceFunc(stopListeners)
	defer s.stopListeners()
	if s.opts.WatchConfig && s.opts.ConfigPath != "" {
		stopWatch, err := s.watchConfig(ctx)
		if err != nil {
			s.log.Warn("config files not watched; SIGHUP still reloads", "error", err)
		} else {
			s.stopWatch = sync.OnceFunc(stopWatch)
			defer s.stopWatch()
		}
	}
	s.log.Info("serving", "grpc", s.Addr().String(), "tenants", len(s.currentConfig().Tenants))
	for {
		select {
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				_ = s.Reload(ctx) // Reload logs the outcome
				s.reopenAudit(ctx)
				continue
			}
			s.log.Info("shutting down", "signal", sig.String())
			return s.Shutdown(signals)
		case <-ctx.Done():
			s.log.Info("shutting down", "cause", context.Cause(ctx).Error())
			return s.Shutdown(nil)
		case err := <-serveErr:
			_ = s.closeRegistry()
			return fmt.Errorf("service: grpc serve: %w", err)
		}
	}
}

// Shutdown stops the service in the order Envoy needs: health NOT_SERVING
// first, requests still answered for the drain delay, then a graceful stop
// bounded by the stop timeout, then a hard stop. A signal on hurry (may be
// nil) cuts the drain short.
func (s *Service) Shutdown(hurry <-chan os.Signal) error {
	s.admin.Drain()     // /readyz 503 from now on
	s.health.Shutdown() // every service NOT_SERVING, and it stays so
	if d := s.opts.DrainDelay; d > 0 {
		s.log.Info("draining", "delay", d.String())
		t := time.NewTimer(d)
	drain:
		for {
			select {
			case <-t.C:
				break drain
			case sig := <-hurry:
				if sig == syscall.SIGHUP {
					continue // no reloads while stopping, and no reason to hurry
				}
				t.Stop()
				s.log.Warn("drain cut short", "signal", sig.String())
				break drain
			}
		}
	}
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	t := time.NewTimer(s.opts.StopTimeout)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		s.log.Warn("graceful stop timed out; closing connections", "timeout", s.opts.StopTimeout.String())
		s.grpc.Stop()
		<-stopped
	}
	if s.stopListeners != nil {
		s.stopListeners()
	}
	if s.stopWatch != nil {
		s.stopWatch() // no reload into a closing registry
	}
	err := s.closeRegistry()
	s.log.Info("stopped")
	return err
}

// Reload re-reads the configuration file and its tenants_dir. When their
// bytes are those of the last attempt, it does nothing (a SIGHUP and a file
// watch event for one change load it once). An invalid configuration file
// is refused: logged with every problem, counted, and the running
// configuration keeps serving. A broken tenant file is not: its tenant
// keeps its last good version, or stays absent (see tenants.Loader), and
// the problem is logged and counted. A valid configuration takes effect
// atomically: new and changed providers are registered first (an
// unchanged registration is a no-op that keeps its warm cache), then the
// tenant set is swapped, then removed providers are unregistered.
func (s *Service) Reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, err := s.loader.Read()
	if err == nil {
		s.tenantsDir = in.TenantsDir()
		if in.Fingerprint() == s.lastInput {
			s.log.Info("config unchanged since the last load; nothing to reload")
			return nil
		}
		s.lastInput = in.Fingerprint()
		err = s.reload(ctx, in)
	} else {
		s.lastInput = "" // whatever is read next is loaded
		err = &ConfigError{Err: err}
	}
	s.metrics.ConfigReloaded(err == nil, time.Now())
	if err != nil {
		s.metrics.ConfigError(s.mainSource())
		s.log.Error("config reload refused; keeping the running configuration", "source", s.mainSource(), "problems", Problems(err))
		return err
	}
	return nil
}

func (s *Service) reload(ctx context.Context, in *tenants.Inputs) error {
	ld, err := s.loader.Load(in, func(c *tenants.Config) error { return c.Validate(s.registry.Validate) })
	if err != nil {
		return &ConfigError{Err: err}
	}
	cfg := ld.Config
	set, err := tenants.NewSet(cfg)
	if err != nil {
		return &ConfigError{Err: err}
	}
	old := s.cfg
	s.warnRestartOnly(old, cfg)

	regs := cfg.Registrations()
	var registered []jwkscache.Registration
	for _, reg := range regs {
		if err := s.registry.Register(ctx, reg); err != nil {
			// Validate accepted it, so this is a closed registry or a
			// cancelled ctx. Providers registered so far are unreachable
			// through the old set (or replaced in place); report and keep it.
			return fmt.Errorf("service: reload: register %s/%s: %w", reg.TenantID, reg.ProviderID, err)
		}
		registered = append(registered, reg)
	}
	s.authz.Update(set)
	removed := 0
	for _, reg := range old.Registrations() {
		if !slices.ContainsFunc(regs, func(r jwkscache.Registration) bool {
			return r.TenantID == reg.TenantID && r.ProviderID == reg.ProviderID
		}) {
			s.registry.Unregister(reg.TenantID, reg.ProviderID)
			removed++
		}
	}
	s.level.Set(parseLevel(cfg.Log.Level))
	s.cfg = cfg
	s.adopt(ld)
	s.log.Info("config reloaded", "tenants", len(cfg.Tenants), "providers", len(registered), "providers_removed", removed, "hash", ld.Hash)
	return nil
}

// warnRestartOnly logs the settings a reload cannot change: they belong to
// listeners and to the registry built at start.
func (s *Service) warnRestartOnly(old, cfg *tenants.Config) {
	changed := func(name string, a, b any) {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			s.log.Warn("setting changed on reload takes effect only after a restart", "setting", name)
		}
	}
	changed("listen", old.Listen, cfg.Listen)
	changed("forward_auth", old.ForwardAuth, cfg.ForwardAuth)
	changed("grpc", old.GRPC, cfg.GRPC)
	changed("admin", old.Admin, cfg.Admin)
	changed("limits (connections, streams, request headers)",
		[3]int{old.Limits.MaxConnections, old.Limits.MaxConcurrentStreams, old.Limits.MaxRequestHeaderBytes},
		[3]int{cfg.Limits.MaxConnections, cfg.Limits.MaxConcurrentStreams, cfg.Limits.MaxRequestHeaderBytes})
	changed("log.format", old.Log.Format, cfg.Log.Format)
	changed("jwks.ca_file", old.JWKS.CAFile, cfg.JWKS.CAFile)
	changed("jwks.max_concurrent_fetches", old.JWKS.MaxConcurrentFetches, cfg.JWKS.MaxConcurrentFetches)
	changed("jwks.redis", old.JWKS.Redis, cfg.JWKS.Redis)
	changed("readiness", old.Readiness, cfg.Readiness)
	changed("dpop_replay", old.DPoPReplay, cfg.DPoPReplay)
	for _, name := range observeChanged(old, cfg) {
		s.log.Warn("setting changed on reload takes effect only after a restart", "setting", name)
	}
	if (old.JWKS.RequireHTTPS == nil) != (cfg.JWKS.RequireHTTPS == nil) ||
		(old.JWKS.RequireHTTPS != nil && *old.JWKS.RequireHTTPS != *cfg.JWKS.RequireHTTPS) {
		s.log.Warn("setting changed on reload takes effect only after a restart", "setting", "jwks.require_https")
	}
}

func (s *Service) currentConfig() *tenants.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}
