// Command extauthz is an Envoy ext_authz gRPC service that verifies JWTs
// for many tenants against their identity providers' JWKS.
//
//	extauthz -config FILE [-check] [-log-format json|text]
//	extauthz demo
//	extauthz demo-idp -listen ADDR -ca-out FILE -hostname NAME
//	extauthz client -addr HOST:PORT -host HOST [-path /p] [-method GET] [-H 'name: value']... [-token T] [-ext k=v]...
//	extauthz health -addr HOST:PORT [-service NAME]
//	extauthz version   (or -version)
//
// This file only parses flags and wires packages together; see README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/extauthz/extauthz/internal/checkclient"
	"github.com/extauthz/extauthz/internal/demo"
	"github.com/extauthz/extauthz/internal/service"
	"github.com/extauthz/extauthz/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx := context.Background()
	if len(args) > 0 {
		switch args[0] {
		case "demo":
			return runDemo(ctx, args[1:], stdout, stderr)
		case "demo-idp":
			return runDemoIdP(args[1:], stdout, stderr)
		case "client":
			return checkclient.ClientCommand(ctx, args[1:], stdout, stderr)
		case "health":
			return checkclient.HealthCommand(ctx, args[1:], stdout, stderr)
		case "version", "-version", "--version":
			fmt.Fprintln(stdout, version.Get())
			return 0
		}
	}
	return runServe(ctx, args, stdout, stderr)
}

func usage(fs *flag.FlagSet, stderr io.Writer) func() {
	return func() {
		fmt.Fprint(stderr, `usage:
  extauthz -config FILE [-check] [-log-format json|text] [-drain-delay D] [-stop-timeout D]
  extauthz demo [-grpc ADDR]
  extauthz demo-idp -listen ADDR -ca-out FILE -hostname NAME
  extauthz client -addr HOST:PORT -host HOST [-path /p] [-method GET] [-H 'name: value']... [-token TOKEN] [-ext key=value]...
  extauthz health -addr HOST:PORT [-service NAME]
  extauthz version   (or -version): the release version, source revision and Go version

flags of the server:
`)
		fs.PrintDefaults()
	}
}

func signals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("extauthz", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usage(fs, stderr)
	var opts service.Options
	fs.StringVar(&opts.ConfigPath, "config", "", "configuration `FILE` (YAML)")
	check := fs.Bool("check", false, "validate the configuration, list every problem, and exit")
	fs.StringVar(&opts.LogFormat, "log-format", "", "override log.format: json or text")
	fs.DurationVar(&opts.DrainDelay, "drain-delay", service.DefaultDrainDelay, "on SIGTERM, keep answering this long after health turns NOT_SERVING (negative: none)")
	fs.DurationVar(&opts.StopTimeout, "stop-timeout", service.DefaultStopTimeout, "bound of the graceful stop after the drain")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "extauthz: unknown command or argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if opts.ConfigPath == "" {
		fmt.Fprintln(stderr, "extauthz: -config FILE is required (or try: extauthz demo)")
		return 2
	}
	if opts.DrainDelay == 0 {
		opts.DrainDelay = -1 // an explicit 0 means no drain, not the default
	}
	if *check {
		if err := service.CheckConfig(opts.ConfigPath); err != nil {
			fmt.Fprintf(stderr, "%s: invalid configuration:\n", opts.ConfigPath)
			for _, p := range service.Problems(err) {
				fmt.Fprintf(stderr, "  %s\n", p)
			}
			return 1
		}
		fmt.Fprintf(stdout, "%s: configuration OK\n", opts.ConfigPath)
		return 0
	}
	sigs, stop := signals()
	defer stop()
	svc, err := service.New(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz: %v\n", err)
		return 1
	}
	if err := svc.Run(ctx, sigs); err != nil {
		fmt.Fprintf(stderr, "extauthz: %v\n", err)
		return 1
	}
	return 0
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	grpcAddr := fs.String("grpc", "127.0.0.1:9191", "gRPC listen `ADDR` of the demo service")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	idp, err := demo.Start("127.0.0.1:0", "")
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	defer idp.Close()
	caFile, err := writeTemp("extauthz-demo-ca-*.pem", idp.CA.PEM())
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	defer os.Remove(caFile)

	sigs, stop := signals()
	defer stop()
	svc, err := service.New(ctx, service.Options{
		Config: demo.Config(demo.ConfigParams{
			GRPCAddr: *grpcAddr,
			Issuer:   idp.IdP.Issuer(),
			JWKSURL:  idp.JWKSURL(),
			CAFile:   caFile,
		}),
		DrainDelay: -1, // a demo stops at once on Ctrl-C
	})
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n(is %s in use? pick another address with -grpc 127.0.0.1:PORT)\n", err, *grpcAddr)
		return 1
	}
	valid, err := idp.IdP.Mint("alice", time.Hour, map[string]any{"email": "alice@demo.test"})
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	expired, err := idp.IdP.Mint("alice", -time.Hour, nil)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	if err := demo.Instructions(stdout, self(), svc.Addr().String(), valid, expired); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	if err := svc.Run(ctx, sigs); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	return 0
}

func runDemoIdP(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo-idp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8443", "HTTPS listen `ADDR`")
	caOut := fs.String("ca-out", "", "write the generated CA certificate (PEM) to `FILE`")
	hostname := fs.String("hostname", "", "host `NAME` in the issuer and the certificate (default: the listen IP)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	idp, err := demo.Start(*listen, *hostname)
	if err != nil {
		fmt.Fprintf(stderr, "demo-idp: %v\n", err)
		return 1
	}
	defer idp.Close()
	if *caOut != "" {
		if err := os.WriteFile(*caOut, idp.CA.PEM(), 0o644); err != nil {
			fmt.Fprintf(stderr, "demo-idp: write CA: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "demo identity provider\n  issuer: %s\n  jwks:   %s\n  token:  %s%s?sub=alice&tenant=%s\n",
		idp.IdP.Issuer(), idp.JWKSURL(), idp.URL(), demo.TokenPath, demo.TenantID)
	sigs, stop := signals()
	defer stop()
	for sig := range sigs {
		if sig != syscall.SIGHUP {
			break
		}
	}
	return 0
}

// self is how the printed demo commands invoke this binary: "go run" builds
// it in a temporary directory that is gone when it exits.
func self() string {
	if strings.Contains(os.Args[0], "go-build") {
		return "go run ./cmd/extauthz"
	}
	return os.Args[0]
}

func writeTemp(pattern string, data []byte) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", pattern, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}
