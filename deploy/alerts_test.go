package deploy

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/extauthz/extauthz/internal/metrics"
	"github.com/extauthz/extauthz/jwkscache"
)

const alertsFile = "deploy/prometheus/alerts.yaml"

// The alerts operating.md promises, one per failure an operator must see.
var wantAlerts = []string{
	"ExtauthzAuditRecordsDropped",
	"ExtauthzDPoPProofsReplayed",
	"ExtauthzDPoPReplayCheckUnavailable",
	"ExtauthzJWKSUnavailable",
	"ExtauthzProviderUnavailable",
	"ExtauthzRedisSnapshotsRejected",
	"ExtauthzServingStaleKeys",
	"ExtauthzShadowWouldDeny",
	"ExtauthzTenantDenialRateJump",
}

// exposedMetrics returns the metric names the binary exposes, from the
// real metrics package with one provider in the cache.
func exposedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New()
	if err := m.CollectCache(oneProvider{}); err != nil {
		t.Fatal(err)
	}
	if err := m.CollectAudit(nil); err != nil {
		t.Fatal(err)
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	// Vectors without a series yet are not gathered; these are declared.
	names["extauthz_check_total"] = true
	names["extauthz_check_duration_seconds"] = true
	names["extauthz_shadow_would_deny_total"] = true
	return names
}

type oneProvider struct{}

func (oneProvider) Statuses() []jwkscache.Status {
	return []jwkscache.Status{{TenantID: "acme", ProviderID: "main", ExpiresAt: time.Unix(1, 0),
		SnapshotsRejected: map[string]uint64{"bad_mac": 1}}}
}

// checkAlerts parses data with Prometheus's rule parser (which also parses
// every expression with the PromQL parser and checks the templates) and
// checks each selector names a metric in exposed.
func checkAlerts(t *testing.T, data []byte, exposed map[string]bool) []string {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.Parse(data, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	var problems []string
	for _, err := range errs {
		problems = append(problems, err.Error())
	}
	if groups == nil {
		return problems
	}
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				problems = append(problems, r.Alert+": "+err.Error())
				continue
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok && !exposed[vs.Name] {
					problems = append(problems, r.Alert+": metric "+vs.Name+" is not exposed by extauthz")
				}
				return nil
			})
		}
	}
	slices.Sort(alerts)
	if !slices.Equal(alerts, wantAlerts) {
		problems = append(problems, "alerts "+strings.Join(alerts, ", ")+"; want "+strings.Join(wantAlerts, ", "))
	}
	return problems
}

func TestAlerts_ParseAndUseExposedMetrics(t *testing.T) {
	data, err := repo{root: root}.read(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	if problems := checkAlerts(t, data, exposedMetrics(t)); len(problems) > 0 {
		t.Fatalf("%s:\n%s", alertsFile, strings.Join(problems, "\n"))
	}
}

// TestAlerts_MutationsFail proves the checks can fail.
func TestAlerts_MutationsFail(t *testing.T) {
	data, err := repo{root: root}.read(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	exposed := exposedMetrics(t)
	tests := []struct {
		name, old, new, want string
	}{
		{"bad PromQL", "increase(jwks_cache_stale_total[5m])", "increase(jwks_cache_stale_total[5m)", "ExtauthzServingStaleKeys"},
		{"metric the binary lacks", "extauthz_audit_dropped_total", "extauthz_audit_drops_total", "extauthz_audit_drops_total is not exposed"},
		{"bad template", "{{ $labels.tenant }}/{{ $labels.provider }}: requests denied", "{{ $labels.tenant }/{{ $labels.provider }}: requests denied", "template"},
		{"alert removed", "alert: ExtauthzJWKSUnavailable", "alert: ExtauthzJWKSGone", "want"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(data), tt.old) {
				t.Fatalf("%s no longer contains %q", alertsFile, tt.old)
			}
			mutated := strings.Replace(string(data), tt.old, tt.new, 1)
			problems := strings.Join(checkAlerts(t, []byte(mutated), exposed), "\n")
			if !strings.Contains(problems, tt.want) {
				t.Errorf("problems %q, want one containing %q", problems, tt.want)
			}
		})
	}
	// The file is YAML a plain decoder reads too (the Prometheus Operator's
	// PrometheusRule takes the same groups).
	var doc struct {
		Groups []yaml.Node `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Groups) == 0 {
		t.Errorf("plain YAML decode: %v, %d groups", err, len(doc.Groups))
	}
}
