package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/extauthz/extauthz/internal/checkclient"
)

// Exit codes of the client command.
const (
	exitAllow = 0
	exitDeny  = 1
	exitError = 2
)

// headerFlags collects repeated -H 'name: value' flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return fmt.Sprint(map[string]string(h)) }

func (h headerFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	name = strings.ToLower(strings.TrimSpace(name))
	if !ok || name == "" {
		return fmt.Errorf("header %q: want 'name: value'", s)
	}
	h[name] = strings.TrimSpace(value)
	return nil
}

// extFlags collects repeated -ext key=value flags.
type extFlags map[string]string

func (e extFlags) String() string { return fmt.Sprint(map[string]string(e)) }

func (e extFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("context extension %q: want key=value", s)
	}
	e[k] = v
	return nil
}

// runClient runs `extauthz client`: it sends one CheckRequest and prints
// the answer. It exits 0 on allow, 1 on deny, 2 on error.
func runClient(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("client", stderr)
	var (
		req     = checkclient.Request{Headers: headerFlags{}, ContextExtensions: extFlags{}}
		addr    = fs.String("addr", "127.0.0.1:9191", "extauthz gRPC address `HOST:PORT`")
		timeout = fs.Duration("timeout", 5*time.Second, "deadline of the call")
	)
	fs.StringVar(&req.Host, "host", "", "request host (:authority), e.g. api.acme.test")
	fs.StringVar(&req.Path, "path", "/", "request path")
	fs.StringVar(&req.Method, "method", "GET", "request method")
	fs.StringVar(&req.Token, "token", "", "bearer token, sent as 'authorization: Bearer TOKEN'")
	fs.StringVar(&req.ID, "request-id", "", "x-request-id to send")
	fs.Var(headerFlags(req.Headers), "H", "request header 'name: value' (repeatable)")
	fs.Var(extFlags(req.ContextExtensions), "ext", "context extension key=value, e.g. tenant=acme (repeatable)")
	if code, done := parse(fs, args, stderr); done {
		return code
	}
	if req.Host == "" {
		fmt.Fprintln(stderr, "extauthz client: -host is required")
		fs.Usage()
		return exitError
	}
	conn, err := checkclient.Dial(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz client: %v\n", err)
		return exitError
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := checkclient.Check(ctx, authv3.NewAuthorizationClient(conn), req)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz client: %v\n", err)
		return exitError
	}
	if err := res.Print(stdout); err != nil {
		fmt.Fprintf(stderr, "extauthz client: %v\n", err)
		return exitError
	}
	if res.Allowed {
		return exitAllow
	}
	return exitDeny
}

// runHealth runs `extauthz health`: exit 0 when the service is SERVING, 1
// otherwise (including when it cannot be reached), so a Docker HEALTHCHECK
// needs nothing but the binary.
func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("health", stderr)
	addr := fs.String("addr", "127.0.0.1:9191", "extauthz gRPC address `HOST:PORT`")
	service := fs.String("service", "", "health service `NAME` (empty: the whole server)")
	timeout := fs.Duration("timeout", 3*time.Second, "deadline of the call")
	if code, done := parse(fs, args, stderr); done {
		return code
	}
	conn, err := checkclient.Dial(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz health: %v\n", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	st, err := checkclient.Health(ctx, healthpb.NewHealthClient(conn), *service)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz health: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, st)
	if st != healthpb.HealthCheckResponse_SERVING {
		return 1
	}
	return 0
}
