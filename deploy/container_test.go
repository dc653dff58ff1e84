package deploy

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/extauthz/extauthz/internal/redisstore"
	"github.com/extauthz/extauthz/internal/tenants"
)

const (
	composeFileName = "docker-compose.yml"
	dockerfileName  = "Dockerfile"
	makefileName    = "Makefile"
	goModFile       = "go.mod"
	binaryInImage   = "/extauthz"
	// buildCommand is the one way the static binary is built: the
	// Dockerfile runs it and the Makefile's build-static target must too
	// (only the -o operand may differ).
	buildCommand = `CGO_ENABLED=0 go build -trimpath -ldflags="` + releaseLDFlags + `" -o /out/extauthz ./cmd/extauthz`
	// releaseLDFlags strip the binary and stamp the version and revision
	// (internal/version) from the build arguments: the Dockerfile's ARG, the
	// Makefile's variables, scripts/release.sh's shell variables.
	releaseLDFlags = "-s -w -X github.com/extauthz/extauthz/internal/version.version=${VERSION} -X github.com/extauthz/extauthz/internal/version.revision=${REVISION}"
	releaseScript  = "scripts/release.sh"
)

// ociLabels are the image labels the runtime stage must set, and to what.
var ociLabels = map[string]string{
	"org.opencontainers.image.version":  "${VERSION}",
	"org.opencontainers.image.revision": "${REVISION}",
	"org.opencontainers.image.licenses": "Apache-2.0",
}

// The compose file, as far as the demo uses it. Decoding is strict, so a
// misspelt key fails; a key the demo starts to use must be added here.
type composeFile struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
}

type composeService struct {
	Image       string                      `json:"image"`
	Build       *composeBuild               `json:"build"`
	Command     []string                    `json:"command"`
	Volumes     []string                    `json:"volumes"`
	Ports       []string                    `json:"ports"`
	Environment map[string]string           `json:"environment"`
	DependsOn   map[string]composeCondition `json:"depends_on"`
	Restart     string                      `json:"restart"`
	ReadOnly    bool                        `json:"read_only"`
	Healthcheck *struct {
		Disable bool `json:"disable"`
	} `json:"healthcheck"`
}

type composeBuild struct {
	Context    string `json:"context"`
	Dockerfile string `json:"dockerfile"`
}

type composeCondition struct {
	Condition string `json:"condition"`
}

// mount is one short-syntax volume entry, SOURCE:TARGET[:MODE].
type mount struct{ source, target string }

func (s composeService) mounts() []mount {
	var out []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			out = append(out, mount{parts[0], parts[1]})
		}
	}
	return out
}

// flag returns the value after name in argv ("" when absent).
func flag(argv []string, name string) string {
	i := slices.Index(argv, name)
	if i < 0 || i+1 >= len(argv) {
		return ""
	}
	return argv[i+1]
}

// composeDemo is what the compose checks derive, for the Dockerfile's.
type composeDemo struct {
	config *tenants.Config // extauthz's config, as mounted
}

// checkCompose checks docker-compose.yml: it parses, names only files of
// the repository, and its services agree with one another: extauthz reads
// the CA demo-idp writes, trusts demo-idp's issuer, finds Redis; Envoy runs
// envoy.yaml with the Envoy version whose API envoy_test checks it against.
func checkCompose(r repo) (*composeDemo, error) {
	b, err := r.read(composeFileName)
	if err != nil {
		return nil, err
	}
	var cf composeFile
	if err := yaml.UnmarshalStrict(b, &cf); err != nil {
		return nil, fmt.Errorf("%s: %w", composeFileName, err)
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(composeFileName+": "+format, args...))
	}
	for _, name := range []string{"envoy", "extauthz", "demo-idp", "echo", "redis"} {
		if _, ok := cf.Services[name]; !ok {
			fail("no service %q", name)
		}
	}

	// Every file it names exists; every named volume is declared.
	for name, s := range cf.Services {
		if s.Image == "" && s.Build == nil {
			fail("service %s: neither image nor build", name)
		}
		if s.Build != nil {
			if !r.isDir(s.Build.Context) {
				fail("service %s: build context %q is not a directory of the repository", name, s.Build.Context)
			} else if df := path.Join(s.Build.Context, cmp.Or(s.Build.Dockerfile, "Dockerfile")); !r.exists(df) {
				fail("service %s: build dockerfile %q does not exist", name, df)
			}
		}
		for _, m := range s.mounts() {
			switch {
			case strings.HasPrefix(m.source, "/"):
				fail("service %s: volume %q mounts a host path outside the repository", name, m.source)
			case strings.HasPrefix(m.source, "."):
				if !r.exists(m.source) {
					fail("service %s: volume source %q does not exist in the repository", name, m.source)
				}
			default:
				if _, ok := cf.Volumes[m.source]; !ok {
					fail("service %s: named volume %q is not declared under volumes", name, m.source)
				}
			}
		}
		for dep := range s.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				fail("service %s: depends_on %q, which is no service", name, dep)
			}
		}
	}

	// extauthz: the config it is started with, from the repository.
	ext := cf.Services["extauthz"]
	demo := &composeDemo{}
	cfgPath := flag(ext.Command, "-config")
	var cfgSource string
	for _, m := range ext.mounts() {
		if m.target == cfgPath {
			cfgSource = m.source
		}
	}
	if cfgSource == "" {
		fail("service extauthz: -config %q is not a file mounted from the repository", cfgPath)
	} else if cb, err := r.read(path.Clean(cfgSource)); err != nil {
		fail("service extauthz: %v", err)
	} else if demo.config, err = loadConfig(cb); err != nil {
		fail("service extauthz: %s: %v", cfgSource, err)
	}

	// demo-idp: started as the contract says, and extauthz trusts it.
	idp := cf.Services["demo-idp"]
	if len(idp.Command) == 0 || idp.Command[0] != "demo-idp" {
		fail("service demo-idp: command must start with the demo-idp subcommand")
	}
	listen, caOut, hostname := flag(idp.Command, "-listen"), flag(idp.Command, "-ca-out"), flag(idp.Command, "-hostname")
	if listen == "" || caOut == "" || hostname == "" {
		fail("service demo-idp: command needs -listen, -ca-out and -hostname")
	}
	if idp.Healthcheck == nil || !idp.Healthcheck.Disable {
		fail("service demo-idp: disable the image's HEALTHCHECK (it probes extauthz's gRPC port, which demo-idp does not serve)")
	}
	_, idpPort, _ := net.SplitHostPort(listen)
	if !slices.ContainsFunc(idp.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+idpPort) }) {
		fail("service demo-idp: port %s is not published, so the docs' curl for /token cannot reach it", idpPort)
	}
	for _, p := range idp.Ports {
		// HOST_IP:HOST_PORT:CONTAINER_PORT; without HOST_IP Docker
		// publishes on every interface of the host.
		if host, _, ok := strings.Cut(p, ":"); !ok || strings.Count(p, ":") < 2 || !tenants.IsLoopback(host+":0") {
			fail("service demo-idp: port %q is published beyond loopback; its /token mints valid tokens for anyone who reaches it (use \"127.0.0.1:%s:%s\")", p, idpPort, idpPort)
		}
	}
	if cfg := demo.config; cfg != nil {
		if cfg.JWKS.CAFile != caOut {
			fail("extauthz config jwks.ca_file %q is not the file demo-idp writes (-ca-out %q)", cfg.JWKS.CAFile, caOut)
		}
		if !sharedVolume(idp, ext, path.Dir(caOut)) {
			fail("services demo-idp and extauthz do not share a volume at %s, where the CA is written", path.Dir(caOut))
		}
		wantHost := net.JoinHostPort(hostname, idpPort)
		for i, t := range cfg.Tenants {
			for j, p := range t.Providers {
				for key, raw := range map[string]string{"issuer": p.Issuer, "jwks_url": p.JWKSURL} {
					if u, err := url.Parse(raw); err != nil || u.Host != wantHost {
						fail("extauthz config tenants[%d].providers[%d].%s %q: want host %s (demo-idp's -hostname and -listen port)", i, j, key, raw, wantHost)
					}
				}
			}
		}
		if rd := cfg.JWKS.Redis; rd != nil {
			if u, err := url.Parse(rd.URL); err != nil || cf.Services[u.Hostname()].Image == "" {
				fail("extauthz config jwks.redis.url %q: host is no compose service", rd.URL)
			}
			i := slices.IndexFunc(ext.mounts(), func(m mount) bool { return m.target == rd.HMACKeyFile })
			if i < 0 {
				fail("extauthz config jwks.redis.hmac_key_file %q is not mounted into service extauthz", rd.HMACKeyFile)
			} else if b, err := r.read(path.Clean(ext.mounts()[i].source)); err != nil {
				fail("jwks.redis.hmac_key_file's source: %v", err)
			} else if _, err := redisstore.ParseHMACKeys(b); err != nil {
				fail("jwks.redis.hmac_key_file's source %s: %v", ext.mounts()[i].source, err)
			}
		}
	}

	// envoy: runs envoy/envoy.yaml, with the Envoy release whose API
	// go-control-plane (go.mod) describes, the one envoy_test checks against.
	env := cf.Services["envoy"]
	cPath := flag(env.Command, "-c")
	if !slices.ContainsFunc(env.mounts(), func(m mount) bool { return m.target == cPath && path.Clean(m.source) == "envoy/envoy.yaml" }) {
		fail("service envoy: -c %q is not envoy/envoy.yaml mounted from the repository", cPath)
	}
	if err := checkEnvoyImage(r, env.Image); err != nil {
		fail("service envoy: %v", err)
	}
	return demo, errors.Join(errs...)
}

func sharedVolume(a, b composeService, target string) bool {
	for _, ma := range a.mounts() {
		for _, mb := range b.mounts() {
			if ma.target == target && mb.target == target && ma.source == mb.source {
				return true
			}
		}
	}
	return false
}

var envoyImageRe = regexp.MustCompile(`^envoyproxy/envoy:v(\d+\.\d+)(?:\.\d+|-latest)$`)

// checkEnvoyImage compares the Envoy image's release with the version of
// github.com/envoyproxy/go-control-plane/envoy in go.mod (its versions
// follow Envoy's releases).
func checkEnvoyImage(r repo, image string) error {
	m := envoyImageRe.FindStringSubmatch(image)
	if m == nil {
		return fmt.Errorf("image %q: want envoyproxy/envoy:vX.Y-latest or vX.Y.Z", image)
	}
	gm, err := r.read(goModFile)
	if err != nil {
		return err
	}
	re := regexp.MustCompile(`(?m)^\s*github\.com/envoyproxy/go-control-plane/envoy v(\d+\.\d+)\.`)
	g := re.FindSubmatch(gm)
	if g == nil {
		return errors.New("go.mod does not require github.com/envoyproxy/go-control-plane/envoy")
	}
	if m[1] != string(g[1]) {
		return fmt.Errorf("image %q is Envoy %s, but envoy.yaml is checked against the API of Envoy %s (go.mod)", image, m[1], g[1])
	}
	return nil
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// parseDockerfile reads the instructions of a Dockerfile. It is a small
// reader for the few instructions these checks look at, not a full parser:
// moby/buildkit's parser would pull in a large module tree for ten lines.
func parseDockerfile(b []byte) []instruction {
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// checkDockerfile checks the Dockerfile: a Go build stage running
// buildCommand, a distroless (or scratch) non-root runtime stage, the
// listeners' ports exposed, and a HEALTHCHECK that runs the binary's own
// `health` client on the gRPC port of every config the image is run with.
func checkDockerfile(r repo, configs map[string]*tenants.Config) error {
	b, err := r.read(dockerfileName)
	if err != nil {
		return err
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(dockerfileName+": "+format, args...))
	}
	var froms []string
	var runs, exposed []string
	var user, healthcheck, entrypoint string
	args, labels := map[string]bool{}, map[string]bool{} // of the current stage
	for _, in := range parseDockerfile(b) {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in.args)
			user = "" // USER, ARG and LABEL are per stage
			args, labels = map[string]bool{}, map[string]bool{}
		case "ARG":
			name, _, _ := strings.Cut(in.args, "=")
			args[name] = true
		case "LABEL":
			for _, f := range strings.Fields(in.args) {
				labels[f] = true
			}
		case "RUN":
			runs = append(runs, in.args)
			if in.args == buildCommand && !(args["VERSION"] && args["REVISION"]) {
				fail("the build stage must declare ARG VERSION and ARG REVISION before it runs the build, or nothing is stamped")
			}
		case "USER":
			user = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "HEALTHCHECK":
			healthcheck = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		}
	}
	if len(froms) < 2 {
		fail("want a multi-stage build (a build stage and a runtime stage), found %d FROM", len(froms))
	} else {
		if !strings.HasPrefix(froms[0], "golang:1.26") {
			fail("build stage FROM %q, want golang:1.26 (go.mod's Go)", froms[0])
		}
		final := strings.Fields(froms[len(froms)-1])[0]
		if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
			fail("runtime stage FROM %q, want a minimal static base (distroless static or scratch)", final)
		}
		if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
			fail("runtime stage must set a non-root USER (found %q)", user)
		}
	}
	if !slices.Contains(runs, buildCommand) {
		fail("no RUN %s", buildCommand)
	}
	// The runtime stage labels the image with the version it was built
	// from; an ARG is per stage, so it must be declared there again.
	for k, v := range ociLabels {
		if !labels[fmt.Sprintf("%s=%q", k, v)] {
			fail("runtime stage: no LABEL %s=%q", k, v)
		}
		if name, ok := strings.CutPrefix(v, "${"); ok && !args[strings.TrimSuffix(name, "}")] {
			fail("runtime stage: LABEL %s uses %s, but the stage declares no ARG %s", k, v, strings.TrimSuffix(name, "}"))
		}
	}
	if !strings.Contains(entrypoint, `"`+binaryInImage+`"`) {
		fail("ENTRYPOINT %s does not run %s", entrypoint, binaryInImage)
	}

	// HEALTHCHECK [OPTIONS] CMD ["/extauthz","health","-addr","HOST:PORT"]
	_, cmdJSON, ok := strings.Cut(healthcheck, "CMD ")
	var argv []string
	if !ok || json.Unmarshal([]byte(cmdJSON), &argv) != nil {
		fail("HEALTHCHECK must be CMD in exec form (JSON array), found %q", healthcheck)
	} else {
		if len(argv) < 2 || argv[0] != binaryInImage || argv[1] != "health" {
			fail("HEALTHCHECK %v must run the binary's own client: %s health -addr HOST:PORT (no curl in the image)", argv, binaryInImage)
		}
		addr := flag(argv, "-addr")
		host, port, err := net.SplitHostPort(addr)
		if err != nil || (host != "127.0.0.1" && host != "localhost") {
			fail("HEALTHCHECK -addr %q must be a loopback HOST:PORT", addr)
			port = ""
		}
		for name, cfg := range configs {
			if port == "" {
				break
			}
			p, _, err := listenPort(cfg.Listen.GRPC)
			if err != nil || strconv.Itoa(int(p)) != port {
				fail("HEALTHCHECK probes port %s, but %s serves gRPC on %q", port, name, cfg.Listen.GRPC)
			}
			if !reachableFromOutside(cfg.Listen.GRPC) && !strings.HasPrefix(cfg.Listen.GRPC, "127.0.0.1:") {
				fail("HEALTHCHECK probes loopback, but %s binds gRPC to %q", name, cfg.Listen.GRPC)
			}
		}
	}
	for name, cfg := range configs {
		for _, addr := range []string{cfg.Listen.GRPC, cfg.Listen.HTTP, cfg.Listen.Admin} {
			p, off, err := listenPort(addr)
			if err == nil && !off && !slices.Contains(exposed, strconv.Itoa(int(p))) {
				fail("EXPOSE does not list port %d, a listener of %s", p, name)
			}
		}
	}
	return errors.Join(errs...)
}

var oFlagRe = regexp.MustCompile(`-o \S+`)

// checkMakefile compares the Makefile's build-static command with the
// Dockerfile's (the -o operand may differ: bin/ locally, /out in the image)
// and requires a docker target that builds this Dockerfile.
func checkMakefile(makefile []byte) error {
	recipes := makeRecipes(makefile)
	var errs []error
	want := oFlagRe.ReplaceAllString(buildCommand, "-o OUT")
	switch got := recipes["build-static"]; {
	case len(got) == 0:
		errs = append(errs, fmt.Errorf("Makefile: no build-static target; add:\nbuild-static: ## static binary, exactly as the Dockerfile builds it\n\t%s", strings.Replace(buildCommand, "/out/extauthz", "bin/extauthz", 1)))
	case oFlagRe.ReplaceAllString(got[0], "-o OUT") != want:
		errs = append(errs, fmt.Errorf("Makefile: build-static runs\n\t%s\nbut the Dockerfile runs\n\t%s\n(only -o may differ)", got[0], buildCommand))
	}
	if !slices.ContainsFunc(recipes["release"], func(l string) bool { return strings.HasPrefix(l, "bash "+releaseScript+" ") }) {
		errs = append(errs, fmt.Errorf("Makefile: no release target running bash %s", releaseScript))
	}
	if !slices.ContainsFunc(recipes["docker"], func(l string) bool { return strings.HasPrefix(l, "docker build") }) {
		errs = append(errs, errors.New("Makefile: no docker target running `docker build`; add:\ndocker: ## the runtime image (Dockerfile), tagged extauthz:dev\n\tdocker build -t extauthz:dev ."))
	}
	return errors.Join(errs...)
}

// checkReleaseScript checks that scripts/release.sh builds static binaries
// stamped as the Dockerfile stamps them, and writes their checksums.
func checkReleaseScript(script []byte) error {
	var errs []error
	var build string
	for _, line := range strings.Split(string(script), "\n") {
		if strings.Contains(line, "go build") {
			build = strings.TrimSpace(line)
		}
	}
	if !strings.HasPrefix(build, "CGO_ENABLED=0 ") || !strings.Contains(build, ` -trimpath -ldflags="`+releaseLDFlags+`" `) {
		errs = append(errs, fmt.Errorf("%s: its go build %q must be CGO_ENABLED=0 (static) with -trimpath -ldflags=\"%s\", as the Dockerfile", releaseScript, build, releaseLDFlags))
	}
	if !bytes.Contains(script, []byte("sha256sum ")) {
		errs = append(errs, fmt.Errorf("%s: writes no SHA-256 checksums", releaseScript))
	}
	return errors.Join(errs...)
}

// makeRecipes maps each rule's target to its recipe lines (tab-indented).
func makeRecipes(b []byte) map[string][]string {
	out := map[string][]string{}
	var targets []string
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "\t"):
			for _, t := range targets {
				out[t] = append(out[t], strings.TrimSpace(line))
			}
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		default:
			targets = nil
			head, _, ok := strings.Cut(line, ":")
			if ok && !strings.Contains(head, "=") && !strings.HasPrefix(line, ".") {
				targets = strings.Fields(head)
			}
		}
	}
	return out
}
