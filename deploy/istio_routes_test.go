package deploy

import (
	"errors"
	"fmt"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
)

// checkIstioRoutes checks the Istio side of per-route requirements: Istio
// cannot name a requirement per route, so the ConfigMap's extauthz config
// must carry path rules (routes); no CUSTOM policy may keep a route's
// prefix from extauthz; and the mesh normalises paths (merging slashes) so
// the routes see the path the workload sees.
func checkIstioRoutes(m *manifests) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	kd, err := m.kubeDeployment()
	if err != nil {
		return err
	}
	var routes int
	for _, t := range kd.config.Tenants {
		for i, r := range t.Routes {
			routes++
			for _, p := range m.policies {
				if p.spec.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM {
					continue
				}
				for _, rule := range p.spec.GetRules() {
					for _, to := range rule.GetTo() {
						for _, np := range to.GetOperation().GetNotPaths() {
							if istioPathCovers(np, r.PathPrefix) {
								fail("AuthorizationPolicy %s: notPaths %q keeps tenant %s routes[%d] (%s) from extauthz", p.meta.Name, np, t.ID, i, r.PathPrefix)
							}
						}
					}
				}
			}
		}
	}
	if routes == 0 {
		fail("the ConfigMap's config has no routes: behind Istio they are the only way to require more on some paths")
	}
	switch n := m.mesh.GetPathNormalization().GetNormalization(); n {
	case meshv1alpha1.MeshConfig_ProxyPathNormalization_MERGE_SLASHES, meshv1alpha1.MeshConfig_ProxyPathNormalization_DECODE_AND_MERGE_SLASHES:
	default:
		fail("%s: pathNormalization %s, want MERGE_SLASHES (extauthz routes match the normalised path)", meshConfigFile, n)
	}
	return errors.Join(errs...)
}

// istioPathCovers reports whether an Istio path pattern (exact, "prefix*"
// or "*suffix") matches every path under prefix, or prefix itself.
func istioPathCovers(pattern, prefix string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(prefix, strings.TrimSuffix(pattern, "*"))
	case strings.HasPrefix(pattern, "*"):
		return false // a suffix matches some paths under the prefix, not all
	}
	return pattern == prefix
}
