package e2e

import (
	"encoding/json"
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

func TestVersion_JSON(t *testing.T) {
	code, stdout, stderr := run(t, "version", "-json")
	var got map[string]string
	if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil {
		t.Fatalf("extauthz version -json: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	want := map[string]string{"version": e2eVersion, "revision": e2eRevision, "goversion": runtime.Version()}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
