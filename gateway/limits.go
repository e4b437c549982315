package gateway

import (
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/prm"
)

// Defaults for Config.MaxSessions and Config.MaxStreams.
const (
	DefaultMaxSessions = 1000
	DefaultMaxStreams  = 1000
)

// Retry-After sent when a limit is reached. Sessions are freed by DELETE
// or SessionTimeout, streams when a client disconnects.
const (
	sessionsRetryAfter = 30 * time.Second
	streamsRetryAfter  = 10 * time.Second
)

// sessionLimiter bounds the live sessions of a stateful server. The SDK's
// StreamableHTTPHandler has no limit of its own, and keeps a session until
// DELETE or SessionTimeout, so every POST that would create one (a POST
// without Mcp-Session-Id) is admitted only while fewer than max sessions
// are live. Live sessions are the server's own list (mcp.Server.Sessions),
// so sessions that end by any path free their slot; pending counts
// admitted requests the SDK has not finished, so concurrent requests
// cannot overshoot (a request is briefly counted twice, which errs on the
// side of refusing).
type sessionLimiter struct {
	server  *mcp.Server
	max     int
	mu      sync.Mutex
	pending int
}

func (l *sessionLimiter) acquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.pending
	for range l.server.Sessions() {
		n++
	}
	if n >= l.max {
		return false
	}
	l.pending++
	return true
}

func (l *sessionLimiter) release() {
	l.mu.Lock()
	l.pending--
	l.mu.Unlock()
}

// limits enforces MaxSessions and MaxStreams on the MCP endpoint of a
// stateful server. It runs after authentication, so only callers with a
// valid token can use up either.
func (g *Gateway) limits(next echo.HandlerFunc) echo.HandlerFunc {
	if g.cfg.Stateless {
		return next
	}
	return func(c echo.Context) error {
		r := c.Request()
		switch {
		case r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == "" && g.sessions != nil:
			if !g.sessions.acquire() {
				g.cfg.Logger.Warn("session limit reached", "max_sessions", g.sessions.max)
				overLimit(c, sessionsRetryAfter, "too_many_sessions", "this server has too many open sessions; try again later")
				return nil
			}
			defer g.sessions.release()
		case r.Method == http.MethodGet && g.streams != nil:
			select {
			case g.streams <- struct{}{}:
				defer func() { <-g.streams }()
			default:
				g.cfg.Logger.Warn("stream limit reached", "max_streams", cap(g.streams))
				overLimit(c, streamsRetryAfter, "too_many_streams", "this server has too many open event streams; try again later")
				return nil
			}
		}
		return next(c)
	}
}

func overLimit(c echo.Context, retry time.Duration, code, desc string) {
	c.Response().Header().Set("Retry-After", retryAfterSeconds(retry))
	prm.WriteError(c.Response(), http.StatusServiceUnavailable, nil, prm.ErrorBody{Error: code, ErrorDescription: desc})
}
