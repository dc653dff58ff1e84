package service

import "context"

// startAdmin is the hook for the listeners that later issues add next to
// the gRPC one, and returns what stops them:
//   - listen.admin (issue 5): /metrics, /healthz, /readyz and the provider
//     API, built from s.Registry() and the authz observer;
//   - listen.http (issue 6): HTTP forward-auth for nginx, Traefik, Caddy;
//   - jwks.redis (issue 4): snapshot sharing between replicas.
//
// Until they exist, the addresses are validated by the configuration but
// nothing listens on them; the log says so, so an operator is not misled.
func (s *Service) startAdmin(ctx context.Context) (stop func(), err error) {
	cfg := s.currentConfig()
	if cfg.Listen.Admin != "" {
		s.log.InfoContext(ctx, "admin listener not available in this build", "listen.admin", cfg.Listen.Admin)
	}
	if cfg.Listen.HTTP != "" {
		s.log.InfoContext(ctx, "HTTP forward-auth listener not available in this build", "listen.http", cfg.Listen.HTTP)
	}
	if cfg.JWKS.Redis != nil {
		s.log.WarnContext(ctx, "jwks.redis is set but snapshot sharing is not available in this build; each replica fetches for itself")
	}
	return func() {}, nil
}
