package tracing

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// Provider's Shutdown must stop its batch processor and close its
// connections.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
