package checkclient

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Exit codes of the client command.
const (
	ExitAllow = 0
	ExitDeny  = 1
	ExitError = 2
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

// ClientCommand runs `extauthz client`: it sends one CheckRequest and
// prints the answer. It returns ExitAllow, ExitDeny or ExitError.
func ClientCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		req     = Request{Headers: headerFlags{}, ContextExtensions: extFlags{}}
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
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitAllow
		}
		return ExitError
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "client: unexpected arguments %q\n", fs.Args())
		return ExitError
	}
	if req.Host == "" {
		fmt.Fprintln(stderr, "client: -host is required")
		return ExitError
	}
	conn, err := Dial(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "client: %v\n", err)
		return ExitError
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := Check(ctx, authv3.NewAuthorizationClient(conn), req)
	if err != nil {
		fmt.Fprintf(stderr, "client: %v\n", err)
		return ExitError
	}
	if err := res.Print(stdout); err != nil {
		fmt.Fprintf(stderr, "client: %v\n", err)
		return ExitError
	}
	if res.Allowed {
		return ExitAllow
	}
	return ExitDeny
}

// HealthCommand runs `extauthz health`: exit 0 when the service is
// SERVING, 1 otherwise (including when it cannot be reached), so a Docker
// HEALTHCHECK needs nothing but the binary.
func HealthCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9191", "extauthz gRPC address `HOST:PORT`")
	service := fs.String("service", "", "health service name (empty: the whole server)")
	timeout := fs.Duration("timeout", 3*time.Second, "deadline of the call")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "health: unexpected arguments %q\n", fs.Args())
		return 2
	}
	conn, err := Dial(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "health: %v\n", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	st, err := Health(ctx, healthpb.NewHealthClient(conn), *service)
	if err != nil {
		fmt.Fprintf(stderr, "health: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, st)
	if st != healthpb.HealthCheckResponse_SERVING {
		return 1
	}
	return 0
}
