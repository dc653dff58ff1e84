package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/extauthz/extauthz/internal/admin"
	"github.com/extauthz/extauthz/internal/forwardauth"
	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/jwkscache"
)

// readinessTick is how often gRPC health re-reads readiness even without a
// refresh: a stale set runs out with the clock alone.
const readinessTick = time.Second

// observers fans one refresh outcome out to every observer (metrics,
// the readiness nudge, the refresh log). Each must not block.
type observers []jwkscache.Observer

// RefreshDone implements jwkscache.Observer.
func (o observers) RefreshDone(ev jwkscache.RefreshEvent) {
	for _, x := range o {
		x.RefreshDone(ev)
	}
}

// httpListener is one HTTP server the service runs beside gRPC.
type httpListener struct {
	name string
	srv  *http.Server
	lis  net.Listener
}

// startListeners starts what runs beside the gRPC server: the admin API
// (listen.admin: metrics, probes, provider status), the HTTP forward-auth
// listener (listen.http) and the watcher that makes grpc.health.v1 follow
// readiness. It returns what stops them.
func (s *Service) startListeners(ctx context.Context) (stop func(), err error) {
	cfg := s.currentConfig()
	var ls []httpListener
	stopAll := func() {
		for _, l := range ls {
			sctx, cancel := context.WithTimeout(context.Background(), s.opts.StopTimeout)
			if err := l.srv.Shutdown(sctx); err != nil {
				_ = l.srv.Close()
			}
			cancel()
		}
	}
	add := func(name, addr string, h http.Handler) error {
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("service: %s: %w", name, err)
		}
		lis = limitListener(lis, cfg.Limits.MaxConnections)
		srv := newHTTPServer(h, s.opts.HTTPTimeouts, cfg.Limits)
		ls = append(ls, httpListener{name: name, srv: srv, lis: lis})
		go func() {
			if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("listener stopped", "listener", name, "error", err)
			}
		}()
		s.log.Info("serving", name, lis.Addr().String())
		return nil
	}
	if cfg.Listen.Admin != "" {
		if err := add("listen.admin", cfg.Listen.Admin, s.admin); err != nil {
			stopAll()
			return nil, err
		}
	}
	if cfg.Listen.HTTP != "" {
		fa, err := forwardauth.New(s.authz, s.forwardAuthOptions(cfg))
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("service: listen.http: %w", err)
		}
		if err := add("listen.http", cfg.Listen.HTTP, fa); err != nil {
			stopAll()
			return nil, err
		}
	}

	wctx, cancel := context.WithCancel(ctx)
	ticker := time.NewTicker(readinessTick)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		admin.Watch(wctx, ticker.C, s.nudge, s.admin.Ready, s.setServing)
	}()
	return func() {
		cancel()
		ticker.Stop()
		<-watched
		stopAll()
	}, nil
}

// forwardAuthOptions maps the configuration onto the forward-auth
// listener's options. The default trusts forwarded headers from loopback
// peers only.
func (s *Service) forwardAuthOptions(cfg *tenants.Config) forwardauth.Options {
	opts := forwardauth.Options{
		PathPrefix: cfg.ForwardAuth.PathPrefix,
		Logger:     s.log.With("component", "forwardauth"),
	}
	trusted, err := cfg.ForwardAuth.Prefixes()
	if err != nil {
		// Unreachable: Validate refused the config. Trusting nobody but
		// loopback is the closed way to fail.
		s.log.Error("forward_auth.trusted_proxies ignored", "error", err)
		return opts
	}
	opts.TrustedProxies = trusted
	return opts
}

// setServing makes grpc.health.v1 report readiness. Once the shutdown
// began (health.Shutdown), the health server ignores it: NOT_SERVING stays.
func (s *Service) setServing(ready bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ready {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, name := range HealthServices {
		s.health.SetServingStatus(name, st)
	}
	s.log.Info("readiness changed", "ready", ready)
}
