package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/extauthz/extauthz/internal/tenants"
)

const (
	kubeDir        = "deploy/kubernetes"
	istioDir       = "deploy/istio"
	meshConfigFile = "deploy/istio/mesh-config.yaml"
	healthzPath    = "/healthz"
	readyzPath     = "/readyz"
)

// kustomization is the part of kustomize's Kustomization this repository uses.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
}

// istioObject is an Istio custom resource: Kubernetes metadata around a spec
// that is one of istio.io/api's protos.
type istioObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              json.RawMessage `json:"spec"`
}

type authzPolicy struct {
	meta metav1.ObjectMeta
	spec *securityv1beta1.AuthorizationPolicy
}

// manifests are the decoded objects of deploy/kubernetes and deploy/istio.
type manifests struct {
	deployments   []*appsv1.Deployment
	services      []*corev1.Service
	configMaps    []*corev1.ConfigMap
	pdbs          []*policyv1.PodDisruptionBudget
	netpols       []*networkingv1.NetworkPolicy
	namespaces    []*corev1.Namespace
	kustomization *kustomization
	files         []string // the manifest files read, repository-relative
	policies      []authzPolicy
	mesh          *meshv1alpha1.MeshConfig
}

// loadManifests decodes every document of every YAML file in the
// Kubernetes and Istio directories strictly, into the real API types
// (k8s.io/api, istio.io/api): a misspelt or misplaced field is an error.
func loadManifests(r repo) (*manifests, error) {
	m := &manifests{}
	var errs []error
	for _, dir := range []string{kubeDir, istioDir} {
		files, err := r.yamlFiles(dir)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			errs = append(errs, fmt.Errorf("%s: no manifests", dir))
		}
		for _, f := range files {
			b, err := r.read(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if f == meshConfigFile {
				errs = append(errs, m.decodeMeshValues(f, b))
				continue
			}
			m.files = append(m.files, f)
			errs = append(errs, decodeDocuments(f, b, m.decode))
		}
	}
	return m, errors.Join(errs...)
}

func (m *manifests) decode(doc []byte) error { return decodeKind(doc, m.decoders()) }

// decoders maps each apiVersion/kind the manifests may hold to the decoder
// that adds a document of that kind to m.
func (m *manifests) decoders() map[string]func(doc []byte) error {
	return map[string]func(doc []byte) error{
		"v1/Namespace":                                  strictInto(&m.namespaces),
		"v1/ConfigMap":                                  strictInto(&m.configMaps),
		"v1/Service":                                    strictInto(&m.services),
		"apps/v1/Deployment":                            strictInto(&m.deployments),
		"policy/v1/PodDisruptionBudget":                 strictInto(&m.pdbs),
		"networking.k8s.io/v1/NetworkPolicy":            strictInto(&m.netpols),
		"kustomize.config.k8s.io/v1beta1/Kustomization": m.decodeKustomization,
		"security.istio.io/v1/AuthorizationPolicy":      m.decodeAuthzPolicy,
		"security.istio.io/v1beta1/AuthorizationPolicy": m.decodeAuthzPolicy,
	}
}

func (m *manifests) decodeKustomization(doc []byte) error {
	m.kustomization = &kustomization{}
	return yaml.UnmarshalStrict(doc, m.kustomization)
}

// decodeAuthzPolicy decodes an Istio AuthorizationPolicy: its metadata
// strictly, its spec into istio.io/api's proto.
func (m *manifests) decodeAuthzPolicy(doc []byte) error {
	var o istioObject
	if err := yaml.UnmarshalStrict(doc, &o); err != nil {
		return err
	}
	spec := &securityv1beta1.AuthorizationPolicy{}
	if err := protojson.Unmarshal(o.Spec, spec); err != nil {
		return fmt.Errorf("AuthorizationPolicy %s spec: %w", o.Name, err)
	}
	m.policies = append(m.policies, authzPolicy{meta: o.ObjectMeta, spec: spec})
	return nil
}

// decodeMeshValues reads the istiod Helm values file: meshConfig strictly
// into Istio's MeshConfig proto.
func (m *manifests) decodeMeshValues(file string, b []byte) error {
	var values struct {
		MeshConfig json.RawMessage `json:"meshConfig"`
	}
	if err := yaml.UnmarshalStrict(b, &values); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if len(values.MeshConfig) == 0 {
		return fmt.Errorf("%s: no meshConfig", file)
	}
	m.mesh = &meshv1alpha1.MeshConfig{}
	if err := protojson.Unmarshal(values.MeshConfig, m.mesh); err != nil {
		return fmt.Errorf("%s: meshConfig: %w", file, err)
	}
	return nil
}

// kubeDeployment is the extauthz Deployment with what its checks derive.
type kubeDeployment struct {
	dep       *appsv1.Deployment
	container *corev1.Container
	config    *tenants.Config
}

// checkKubernetes checks deploy/kubernetes: the Deployment serves the
// ConfigMap's config on the ports it declares, probes the admin listener,
// runs locked down, and the Service and PodDisruptionBudget select its pods.
func checkKubernetes(r repo, m *manifests) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	kd, err := m.kubeDeployment()
	if err != nil {
		return err
	}
	dep, c, cfg := kd.dep, kd.container, kd.config
	spec := dep.Spec.Template.Spec
	podLabels := labels.Set(dep.Spec.Template.Labels)

	if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		fail("Deployment %s: replicas must be at least 2", dep.Name)
	}
	if sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		fail("Deployment %s: spec.selector does not select its own pod template", dep.Name)
	}

	// Ports: one container port per listener of the config, and no other.
	ports := map[string]int32{}
	for _, l := range listeners(cfg, fail) {
		ports[l.key] = l.port
		if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == l.port }) {
			fail("container %s: no containerPort %d for %s %q", c.Name, l.port, l.key, l.addr)
		}
	}
	for _, cp := range c.Ports {
		if !slices.Contains(slices.Collect(maps.Values(ports)), cp.ContainerPort) {
			fail("container %s: containerPort %s/%d is no listener of the config", c.Name, cp.Name, cp.ContainerPort)
		}
	}

	// Probes: the admin listener's /healthz and /readyz.
	adminPort, ok := ports["listen.admin"]
	if !ok {
		fail("ConfigMap config: listen.admin is off, but the probes need /healthz and /readyz")
	}
	checkProbes(c, adminPort, fail)

	// Locked down: non-root, read-only root filesystem, no privilege
	// escalation, no capabilities, bounded resources.
	sc := c.SecurityContext
	nonRoot := (spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot)
	if sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	if !nonRoot {
		fail("container %s: runAsNonRoot must be true", c.Name)
	}
	checkContainerLockdown(c, fail)

	// Service: grpc and http ports reach the listeners; admin stays private.
	svc, err := one(m.services, "Service")
	if err != nil {
		fail("%v", err)
	} else {
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
			fail("Service %s: selector does not select the Deployment's pods", svc.Name)
		}
		for _, want := range []struct{ name, key string }{{"grpc", "listen.grpc"}, {"http", "listen.http"}} {
			lp, on := ports[want.key]
			sp := servicePort(svc, want.name)
			switch {
			case on && sp == nil:
				fail("Service %s: no port named %q for %s", svc.Name, want.name, want.key)
			case on && (sp.Port != lp || resolvePort(sp.TargetPort, c.Ports) != lp):
				fail("Service %s: port %q is %d → targetPort %s (container port %d), but %s is port %d",
					svc.Name, want.name, sp.Port, sp.TargetPort.String(), resolvePort(sp.TargetPort, c.Ports), want.key, lp)
			}
		}
		for _, sp := range svc.Spec.Ports {
			if adminPort != 0 && resolvePort(sp.TargetPort, c.Ports) == adminPort {
				fail("Service %s: port %q exposes the admin listener; it must stay private", svc.Name, sp.Name)
			}
		}
	}

	errs = append(errs, checkAdminAccess(kd, adminPort), checkNetworkPolicy(m, podLabels, c, ports))

	pdb, err := one(m.pdbs, "PodDisruptionBudget")
	if err != nil {
		fail("%v", err)
	} else {
		if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(podLabels) {
			fail("PodDisruptionBudget %s: selector does not select the Deployment's pods", pdb.Name)
		}
		if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
			fail("PodDisruptionBudget %s: set minAvailable or maxUnavailable", pdb.Name)
		}
		if mv := pdb.Spec.MinAvailable; mv != nil && mv.Type == intstr.Int && dep.Spec.Replicas != nil && mv.IntVal >= *dep.Spec.Replicas {
			fail("PodDisruptionBudget %s: minAvailable %d leaves no disruption for %d replicas", pdb.Name, mv.IntVal, *dep.Spec.Replicas)
		}
	}

	errs = append(errs, checkKustomization(r, m))
	return errors.Join(errs...)
}

// kubeDeployment is the only Deployment of the manifests with the config
// it runs.
func (m *manifests) kubeDeployment() (*kubeDeployment, error) {
	dep, err := one(m.deployments, "Deployment")
	if err != nil {
		return nil, err
	}
	return deploymentConfig(dep, m.configMaps)
}

// deploymentConfig finds the extauthz container, the file its -config flag
// names, the ConfigMap key mounted there, and parses that config.
func deploymentConfig(dep *appsv1.Deployment, cms []*corev1.ConfigMap) (*kubeDeployment, error) {
	spec := dep.Spec.Template.Spec
	if len(spec.Containers) == 0 {
		return nil, fmt.Errorf("Deployment %s: no containers", dep.Name)
	}
	c := &spec.Containers[0]
	argv := append(append([]string{}, c.Command...), c.Args...)
	i := slices.Index(argv, "-config")
	if i < 0 || i+1 >= len(argv) || !path.IsAbs(argv[i+1]) {
		return nil, fmt.Errorf("container %s: args must name the config with -config /absolute/path", c.Name)
	}
	file := argv[i+1]
	for _, vm := range c.VolumeMounts {
		if path.Dir(file) != path.Clean(vm.MountPath) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != vm.Name || v.ConfigMap == nil {
				continue
			}
			for _, cm := range cms {
				if cm.Name != v.ConfigMap.Name {
					continue
				}
				data, ok := cm.Data[path.Base(file)]
				if !ok {
					return nil, fmt.Errorf("ConfigMap %s has no key %q, the file -config %s names", cm.Name, path.Base(file), file)
				}
				cfg, err := loadConfig([]byte(data))
				if err != nil {
					return nil, fmt.Errorf("ConfigMap %s key %s: %w", cm.Name, path.Base(file), err)
				}
				return &kubeDeployment{dep: dep, container: c, config: cfg}, nil
			}
			return nil, fmt.Errorf("volume %s names ConfigMap %q, which is not in %s", v.Name, v.ConfigMap.Name, kubeDir)
		}
	}
	return nil, fmt.Errorf("container %s: -config %s is not in a volume mounted from a ConfigMap", c.Name, file)
}

func checkKustomization(r repo, m *manifests) error {
	k := m.kustomization
	if k == nil {
		return fmt.Errorf("%s: no kustomization.yaml", kubeDir)
	}
	var errs []error
	listed := map[string]bool{}
	for _, res := range k.Resources {
		rel := path.Join(kubeDir, res)
		listed[rel] = true
		if !r.exists(rel) {
			errs = append(errs, fmt.Errorf("%s/kustomization.yaml: resource %s does not exist", kubeDir, res))
		}
	}
	for _, f := range m.files {
		if strings.HasPrefix(f, kubeDir+"/") && path.Base(f) != "kustomization.yaml" && !listed[f] {
			errs = append(errs, fmt.Errorf("%s/kustomization.yaml: %s is not listed in resources", kubeDir, f))
		}
	}
	for _, ns := range namespacesOf(m) {
		if ns.where != "" && k.Namespace != "" && ns.ns != k.Namespace {
			errs = append(errs, fmt.Errorf("%s is in namespace %q, the kustomization's is %q", ns.where, ns.ns, k.Namespace))
		}
	}
	return errors.Join(errs...)
}

type placed struct{ where, ns string }

func namespacesOf(m *manifests) []placed {
	var out []placed
	for _, d := range m.deployments {
		out = append(out, placed{"Deployment " + d.Name, d.Namespace})
	}
	for _, s := range m.services {
		out = append(out, placed{"Service " + s.Name, s.Namespace})
	}
	for _, c := range m.configMaps {
		out = append(out, placed{"ConfigMap " + c.Name, c.Namespace})
	}
	for _, p := range m.pdbs {
		out = append(out, placed{"PodDisruptionBudget " + p.Name, p.Namespace})
	}
	for _, n := range m.namespaces {
		out = append(out, placed{"Namespace", n.Name})
	}
	return out
}

// checkIstio checks deploy/istio: the extension provider points at the
// Service's gRPC port, fails closed with 503, and every CUSTOM policy names it.
func checkIstio(m *manifests) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m.mesh == nil {
		return fmt.Errorf("%s: no meshConfig", meshConfigFile)
	}
	svc, err := one(m.services, "Service")
	if err != nil {
		return err
	}
	grpc := servicePort(svc, "grpc")
	providers := map[string]bool{}
	for _, p := range m.mesh.GetExtensionProviders() {
		g := p.GetEnvoyExtAuthzGrpc()
		if g == nil {
			continue
		}
		providers[p.GetName()] = true
		where := fmt.Sprintf("%s: extensionProviders %q", meshConfigFile, p.GetName())
		if want := fmt.Sprintf("%s.%s.svc.cluster.local", svc.Name, svc.Namespace); g.GetService() != want {
			fail("%s: service %q, want the Service's name %q", where, g.GetService(), want)
		}
		if grpc == nil || g.GetPort() != uint32(grpc.Port) {
			fail("%s: port %d is not the Service's grpc port", where, g.GetPort())
		}
		if g.GetFailOpen() {
			fail("%s: failOpen must be false: an unreachable extauthz must deny", where)
		}
		if g.GetStatusOnError() != "503" {
			fail("%s: statusOnError %q, want \"503\"", where, g.GetStatusOnError())
		}
		if g.GetTimeout() == nil {
			fail("%s: set a timeout", where)
		}
	}
	if len(providers) == 0 {
		fail("%s: no extensionProviders entry with envoyExtAuthzGrpc", meshConfigFile)
	}
	var custom int
	for _, p := range m.policies {
		if p.spec.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM {
			continue
		}
		custom++
		if name := p.spec.GetProvider().GetName(); !providers[name] {
			fail("AuthorizationPolicy %s: provider %q is not an envoyExtAuthzGrpc extension provider of %s", p.meta.Name, name, meshConfigFile)
		}
	}
	if custom == 0 {
		fail("%s: no AuthorizationPolicy with action CUSTOM", istioDir)
	}
	return errors.Join(errs...)
}

// checkAdminAccess: an admin listener a pod exposes has a token, read from
// a Secret volume, and the probes (which carry no token) are open.
func checkAdminAccess(kd *kubeDeployment, adminPort int32) error {
	cfg, c := kd.config, kd.container
	if adminPort == 0 {
		return nil
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	file := cfg.Admin.TokenFile
	if file == "" {
		return errors.New("ConfigMap config: admin.token_file is not set, but listen.admin is reachable in the pod")
	}
	if !cfg.Admin.OpenProbes {
		fail("ConfigMap config: admin.open_probes is false, so the kubelet's probes (no token) get 401")
	}
	spec := kd.dep.Spec.Template.Spec
	fromSecret := false
	for _, vm := range c.VolumeMounts {
		if path.Dir(file) != path.Clean(vm.MountPath) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.Secret != nil && v.Secret.SecretName != "" {
				fromSecret = true
			}
		}
	}
	if !fromSecret {
		fail("container %s: admin.token_file %s is not in a volume mounted from a Secret", c.Name, file)
	}
	return errors.Join(errs...)
}

// checkNetworkPolicy: one NetworkPolicy selects the pods for Ingress, lets
// clients reach the grpc and http ports, and admits the admin port only
// from named peers, never from everyone.
func checkNetworkPolicy(m *manifests, podLabels labels.Set, c *corev1.Container, ports map[string]int32) error {
	np, err := one(m.netpols, "NetworkPolicy")
	if err != nil {
		return err
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || sel.Empty() || !sel.Matches(podLabels) {
		fail("NetworkPolicy %s: podSelector does not select the Deployment's pods", np.Name)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		fail("NetworkPolicy %s: policyTypes must include Ingress", np.Name)
	}
	// admits reports whether rule r lets traffic reach container port p.
	admits := func(r networkingv1.NetworkPolicyIngressRule, p int32) bool {
		if len(r.Ports) == 0 {
			return true
		}
		for _, rp := range r.Ports {
			if rp.Port == nil || resolvePort(*rp.Port, c.Ports) == p {
				return true
			}
		}
		return false
	}
	for _, key := range []string{"listen.grpc", "listen.http"} {
		p, on := ports[key]
		if on && !slices.ContainsFunc(np.Spec.Ingress, func(r networkingv1.NetworkPolicyIngressRule) bool { return admits(r, p) }) {
			fail("NetworkPolicy %s: no rule admits %s (port %d): clients could not reach it", np.Name, key, p)
		}
	}
	if p, on := ports["listen.admin"]; on {
		for i, r := range np.Spec.Ingress {
			if !admits(r, p) {
				continue
			}
			if len(r.From) == 0 {
				fail("NetworkPolicy %s: ingress[%d] admits the admin port %d from everyone; name the scraper", np.Name, i, p)
			}
			for j, peer := range r.From {
				// A named scraper: pods chosen by label (in the namespaces
				// chosen), not an address range or a whole namespace.
				if peer.IPBlock != nil || peer.PodSelector == nil ||
					len(peer.PodSelector.MatchLabels)+len(peer.PodSelector.MatchExpressions) == 0 {
					fail("NetworkPolicy %s: ingress[%d].from[%d] admits the admin port %d from more than a named scraper", np.Name, i, j, p)
				}
			}
		}
	}
	return errors.Join(errs...)
}
