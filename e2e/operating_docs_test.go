package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	telemetryv1 "istio.io/api/telemetry/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/extauthz/extauthz/internal/tenants"
)

// TestOperating_EnvoyTracingSnippetIsValidEnvoyAPI parses operating.md's
// Envoy tracing settings with Envoy's own API.
func TestOperating_EnvoyTracingSnippetIsValidEnvoyAPI(t *testing.T) {
	blocks := yamlBlocks(t, "../docs/operating.md", "### Envoy")
	if len(blocks) != 1 {
		t.Fatalf("%d yaml blocks under ### Envoy, want 1", len(blocks))
	}
	var doc struct {
		HCM struct {
			Tracing json.RawMessage `json:"tracing"`
		} `json:"http_connection_manager"`
	}
	if err := yaml.UnmarshalStrict([]byte(blocks[0]), &doc); err != nil {
		t.Fatal(err)
	}
	tr := &hcmv3.HttpConnectionManager_Tracing{}
	if err := protojson.Unmarshal(doc.HCM.Tracing, tr); err != nil {
		t.Fatal(err)
	}
	if err := tr.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	otel := &tracev3.OpenTelemetryConfig{}
	if err := tr.GetProvider().GetTypedConfig().UnmarshalTo(otel); err != nil {
		t.Fatalf("provider: %v", err)
	}
	if otel.GetGrpcService().GetEnvoyGrpc().GetClusterName() == "" {
		t.Error("the OpenTelemetry tracer exports to no cluster")
	}
}

// TestOperating_IstioTracingSnippetIsValidIstioAPI parses operating.md's
// meshConfig and Telemetry with Istio's own API.
func TestOperating_IstioTracingSnippetIsValidIstioAPI(t *testing.T) {
	blocks := yamlBlocks(t, "../docs/operating.md", "### Istio")
	if len(blocks) != 1 {
		t.Fatalf("%d yaml blocks under ### Istio, want 1", len(blocks))
	}
	docs := bytes.Split([]byte(blocks[0]), []byte("\n---\n"))
	if len(docs) != 2 {
		t.Fatalf("%d YAML documents, want meshConfig and Telemetry", len(docs))
	}
	var values struct {
		MeshConfig json.RawMessage `json:"meshConfig"`
	}
	mesh := &meshv1alpha1.MeshConfig{}
	decodeProtoYAML(t, docs[0], &values, &values.MeshConfig, mesh, "meshConfig")
	var otel string
	for _, p := range mesh.GetExtensionProviders() {
		if p.GetOpentelemetry() != nil {
			otel = p.GetName()
		}
	}
	var tel struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Metadata   json.RawMessage `json:"metadata"`
		Spec       json.RawMessage `json:"spec"`
	}
	spec := &telemetryv1.Telemetry{}
	decodeProtoYAML(t, docs[1], &tel, &tel.Spec, spec, "Telemetry spec")
	if tel.Kind != "Telemetry" || len(spec.GetTracing()) != 1 || len(spec.GetTracing()[0].GetProviders()) != 1 ||
		spec.GetTracing()[0].GetProviders()[0].GetName() != otel || otel == "" {
		t.Errorf("Telemetry %s does not trace to the meshConfig's OpenTelemetry provider %q", tel.Kind, otel)
	}
}

// TestOperating_TracingAndAuditExamplesAreValidConfig: the tracing and
// audit blocks operating.md shows pass the service's validation.
func TestOperating_TracingAndAuditExamplesAreValidConfig(t *testing.T) {
	var blocks []string
	blocks = append(blocks, yamlBlocks(t, "../docs/operating.md", "## Traces")...)
	blocks = append(blocks, yamlBlocks(t, "../docs/operating.md", "## Audit log")...)
	if len(blocks) != 2 {
		t.Fatalf("%d yaml blocks, want the tracing and the audit example", len(blocks))
	}
	example, err := os.ReadFile("../testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The example with its tracing and audit blocks replaced by the docs'.
	var kept []string
	skip := false
	for _, line := range strings.SplitAfter(string(example), "\n") {
		if strings.HasPrefix(line, "tracing:") || strings.HasPrefix(line, "audit:") {
			skip = true
			continue
		}
		if skip && strings.HasPrefix(line, " ") {
			continue
		}
		skip = false
		kept = append(kept, line)
	}
	cfg, err := tenants.Parse([]byte(strings.Join(kept, "") + blocks[0] + blocks[1]))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(nil); err != nil {
		t.Fatal(err)
	}
	if cfg.Tracing.Endpoint == "" || cfg.Audit.Path == "" {
		t.Errorf("examples not read: tracing %+v, audit %+v", cfg.Tracing, cfg.Audit)
	}
}

// decodeProtoYAML decodes doc strictly into wrapper, then the proto JSON
// that wrapper's field raw holds (what: its name in failures) into m.
func decodeProtoYAML(t *testing.T, doc []byte, wrapper any, raw *json.RawMessage, m proto.Message, what string) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, wrapper); err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(*raw, m); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
