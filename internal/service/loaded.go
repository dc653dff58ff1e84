package service

import (
	"time"

	"github.com/extauthz/extauthz/internal/admin"
	"github.com/extauthz/extauthz/internal/tenants"
)

// adopt records ld as the configuration in effect: its tenant file
// problems are logged (by path) and counted, its hash published, its
// tenant files remembered as the last good ones, and the metrics of
// tenants and providers it no longer has deleted. The caller holds s.mu or
// owns s alone (New).
func (s *Service) adopt(ld *tenants.Loaded) {
	s.loader.Commit(ld)
	s.loaded, s.loadedAt = ld, time.Now()
	for _, p := range ld.Problems {
		s.metrics.ConfigError(p.Source)
		if p.Kept {
			s.log.Error("tenant file refused; its last good version stays in use", "source", p.Source, "problems", p.Problems)
		} else {
			s.log.Error("tenant file refused; its tenant is absent", "source", p.Source, "problems", p.Problems)
		}
	}
	s.metrics.SetConfigHash(ld.Hash)
	s.metrics.Retain(providerIDs(ld.Config))
}

// providerIDs maps each tenant id of cfg to its provider ids.
func providerIDs(cfg *tenants.Config) map[string][]string {
	ids := make(map[string][]string, len(cfg.Tenants))
	for _, t := range cfg.Tenants {
		ps := make([]string, 0, len(t.Providers))
		for _, p := range t.Providers {
			ps = append(ps, p.ID)
		}
		ids[t.ID] = ps
	}
	return ids
}

// mainSource names the configuration file in logs and metrics.
func (s *Service) mainSource() string {
	if s.opts.ConfigPath != "" {
		return s.opts.ConfigPath
	}
	return "config"
}

// configStatus is the admin API's view of the configuration in effect.
func (s *Service) configStatus() admin.ConfigStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := admin.ConfigStatus{Hash: s.loaded.Hash, LoadedAt: s.loadedAt, Tenants: len(s.loaded.Config.Tenants)}
	for _, p := range s.loaded.Problems {
		st.Problems = append(st.Problems, admin.ConfigProblem{Source: p.Source, Problems: p.Problems, Kept: p.Kept})
	}
	return st
}
