package deploy

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/extauthz/extauthz/internal/service"
	"github.com/extauthz/extauthz/internal/tenants"
)

const (
	chartDir          = "deploy/helm/extauthz"
	defaultAdminToken = "extauthz-admin" // values.yaml's secrets.adminToken.name
	releaseName       = "extauthz"
	releaseNS         = "auth"
	configFileFlag    = "-config"
)

// fileKeys are the config keys whose value is a file the chart mounts from
// a Secret: the test cannot read them outside the pod, so it checks instead
// that a Secret volume provides exactly that file.
var fileKeys = []string{"jwks.redis.url_file", "jwks.redis.hmac_key_file", "admin.token_file", "jwks.ca_file"}

// chartObjects are the decoded objects of one rendering of the chart.
type chartObjects struct {
	manifests
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	serviceMonitors []*monitoringv1.ServiceMonitor
}

// decode decodes one rendered document strictly into its API type: the
// kinds of the plain manifests, and those only the chart renders.
func (o *chartObjects) decode(doc []byte) error {
	decoders := o.manifests.decoders()
	decoders["autoscaling/v2/HorizontalPodAutoscaler"] = strictInto(&o.hpas)
	decoders["monitoring.coreos.com/v1/ServiceMonitor"] = strictInto(&o.serviceMonitors)
	return decodeKind(doc, decoders)
}

// loadChart loads the chart from the repository, with template overrides
// (file name under templates/ → new content) for the mutation tests.
func loadChart(t *testing.T, overrides map[string]string) *chartv2.Chart {
	t.Helper()
	ch, err := loader.LoadDir(filepath.Join(root, filepath.FromSlash(chartDir)))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	for name, content := range overrides {
		found := false
		for _, f := range ch.Templates {
			if f.Name == "templates/"+name {
				f.Data, found = []byte(content), true
			}
		}
		if !found {
			t.Fatalf("no template %s to override", name)
		}
	}
	return ch
}

// render renders the chart as `helm template` does, with values (YAML)
// over the chart's values.yaml, and decodes every object strictly.
func render(ch *chartv2.Chart, values string) (*chartObjects, error) {
	vals, err := common.ReadValues([]byte(values))
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	rv, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: releaseName, Namespace: releaseNS, IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	o := &chartObjects{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(out)) {
		if strings.HasSuffix(name, ".yaml") {
			errs = append(errs, decodeDocuments(name, []byte(out[name]), o.decode))
		}
	}
	return o, errors.Join(errs...)
}

// chartCheck is what a case of the chart test expects beyond the checks
// every rendering must pass.
type chartCheck struct {
	forwardAuth    bool
	autoscaling    bool
	serviceMonitor bool
	adminToken     string // Secret name, when set
	configMap      string // existing ConfigMap, when set
}

// checkChart runs every check on one rendering: the pods run the rendered
// config (which -check accepts) on the ports they declare, probes hit the
// admin listener, the Services, PDB, HPA, NetworkPolicy and ServiceMonitor
// select and name the right pods and ports, every secret file the config
// names is mounted.
func checkChart(t *testing.T, o *chartObjects, want chartCheck) error {
	t.Helper()
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	dep, err := one(o.deployments, "Deployment")
	if err != nil {
		return err
	}
	spec := dep.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return fmt.Errorf("Deployment %s: want one container, found %d", dep.Name, len(spec.Containers))
	}
	c := &spec.Containers[0]
	podLabels := labels.Set(dep.Spec.Template.Labels)
	if sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		fail("Deployment %s: spec.selector does not select its own pod template", dep.Name)
	}

	// Secret volumes: mounted file path → the Secret providing it.
	secretFiles := map[string]string{}
	for _, vm := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			if !vm.ReadOnly {
				fail("volume %s (Secret %s) must be mounted readOnly", v.Name, v.Secret.SecretName)
			}
			for _, it := range v.Secret.Items {
				secretFiles[path.Join(vm.MountPath, it.Path)] = v.Secret.SecretName
			}
		}
	}

	// The config: the file -config names, in a ConfigMap volume.
	argv := append(append([]string{}, c.Command...), c.Args...)
	file := flag(argv, configFileFlag)
	var cmName string
	for _, vm := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil && path.Dir(file) == path.Clean(vm.MountPath) {
				cmName = v.ConfigMap.Name
			}
		}
	}
	if cmName == "" {
		return fmt.Errorf("container %s: -config %q is not in a volume mounted from a ConfigMap", c.Name, file)
	}
	if want.configMap != "" {
		if cmName != want.configMap {
			fail("config volume names ConfigMap %q, want the existing %q", cmName, want.configMap)
		}
		if len(o.configMaps) != 0 {
			fail("existingConfigMap is set, but the chart renders %d ConfigMaps", len(o.configMaps))
		}
		return errors.Join(errs...) // the config is the user's: nothing more to check here
	}
	cm, err := one(o.configMaps, "ConfigMap")
	if err != nil {
		return err
	}
	if cm.Name != cmName {
		return fmt.Errorf("config volume names ConfigMap %q, the chart renders %q", cmName, cm.Name)
	}
	data, ok := cm.Data[path.Base(file)]
	if !ok {
		return fmt.Errorf("ConfigMap %s has no key %q, the file -config %s names", cm.Name, path.Base(file), file)
	}
	cfg, err := checkRenderedConfig(t, []byte(data), secretFiles)
	if err != nil {
		return fmt.Errorf("ConfigMap %s: %w", cm.Name, err)
	}
	if got := dep.Spec.Template.Annotations["checksum/config"]; got == "" {
		fail("pod template has no checksum/config annotation: a config change would not roll the pods")
	}

	// Ports: one named container port per listener, and no other.
	ports := map[string]int32{}
	for _, l := range listeners(cfg, fail) {
		ports[l.name] = l.port
		if resolvePort(intstr.FromString(l.name), c.Ports) != l.port {
			fail("container %s: no containerPort %q = %d for %s %q", c.Name, l.name, l.port, l.key, l.addr)
		}
	}
	if _, on := ports["http"]; on != want.forwardAuth {
		fail("listen.http on = %v, want %v", on, want.forwardAuth)
	}
	for _, cp := range c.Ports {
		if ports[cp.Name] != cp.ContainerPort {
			fail("container %s: containerPort %s/%d is no listener of the config", c.Name, cp.Name, cp.ContainerPort)
		}
	}

	// Probes: /healthz and /readyz of the admin listener.
	checkProbes(c, ports["admin"], fail)

	// The kubelet's probes carry no token: with one, the probes stay open.
	if cfg.Admin.TokenFile != "" && !cfg.Admin.OpenProbes {
		fail("config admin.token_file is set but admin.open_probes is not: the kubelet's probes, which carry no token, would fail")
	}
	if cfg.Admin.TokenFile == "" {
		fail("config has no admin.token_file: the admin listener binds 0.0.0.0 in a pod")
	}

	// GOMEMLIMIT, when set, below the memory limit.
	for _, e := range c.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		q, err := resource.ParseQuantity(strings.TrimSuffix(e.Value, "B"))
		limit, hasLimit := c.Resources.Limits[corev1.ResourceMemory]
		switch {
		case err != nil:
			fail("container %s: GOMEMLIMIT %q: %v", c.Name, e.Value, err)
		case hasLimit && q.Cmp(limit) >= 0:
			fail("container %s: GOMEMLIMIT %s is not below limits.memory %s: the collector would never get ahead of the OOM killer", c.Name, e.Value, limit.String())
		}
	}

	// Locked down.
	if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		fail("pod: securityContext.runAsNonRoot must be true")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		fail("pod: automountServiceAccountToken must be false: extauthz never calls the Kubernetes API")
	}
	checkContainerLockdown(c, fail)

	// Services: one for clients (gRPC, forward-auth), the admin port only
	// in the admin Service.
	var client, admin []*corev1.Service
	for _, s := range o.services {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			fail("Service %s: selector does not select the Deployment's pods", s.Name)
		}
		if slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return resolvePort(sp.TargetPort, c.Ports) == ports["admin"] }) {
			admin = append(admin, s)
		} else {
			client = append(client, s)
		}
	}
	if svc, err := one(client, "client Service (without the admin port)"); err != nil {
		fail("%v", err)
	} else {
		for _, name := range []string{"grpc", "http"} {
			lp, on := ports[name]
			sp := servicePort(svc, name)
			switch {
			case on && sp == nil:
				fail("Service %s: no port %q", svc.Name, name)
			case !on && sp != nil:
				fail("Service %s: port %q, but that listener is off", svc.Name, name)
			case on && (sp.Port != lp || resolvePort(sp.TargetPort, c.Ports) != lp):
				fail("Service %s: port %q is %d → %s, but the listener is port %d", svc.Name, name, sp.Port, sp.TargetPort.String(), lp)
			}
		}
	}
	for _, s := range admin {
		if len(s.Spec.Ports) != 1 {
			fail("Service %s: exposes the admin listener beside other ports: keep the admin Service to the admin port", s.Name)
		}
		if s.Spec.Type != "" && s.Spec.Type != corev1.ServiceTypeClusterIP {
			fail("Service %s: the admin listener must stay in the cluster (type ClusterIP, found %s)", s.Name, s.Spec.Type)
		}
	}

	// PodDisruptionBudget: selects the pods and leaves room for a drain.
	replicas := int32(0)
	if dep.Spec.Replicas != nil {
		replicas = *dep.Spec.Replicas
	}
	if pdb, err := one(o.pdbs, "PodDisruptionBudget"); err != nil {
		fail("%v", err)
	} else if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(podLabels) {
		fail("PodDisruptionBudget %s: selector does not select the Deployment's pods", pdb.Name)
	} else if mv := pdb.Spec.MinAvailable; mv != nil && mv.Type == intstr.Int && replicas > 0 && mv.IntVal >= replicas {
		fail("PodDisruptionBudget %s: minAvailable %d leaves no disruption for %d replicas", pdb.Name, mv.IntVal, replicas)
	}

	// HorizontalPodAutoscaler: off by default; when on it owns replicas.
	switch {
	case !want.autoscaling && len(o.hpas) != 0:
		fail("autoscaling is off, but the chart renders %d HorizontalPodAutoscalers", len(o.hpas))
	case want.autoscaling:
		hpa, err := one(o.hpas, "HorizontalPodAutoscaler")
		if err != nil {
			fail("%v", err)
			break
		}
		if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != dep.Name {
			fail("HorizontalPodAutoscaler %s scales %s %s, not Deployment %s", hpa.Name, ref.Kind, ref.Name, dep.Name)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
			fail("HorizontalPodAutoscaler %s: minReplicas must be at least 2", hpa.Name)
		}
		if dep.Spec.Replicas != nil {
			fail("Deployment %s sets replicas while an HPA scales it: every upgrade would reset the scale", dep.Name)
		}
	}
	if !want.autoscaling && replicas < 2 {
		fail("Deployment %s: replicas must be at least 2", dep.Name)
	}

	errs = append(errs, checkChartNetworkPolicy(o, podLabels, c.Ports, ports))
	errs = append(errs, checkServiceMonitor(o, admin, want))
	return errors.Join(errs...)
}

// checkChartNetworkPolicy: one policy selects the pods, every listener's port is
// open to someone, and the admin port only to named peers.
func checkChartNetworkPolicy(o *chartObjects, podLabels labels.Set, cports []corev1.ContainerPort, ports map[string]int32) error {
	np, err := one(o.netpols, "NetworkPolicy")
	if err != nil {
		return err
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("NetworkPolicy %s: "+format, append([]any{np.Name}, args...)...))
	}
	if sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || sel.Empty() || !sel.Matches(podLabels) {
		fail("podSelector does not select the Deployment's pods")
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		fail("policyTypes must contain Ingress")
	}
	open := map[int32]bool{}
	for i, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 {
			fail("ingress[%d] names no ports: it opens every port, the admin port included", i)
		}
		for _, p := range rule.Ports {
			if p.Port == nil {
				fail("ingress[%d]: a port without a number or name opens every port", i)
				continue
			}
			n := resolvePort(*p.Port, cports)
			open[n] = true
			if n == ports["admin"] && len(rule.From) == 0 {
				fail("ingress[%d] opens the admin port to every source: name the scrapers in from", i)
			}
		}
	}
	for name, p := range ports {
		if !open[p] {
			fail("no ingress rule opens port %s (%d)", name, p)
		}
	}
	return errors.Join(errs...)
}

// checkServiceMonitor: when on, it scrapes /metrics of the admin Service,
// with the admin token when the admin API has one.
func checkServiceMonitor(o *chartObjects, admin []*corev1.Service, want chartCheck) error {
	if !want.serviceMonitor {
		if len(o.serviceMonitors) != 0 {
			return fmt.Errorf("serviceMonitor is off, but the chart renders %d ServiceMonitors", len(o.serviceMonitors))
		}
		return nil
	}
	sm, err := one(o.serviceMonitors, "ServiceMonitor")
	if err != nil {
		return err
	}
	svc, err := one(admin, "admin Service for the ServiceMonitor")
	if err != nil {
		return err
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("ServiceMonitor %s: "+format, append([]any{sm.Name}, args...)...))
	}
	if sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(labels.Set(svc.Labels)) {
		fail("selector does not select the admin Service %s", svc.Name)
	}
	for _, s := range o.services {
		if s != svc {
			if sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector); err == nil && sel.Matches(labels.Set(s.Labels)) {
				fail("selector also selects Service %s", s.Name)
			}
		}
	}
	if len(sm.Spec.Endpoints) != 1 {
		fail("want one endpoint, found %d", len(sm.Spec.Endpoints))
		return errors.Join(errs...)
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Port == "" || servicePort(svc, ep.Port) == nil || ep.Path != "/metrics" {
		fail("endpoint must be port %q path /metrics", "admin")
	}
	switch auth := ep.Authorization; {
	case want.adminToken == "" && auth != nil:
		fail("sends a token, but the admin API has none")
	case want.adminToken != "" && (auth == nil || auth.Credentials == nil || auth.Credentials.Name != want.adminToken):
		fail("the admin API needs the token of Secret %s, but the scrape does not send it", want.adminToken)
	}
	return errors.Join(errs...)
}

// checkRenderedConfig validates the rendered config file as the binary's
// `-check` does (service.CheckConfig is what -check runs). The files the
// config names (fileKeys) exist only in the pod: a problem with one is
// forgiven only when a Secret volume mounts that very path.
func checkRenderedConfig(t *testing.T, data []byte, secretFiles map[string]string) (*tenants.Config, error) {
	t.Helper()
	named := map[string]string{} // file key → path, as the config names them
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	for _, k := range fileKeys {
		if v, ok := lookup(raw, k).(string); ok && v != "" {
			named[k] = v
			if _, mounted := secretFiles[v]; !mounted && k != "jwks.ca_file" {
				return nil, fmt.Errorf("%s %q: no Secret volume mounts that file", k, v)
			}
		}
	}
	cfg, err := tenants.Parse(data)
	if err != nil {
		return nil, err
	}
	f := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		return nil, err
	}
	err = service.CheckConfig(f)
	var ce *service.ConfigError
	if err != nil && !errors.As(err, &ce) {
		return nil, err
	}
	var kept []error
	if ce != nil {
		for _, e := range tenants.Problems(ce.Err) {
			var pe *tenants.PathError
			if errors.As(e, &pe) && named[pe.Path] != "" {
				continue // a file that exists only in the pod, mounted from a Secret (checked above)
			}
			kept = append(kept, e)
		}
	}
	if err := errors.Join(kept...); err != nil {
		return nil, fmt.Errorf("extauthz -check refuses the rendered config:\n%w", err)
	}
	return cfg, nil
}

// lookup returns the value at a dotted path of a decoded YAML document.
func lookup(m map[string]any, dotted string) any {
	var cur any = m
	for _, k := range strings.Split(dotted, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

// The values of the representative cases.
const (
	valuesForwardAuthOffHPA = `
forwardAuth: {enabled: false}
autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 10}
serviceMonitor: {enabled: true}
ports: {grpc: 10001, admin: 10003}
`
	valuesSecrets = `
secrets:
  redisURL: {name: extauthz-redis, key: url}
  redisHMACKey: {name: extauthz-redis-hmac, key: keys}
  adminToken: {name: extauthz-admin, key: token}
serviceMonitor: {enabled: true}
config:
  log: {level: warn, format: json}
  jwks: {require_https: true, stale_while_error: 5m}
  tenants:
    - id: acme
      hosts: [api.acme.example]
      providers:
        - {id: main, issuer: "https://login.acme.example/", jwks_url: "https://login.acme.example/jwks", audiences: [orders]}
    - id: globex
      hosts: [api.globex.example]
      providers:
        - {id: main, issuer: "https://globex.example/", jwks_url: "https://globex.example/keys", algorithms: [ES256]}
`
	valuesExistingConfigMap = `
existingConfigMap: my-extauthz-config
`
)

func TestChart_RendersObjectsThatPassTheChecks(t *testing.T) {
	tests := []struct {
		name, values string
		want         chartCheck
	}{
		{"default values", "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}},
		{"forward-auth off, autoscaling, ServiceMonitor, other ports", valuesForwardAuthOffHPA, chartCheck{autoscaling: true, serviceMonitor: true, adminToken: defaultAdminToken}},
		{"Redis and admin token from Secrets", valuesSecrets, chartCheck{forwardAuth: true, serviceMonitor: true, adminToken: "extauthz-admin"}},
		{"existing ConfigMap", valuesExistingConfigMap, chartCheck{forwardAuth: true, configMap: "my-extauthz-config", adminToken: defaultAdminToken}},
	}
	ch := loadChart(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := render(ch, tt.values)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if err := checkChart(t, o, tt.want); err != nil {
				t.Fatalf("rendered chart does not pass the checks:\n%v", err)
			}
		})
	}
}

// TestChart_SecretsAreMountedAndNamed checks the secret wiring end to end:
// each referenced Secret is a read-only volume, and the config names the
// mounted file under the key the binary reads.
func TestChart_SecretsAreMountedAndNamed(t *testing.T) {
	o, err := render(loadChart(t, nil), valuesSecrets)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := one(o.configMaps, "ConfigMap")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &raw); err != nil {
		t.Fatal(err)
	}
	dep := o.deployments[0]
	mounted := map[string]string{} // file → Secret
	for _, vm := range dep.Spec.Template.Spec.Containers[0].VolumeMounts {
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.Secret != nil {
				for _, it := range v.Secret.Items {
					mounted[path.Join(vm.MountPath, it.Path)] = v.Secret.SecretName + "/" + it.Key
				}
			}
		}
	}
	for key, secret := range map[string]string{
		"jwks.redis.url_file":      "extauthz-redis/url",
		"jwks.redis.hmac_key_file": "extauthz-redis-hmac/keys",
		"admin.token_file":         "extauthz-admin/token",
	} {
		file, _ := lookup(raw, key).(string)
		if got := mounted[file]; got != secret {
			t.Errorf("config %s = %q, mounted from %q, want Secret %s", key, file, got, secret)
		}
	}
	for _, s := range []string{"extauthz-redis", "extauthz-redis-hmac", "extauthz-admin"} {
		if strings.Contains(cm.Data["config.yaml"], s) {
			t.Errorf("the config names Secret %s: secrets go by file, never by value or name", s)
		}
	}
}

// TestChart_RefusesBadValues: values that would deploy something broken or
// open fail at render time with a message naming the value.
func TestChart_RefusesBadValues(t *testing.T) {
	tests := []struct{ name, values, wantErr string }{
		{"listen set by hand", "config: {listen: {grpc: '127.0.0.1:9191'}}", "config.listen is set by the chart"},
		{"Redis without snapshot keys", "secrets: {redisURL: {name: r, key: url}}", "secrets.redisURL needs secrets.redisHMACKey"},
		{"admin port open to all", "networkPolicy: {scrapers: []}", "networkPolicy.scrapers"},
		{"ServiceMonitor without admin Service", "serviceMonitor: {enabled: true}\nadminService: {enabled: false}", "serviceMonitor needs adminService.enabled"},
		{"misspelt value", "replicaCounts: 3", "replicaCounts"},
		{"one replica", "replicaCount: 1", "replicaCount"},
		{"port out of range", "ports: {grpc: 70000}", "grpc"},
		{"secret without key", "secrets: {adminToken: {name: a, key: ''}}", "key"},
		{"no admin token", "secrets: {adminToken: {name: '', key: token}}", "secrets.adminToken.name is required"},
		{"GOMEMLIMIT without a unit we know", "goMemLimit: 200M", "goMemLimit"},
	}
	ch := loadChart(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := render(ch, tt.values)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("render = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// TestChart_MutationsFail proves the checks can fail: each case breaks one
// template in one way, and the checks must refuse it for that reason.
func TestChart_MutationsFail(t *testing.T) {
	tests := []struct {
		name, file, old, new, values string
		want                         chartCheck
		wantErr                      string
	}{
		{"typo in a field", "deployment.yaml", "readinessProbe:", "readinesProbe:", "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, `unknown field "readinesProbe"`},
		{"readiness path", "deployment.yaml", "path: /readyz", "path: /ready", "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, `"/readyz"`},
		{"probe on the gRPC port", "deployment.yaml", "path: /healthz\n              port: admin", "path: /healthz\n              port: grpc", "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "livenessProbe port grpc"},
		{"container port not a listener", "deployment.yaml", "containerPort: {{ .Values.ports.admin }}", "containerPort: 9999", "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "admin"},
		{"listener on loopback", "_helpers.tpl", `"admin" (printf "0.0.0.0:%d"`, `"admin" (printf "127.0.0.1:%d"`, "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "bind 0.0.0.0"},
		{"config key the binary does not know", "_helpers.tpl", `set $cfg "listen"`, `set $cfg "listens"`, "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "listens"},
		{"root allowed", "deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "readOnlyRootFilesystem"},
		{"capabilities kept", "deployment.yaml", `drop: ["ALL"]`, `drop: ["NET_RAW"]`, "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "capabilities.drop"},
		{"no memory limit", "values", "", "", "resources: {limits: null}", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "limits.memory"},
		{"admin port in the client Service", "service.yaml", "    - name: grpc ", "    - name: admin\n      port: 9193\n      targetPort: admin\n    - name: grpc ", "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "client Service"},
		{"admin Service exposed", "service-admin.yaml", "type: ClusterIP", "type: LoadBalancer", "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "ClusterIP"},
		{"forward-auth port missing from the Service", "service.yaml", "- name: http\n", "- name: web\n", "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, `no port "http"`},
		{"pdb blocks every disruption", "values", "", "", "podDisruptionBudget: {minAvailable: 2}", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "leaves no disruption"},
		{"HPA fights the Deployment", "deployment.yaml", "{{- if not .Values.autoscaling.enabled }}\n  replicas:", "{{- if true }}\n  replicas:", valuesForwardAuthOffHPA, chartCheck{autoscaling: true, serviceMonitor: true, adminToken: defaultAdminToken}, "sets replicas while an HPA"},
		{"network policy opens every port", "networkpolicy.yaml", "  ingress:\n    - ports:", "  ingress:\n    - from: [{podSelector: {}}]\n    - ports:", "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "opens every port"},
		{"network policy opens admin to all", "networkpolicy.yaml", "        - port: grpc\n", "        - port: admin\n        - port: grpc\n", "networkPolicy: {clients: []}", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "admin port to every source"},
		{"ServiceMonitor without the token", "servicemonitor.yaml", "authorization:", "authorizationx:", "serviceMonitor: {enabled: true}", chartCheck{forwardAuth: true, serviceMonitor: true, adminToken: "extauthz-admin"}, "authorizationx"},
		{"ServiceMonitor token dropped", "servicemonitor.yaml", "{{- if .name }}", "{{- if false }}", "serviceMonitor: {enabled: true}", chartCheck{forwardAuth: true, serviceMonitor: true, adminToken: "extauthz-admin"}, "does not send it"},
		{"secret mounted elsewhere", "deployment.yaml", "mountPath: {{ include \"extauthz.secretDir\" $name }}", "mountPath: /secrets/{{ $name }}", valuesSecrets, chartCheck{forwardAuth: true, serviceMonitor: true, adminToken: "extauthz-admin"}, "no Secret volume mounts that file"},
		{"config not rolled", "deployment.yaml", "checksum/config:", "config-checksum:", "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "checksum/config"},
		{"probes closed by the token", "_helpers.tpl", `{{- $_ := set $admin "open_probes" true -}}`, "", "", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "admin.open_probes"},
		{"GOMEMLIMIT above the limit", "values", "", "", "goMemLimit: 300MiB", chartCheck{forwardAuth: true, adminToken: defaultAdminToken}, "GOMEMLIMIT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var overrides map[string]string
			if tt.file != "values" {
				b, err := os.ReadFile(filepath.Join(root, chartDir, "templates", tt.file))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), tt.old) {
					t.Fatalf("mutation does not apply: %q not found in %s", tt.old, tt.file)
				}
				overrides = map[string]string{tt.file: strings.ReplaceAll(string(b), tt.old, tt.new)}
			}
			o, err := render(loadChart(t, overrides), tt.values)
			if err == nil {
				err = checkChart(t, o, tt.want)
			}
			if err == nil {
				t.Fatalf("checks accepted %s with %q replaced by %q", tt.file, tt.old, tt.new)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error does not mention %q:\n%v", tt.wantErr, err)
			}
		})
	}
}
