package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/jwkscache"
)

// repo reads the repository's files, with some replaced in memory: the
// negative tests check mutated copies without touching the tree.
type repo struct {
	root      string
	overrides map[string][]byte // repository-relative path → content
}

func (r repo) read(rel string) ([]byte, error) {
	if b, ok := r.overrides[rel]; ok {
		return b, nil
	}
	return os.ReadFile(filepath.Join(r.root, filepath.FromSlash(rel)))
}

func (r repo) exists(rel string) bool {
	if _, ok := r.overrides[rel]; ok {
		return true
	}
	_, err := os.Stat(filepath.Join(r.root, filepath.FromSlash(path.Clean(rel))))
	return err == nil
}

func (r repo) isDir(rel string) bool {
	fi, err := os.Stat(filepath.Join(r.root, filepath.FromSlash(path.Clean(rel))))
	return err == nil && fi.IsDir()
}

// yamlFiles lists the *.yaml files of a repository directory, sorted.
func (r repo) yamlFiles(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(r.root, filepath.FromSlash(dir), "*.yaml"))
	if err != nil {
		return nil, err
	}
	var rels []string
	for _, m := range matches {
		rels = append(rels, path.Join(dir, filepath.Base(m)))
	}
	return rels, nil
}

// splitDocuments splits a multi-document YAML stream at its "---" lines,
// with apimachinery's reader (what kubectl uses), dropping empty documents.
func splitDocuments(b []byte) ([][]byte, error) {
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// loadConfig parses and validates an extauthz config as
// `extauthz -config FILE -check` does: tenants.Parse, then Validate with a
// jwkscache registry's rules for every provider's cache registration.
// jwks.ca_file, admin.token_file and jwks.redis.hmac_key_file are the
// exceptions: they name files inside the container (the compose demo's
// shared volume, a Secret), which the repository does not have at that path.
func loadConfig(b []byte) (*tenants.Config, error) {
	cfg, err := tenants.Parse(b)
	if err != nil {
		return nil, err
	}
	reg, err := jwkscache.New(jwkscache.Options{AllowedDomains: cfg.JWKS.AllowedDomains})
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	var kept []error
	for _, e := range tenants.Problems(cfg.Validate(reg.Validate)) {
		var pe *tenants.PathError
		if errors.As(e, &pe) && (pe.Path == "jwks.ca_file" ||
			pe.Path == "admin.token_file" && strings.HasPrefix(pe.Reason, "cannot read") ||
			pe.Path == "jwks.redis.hmac_key_file" && cfg.JWKS.Redis.HMACKeyFile != "") {
			continue
		}
		kept = append(kept, e)
	}
	if err := errors.Join(kept...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// listenPort returns the port of a listen address; off is true for an empty
// address (the listener is off).
func listenPort(addr string) (port int32, off bool, err error) {
	if addr == "" {
		return 0, true, nil
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, false, err
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return 0, false, fmt.Errorf("port %q: %w", p, err)
	}
	return int32(n), false, nil
}

// reachableFromOutside reports whether a listener bound to addr can be
// reached through the pod's or container's IP (a probe, a Service, Envoy).
func reachableFromOutside(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}
