package tenants

import (
	"fmt"
	"os"
	"strings"
)

// ResolveURL returns the Redis URL: url, or the trimmed contents of
// url_file. Its errors never quote the file's contents (they hold a password).
func (r *Redis) ResolveURL() (string, error) {
	if r.URLFile == "" {
		return r.URL, nil
	}
	b, err := os.ReadFile(r.URLFile)
	if err != nil {
		return "", fmt.Errorf("read jwks.redis.url_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
