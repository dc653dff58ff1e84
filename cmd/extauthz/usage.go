package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one way to run the binary. Its synopsis is the one place its
// usage is written: `extauthz -h`, the command's own -h and its errors all
// print it, and main_test.go holds it to the command's flags and to the
// README's table.
type command struct {
	name     string // the first argument; "" for the server
	synopsis string
	run      func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands lists every command, the server first.
func commands() []command {
	return []command{
		{"", "extauthz -config FILE [-check] [-reflection] [-watch=false] [-log-format json|text] [-drain-delay D] [-stop-timeout D]", runServe},
		{"demo", "extauthz demo [-grpc ADDR] [-reflection]", runDemo},
		{"demo-idp", "extauthz demo-idp [-listen ADDR] [-ca-out FILE] [-hostname NAME]", runDemoIdP},
		{"client", "extauthz client -host HOST [-addr HOST:PORT] [-path /p] [-method GET] [-H 'name: value']... [-token TOKEN] [-request-id ID] [-ext key=value]... [-timeout D]", runClient},
		{"health", "extauthz health [-addr HOST:PORT] [-service NAME] [-timeout D]", runHealth},
		{"version", "extauthz version [-json]", runVersion},
	}
}

// find returns the command named name.
func find(name string) command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	panic("extauthz: no command " + name) // the callers name their own command
}

// writeUsage writes every command's synopsis.
func writeUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString("usage:\n")
	for _, c := range commands() {
		b.WriteString("  " + c.synopsis + "\n")
	}
	_, _ = io.WriteString(w, b.String())
}

// newFlagSet returns the flag set of command name: errors are returned, not
// fatal, and -h prints the command's synopsis and its flags (the server's
// also lists the other commands).
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	c := find(name)
	fs := flag.NewFlagSet("extauthz "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		if name == "" {
			writeUsage(stderr)
			fmt.Fprint(stderr, "\nflags of the server:\n")
		} else {
			fmt.Fprintf(stderr, "usage: %s\n\nflags:\n", c.synopsis)
		}
		fs.PrintDefaults()
	}
	return fs
}
