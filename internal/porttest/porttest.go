// Package porttest picks loopback addresses for tests that start real
// servers (the extauthz binary, redis-server, nginx) which must be told an
// address before they bind it.
package porttest

import (
	"net"
	"testing"
)

// FreeAddr returns a loopback TCP address ("127.0.0.1:port") that was free
// a moment ago. Another process may take it before the caller binds it;
// a caller that cannot afford that retries with a new address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("porttest: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
