package envoy_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	// Every type below is named in envoy.yaml, either as a field or as an
	// "@type" of a typed_config. Importing a package registers its types with
	// protobuf's global registry, which is what lets protojson resolve an Any;
	// an extension used in envoy.yaml but not imported here fails the test
	// with "unable to resolve", which is the point.
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	earlymutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	"github.com/extauthz/extauthz/internal/tenants"
)

const (
	envoyConfigPath   = "envoy.yaml"
	mtlsConfigPath    = "envoy-mtls.yaml"
	extauthzConfig    = "../deploy/compose/extauthz.yaml"
	composeFile       = "../docker-compose.yml"
	extAuthzFilter    = "envoy.filters.http.ext_authz"
	upstreamHTTPOpts  = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	wantStatusOnError = typev3.StatusCode_ServiceUnavailable
)

// demo is what envoy.yaml must agree with: the docker compose demo it runs in.
type demo struct {
	services     map[string]bool            // compose service names, the DNS names Envoy resolves
	grpcPort     uint32                     // port of listen.grpc in the extauthz config
	tenants      map[string]bool            // tenant ids in the extauthz config
	requirements map[string]map[string]bool // tenant id → its requirement names
	claimHeaders []string                   // every claims_to_headers value in the extauthz config
}

func TestEnvoyConfig_ValidAgainstEnvoyAPIAndDemo(t *testing.T) {
	_, _, seen := mustPass(t, envoyConfigPath)
	// The Any walker must really have unpacked every extension: if it skipped
	// one, its ValidateAll never ran.
	for _, m := range []proto.Message{
		&hcmv3.HttpConnectionManager{},
		&extauthzv3.ExtAuthz{},
		&extauthzv3.ExtAuthzPerRoute{},
		&routerv3.Router{},
		&upstreamhttpv3.HttpProtocolOptions{},
		&earlymutationv3.HeaderMutation{},
	} {
		url := "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName())
		if !seen[url] {
			t.Errorf("typed_config %s was not unpacked and validated; seen: %v", url, seen)
		}
	}
}

// TestEnvoyConfig_MTLSExample checks envoy-mtls.yaml like envoy.yaml, plus
// what certificate-bound tokens need: the listener requires a client
// certificate, ext_authz sends it, and a client's own XFCC is dropped.
func TestEnvoyConfig_MTLSExample(t *testing.T) {
	doc, d, seen := mustPass(t, mtlsConfigPath)
	if url := "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"; !seen[url] {
		t.Errorf("%s was not unpacked and validated", url)
	}
	for _, tt := range []struct{ name, old, new, wantErr string }{
		{"peer certificate not sent", "include_peer_certificate: true", "include_peer_certificate: false", "include_peer_certificate must be true"},
		{"client certificate optional", "require_client_certificate: true", "require_client_certificate: false", "include_peer_certificate must be false"},
		{"client's XFCC passed on", "forward_client_cert_details: SANITIZE_SET", "forward_client_cert_details: APPEND_FORWARD", "forward_client_cert_details"},
		{"typo in the TLS context", "require_client_certificate: true", "require_client_cert: true", "unknown field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkEnvoy(mutate(t, doc, tt.old, tt.new), d)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// mustPass reads the Envoy config at path and fails the test unless it
// passes the checks against the compose demo d; seen is the typed configs
// the checks unpacked.
func mustPass(t *testing.T, path string) (doc []byte, d demo, seen map[string]bool) {
	t.Helper()
	doc, d = readFile(t, path), loadDemo(t)
	seen, err := checkEnvoy(doc, d)
	if err != nil {
		t.Fatalf("%s does not pass the checks:\n%v", path, err)
	}
	return doc, d, seen
}

// TestEnvoyConfig_MutationsFail proves the checker can fail: each case breaks
// envoy.yaml in one way and must be refused for that reason.
func TestEnvoyConfig_MutationsFail(t *testing.T) {
	doc := readFile(t, envoyConfigPath)
	d := loadDemo(t)

	tests := []struct {
		name     string
		old, new string
		wantErr  string // case-insensitive substring of the error
	}{
		{"typo in a field name", "failure_mode_allow: false", "failure_mode_alow: false", `unknown field "failure_mode_alow"`},
		{"typo in an @type", "ext_authz.v3.ExtAuthz\n", "ext_authz.v3.ExtAuthZ\n", "ExtAuthZ"},
		{"@type of another extension", "router.v3.Router", "ext_authz.v3.ExtAuthzPerRoute", "router"},
		{"Envoy validation rule at the top level", "connect_timeout: 1s", "connect_timeout: 0s", "ConnectTimeout"},
		{"Envoy validation rule inside a typed_config", "stat_prefix: ingress_http", `stat_prefix: ""`, "StatPrefix"},
		{"dangling route cluster", "route: {cluster: app}", "route: {cluster: ap}", `"ap"`},
		{"dangling ext_authz cluster", "cluster_name: extauthz}", "cluster_name: ext-authz}", `"ext-authz"`},
		{"ext_authz cluster without HTTP/2", "http2_protocol_options: {}", "http_protocol_options: {}", "HTTP/2"},
		{"ext_authz cluster on another port", "port_value: 9191", "port_value: 9190", "9190"},
		{"endpoint that is no compose service", "address: echo,", "address: echo-server,", "echo-server"},
		{"no gRPC health check", `grpc_health_check: {service_name: ""}`, "http_health_check: {path: /healthz}", "grpc_health_check"},
		{"failure_mode_allow true", "failure_mode_allow: false", "failure_mode_allow: true", "failure_mode_allow"},
		{"shadow mode", "failure_mode_allow: false", "failure_mode_allow: false\n                      shadow_mode: true", "shadow_mode"},
		{"status_on_error not 503", "code: ServiceUnavailable", "code: Forbidden", "status_on_error"},
		{"peer certificate sent", "include_peer_certificate: false", "include_peer_certificate: true", "include_peer_certificate"},
		{"transport API not V3", "transport_api_version: V3", "transport_api_version: AUTO", "transport_api_version"},
		{"no timeout on the Check", "timeout: 3s", "", "timeout"},
		{"tenant not in the extauthz config", "tenant: acme", "tenant: umbrella", "umbrella"},
		{"requirement not in the extauthz config", "requirement: orders-write", "requirement: orders-admin", "orders-admin"},
		{"no route names a requirement", "requirement: orders-write", "", "requirement"},
		{"normalize_path off", "normalize_path: true", "normalize_path: false", "normalize_path"},
		{"merge_slashes off", "merge_slashes: true", "merge_slashes: false", "merge_slashes"},
		{"escaped slashes kept", "path_with_escaped_slashes_action: REJECT_REQUEST", "path_with_escaped_slashes_action: KEEP_UNCHANGED", "path_with_escaped_slashes_action"},
		{"no route with ext_authz disabled", "disabled: true", "check_settings: {context_extensions: {tenant: acme}}", "disabled"},
		{"claim header not stripped at the edge", "\n                        - remove: x-auth-email", "", "x-auth-email"},
		{"claim header removed after ext_authz", `domains: ["*"]`, "domains: [\"*\"]\n                      request_headers_to_remove: [x-auth-subject]", "request_headers_to_remove"},
		{"router not the last filter", "include_peer_certificate: false", "include_peer_certificate: false\n                  - name: envoy.filters.http.router2\n                    typed_config:\n                      \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", "last"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mutated := mutate(t, doc, tt.old, tt.new)
			_, err := checkEnvoy(mutated, d)
			if err == nil {
				t.Fatalf("checker accepted envoy.yaml with %q replaced by %q", tt.old, tt.new)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.wantErr)) {
				t.Fatalf("error does not mention %q:\n%v", tt.wantErr, err)
			}
			t.Logf("refused as expected: %v", err)
		})
	}
}

// checkEnvoy parses doc as an Envoy bootstrap with Envoy's own protos,
// validates it and every typed_config inside it with the generated
// ValidateAll, then checks the cross-references against d. It returns the
// type URLs of the typed_configs it unpacked.
func checkEnvoy(doc []byte, d demo) (map[string]bool, error) {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	var bs bootstrapv3.Bootstrap
	// protojson refuses unknown fields and unresolvable "@type"s by default.
	if err := protojson.Unmarshal(j, &bs); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	var errs []error
	if err := bs.ValidateAll(); err != nil {
		errs = append(errs, fmt.Errorf("bootstrap: %w", err))
	}
	// ValidateAll does not look inside an Any; validate each one here.
	seen := map[string]bool{}
	errs = append(errs, validateFields(bs.ProtoReflect(), "bootstrap", seen))
	errs = append(errs, crossCheck(&bs, d))
	return seen, errors.Join(errs...)
}

type validator interface{ ValidateAll() error }

// validateFields walks every message field of m (lists and maps included)
// and validates each Any it finds, recursively.
func validateFields(m protoreflect.Message, path string, seen map[string]bool) error {
	var errs []error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					errs = append(errs, validateMessage(mv.Message(), fmt.Sprintf("%s[%s]", p, k.String()), seen))
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := 0; i < v.List().Len(); i++ {
					errs = append(errs, validateMessage(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", p, i), seen))
				}
			}
		case fd.Message() != nil:
			errs = append(errs, validateMessage(v.Message(), p, seen))
		}
		return true
	})
	return errors.Join(errs...)
}

func validateMessage(m protoreflect.Message, path string, seen map[string]bool) error {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		return validateFields(m, path, seen)
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		return fmt.Errorf("%s: unpack %s: %w", path, a.GetTypeUrl(), err)
	}
	seen[a.GetTypeUrl()] = true
	var errs []error
	if v, ok := inner.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", path, a.GetTypeUrl(), err))
		}
	}
	errs = append(errs, validateFields(inner.ProtoReflect(), path, seen))
	return errors.Join(errs...)
}

// crossCheck holds the rules Envoy's schema cannot express: names that must
// refer to each other, and the settings extauthz's contract relies on.
func crossCheck(bs *bootstrapv3.Bootstrap, d demo) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range bs.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
		for _, eps := range c.GetLoadAssignment().GetEndpoints() {
			for _, ep := range eps.GetLbEndpoints() {
				sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
				if !d.services[sa.GetAddress()] {
					fail("cluster %q: endpoint %q is not a service of %s", c.GetName(), sa.GetAddress(), composeFile)
				}
			}
		}
	}

	var hcms int
	for _, l := range bs.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			mtls := requiresClientCert(fc.GetTransportSocket())
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().MessageIs(&hcm) {
					if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
						fail("listener %q: %v", l.GetName(), err)
						continue
					}
					hcms++
					errs = append(errs, checkHCM(l.GetName(), &hcm, clusters, d, mtls))
				}
			}
		}
	}
	if hcms == 0 {
		fail("no listener with an http_connection_manager")
	}
	return errors.Join(errs...)
}

// requiresClientCert reports whether a filter chain's transport socket is
// downstream TLS that requires a client certificate.
func requiresClientCert(ts *corev3.TransportSocket) bool {
	var tls tlsv3.DownstreamTlsContext
	if ts.GetTypedConfig() == nil || ts.GetTypedConfig().UnmarshalTo(&tls) != nil {
		return false
	}
	return tls.GetRequireClientCertificate().GetValue()
}

func checkHCM(listener string, hcm *hcmv3.HttpConnectionManager, clusters map[string]*clusterv3.Cluster, d demo, mtls bool) error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("listener %q: "+format, append([]any{listener}, args...)...))
	}
	if mtls {
		// A client's own x-forwarded-client-cert must never reach the
		// upstream (or extauthz) as if Envoy had written it.
		switch hcm.GetForwardClientCertDetails() {
		case hcmv3.HttpConnectionManager_SANITIZE, hcmv3.HttpConnectionManager_SANITIZE_SET:
		default:
			fail("forward_client_cert_details %s passes on a client's own x-forwarded-client-cert; want SANITIZE or SANITIZE_SET", hcm.GetForwardClientCertDetails())
		}
	}

	// The http filter chain: ext_authz present and enforcing, router last.
	filters := hcm.GetHttpFilters()
	var authz *extauthzv3.ExtAuthz
	for i, f := range filters {
		if f.GetTypedConfig().MessageIs(&routerv3.Router{}) && i != len(filters)-1 {
			fail("http filter %q: the router must be the last filter", f.GetName())
		}
		if f.GetName() != extAuthzFilter {
			continue
		}
		authz = &extauthzv3.ExtAuthz{}
		if err := f.GetTypedConfig().UnmarshalTo(authz); err != nil {
			fail("http filter %q: %v", f.GetName(), err)
			authz = nil
		}
	}
	if len(filters) == 0 || !filters[len(filters)-1].GetTypedConfig().MessageIs(&routerv3.Router{}) {
		fail("the last http filter must be the router")
	}
	if authz == nil {
		fail("no usable %s http filter", extAuthzFilter)
	} else {
		errs = append(errs, checkExtAuthz(listener, authz, clusters, d, mtls))
	}

	// Routes: clusters exist, per-route ext_authz settings name known tenants,
	// and at least one public route (filter disabled) and one tenant route.
	if hcm.GetRouteConfig() == nil {
		fail("route_config must be inline (RDS cannot be checked here)")
	}
	var disabled, tenantRoutes, requirementRoutes int
	rc := hcm.GetRouteConfig()
	if len(rc.GetRequestHeadersToRemove()) > 0 {
		errs = append(errs, removedAfterAuthz(listener, "route_config", rc.GetRequestHeadersToRemove(), d))
	}
	for _, vh := range rc.GetVirtualHosts() {
		errs = append(errs, removedAfterAuthz(listener, "virtual_host "+vh.GetName(), vh.GetRequestHeadersToRemove(), d))
		for i, r := range vh.GetRoutes() {
			where := fmt.Sprintf("virtual_host %q route[%d]", vh.GetName(), i)
			errs = append(errs, removedAfterAuthz(listener, where, r.GetRequestHeadersToRemove(), d))
			for _, name := range routeClusters(r) {
				if clusters[name] == nil {
					fail("%s names cluster %q, which does not exist", where, name)
				}
			}
			cfg, ok := r.GetTypedPerFilterConfig()[extAuthzFilter]
			if !ok {
				continue
			}
			var per extauthzv3.ExtAuthzPerRoute
			if err := cfg.UnmarshalTo(&per); err != nil {
				fail("%s: typed_per_filter_config[%s]: %v", where, extAuthzFilter, err)
				continue
			}
			if per.GetDisabled() {
				disabled++
				continue
			}
			if name := per.GetCheckSettings().GetGrpcService().GetEnvoyGrpc().GetClusterName(); name != "" && clusters[name] == nil {
				fail("%s: check_settings.grpc_service names cluster %q, which does not exist", where, name)
			}
			ext := per.GetCheckSettings().GetContextExtensions()
			if tenant, ok := ext["tenant"]; ok {
				if !d.tenants[tenant] {
					fail("%s: context_extensions tenant %q is not a tenant of %s", where, tenant, extauthzConfig)
				}
				tenantRoutes++
			}
			if req, ok := ext["requirement"]; ok {
				// extauthz denies a name the tenant lacks (requirement_unknown):
				// the route's tenant must have it.
				if tenant := ext["tenant"]; !d.requirements[tenant][req] {
					fail("%s: context_extensions requirement %q is not a requirement of tenant %q in %s", where, req, tenant, extauthzConfig)
				}
				requirementRoutes++
			}
		}
	}
	if disabled == 0 {
		fail("no route with ext_authz disabled (the public health path)")
	}
	if tenantRoutes == 0 {
		fail("no route with ext_authz context_extensions {tenant: ...}")
	}
	if requirementRoutes == 0 {
		fail("no route with ext_authz context_extensions {requirement: ...} (the per-route requirement example)")
	}
	// extauthz matches its routes on the normalised path; Envoy must match
	// its own on the same path, and refuse what extauthz refuses.
	if !hcm.GetNormalizePath().GetValue() {
		fail("normalize_path must be true (RFC 3986 normalisation before route matching)")
	}
	if !hcm.GetMergeSlashes() {
		fail("merge_slashes must be true")
	}
	if a := hcm.GetPathWithEscapedSlashesAction(); a != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		fail("path_with_escaped_slashes_action is %s, want REJECT_REQUEST (extauthz denies %%2F as path_invalid)", a)
	}

	// Claim headers: stripped before any filter runs.
	stripped := map[string]bool{}
	for _, ext := range hcm.GetEarlyHeaderMutationExtensions() {
		var hm earlymutationv3.HeaderMutation
		if err := ext.GetTypedConfig().UnmarshalTo(&hm); err != nil {
			continue // another early mutation extension; validated above
		}
		for _, m := range hm.GetMutations() {
			if m.GetRemove() != "" {
				stripped[strings.ToLower(m.GetRemove())] = true
			}
		}
	}
	for _, h := range d.claimHeaders {
		if !stripped[strings.ToLower(h)] {
			fail("claim header %q (claims_to_headers in %s) is not removed by early_header_mutation_extensions, so a client could send its own", h, extauthzConfig)
		}
	}
	return errors.Join(errs...)
}

// removedAfterAuthz refuses request_headers_to_remove entries that name a
// claim header: the router applies them after ext_authz, so they would
// delete the headers extauthz sets.
func removedAfterAuthz(listener, where string, removed []string, d demo) error {
	var errs []error
	for _, h := range removed {
		if slices.ContainsFunc(d.claimHeaders, func(c string) bool { return strings.EqualFold(c, h) }) {
			errs = append(errs, fmt.Errorf("listener %q: %s: request_headers_to_remove %q would delete the claim header extauthz sets (the router applies it after ext_authz)", listener, where, h))
		}
	}
	return errors.Join(errs...)
}

func routeClusters(r *routev3.Route) []string {
	a := r.GetRoute()
	if a == nil {
		return nil
	}
	if c := a.GetCluster(); c != "" {
		return []string{c}
	}
	var names []string
	for _, w := range a.GetWeightedClusters().GetClusters() {
		names = append(names, w.GetName())
	}
	return names
}

func checkExtAuthz(listener string, a *extauthzv3.ExtAuthz, clusters map[string]*clusterv3.Cluster, d demo, mtls bool) error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("listener %q: ext_authz: "+format, append([]any{listener}, args...)...))
	}
	if a.GetTransportApiVersion().String() != "V3" {
		fail("transport_api_version is %s, want V3", a.GetTransportApiVersion())
	}
	if a.GetFailureModeAllow() {
		fail("failure_mode_allow must be false: an unreachable extauthz must deny")
	}
	if a.GetShadowMode() {
		fail("shadow_mode must be off: in shadow mode denials are not enforced")
	}
	if a.GetFilterEnabled() != nil || a.GetFilterEnabledMetadata() != nil {
		fail("filter_enabled / filter_enabled_metadata would let requests skip authorization")
	}
	if got := a.GetStatusOnError().GetCode(); got != wantStatusOnError {
		fail("status_on_error is %v, want %d", got, int32(wantStatusOnError))
	}
	switch {
	case mtls && !a.GetIncludePeerCertificate():
		fail("include_peer_certificate must be true on a mutual-TLS listener: certificate-bound tokens (RFC 8705) are refused without the client certificate")
	case !mtls && a.GetIncludePeerCertificate():
		fail("include_peer_certificate must be false on a listener that requires no client certificate")
	}
	gs := a.GetGrpcService()
	if gs == nil {
		fail("must use grpc_service (extauthz's gRPC listener)")
		return errors.Join(errs...)
	}
	if gs.GetTimeout() == nil {
		fail("grpc_service.timeout must be set")
	}
	name := gs.GetEnvoyGrpc().GetClusterName()
	c := clusters[name]
	if c == nil {
		fail("grpc_service names cluster %q, which does not exist", name)
		return errors.Join(errs...)
	}
	var opts upstreamhttpv3.HttpProtocolOptions
	if any := c.GetTypedExtensionProtocolOptions()[upstreamHTTPOpts]; any == nil || any.UnmarshalTo(&opts) != nil {
		fail("cluster %q: no typed_extension_protocol_options[%s]; gRPC needs HTTP/2", name, upstreamHTTPOpts)
	} else if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		fail("cluster %q: explicit_http_config is not HTTP/2 (http2_protocol_options); gRPC needs HTTP/2", name)
	}
	if !slices.ContainsFunc(c.GetHealthChecks(), func(h *corev3.HealthCheck) bool { return h.GetGrpcHealthCheck() != nil }) {
		fail("cluster %q: no grpc_health_check (grpc.health.v1)", name)
	}
	var endpoints int
	for _, eps := range c.GetLoadAssignment().GetEndpoints() {
		for _, ep := range eps.GetLbEndpoints() {
			endpoints++
			if port := ep.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue(); port != d.grpcPort {
				fail("cluster %q: endpoint port %d, but extauthz listens on %d (listen.grpc in %s)", name, port, d.grpcPort, extauthzConfig)
			}
		}
	}
	if endpoints == 0 {
		fail("cluster %q has no endpoints", name)
	}
	return errors.Join(errs...)
}

// loadDemo reads what envoy.yaml must agree with from the compose demo.
func loadDemo(t *testing.T) demo {
	t.Helper()
	cfg, err := parseExtauthzConfig(readFile(t, extauthzConfig))
	if err != nil {
		t.Fatalf("%s: %v", extauthzConfig, err)
	}
	_, portStr, err := net.SplitHostPort(cfg.Listen.GRPC)
	if err != nil {
		t.Fatalf("%s: listen.grpc %q: %v", extauthzConfig, cfg.Listen.GRPC, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		t.Fatalf("%s: listen.grpc %q: %v", extauthzConfig, cfg.Listen.GRPC, err)
	}
	d := demo{grpcPort: uint32(port), tenants: map[string]bool{}, services: map[string]bool{}, requirements: map[string]map[string]bool{}}
	for _, tn := range cfg.Tenants {
		d.tenants[tn.ID] = true
		d.requirements[tn.ID] = map[string]bool{}
		for name := range tn.Requirements {
			d.requirements[tn.ID][name] = true
		}
		for _, p := range tn.Providers {
			for _, h := range p.ClaimsToHeaders {
				if !slices.Contains(d.claimHeaders, h) {
					d.claimHeaders = append(d.claimHeaders, h)
				}
			}
		}
	}
	if len(d.claimHeaders) == 0 {
		t.Fatalf("%s maps no claims to headers; the header-stripping check would check nothing", extauthzConfig)
	}

	var compose struct {
		Services map[string]any `json:"services"`
	}
	if err := yaml.Unmarshal(readFile(t, composeFile), &compose); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	for name := range compose.Services {
		d.services[name] = true
	}
	return d
}

// parseExtauthzConfig decodes an extauthz config the way the binary does
// (strict: unknown keys are errors). deploy/deploy_test.go also validates it.
func parseExtauthzConfig(b []byte) (*tenants.Config, error) {
	return tenants.Parse(b)
}

func mutate(t *testing.T, doc []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(doc, []byte(old)) {
		t.Fatalf("mutation does not apply: %q not found", old)
	}
	return bytes.ReplaceAll(doc, []byte(old), []byte(new))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
