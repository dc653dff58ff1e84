// Command extauthz is an Envoy ext_authz gRPC service that verifies JWTs
// for many tenants against their identity providers' JWKS. `extauthz -h`
// lists its commands, each synopsis written once beside the flags it
// describes; README.md describes them.
//
// This package only parses flags and wires packages together.
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

	"github.com/extauthz/extauthz/internal/demo"
	"github.com/extauthz/extauthz/internal/service"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx := context.Background()
	if len(args) == 1 && (args[0] == "-version" || args[0] == "--version") {
		args = []string{"version"} // the flag most tools answer
	}
	if len(args) > 0 {
		for _, c := range commands() {
			if c.name != "" && c.name == args[0] {
				return c.run(ctx, args[1:], stdout, stderr)
			}
		}
	}
	return runServe(ctx, args, stdout, stderr)
}

// parse parses args into fs; done is set with the exit code when the
// command must not run: 0 after -h, 2 after a bad flag or a stray argument.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return 2, true
	}
	return 0, false
}

func signals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("", stderr)
	var opts service.Options
	fs.StringVar(&opts.ConfigPath, "config", "", "configuration `FILE` (YAML)")
	check := fs.Bool("check", false, "validate the configuration, list every problem, and exit")
	fs.BoolVar(&opts.Reflection, "reflection", false, "serve grpc.reflection (also grpc.reflection in the config); off by default")
	fs.StringVar(&opts.LogFormat, "log-format", "", "override log.format: json or text")
	fs.DurationVar(&opts.DrainDelay, "drain-delay", service.DefaultDrainDelay, "on SIGTERM, keep answering this long after health turns NOT_SERVING (negative: none)")
	fs.DurationVar(&opts.StopTimeout, "stop-timeout", service.DefaultStopTimeout, "bound of the graceful stop after the drain")
	fs.BoolVar(&opts.WatchConfig, "watch", true, "reload when the configuration file, its directory or tenants_dir change (SIGHUP always reloads)")
	if code, done := parse(fs, args, stderr); done {
		return code
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
	return exitCode(stderr, "extauthz", serve(ctx, opts))
}

// exitCode prints err, if any, as cmd's error and returns the process's
// exit code: 0 without an error, 1 with one.
func exitCode(stderr io.Writer, cmd string, err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
	return 1
}

// serve runs the service until a signal stops it.
func serve(ctx context.Context, opts service.Options) error {
	sigs, stop := signals()
	defer stop()
	svc, err := service.New(ctx, opts)
	if err != nil {
		return err
	}
	return svc.Run(ctx, sigs)
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", stderr)
	grpcAddr := fs.String("grpc", "127.0.0.1:9191", "gRPC listen `ADDR` of the demo service")
	reflect := fs.Bool("reflection", false, "serve grpc.reflection (for grpcurl)")
	if code, done := parse(fs, args, stderr); done {
		return code
	}
	return exitCode(stderr, "demo", serveDemo(ctx, *grpcAddr, *reflect, stdout))
}

// serveDemo runs the service on grpcAddr for a demo identity provider
// it starts, and prints the commands that try it.
func serveDemo(ctx context.Context, grpcAddr string, reflect bool, stdout io.Writer) error {
	idp, err := demo.Start("127.0.0.1:0", "")
	if err != nil {
		return err
	}
	defer idp.Close()
	caFile, err := writeTemp("extauthz-demo-ca-*.pem", idp.CA.PEM())
	if err != nil {
		return err
	}
	defer os.Remove(caFile)

	sigs, stop := signals()
	defer stop()
	svc, err := service.New(ctx, service.Options{
		Config: demo.Config(demo.ConfigParams{
			GRPCAddr: grpcAddr,
			Issuer:   idp.IdP.Issuer(),
			JWKSURL:  idp.JWKSURL(),
			CAFile:   caFile,
		}),
		DrainDelay: -1, // a demo stops at once on Ctrl-C
		Reflection: reflect,
	})
	if err != nil {
		return fmt.Errorf("%w\n(is %s in use? pick another address with -grpc 127.0.0.1:PORT)", err, grpcAddr)
	}
	valid, err := idp.IdP.Mint("alice", time.Hour, map[string]any{"email": "alice@demo.test"})
	if err != nil {
		return err
	}
	expired, err := idp.IdP.Mint("alice", -time.Hour, nil)
	if err != nil {
		return err
	}
	if err := demo.Instructions(stdout, self(), svc.Addr().String(), valid, expired); err != nil {
		return err
	}
	return svc.Run(ctx, sigs)
}

func runDemoIdP(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo-idp", stderr)
	listen := fs.String("listen", "127.0.0.1:8443", "HTTPS listen `ADDR`")
	caOut := fs.String("ca-out", "", "write the generated CA certificate (PEM) to `FILE`")
	hostname := fs.String("hostname", "", "host `NAME` in the issuer and the certificate (default: the listen IP)")
	if code, done := parse(fs, args, stderr); done {
		return code
	}
	return exitCode(stderr, "demo-idp", serveDemoIdP(*listen, *hostname, *caOut, stdout))
}

// serveDemoIdP runs the demo identity provider on listen until a signal
// other than SIGHUP, writing its CA certificate to caOut when set.
func serveDemoIdP(listen, hostname, caOut string, stdout io.Writer) error {
	idp, err := demo.Start(listen, hostname)
	if err != nil {
		return err
	}
	defer idp.Close()
	if caOut != "" {
		if err := os.WriteFile(caOut, idp.CA.PEM(), 0o644); err != nil {
			return fmt.Errorf("write CA: %w", err)
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
	return nil
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
