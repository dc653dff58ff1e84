package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3" // resolves the router's @type
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/tenants"
)

// yamlBlocks returns the ```yaml blocks of the Markdown file path's section
// that starts with the heading line heading (up to the next ## or ###
// heading).
func yamlBlocks(t *testing.T, path, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s has no %q", path, heading)
	}
	if i := strings.Index(rest, "\n##"); i >= 0 { // a YAML comment starts with one #
		rest = rest[:i]
	}
	var blocks []string
	for {
		_, after, ok := strings.Cut(rest, "```yaml\n")
		if !ok {
			return blocks
		}
		block, tail, ok := strings.Cut(after, "```\n")
		if !ok {
			t.Fatalf("%s: a yaml block under %q is not closed", path, heading)
		}
		blocks = append(blocks, block)
		rest = tail
	}
}

// readme returns README.md.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReadme_FullExampleIsTestdataExample keeps README's configuration
// example identical to testdata/example.yaml, which TestCheckFlag validates.
func TestReadme_FullExampleIsTestdataExample(t *testing.T) {
	blocks := yamlBlocks(t, "../README.md", "### Full example")
	if len(blocks) == 0 {
		t.Fatal("the Full example section has no ```yaml block")
	}
	block := blocks[0]
	example, err := os.ReadFile("../testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if block != string(example) {
		t.Error("README's full example differs from testdata/example.yaml; copy the file into README")
	}
}

// TestReadme_DocumentsEveryReasonAndStatus: each reason code appears in
// README's table with the HTTP status authz gives it.
func TestReadme_DocumentsEveryReasonAndStatus(t *testing.T) {
	doc := readme(t)
	for _, r := range authz.Reasons {
		row := "| `" + string(r) + "` | "
		i := strings.Index(doc, row)
		if i < 0 {
			t.Errorf("README's reason table lacks %s", r)
			continue
		}
		status := strings.Fields(doc[i+len(row):])[0]
		if want := r.HTTPStatus(); status != strconv.Itoa(want) {
			t.Errorf("README gives %s HTTP %s, authz answers %d", r, status, want)
		}
	}
}

// TestReadme_StartsWithTheTwoCommands.
// TestReasonCodesDoc_DocumentsEveryReason keeps docs/reason-codes.md, the
// client developers' table, complete and its statuses true.
func TestReasonCodesDoc_DocumentsEveryReason(t *testing.T) {
	b, err := os.ReadFile("../docs/reason-codes.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range authz.Reasons {
		row := fmt.Sprintf("| `%s` | %d |", r, r.HTTPStatus())
		if !strings.Contains(string(b), row) {
			t.Errorf("docs/reason-codes.md has no row starting %q", row)
		}
	}
}

func TestReadme_StartsWithTheTwoCommands(t *testing.T) {
	doc := readme(t)
	first := doc[:min(len(doc), 400)]
	for _, c := range []string{"go run ./cmd/extauthz demo", "bash scripts/test.sh"} {
		if !strings.Contains(first, c) {
			t.Errorf("README does not open with %q", c)
		}
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "bash scripts/test.sh") {
		t.Error(".ci/run does not run README's test command")
	}
}

// validatable is a go-control-plane message with protoc-gen-validate rules.
type validatable interface {
	proto.Message
	ValidateAll() error
}

// TestReadme_EnvoySnippetIsValidEnvoyAPI parses README's Envoy snippet
// with Envoy's own API (go-control-plane): every field name and @type must
// exist and every validation rule hold, and the filter must keep the
// settings README promises.
func TestReadme_EnvoySnippetIsValidEnvoyAPI(t *testing.T) {
	blocks := yamlBlocks(t, "../README.md", "## Pointing Envoy at it")
	if len(blocks) == 0 {
		t.Fatal("the Envoy section has no ```yaml block")
	}
	block := blocks[0]
	var doc struct {
		HTTPFilters []json.RawMessage `json:"http_filters"`
		Routes      []json.RawMessage `json:"routes"`
		Clusters    []json.RawMessage `json:"clusters"`
	}
	if err := yaml.Unmarshal([]byte(block), &doc); err != nil {
		t.Fatalf("README Envoy snippet is not YAML: %v", err)
	}
	if len(doc.HTTPFilters) != 2 || len(doc.Routes) != 2 || len(doc.Clusters) != 1 {
		t.Fatalf("snippet shape changed: %d filters, %d routes, %d clusters", len(doc.HTTPFilters), len(doc.Routes), len(doc.Clusters))
	}
	parse := func(name string, raw json.RawMessage, m validatable) {
		t.Helper()
		if err := protojson.Unmarshal(raw, m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := m.ValidateAll(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	filter := &hcmv3.HttpFilter{}
	parse("http_filters[0]", doc.HTTPFilters[0], filter)
	parse("http_filters[1]", doc.HTTPFilters[1], &hcmv3.HttpFilter{})
	for i, r := range doc.Routes {
		parse(fmt.Sprintf("routes[%d]", i), r, &routev3.Route{})
	}
	cluster := &clusterv3.Cluster{}
	parse("clusters[0]", doc.Clusters[0], cluster)

	ea := &extauthzv3.ExtAuthz{}
	if err := filter.GetTypedConfig().UnmarshalTo(ea); err != nil {
		t.Fatal(err)
	}
	if ea.GetTransportApiVersion().String() != "V3" || ea.GetFailureModeAllow() ||
		ea.GetStatusOnError().GetCode() != 503 || ea.GetGrpcService().GetEnvoyGrpc().GetClusterName() != cluster.GetName() {
		t.Errorf("ext_authz filter %v: want V3, failure_mode_allow false, status_on_error 503, cluster %s", ea, cluster.GetName())
	}
	// A cold provider's Check waits up to limits.cold_wait inside extauthz,
	// which then answers 503 jwks_unavailable itself; a shorter gRPC
	// timeout would turn that answer into Envoy's own error.
	if got := ea.GetGrpcService().GetTimeout().AsDuration(); got <= tenants.DefaultColdWait {
		t.Errorf("grpc_service.timeout %v must exceed limits.cold_wait's default %v", got, tenants.DefaultColdWait)
	}
	opts := &upstreamhttpv3.HttpProtocolOptions{}
	if err := cluster.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(opts); err != nil {
		t.Fatal(err)
	}
	if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Error("the extauthz cluster does not speak HTTP/2 (gRPC needs it)")
	}
	port := cluster.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
	if port != 9191 {
		t.Errorf("cluster port %d, want the default gRPC port 9191", port)
	}
}
