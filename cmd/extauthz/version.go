package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/extauthz/extauthz/internal/version"
)

// runVersion prints the build: the version and revision the release build
// stamped, and the Go version (extauthz_build_info on /metrics says the same).
func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", stderr)
	asJSON := fs.Bool("json", false, `print {"version","revision","goversion"} as JSON`)
	if code, done := parse(fs, args, stderr); done {
		return code
	}
	v := version.Get()
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(v); err != nil {
			fmt.Fprintf(stderr, "extauthz version: %v\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(stdout, v)
	return 0
}
