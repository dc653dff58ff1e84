package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/tenants"
)

const root = ".."

// checkAll runs every check on the deployment material of r.
func checkAll(r repo) error {
	m, err := loadManifests(r)
	if err != nil {
		return err
	}
	var errs []error
	errs = append(errs, checkKubernetes(r, m), checkIstio(m), checkIstioRoutes(m))

	configs := map[string]*tenants.Config{}
	demo, err := checkCompose(r)
	errs = append(errs, err)
	if demo != nil && demo.config != nil {
		configs["deploy/compose/extauthz.yaml"] = demo.config
	}
	if kd, err := m.kubeDeployment(); err == nil {
		configs["the ConfigMap's config"] = kd.config
	}
	if len(configs) < 2 {
		errs = append(errs, fmt.Errorf("the Dockerfile checks need both configs, found %d", len(configs)))
	}
	errs = append(errs, checkDockerfile(r, configs))
	return errors.Join(errs...)
}

func TestDeploy_MaterialMatchesBinary(t *testing.T) {
	if err := checkAll(repo{root: root}); err != nil {
		t.Fatalf("deployment material does not pass the checks:\n%v", err)
	}
}

// TestDeploy_MutationsFail proves each kind of check can fail: every case
// breaks one file in one way, and the checks must refuse it for that reason.
func TestDeploy_MutationsFail(t *testing.T) {
	const (
		dep   = "deploy/kubernetes/deployment.yaml"
		cm    = "deploy/kubernetes/configmap.yaml"
		svc   = "deploy/kubernetes/service.yaml"
		pdb   = "deploy/kubernetes/pdb.yaml"
		kust  = "deploy/kubernetes/kustomization.yaml"
		np    = "deploy/kubernetes/networkpolicy.yaml"
		mesh  = "deploy/istio/mesh-config.yaml"
		pol   = "deploy/istio/authorization-policy.yaml"
		cmp   = composeFileName
		dfile = dockerfileName
		excfg = "deploy/compose/extauthz.yaml"
	)
	tests := []struct {
		name, file, old, new string
		wantErr              string
	}{
		// Every manifest parses, strictly, into the real API types.
		{"manifest field typo", dep, "readinessProbe:", "readinesProbe:", `unknown field "readinesProbe"`},
		{"manifest bad quantity", dep, "memory: 256Mi", "memory: lots", "quantities must match"},
		{"manifest unknown kind", pdb, "kind: PodDisruptionBudget", "kind: PodDisruptionBudgett", "unexpected kind"},
		{"manifest not YAML", svc, "  type: ClusterIP", "  type: [ClusterIP", "yaml"},
		{"Istio field typo", pol, "action: CUSTOM", "acton: CUSTOM", "acton"},
		{"Istio enum typo", pol, "action: CUSTOM", "action: CUSTOMER", "CUSTOMER"},
		{"mesh config field typo", mesh, "failOpen: false", "failOpn: false", "failOpn"},
		{"compose key typo", cmp, "    depends_on:\n      demo-idp:", "    depends_onn:\n      demo-idp:", "depends_onn"},
		// The config the binary reads parses with tenants.Parse and validates.
		{"ConfigMap config unknown key", cm, "    log:\n", "    logs:\n", "logs"},
		{"ConfigMap config invalid value", cm, "jwks_url: https://login", "jwks_url: http://login", "jwks_url"},
		{"compose config unknown key", excfg, "claims_to_headers:", "claims_to_header:", "claims_to_header"},
		// Ports, probe paths and config keys agree with the binary.
		{"container port not a listener", dep, "containerPort: 9192", "containerPort: 9194", "9194"},
		{"listener without container port", cm, "http: 0.0.0.0:9192", "http: 0.0.0.0:9195", "9195"},
		{"listener on loopback in a pod", cm, "grpc: 0.0.0.0:9191", "grpc: 127.0.0.1:9191", "bind 0.0.0.0"},
		{"liveness path", dep, "path: /healthz", "path: /health", `"/healthz"`},
		{"readiness path", dep, "path: /readyz", "path: /ready", `"/readyz"`},
		{"probe on another port", dep, "path: /readyz\n              port: 9193", "path: /readyz\n              port: 9191", "listen.admin is port 9193"},
		{"config file not mounted", dep, "mountPath: /etc/extauthz", "mountPath: /etc/config", "not in a volume mounted from a ConfigMap"},
		{"config key missing", dep, `"-config", "/etc/extauthz/config.yaml"`, `"-config", "/etc/extauthz/extauthz.yaml"`, `no key "extauthz.yaml"`},
		// Locked down.
		{"root allowed", dep, "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot"},
		{"writable root filesystem", dep, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"privilege escalation", dep, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"},
		{"capabilities kept", dep, `drop: ["ALL"]`, `drop: ["NET_RAW"]`, "capabilities.drop"},
		{"no memory limit", dep, "limits:\n              memory: 256Mi", "limits: {}", "limits.memory"},
		{"one replica", dep, "replicas: 2", "replicas: 1", "replicas"},
		// Service, PDB, kustomization.
		{"service grpc port differs", svc, "port: 9191", "port: 9000", `port "grpc"`},
		{"service exposes admin", svc, "      appProtocol: http\n", "      appProtocol: http\n    - name: admin\n      port: 9193\n      targetPort: admin\n", "admin listener"},
		{"service selects nothing", svc, "  selector:\n    app.kubernetes.io/name: extauthz", "  selector:\n    app.kubernetes.io/name: other", "does not select"},
		{"pdb blocks every disruption", pdb, "minAvailable: 1", "minAvailable: 2", "leaves no disruption"},
		{"kustomization lists a missing file", kust, "  - pdb.yaml", "  - pdb.yaml\n  - hpa.yaml", "hpa.yaml does not exist"},
		{"kustomization misses a file", kust, "  - pdb.yaml\n", "", "pdb.yaml is not listed"},
		// The admin API: a token from a Secret, probes open, the port closed to all but the scraper.
		{"admin token removed", cm, "      token_file: /etc/extauthz-admin/token\n", "", "not a loopback address"},
		{"admin token not from a Secret", dep, "mountPath: /etc/extauthz-admin", "mountPath: /etc/extauthz-token", "not in a volume mounted from a Secret"},
		{"admin probes need the token", cm, "open_probes: true", "open_probes: false", "get 401"},
		{"network policy missing", kust, "  - networkpolicy.yaml\n", "", "networkpolicy.yaml is not listed"},
		{"network policy typo", np, "policyTypes: [Ingress]", "policyType: [Ingress]", `unknown field "policyType"`},
		{"network policy admits admin from all", np, "    - from:\n        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: monitoring\n          podSelector:\n            matchLabels:\n              app.kubernetes.io/name: prometheus\n      ports:", "    - ports:", "from everyone"},
		{"network policy admits all ports to clients", np, "    - ports:\n        - port: grpc\n        - port: http\n", "    - {}\n", "from everyone"},
		{"network policy admits admin from any pod", np, "          podSelector:\n            matchLabels:\n              app.kubernetes.io/name: prometheus\n", "", "more than a named scraper"},
		{"network policy blocks clients", np, "        - port: grpc\n", "", "no rule admits listen.grpc"},
		{"network policy selects nothing", np, "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: extauthz", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: other", "does not select"},
		// Istio provider and policy agree with the Service.
		{"istio provider port", mesh, "port: 9191", "port: 9192", "not the Service's grpc port"},
		{"istio provider service", mesh, "service: extauthz.extauthz.svc", "service: extauthz.default.svc", "extauthz.default.svc"},
		{"istio fails open", mesh, "failOpen: false", "failOpen: true", "failOpen"},
		{"istio status on error", mesh, `statusOnError: "503"`, `statusOnError: "403"`, "statusOnError"},
		{"istio policy names unknown provider", pol, "name: extauthz ", "name: ext-authz ", `"ext-authz"`},
		{"istio policy not CUSTOM", pol, "action: CUSTOM", "action: DENY", "no AuthorizationPolicy with action CUSTOM"},
		{"istio policy skips a route", pol, `notPaths: ["/healthz"]`, `notPaths: ["/healthz", "/admin/*"]`, "routes[0] (/admin/)"},
		{"istio paths not normalised", mesh, "normalization: MERGE_SLASHES", "normalization: NONE", "pathNormalization NONE"},
		{"ConfigMap config without routes", cm, "        routes:\n          - {path_prefix: /admin/, requirement: admins}\n          - {path_prefix: /orders/, methods: [POST, PUT, PATCH, DELETE], requirement: orders-write}\n", "", "no routes"},
		// The compose file names only files of the repository, and agrees with itself.
		{"compose mounts a missing file", cmp, "./envoy/envoy.yaml:", "./envoy/front-proxy.yaml:", "front-proxy.yaml"},
		{"compose build context missing", cmp, "context: .\n      dockerfile: Dockerfile\n    image: extauthz:dev\n    command: [\"-config\"", "context: ./build\n      dockerfile: Dockerfile\n    image: extauthz:dev\n    command: [\"-config\"", "build context"},
		{"compose host path", cmp, "- idp-ca:/shared:ro", "- /tmp/ca:/shared:ro", "host path"},
		{"compose undeclared volume", cmp, "- idp-ca:/shared\n", "- ca:/shared\n", `"ca"`},
		{"compose CA path differs", cmp, `"-ca-out", "/shared/ca.pem"`, `"-ca-out", "/shared/idp-ca.pem"`, "jwks.ca_file"},
		{"compose redis key not mounted", cmp, "./deploy/compose/redis-hmac.keys:/etc/extauthz/redis-hmac.keys", "./deploy/compose/redis-hmac.keys:/etc/extauthz/keys", "hmac_key_file"},
		{"compose idp hostname differs", cmp, `"-hostname", "demo-idp"`, `"-hostname", "idp"`, "want host idp:8443"},
		{"compose idp port not published", cmp, `- "127.0.0.1:8443:8443"`, `- "127.0.0.1:9443:9443"`, "not published"},
		{"compose idp token endpoint on every interface", cmp, `- "127.0.0.1:8443:8443"`, `- "8443:8443"`, "beyond loopback"},
		{"compose idp token endpoint on a host IP", cmp, `- "127.0.0.1:8443:8443"`, `- "0.0.0.0:8443:8443"`, "beyond loopback"},
		{"compose admin off loopback without token", excfg, "admin: 127.0.0.1:9193", "admin: 0.0.0.0:9193", "not a loopback address"},
		{"compose config not mounted", cmp, "./deploy/compose/extauthz.yaml:/etc/extauthz/config.yaml", "./deploy/compose/extauthz.yaml:/etc/extauthz/other.yaml", "-config"},
		{"compose envoy image of another release", cmp, "envoyproxy/envoy:v1.40-latest", "envoyproxy/envoy:v1.31-latest", "Envoy 1.31"},
		{"compose demo-idp healthcheck", cmp, "    healthcheck:\n      disable: true\n", "", "HEALTHCHECK"},
		// The Dockerfile: build command, runtime, HEALTHCHECK on the config's port.
		{"dockerfile build command", dfile, "-trimpath -ldflags", "-ldflags", "no RUN"},
		{"dockerfile build unstamped", dfile, "ARG REVISION=unknown\nWORKDIR", "WORKDIR", "ARG VERSION and ARG REVISION"},
		{"dockerfile label without its ARG", dfile, "ARG VERSION=dev\nARG REVISION=unknown\n# The OCI", "ARG VERSION=dev\n# The OCI", "no ARG REVISION"},
		{"dockerfile version label", dfile, `org.opencontainers.image.version="${VERSION}"`, `org.opencontainers.image.version="dev"`, "org.opencontainers.image.version"},
		{"dockerfile single stage", dfile, "FROM gcr.io/distroless/static-debian12:nonroot\n", "", "multi-stage"},
		{"dockerfile runs as root", dfile, "USER 65532:65532", "USER root", "non-root USER"},
		{"dockerfile fat runtime", dfile, "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12", "minimal static base"},
		{"dockerfile healthcheck with curl", dfile, `CMD ["/extauthz","health","-addr","127.0.0.1:9191"]`, `CMD ["curl","-f","http://127.0.0.1:9193/healthz"]`, "own client"},
		{"dockerfile healthcheck shell form", dfile, `CMD ["/extauthz","health","-addr","127.0.0.1:9191"]`, `CMD /extauthz health -addr 127.0.0.1:9191`, "exec form"},
		{"dockerfile healthcheck port", dfile, `"127.0.0.1:9191"]`, `"127.0.0.1:9190"]`, "probes port 9190"},
		{"config gRPC port moved", excfg, "grpc: 0.0.0.0:9191", "grpc: 0.0.0.0:9291", "serves gRPC on"},
		{"dockerfile port not exposed", dfile, "EXPOSE 9191 9192 9193", "EXPOSE 9191 9192", "9193"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig, err := os.ReadFile(root + "/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(orig, []byte(tt.old)) {
				t.Fatalf("mutation does not apply: %q not found in %s", tt.old, tt.file)
			}
			r := repo{root: root, overrides: map[string][]byte{
				tt.file: bytes.ReplaceAll(orig, []byte(tt.old), []byte(tt.new)),
			}}
			err = checkAll(r)
			if err == nil {
				t.Fatalf("checks accepted %s with %q replaced by %q", tt.file, tt.old, tt.new)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error does not mention %q:\n%v", tt.wantErr, err)
			}
			t.Logf("refused as expected: %v", err)
		})
	}
}

// TestMakefile_BuildStaticIsTheDockerfileBuild holds the Makefile to the
// Dockerfile's build command once the Makefile exists.
func TestMakefile_BuildStaticIsTheDockerfileBuild(t *testing.T) {
	b, err := os.ReadFile(root + "/" + makefileName)
	if errors.Is(err, os.ErrNotExist) {
		t.Logf("%s does not exist yet: nothing to compare", makefileName)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := checkMakefile(b); err != nil {
		t.Fatalf("%v", err)
	}
}

func TestReleaseScript_BuildsAsTheDockerfile(t *testing.T) {
	b, err := os.ReadFile(root + "/" + releaseScript)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkReleaseScript(b); err != nil {
		t.Fatalf("%v", err)
	}
	for _, tt := range []struct{ name, old, new, wantErr string }{
		{"cgo", "CGO_ENABLED=0 GOOS", "GOOS", "static"},
		{"unstamped", "internal/version.revision=${REVISION}", "internal/version.revision=", "-ldflags"},
		{"no checksums", "sha256sum ", "md5sum ", "SHA-256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(b, []byte(tt.old)) {
				t.Fatalf("mutation does not apply: %q not found", tt.old)
			}
			err := checkReleaseScript(bytes.ReplaceAll(b, []byte(tt.old), []byte(tt.new)))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("checkReleaseScript = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckMakefile(t *testing.T) {
	const good = ".PHONY: build-static docker\n" +
		"build-static: ## static binary\n" +
		"\tCGO_ENABLED=0 go build -trimpath -ldflags=\"" + releaseLDFlags + "\" -o bin/extauthz ./cmd/extauthz\n" +
		"\n" +
		"release: ## binaries\n" +
		"\tbash scripts/release.sh dist v1 abc amd64\n" +
		"\n" +
		"docker: ## image\n" +
		"\tdocker build -t extauthz:dev .\n"
	tests := []struct {
		name, makefile, wantErr string
	}{
		{"same command, other output", good, ""},
		{"build-static without -trimpath", strings.Replace(good, "-trimpath ", "", 1), "only -o may differ"},
		{"build-static without ldflags", strings.Replace(good, ` -ldflags="`+releaseLDFlags+`"`, "", 1), "only -o may differ"},
		{"build-static without the version stamp", strings.Replace(good, "internal/version.version=", "internal/version.Version=", 1), "only -o may differ"},
		{"no release target", strings.Replace(good, "release:", "dist:", 1), "no release target"},
		{"build-static with cgo", strings.Replace(good, "CGO_ENABLED=0 ", "", 1), "only -o may differ"},
		{"no build-static target", strings.Replace(good, "build-static:", "build:", 1), "no build-static target"},
		{"no docker target", strings.Replace(good, "docker:", "image:", 1), "no docker target"},
		{"docker target without docker build", strings.Replace(good, "docker build", "podman build", 1), "no docker target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkMakefile([]byte(tt.makefile))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused a good Makefile: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatal("accepted a Makefile it should refuse")
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error does not mention %q: %v", tt.wantErr, err)
			}
		})
	}
}
