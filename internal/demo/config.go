package demo

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/template"
)

// The demo configuration's names.
const (
	TenantID   = "demo"
	ProviderID = "demo-idp"
	Host       = "api.demo.test"
	Audience   = "demo-api"
)

// ConfigParams fill the built-in demo configuration.
type ConfigParams struct {
	GRPCAddr string // e.g. 127.0.0.1:9191
	Issuer   string // the IdP's issuer, "https://127.0.0.1:PORT/"
	JWKSURL  string // the IdP's JWKS URL
	CAFile   string // PEM of the CA that signed the IdP's certificate
}

var configTemplate = template.Must(template.New("demo").Parse(`# extauthz built-in demo configuration
listen:
  grpc: {{printf "%q" .GRPCAddr}}
  admin: ""            # the admin listener is not part of the demo
log:
  format: text
jwks:
  ca_file: {{printf "%q" .CAFile}}
tenants:
  - id: ` + TenantID + `
    hosts: ["` + Host + `", "*.` + Host + `"]
    providers:
      - id: ` + ProviderID + `
        issuer: {{printf "%q" .Issuer}}
        jwks_url: {{printf "%q" .JWKSURL}}
        audiences: [` + Audience + `]
        algorithms: [ES256, RS256, EdDSA]
        claims_to_headers: {sub: x-auth-subject, email: x-auth-email}
`))

// Config renders the built-in demo configuration: one tenant, "demo",
// served on Host and its subdomains, trusting the demo identity provider.
func Config(p ConfigParams) []byte {
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, p); err != nil {
		// The template is fixed and its fields are strings: it cannot fail.
		panic(fmt.Sprintf("demo: render config: %v", err))
	}
	return b.Bytes()
}

// Instructions writes what `extauthz demo` prints: the tokens and the exact
// commands that show an allow and a deny. self is how to invoke the binary
// (e.g. "go run ./cmd/extauthz").
func Instructions(w io.Writer, self, grpcAddr, valid, expired string) error {
	c := func(token string) string {
		return fmt.Sprintf("%s client -addr %s -host %s -path /orders -token %s", self, grpcAddr, Host, token)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nextauthz demo is running: gRPC ext_authz on %s, tenant %q on host %s.\n\n", grpcAddr, TenantID, Host)
	fmt.Fprintf(&b, "A valid token (sub=alice, one hour):\n  %s\n\n", valid)
	fmt.Fprintf(&b, "An expired token:\n  %s\n\n", expired)
	fmt.Fprintf(&b, "Allow (exit 0, sets x-auth-subject):\n  %s\n\n", c(valid))
	fmt.Fprintf(&b, "Deny, expired token (exit 1, 401 token_expired):\n  %s\n\n", c(expired))
	fmt.Fprintf(&b, "Deny, no token (exit 1, 401 token_missing):\n  %s client -addr %s -host %s\n\n", self, grpcAddr, Host)
	fmt.Fprintf(&b, "Deny, unknown host (exit 1, 403 tenant_unknown):\n  %s client -addr %s -host other.test -token %s\n\n", self, grpcAddr, valid)
	fmt.Fprintf(&b, "Health:\n  %s health -addr %s\n\nPress Ctrl-C to stop.\n", self, grpcAddr)
	_, err := io.WriteString(w, b.String())
	return err
}
