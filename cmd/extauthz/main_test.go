package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/extauthz/extauthz/internal/checkclient"
	"github.com/extauthz/extauthz/internal/demo"
	"github.com/extauthz/extauthz/internal/porttest"
	"github.com/extauthz/extauthz/internal/service"
)

// TestUsage_EveryCommandOnce: `extauthz -h` lists every command's
// synopsis, and each command's -h prints its own, from the one table.
func TestUsage_EveryCommandOnce(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	for _, c := range commands() {
		if n := strings.Count(stderr.String(), c.synopsis+"\n"); n != 1 {
			t.Errorf("extauthz -h shows %q %d times, want once:\n%s", c.synopsis, n, stderr.String())
		}
		if c.name == "" {
			continue
		}
		var out bytes.Buffer
		if code := run([]string{c.name, "-h"}, io.Discard, &out); code != 0 {
			t.Errorf("%s -h: exit %d", c.name, code)
		}
		if !strings.HasPrefix(out.String(), "usage: "+c.synopsis+"\n") {
			t.Errorf("%s -h starts %q, want its synopsis", c.name, out.String())
		}
	}
}

var (
	synopsisFlag = regexp.MustCompile(`(?:^|[\s\[])-([A-Za-z][\w-]*)`)
	defaultsFlag = regexp.MustCompile(`(?m)^  -([A-Za-z][\w-]*)`)
)

// TestUsage_SynopsisNamesEveryFlag: a command's synopsis names exactly the
// flags it defines, so the one usage text cannot drift from the code.
func TestUsage_SynopsisNamesEveryFlag(t *testing.T) {
	for _, c := range commands() {
		args := []string{"-h"}
		if c.name != "" {
			args = []string{c.name, "-h"}
		}
		var out bytes.Buffer
		run(args, io.Discard, &out)
		var defined, named []string
		for _, m := range defaultsFlag.FindAllStringSubmatch(out.String(), -1) {
			defined = append(defined, m[1])
		}
		for _, m := range synopsisFlag.FindAllStringSubmatch(c.synopsis, -1) {
			named = append(named, m[1])
		}
		slices.Sort(defined)
		slices.Sort(named)
		if !slices.Equal(defined, slices.Compact(named)) || len(defined) == 0 {
			t.Errorf("%q: synopsis names flags %v, the command defines %v", c.name, named, defined)
		}
	}
}

// TestUsage_READMETableIsTheSynopses: README.md's command table shows each
// synopsis verbatim, and nothing else.
func TestUsage_READMETableIsTheSynopses(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(extauthz[^`]*)` \\| ").FindAllStringSubmatch(string(b), -1) {
		rows = append(rows, strings.ReplaceAll(m[1], `\|`, "|")) // a | escaped for the Markdown table
	}
	var want []string
	for _, c := range commands() {
		want = append(want, c.synopsis)
	}
	if !slices.Equal(rows, want) {
		t.Errorf("README command table:\n  %s\nwant the synopses:\n  %s", strings.Join(rows, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestServe_BadArguments: a stray argument or an unknown command is a
// usage error (exit 2) that shows the usage; no -config is one too.
func TestServe_BadArguments(t *testing.T) {
	for _, args := range [][]string{{"-config", "x.yaml", "serve"}, {"bogus"}, {}, {"-nope"}} {
		var stderr bytes.Buffer
		if code := run(args, io.Discard, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// startService runs the real service on the demo configuration.
func startService(t *testing.T) (addr string, idp *demo.Server) {
	t.Helper()
	idp, err := demo.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, idp.CA.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(context.Background(), service.Options{
		Config:     demo.Config(demo.ConfigParams{GRPCAddr: "127.0.0.1:0", Issuer: idp.IdP.Issuer(), JWKSURL: idp.JWKSURL(), CAFile: ca}),
		DrainDelay: -1,
		LogOutput:  io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background(), sigs) }()
	t.Cleanup(func() {
		sigs <- syscall.SIGTERM
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	// Health follows readiness: wait until the first fetch made it SERVING.
	conn, err := checkclient.Dial(svc.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Watch sends the status, then each change: wait for SERVING on it. The
	// real-time bound only turns a hang into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		st, err := w.Recv()
		if err != nil {
			t.Fatalf("service never SERVING: %v", err)
		}
		if st.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
	}
	return svc.Addr().String(), idp
}

func TestClient_ExitCodes(t *testing.T) {
	addr, idp := startService(t)
	valid, err := idp.IdP.Mint("alice", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := idp.IdP.Mint("alice", -time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"allow", []string{"-addr", addr, "-host", demo.Host, "-token", valid, "-H", "X-Auth-Email: forged"}, exitAllow, "remove_header: x-auth-email"},
		{"deny", []string{"-addr", addr, "-host", demo.Host, "-token", expired}, exitDeny, "reason: token_expired"},
		{"deny by context extension", []string{"-addr", addr, "-host", demo.Host, "-token", valid, "-ext", "tenant=other"}, exitDeny, "http_status: 403"},
		{"no host", []string{"-addr", addr}, exitError, ""},
		{"bad header flag", []string{"-addr", addr, "-host", demo.Host, "-H", "nocolon"}, exitError, ""},
		{"bad ext flag", []string{"-addr", addr, "-host", demo.Host, "-ext", "novalue"}, exitError, ""},
		{"stray argument", []string{"-addr", addr, "-host", demo.Host, "extra"}, exitError, ""},
		{"nothing listening", []string{"-addr", porttest.FreeAddr(t), "-host", demo.Host, "-timeout", "2s"}, exitError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runClient(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.out) {
				t.Errorf("exit %d, output %q (stderr %q); want exit %d with %q", code, stdout.String(), stderr.String(), tt.code, tt.out)
			}
		})
	}
}

func TestHealth_ExitCodes(t *testing.T) {
	addr, _ := startService(t)
	var stdout, stderr bytes.Buffer
	if code := runHealth(context.Background(), []string{"-addr", addr}, &stdout, &stderr); code != 0 || strings.TrimSpace(stdout.String()) != "SERVING" {
		t.Errorf("exit %d, %q %q", code, stdout.String(), stderr.String())
	}
	if code := runHealth(context.Background(), []string{"-addr", addr, "-service", "no.such.Service"}, &stdout, &stderr); code == 0 {
		t.Error("exit 0 for an unknown service")
	}
	if code := runHealth(context.Background(), []string{"-addr", porttest.FreeAddr(t), "-timeout", "2s"}, &stdout, &stderr); code == 0 {
		t.Error("exit 0 with nothing listening")
	}
}
