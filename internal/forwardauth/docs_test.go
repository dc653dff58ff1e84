package forwardauth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/extauthz/extauthz/internal/tenants"
)

// yamlBlocks returns the fenced ```yaml blocks of docs/forward-auth.md.
func yamlBlocks(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "forward-auth.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	rest := string(doc)
	for {
		var ok bool
		_, rest, ok = strings.Cut(rest, "\n```yaml\n")
		if !ok {
			return blocks
		}
		var block string
		block, rest, ok = strings.Cut(rest, "\n```\n")
		if !ok {
			t.Fatal("docs/forward-auth.md: a ```yaml block is not closed")
		}
		blocks = append(blocks, block)
	}
}

// TestDocs_EnvoyHTTPServiceSnippet checks the documented Envoy filter
// against Envoy's API (every field name, @type and validation rule, as
// go-control-plane knows them) and against the documented extauthz config.
func TestDocs_EnvoyHTTPServiceSnippet(t *testing.T) {
	var filterYAML, configYAML string
	for _, b := range yamlBlocks(t) {
		switch {
		case strings.Contains(b, "envoy.filters.http.ext_authz"):
			filterYAML = b
		case strings.Contains(b, "forward_auth:") && configYAML == "":
			configYAML = b
		}
	}
	if filterYAML == "" || configYAML == "" {
		t.Fatal("docs/forward-auth.md lacks the Envoy filter or the extauthz config block")
	}

	js, err := k8syaml.YAMLToJSON([]byte(filterYAML))
	if err != nil {
		t.Fatalf("Envoy snippet is not YAML: %v", err)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(js, &list); err != nil || len(list) != 1 {
		t.Fatalf("Envoy snippet: want one http_filters entry (err %v)", err)
	}
	var f hcmv3.HttpFilter
	if err := protojson.Unmarshal(list[0], &f); err != nil {
		t.Fatalf("Envoy snippet is not an HttpFilter: %v", err)
	}
	if err := f.ValidateAll(); err != nil {
		t.Fatalf("Envoy snippet: %v", err)
	}
	var ea extauthzv3.ExtAuthz
	if err := f.GetTypedConfig().UnmarshalTo(&ea); err != nil {
		t.Fatalf("typed_config is not an ExtAuthz: %v", err)
	}
	if err := ea.ValidateAll(); err != nil {
		t.Fatalf("ExtAuthz: %v", err)
	}
	if ea.GetHttpService() == nil {
		t.Fatal("the snippet does not use http_service")
	}

	// The config block parses strictly (no unknown key) and its listen and
	// forward_auth parts are valid; it has no tenants, so only those parts
	// are checked.
	cfg, err := tenants.Parse([]byte(configYAML))
	if err != nil {
		t.Fatalf("config block: %v", err)
	}
	if err := cfg.Validate(nil); err != nil {
		for _, p := range strings.Split(err.Error(), "\n") {
			if strings.HasPrefix(p, "forward_auth.") || strings.HasPrefix(p, "listen.") {
				t.Errorf("config block: %s", p)
			}
		}
	}
	if got, want := ea.GetHttpService().GetPathPrefix(), cfg.ForwardAuth.PathPrefix; got != want || got == "" {
		t.Errorf("Envoy path_prefix %q, extauthz forward_auth.path_prefix %q: they must match", got, want)
	}
	var upstream []string
	for _, m := range ea.GetHttpService().GetAuthorizationResponse().GetAllowedUpstreamHeaders().GetPatterns() {
		upstream = append(upstream, m.GetExact())
	}
	if got := strings.Join(upstream, ","); got != "x-auth-subject,x-auth-email" {
		t.Errorf("allowed_upstream_headers %q, want the documented claim headers x-auth-subject,x-auth-email", got)
	}
}
