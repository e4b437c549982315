package revoke

import (
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/mcp-gateway/mcp-gateway/sharedcache"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	redis.SetLogger(sharedcache.LibraryLogger{Logger: slog.New(slog.DiscardHandler)})
	goleak.VerifyTestMain(m)
}
