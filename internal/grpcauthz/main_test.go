package grpcauthz

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind (gRPC
// servers, key-source fetches).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
