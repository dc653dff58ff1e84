package tracing

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/extauthz/extauthz/internal/tenants"
)

// maxHeadersBytes bounds tracing.headers_file: a few credentials.
const maxHeadersBytes = 64 << 10

// CheckHeadersFile reads path as tracing.headers_file and reports what is
// wrong with it (the -check flag), never a value.
func CheckHeadersFile(path string) error {
	_, err := readHeaders(path)
	return err
}

// readHeaders reads the export headers of path (none when path is ""): one
// "name: value" a line, blank lines and lines starting with # skipped.
// Errors name the line, never its value (a credential).
func readHeaders(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	data, err := tenants.ReadFile(path, maxHeadersBytes)
	if err != nil {
		return nil, fmt.Errorf("tracing.headers_file: %w", err)
	}
	return parseHeaders(data)
}

func parseHeaders(data []byte) (map[string]string, error) {
	h := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !validName(name) {
			return nil, fmt.Errorf("tracing.headers_file: line %d: want \"name: value\" with a header name of letters, digits and -", n)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return nil, fmt.Errorf("tracing.headers_file: line %d: the value holds a control character", n)
		}
		h[strings.ToLower(name)] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tracing.headers_file: %w", err)
	}
	return h, nil
}

// validName: an RFC 9110 §5.1 token, restricted to what gRPC metadata also
// accepts (letters, digits, '-', '_', '.').
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}
