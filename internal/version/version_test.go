package version

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResolve(t *testing.T) {
	withVCS := func(main string, settings ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/extauthz/extauthz", Version: main}, Settings: settings}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0123abcd"}
	clean := debug.BuildSetting{Key: "vcs.modified", Value: "false"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	tests := []struct {
		name             string
		stampedV, stampR string
		bi               *debug.BuildInfo
		want             Info
	}{
		{"stamped by the release build wins", "v1.2.3", "feedface", withVCS("v9.9.9", rev, dirty),
			Info{"v1.2.3", "feedface", "go1.26.8"}},
		{"go install of a tagged module", "", "", withVCS("v1.2.3"),
			Info{"v1.2.3", UnknownRevision, "go1.26.8"}},
		{"build in a clean checkout", "", "", withVCS("(devel)", rev, clean),
			Info{UnknownVersion, "0123abcd", "go1.26.8"}},
		{"build in a modified checkout", "", "", withVCS("(devel)", rev, dirty),
			Info{UnknownVersion, "0123abcd-dirty", "go1.26.8"}},
		{"no build information at all", "", "", nil,
			Info{UnknownVersion, UnknownRevision, runtime.Version()}},
		{"version stamped, revision from VCS", "v1.2.3", "", withVCS("(devel)", rev, clean),
			Info{"v1.2.3", "0123abcd", "go1.26.8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolve(tt.stampedV, tt.stampR, tt.bi)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("resolve (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInfo_String(t *testing.T) {
	got := Info{"v1.2.3", "0123abcd", "go1.26.8"}.String()
	if want := "extauthz v1.2.3 (revision 0123abcd, go1.26.8)"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}
