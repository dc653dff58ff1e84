// Package version says which build of extauthz is running: the release
// version and source revision the build stamped with -ldflags, filled in
// from the module and VCS information Go records in every binary
// (runtime/debug.ReadBuildInfo) when the build stamped nothing.
//
// The release build (make release, make build-static, the Dockerfile) sets
//
//	-X github.com/extauthz/extauthz/internal/version.version=v1.2.3
//	-X github.com/extauthz/extauthz/internal/version.revision=0123abcd...
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker (-ldflags -X); empty in a plain `go build` or `go test`.
// They are written once, before main, and only read afterwards.
var (
	version  string
	revision string
)

// Values used when neither the linker nor the build information says.
const (
	UnknownVersion  = "dev"
	UnknownRevision = "unknown"
)

// Info describes one build.
type Info struct {
	Version   string `json:"version"`   // release version, e.g. v1.2.3, or "dev"
	Revision  string `json:"revision"`  // source revision (VCS commit), "-dirty" appended for a modified tree, or "unknown"
	GoVersion string `json:"goversion"` // the Go toolchain that built the binary, e.g. go1.26.8
}

// String is the one-line form `extauthz version` prints.
func (i Info) String() string {
	return fmt.Sprintf("extauthz %s (revision %s, %s)", i.Version, i.Revision, i.GoVersion)
}

// Get returns the running binary's build: what -ldflags stamped, else what
// runtime/debug.ReadBuildInfo records, else UnknownVersion/UnknownRevision.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, revision, bi)
}

// resolve combines the linker's stamps with the recorded build information
// (nil when the binary has none).
func resolve(stampedVersion, stampedRevision string, bi *debug.BuildInfo) Info {
	info := Info{Version: stampedVersion, Revision: stampedRevision, GoVersion: runtime.Version()}
	if bi == nil {
		return withDefaults(info)
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	// `go install github.com/extauthz/extauthz/cmd/extauthz@v1.2.3` records
	// the module version; a build inside the repository records "(devel)".
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if info.Revision == "" {
		var rev string
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" && modified {
			rev += "-dirty"
		}
		info.Revision = rev
	}
	return withDefaults(info)
}

func withDefaults(i Info) Info {
	if i.Version == "" {
		i.Version = UnknownVersion
	}
	if i.Revision == "" {
		i.Revision = UnknownRevision
	}
	return i
}
