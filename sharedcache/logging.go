package sharedcache

import (
	"context"
	"fmt"
	"log/slog"
)

// LibraryLogger adapts a slog.Logger to go-redis's logger interface. go-redis
// logs through one process-wide logger (by default the standard library's
// log to stderr), for instance a line per failed dial while Redis is down:
// the gateway routes it to its own structured log at Debug level, once at
// startup, with
//
//	redis.SetLogger(sharedcache.LibraryLogger{Logger: logger})
//
// The Store itself reports what matters (the circuit opening and closing)
// at Warn and Info. go-redis's messages name addresses, never passwords.
type LibraryLogger struct{ Logger *slog.Logger }

// Printf implements go-redis's internal.Logging.
func (l LibraryLogger) Printf(ctx context.Context, format string, v ...any) {
	if l.Logger.Enabled(ctx, slog.LevelDebug) {
		l.Logger.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
	}
}
