package e2e

import (
	"runtime"
	"testing"
)

// TestVersion_PrintsTheStampedVersion: `extauthz version` and `-version`
// print what the build stamped with -ldflags, as `make release` does.
func TestVersion_PrintsTheStampedVersion(t *testing.T) {
	want := "extauthz " + e2eVersion + " (revision " + e2eRevision + ", " + runtime.Version() + ")\n"
	for _, arg := range []string{"version", "-version"} {
		code, stdout, stderr := run(t, arg)
		if code != 0 || stdout != want {
			t.Errorf("extauthz %s: exit %d, stdout %q, stderr %q; want exit 0 and %q", arg, code, stdout, stderr, want)
		}
	}
}
