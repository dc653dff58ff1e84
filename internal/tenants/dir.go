package tenants

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Bounds of tenants_dir: a tenant file is a few hundred bytes, and a
// control plane may write thousands of them.
const (
	maxTenantFileBytes = 1 << 20
	maxTenantFiles     = 100_000
)

// Inputs are the bytes one load reads: the configuration file and the
// tenant files of its tenants_dir. Read them with Loader.Read.
type Inputs struct {
	main     []byte
	mainName string // the configuration file's path, or "config" without one
	dir      string // tenants_dir, resolved; "" when not set
	files    []tenantFile
	fingerpr string
}

// tenantFile is one file of tenants_dir, or the reason it could not be read.
type tenantFile struct {
	path string
	data []byte
	err  error
}

// TenantsDir returns the tenants_dir read, resolved against the
// configuration file's directory; "" when none is set.
func (in *Inputs) TenantsDir() string { return in.dir }

// Fingerprint identifies the bytes read: two reads with the same
// fingerprint would load the same configuration.
func (in *Inputs) Fingerprint() string { return in.fingerpr }

// FileProblem is a tenant file of tenants_dir that could not be used. It
// does not block the other tenants: the file's tenant keeps its last good
// configuration (Kept) or stays absent if the file never loaded.
type FileProblem struct {
	// Source is the tenant file's path.
	Source string
	// Problems are what is wrong, each naming the file's YAML path
	// (providers[0].jwks_url: must use https).
	Problems []string
	// Kept: the tenant from this file's last good version stays in use.
	Kept bool
}

// Error implements error: the path, then every problem.
func (p FileProblem) Error() string {
	s := p.Source + ": " + strings.Join(p.Problems, "; ")
	if p.Kept {
		s += " (its last good version stays in use)"
	}
	return s
}

// Loaded is a loaded configuration: the main file merged with tenants_dir.
type Loaded struct {
	// Config is the merged configuration; validate accepted it.
	Config *Config
	// Problems are the tenant files left out or kept at their last good
	// version.
	Problems []FileProblem
	// Hash identifies the effective configuration: the first 16 hex digits
	// of the SHA-256 of the merged configuration in canonical YAML. Replicas
	// with the same Hash run the same configuration.
	Hash string

	fromFiles map[string]Tenant // tenant file path → the tenant used from it, fresh ones only
}

// Loader reads the configuration file and the tenants_dir it names, one
// tenant per file, merged after the file's own tenants. It remembers each
// tenant file's last good tenant (Commit), so that a broken file does not
// block the others: its tenant keeps its last good configuration. A Loader
// is not safe for concurrent use; the service serialises loads.
type Loader struct {
	path     string
	data     []byte
	lastGood map[string]Tenant
}

// NewLoader returns a Loader of the configuration file at path or, when
// path is empty, of the YAML in data (a relative tenants_dir is then
// relative to the working directory).
func NewLoader(path string, data []byte) *Loader {
	return &Loader{path: path, data: data, lastGood: map[string]Tenant{}}
}

// Read reads the configuration file and every *.yaml and *.yml file of its
// tenants_dir (hidden names, such as Kubernetes' ..data, are skipped;
// symbolic links are followed). It fails when the configuration file or the
// directory cannot be read; a tenant file that cannot be read is a problem
// of that file alone, reported by Load.
func (l *Loader) Read() (*Inputs, error) {
	in := &Inputs{mainName: "config"}
	if l.path != "" {
		in.mainName = l.path
		data, err := ReadFile(l.path, maxConfigBytes)
		if err != nil {
			return nil, fmt.Errorf("tenants: load config: %w", err)
		}
		in.main = data
	} else {
		if len(l.data) == 0 {
			return nil, errors.New("tenants: no configuration: set a path or the YAML")
		}
		in.main = l.data
	}
	var probe struct {
		TenantsDir string `yaml:"tenants_dir"`
	}
	_ = yaml.Unmarshal(in.main, &probe) // Load reports a broken file
	if d := probe.TenantsDir; d != "" {
		if !filepath.IsAbs(d) && l.path != "" {
			d = filepath.Join(filepath.Dir(l.path), d)
		}
		in.dir = d
		files, err := readTenantsDir(d)
		if err != nil {
			return nil, &PathError{Path: "tenants_dir", Reason: err.Error()}
		}
		in.files = files
	}
	h := sha256.New()
	writeChunk := func(b []byte) {
		_ = binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	writeChunk(in.main)
	for _, f := range in.files {
		writeChunk([]byte(f.path))
		if f.err != nil {
			writeChunk([]byte("error: " + f.err.Error()))
			continue
		}
		writeChunk(f.data)
	}
	in.fingerpr = hex.EncodeToString(h.Sum(nil))
	return in, nil
}

func readTenantsDir(dir string) ([]tenantFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read directory: %w", err)
	}
	var files []tenantFile
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		if len(files) == maxTenantFiles {
			return nil, fmt.Errorf("more than %d tenant files", maxTenantFiles)
		}
		path := filepath.Join(dir, name)
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			continue
		}
		data, err := ReadFile(path, maxTenantFileBytes)
		files = append(files, tenantFile{path: path, data: data, err: err})
	}
	return files, nil // os.ReadDir sorts by name
}

// ReadFile reads a file the configuration names (the configuration itself,
// a tenant file, a token, CA or headers file), refusing one larger than
// limit bytes: such a file is a mistake, and reading it whole would cost
// memory. Errors name the file.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// tenantIndexRe matches the tenant index a problem's path starts with.
var tenantIndexRe = regexp.MustCompile(`^tenants\[(\d+)\]`)

// entryState is what a tenant file contributes to a load.
type entryState int

const (
	entryFresh   entryState = iota // the file's current tenant
	entryKept                      // the file's last good tenant
	entryDropped                   // nothing
)

// entry is one tenant file's contribution to a load.
type entry struct {
	path     string
	tenant   Tenant
	state    entryState
	problems []string
}

// demote moves e one step down after a problem: fresh to its last good
// version if it has one, otherwise (and from kept) to dropped.
func (l *Loader) demote(e *entry) {
	if t, ok := l.lastGood[e.path]; ok && e.state == entryFresh {
		e.tenant, e.state = t, entryKept
		return
	}
	e.tenant, e.state = Tenant{}, entryDropped
}

// Load parses in, merges the tenant files after the configuration file's
// tenants and validates the result with validate (which returns nil or the
// errors.Join of *PathError and other errors, as Config.Validate does).
//
// A problem of the configuration file refuses the whole load: Load returns
// every such problem, errors.Join-ed (a parse error names the file). A tenant file that does not parse, holds more than one
// tenant, or whose tenant has a problem (an invalid value, an id or host
// another tenant already has) is left out, or replaced by its last good
// version when it has one and that version is still valid; the load goes on
// and reports it in Loaded.Problems.
func (l *Loader) Load(in *Inputs, validate func(*Config) error) (*Loaded, error) {
	cfg, err := Parse(in.main)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.mainName, err)
	}
	mainTenants := cfg.Tenants
	var entries []*entry
	for _, f := range in.files {
		e := &entry{path: f.path}
		if t, err := parseTenantFile(f); err != nil {
			e.problems = []string{err.Error()}
			l.demote(e)
		} else {
			e.tenant = t
		}
		entries = append(entries, e)
	}
	// Each round demotes at least one file, at most twice each, so this ends.
	for range 2*len(entries) + 1 {
		merged := *cfg
		merged.Tenants = slices.Clone(mainTenants)
		var owner []*entry // owner[i-len(mainTenants)]: the entry of merged tenant i
		for _, e := range entries {
			if e.state != entryDropped {
				merged.Tenants = append(merged.Tenants, e.tenant)
				owner = append(owner, e)
			}
		}
		var mainProblems []error
		hit := map[*entry]bool{}
		for _, p := range Problems(validate(&merged)) {
			var pe *PathError
			if errors.As(p, &pe) {
				if m := tenantIndexRe.FindStringSubmatch(pe.Path); m != nil {
					if i, _ := strconv.Atoi(m[1]); i >= len(mainTenants) && i-len(mainTenants) < len(owner) {
						e := owner[i-len(mainTenants)]
						rest := strings.TrimPrefix(strings.TrimPrefix(pe.Path, m[0]), ".")
						if rest == "" {
							rest = "tenant"
						}
						if e.state == entryKept {
							// The last good version no longer fits (an id or a
							// host now taken): the tenant is left out.
							e.problems = append(e.problems, "last good version: "+rest+": "+pe.Reason)
						} else {
							e.problems = append(e.problems, rest+": "+pe.Reason)
						}
						hit[e] = true
						continue
					}
				}
			}
			mainProblems = append(mainProblems, p)
		}
		if len(mainProblems) > 0 {
			return nil, errors.Join(mainProblems...)
		}
		if len(hit) == 0 {
			return l.loaded(&merged, entries)
		}
		for e := range hit {
			l.demote(e)
		}
	}
	return nil, errors.New("tenants: tenants_dir: merge did not settle") // unreachable
}

func (l *Loader) loaded(cfg *Config, entries []*entry) (*Loaded, error) {
	ld := &Loaded{Config: cfg, fromFiles: map[string]Tenant{}}
	for _, e := range entries {
		if e.state != entryDropped {
			ld.fromFiles[e.path] = e.tenant
		}
		if e.problems != nil {
			ld.Problems = append(ld.Problems, FileProblem{Source: e.path, Problems: e.problems, Kept: e.state == entryKept})
		}
	}
	sum, err := configHash(cfg)
	if err != nil {
		return nil, err
	}
	ld.Hash = hex.EncodeToString(sum[:8])
	return ld, nil
}

// configHash is the SHA-256 of cfg's canonical encoding: the JSON of the
// decoded struct (fields in declaration order, map keys sorted), which
// changes with every setting and not with comments, key order or file
// layout. JSON rather than YAML because go-yaml's emitter allocated about
// 200 KB per tenant for it (2 GB for 10,000 tenants, peak RSS over 1 GB
// before the first provider registered); YAML is the fallback for a value
// JSON cannot encode (a claim matcher value that is a map with non-string
// keys).
func configHash(cfg *Config) ([sha256.Size]byte, error) {
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(cfg); err != nil {
		h.Reset()
		canon, yerr := yaml.Marshal(cfg)
		if yerr != nil {
			return [sha256.Size]byte{}, fmt.Errorf("tenants: hash config: %w", yerr)
		}
		h.Write(canon)
	}
	return [sha256.Size]byte(h.Sum(nil)), nil
}

// Commit records ld's tenant files as the last good ones: call it once ld
// is in effect. Files no longer present are forgotten.
func (l *Loader) Commit(ld *Loaded) {
	l.lastGood = ld.fromFiles
}

// parseTenantFile decodes one tenant, strictly, and applies the provider
// defaults Parse applies.
func parseTenantFile(f tenantFile) (Tenant, error) {
	if f.err != nil {
		return Tenant{}, f.err
	}
	var t Tenant
	dec := yaml.NewDecoder(bytes.NewReader(f.data))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		if errors.Is(err, io.EOF) {
			return Tenant{}, errors.New("empty: want one tenant")
		}
		return Tenant{}, fmt.Errorf("parse: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Tenant{}, errors.New("parse: more than one YAML document: want one tenant per file")
	}
	c := Config{Tenants: []Tenant{t}}
	c.applyDefaults(true)
	return c.Tenants[0], nil
}
