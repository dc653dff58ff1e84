package porttest

import (
	"net"
	"testing"
)

func TestFreeAddr_IsLoopbackAndBindable(t *testing.T) {
	addr := FreeAddr(t)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("FreeAddr = %q: %v", addr, err)
	}
	if host != "127.0.0.1" || port == "0" {
		t.Fatalf("FreeAddr = %q, want 127.0.0.1 and a chosen port", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("FreeAddr = %q is not free: %v", addr, err)
	}
	ln.Close()
}
