package authz

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind (gRPC
// servers, key-source fetches).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The verified-token cache's clean-up goroutine ends by itself once
		// its Server is collected (or Close stops it).
		goleak.IgnoreAnyFunction("github.com/maypok86/otter/v2.periodicCleanUp[...]"))
}
