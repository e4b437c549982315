package jwtaccess

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// key set's Close must stop its background refresh and fetches.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
