package deploy

import (
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/extauthz/extauthz/internal/tenants"
)

// The helpers below serve both the plain manifests (kube_test.go) and the
// Helm chart's renderings (helm_test.go): the same decoding, the same
// look-ups and the same container checks.

// decodeDocuments splits one YAML file into its documents and decodes each
// with decode, naming the file and the document in every error.
func decodeDocuments(name string, b []byte, decode func(doc []byte) error) error {
	docs, err := splitDocuments(b)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	for i, doc := range docs {
		if err := decode(doc); err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", name, i, err))
		}
	}
	return errors.Join(errs...)
}

// decodeKind decodes doc with the decoder for its apiVersion/kind.
func decodeKind(doc []byte, decoders map[string]func(doc []byte) error) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	gvk := tm.APIVersion + "/" + tm.Kind
	decode, ok := decoders[gvk]
	if !ok {
		return fmt.Errorf("unexpected kind %q: teach deploy_test to check it", gvk)
	}
	return decode(doc)
}

// strictInto returns a decoder that decodes a document strictly (a
// misspelt or misplaced field is an error) into a new T appended to list.
func strictInto[T any](list *[]*T) func(doc []byte) error {
	return func(doc []byte) error {
		o := new(T)
		*list = append(*list, o)
		return yaml.UnmarshalStrict(doc, o)
	}
}

// listener is one listener the config turns on.
type listener struct {
	name string // grpc, http or admin: what the manifests name its port
	key  string // its config key
	addr string
	port int32
}

// listeners returns the listeners the config turns on, and reports those
// whose address does not parse or that nothing outside the pod could reach.
func listeners(cfg *tenants.Config, fail func(format string, args ...any)) []listener {
	var on []listener
	for _, l := range []listener{{name: "grpc", addr: cfg.Listen.GRPC}, {name: "http", addr: cfg.Listen.HTTP}, {name: "admin", addr: cfg.Listen.Admin}} {
		l.key = "listen." + l.name
		p, off, err := listenPort(l.addr)
		if err != nil {
			fail("config %s %q: %v", l.key, l.addr, err)
			continue
		}
		if off {
			continue
		}
		l.port = p
		if !reachableFromOutside(l.addr) {
			fail("config %s %q: bind 0.0.0.0 in a pod, or probes and the Service cannot reach it", l.key, l.addr)
		}
		on = append(on, l)
	}
	return on
}

// one returns the only element of s, or an error naming what is missing.
func one[T any](s []T, what string) (T, error) {
	var zero T
	if len(s) != 1 {
		return zero, fmt.Errorf("want exactly one %s, found %d", what, len(s))
	}
	return s[0], nil
}

func servicePort(svc *corev1.Service, name string) *corev1.ServicePort {
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Name == name {
			return &svc.Spec.Ports[i]
		}
	}
	return nil
}

// resolvePort turns a numeric or named port into a container port number
// (0 when a name matches no container port).
func resolvePort(p intstr.IntOrString, ports []corev1.ContainerPort) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

// checkProbes: the liveness and readiness probes are httpGets on the admin
// listener's /healthz and /readyz.
func checkProbes(c *corev1.Container, adminPort int32, fail func(format string, args ...any)) {
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"livenessProbe", c.LivenessProbe, healthzPath}, {"readinessProbe", c.ReadinessProbe, readyzPath}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			fail("container %s: %s must be an httpGet on %s", c.Name, p.name, p.path)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			fail("container %s: %s path %q, want %q", c.Name, p.name, p.probe.HTTPGet.Path, p.path)
		}
		if got := resolvePort(p.probe.HTTPGet.Port, c.Ports); got != adminPort {
			fail("container %s: %s port %s resolves to %d, but listen.admin is port %d", c.Name, p.name, p.probe.HTTPGet.Port.String(), got, adminPort)
		}
	}
}

// checkContainerLockdown: a read-only root filesystem, no privilege
// escalation, no capabilities, and bounded resources. (Who must be
// non-root, the pod or the container, differs between the two and is
// checked by each.)
func checkContainerLockdown(c *corev1.Container, fail func(format string, args ...any)) {
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		fail("container %s: securityContext.readOnlyRootFilesystem must be true", c.Name)
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		fail("container %s: securityContext.allowPrivilegeEscalation must be false", c.Name)
	}
	if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		fail("container %s: securityContext.capabilities.drop must contain ALL", c.Name)
	}
	for _, res := range []struct {
		list corev1.ResourceList
		name corev1.ResourceName
		what string
	}{
		{c.Resources.Requests, corev1.ResourceCPU, "requests.cpu"},
		{c.Resources.Requests, corev1.ResourceMemory, "requests.memory"},
		{c.Resources.Limits, corev1.ResourceMemory, "limits.memory"},
	} {
		if q, ok := res.list[res.name]; !ok || q.IsZero() {
			fail("container %s: resources.%s must be set", c.Name, res.what)
		}
	}
}
