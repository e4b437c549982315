package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/internal/clientip"
	"github.com/mcp-gateway/mcp-gateway/internal/redact"
	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// AuthOutcome is how the authentication of one request to the MCP
// endpoint ended, as logged ("auth") and counted (auth_outcomes_total).
// A refused token's outcome is its accesstoken.Reason.
type AuthOutcome string

// The outcomes that are not a refused token's reason.
const (
	AuthOK                AuthOutcome = "ok"
	AuthMissing           AuthOutcome = "missing"            // no credentials: 401 with a bare challenge
	AuthInsufficientScope AuthOutcome = "insufficient_scope" // 403 step-up
	AuthUnavailable       AuthOutcome = "unavailable"        // no verdict could be had: 503
	AuthRateLimited       AuthOutcome = "rate_limited"       // too many unknown tokens: 429
	AuthForbiddenOrigin   AuthOutcome = "forbidden_origin"   // a browser Origin not allowed: 403
	// A malformed Authorization header (400) is accesstoken.ReasonMalformed,
	// as a token too long for the verifier is: both are credentials that
	// cannot be a token.
)

// refused is the outcome of a token refused for reason r.
func refused(r accesstoken.Reason) AuthOutcome { return AuthOutcome(r) }

// AllAuthOutcomes lists every AuthOutcome in a stable order: the label set
// of auth_outcomes_total.
func AllAuthOutcomes() []AuthOutcome {
	out := []AuthOutcome{AuthOK, AuthMissing, AuthInsufficientScope, AuthUnavailable, AuthRateLimited, AuthForbiddenOrigin}
	for _, r := range accesstoken.AllReasons() {
		out = append(out, refused(r))
	}
	return out
}

// reqState is what the middlewares learn about one request, for the
// request log line, the metrics, and the SDK's token verifier. It is
// allocated per request and never pooled: the SDK may keep the request
// context of a session's first request.
type reqState struct {
	ti       *auth.TokenInfo   // the verified token's information; shared, read-only
	token    string            // the bearer token (authenticate), for the streams it opens; never logged
	auth     AuthOutcome       // "" when not on the MCP endpoint
	msgs     []rpcpeek.Message // the JSON-RPC messages of a POST body (readBody)
	body     []byte            // in proxy mode, that body, handed to the proxy (proxy.WithBody)
	required []string          // the scopes they need under the policy (readBody)
	tool     string            // the (first) tools/call of the body: tool name, clamped
	op       string            // and its calculator operation, clamped
	proxied  *proxyPeek        // proxy mode only: what the gateway answers itself (readBody)
}

type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// setAuth records the authentication outcome of the request in c.
func setAuth(c echo.Context, outcome AuthOutcome) {
	if st := stateFrom(c.Request().Context()); st != nil {
		st.auth = outcome
	}
}

// requestIDs hands out request IDs: a random prefix per Gateway and a
// counter, unique enough to find one request's log line, and cheap.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (r *requestIDs) next() string {
	var buf [32]byte
	b := append(buf[:0], r.prefix...)
	return string(strconv.AppendUint(b, r.n.Add(1), 36))
}

// validRequestID reports whether an incoming X-Request-Id may be used
// (and echoed, and logged) as it is: 1 to 128 of [A-Za-z0-9._-].
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// observe is the outermost middleware: it assigns the request ID, carries
// a reqState through the request, and afterwards records the request's
// metrics and writes its one log line. It never logs the raw path or query
// (a client may put a token there), only the route pattern.
func (g *Gateway) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		r := c.Request()
		id := r.Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			id = g.requestIDs.next()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		route := c.Path()
		if _, ok := g.routes[route]; !ok {
			route = ""
		}
		st := &reqState{}
		ctx := r.Context()
		var span trace.Span
		if g.tracer != nil && !probeRoute(route) {
			ctx, span = g.startRequest(r, route)
		}
		ctx = context.WithValue(ctx, stateKey{}, st)
		c.SetRequest(r.WithContext(ctx))

		// A client that goes away in the middle of a proxied stream ends
		// the handler with panic(http.ErrAbortHandler) (ReverseProxy), which
		// Recover passes on and net/http takes as a silent abort: the
		// request is still counted and logged, without a stack trace, and
		// the abort goes on.
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					g.record(ctx, c, span, r, route, id, st, start, true)
				}
				panic(p)
			}
		}()
		if err := next(c); err != nil {
			c.Error(err)
		}
		g.record(ctx, c, span, r, route, id, st, start, false)
		return nil
	}
}

// record counts a finished request and writes its log line; aborted says
// that it ended with http.ErrAbortHandler (the client went away).
func (g *Gateway) record(ctx context.Context, c echo.Context, span trace.Span, r *http.Request, route, id string, st *reqState, start time.Time, aborted bool) {
	status := c.Response().Status
	if span != nil {
		endRequest(span, status, st, aborted)
	}
	elapsed := time.Since(start)
	m := g.cfg.Metrics
	m.HTTPRequest(route, status, elapsed)
	if st.auth != "" {
		m.AuthOutcome(string(st.auth))
	}

	level := slog.LevelInfo
	if probeRoute(route) {
		level = slog.LevelDebug
	}
	if !g.cfg.Logger.Enabled(ctx, level) {
		return
	}
	if route == "" {
		route = metrics.Unmatched
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.String("request_id", id),
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000),
	)
	if st.auth != "" {
		attrs = append(attrs, slog.String("auth", string(st.auth)))
	}
	if st.ti != nil && st.ti.UserID != "" {
		attrs = append(attrs, slog.String("subject_hash", redact.Subject(st.ti.UserID)))
	}
	if st.tool != "" {
		attrs = append(attrs, slog.String("tool", st.tool))
		if st.op != "" {
			attrs = append(attrs, slog.String("operation", st.op))
		}
	}
	if aborted {
		attrs = append(attrs, slog.Bool("client_gone", true))
	}
	g.cfg.Logger.LogAttrs(ctx, level, "request", attrs...)
}

// probeRoute reports whether route is polled by machines (health and
// readiness probes, metrics scrapes): logged at debug level, and not
// traced (a trace per probe would bury the requests).
func probeRoute(route string) bool {
	return route == "/healthz" || route == "/readyz" || route == "/metrics"
}

// clientAddr is the client introspection admission attributes a request
// to (introspect.WithClient): the configured client-IP header (set by a
// trusted proxy, e.g. Fly-Client-IP) when present and a valid IP, else the
// host of the connection's remote address; keyed by clientip.Key (an IPv6
// address by its /64). X-Forwarded-For is never trusted by default: any
// client can send it.
func (g *Gateway) clientAddr(r *http.Request) string {
	if g.cfg.ClientIPHeader != "" {
		if v := strings.TrimSpace(r.Header.Get(g.cfg.ClientIPHeader)); v != "" {
			if _, err := netip.ParseAddr(v); err == nil {
				return clientip.Key(v)
			}
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return clientip.Key(host)
	}
	return clientip.Key(r.RemoteAddr)
}

// toolCallMetrics is MCP server middleware counting tools/call requests by
// tool, the value of the argument the policy reads (the calculator's
// operation), and outcome, all as labels the policy bounds.
func toolCallMetrics(m *metrics.Metrics, policy *scopes.Policy) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method != rpcpeek.MethodToolsCall {
				return next(ctx, method, req)
			}
			res, err := next(ctx, method, req)
			// The step-up peek's result cannot be reused here: in
			// stateful mode the SDK runs handlers in its session's
			// context, not the request's.
			tool, op := callLabels(policy, req, "")
			outcome := "ok"
			if err != nil {
				outcome = "protocol_error"
			} else if r, ok := res.(*mcp.CallToolResult); ok && r != nil && r.IsError {
				outcome = "tool_error"
			}
			m.ToolCall(tool, op, outcome) // ToolCall clamps labels itself
			return res, err
		}
	}
}
