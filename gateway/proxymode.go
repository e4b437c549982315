package gateway

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/segmentio/encoding/json"

	"github.com/mcp-gateway/mcp-gateway/prm"
	"github.com/mcp-gateway/mcp-gateway/proxy"
)

// Proxy mode (Config.Upstream, UPSTREAM_URL): the gateway serves no tools
// of its own and forwards every authorized MCP request to an upstream MCP
// server with package proxy. What runs before the proxy is the same as
// for the built-in server (Host, Origin, CORS, the bearer token), and the
// step-up (stepup.go) is the only policy check: the upstream knows
// nothing of the policy.

// newProxy builds the proxy of Config.Upstream with what the gateway owns:
// the tools/list filter (the policy), the body bound, the session idle
// time, the logger and the metrics. A filter the caller set is kept, and
// both must let a tool through.
func (g *Gateway) newProxy() (*proxy.Proxy, error) {
	pc := *g.cfg.Upstream
	own := pc.FilterTool
	pc.FilterTool = g.toolVisible
	if own != nil {
		pc.FilterTool = func(ctx context.Context, name string) bool { return g.toolVisible(ctx, name) && own(ctx, name) }
	}
	if pc.MaxBodyBytes == 0 {
		pc.MaxBodyBytes = g.cfg.MaxBodyBytes
	}
	if pc.SessionIdleTimeout == 0 {
		pc.SessionIdleTimeout = g.cfg.SessionTimeout
	}
	// The gateway's bounds are the proxy's (a negative one, no limit in
	// the gateway, is the largest the proxy has).
	bound := func(n *int, gw int) {
		if *n == 0 {
			*n = gw
			if gw < 0 {
				*n = math.MaxInt32
			}
		}
	}
	bound(&pc.MaxSessions, g.cfg.MaxSessions)
	bound(&pc.MaxSessionsPerUser, g.cfg.MaxSessionsPerUser)
	bound(&pc.MaxStreams, g.cfg.MaxStreams)
	bound(&pc.MaxStreamsPerUser, g.cfg.MaxStreamsPerUser)
	if pc.Logger == nil {
		pc.Logger = g.cfg.Logger.With("component", "proxy")
	}
	if pc.Observer == nil && g.cfg.Metrics != nil {
		pc.Observer = g.cfg.Metrics
	}
	if pc.TracerProvider == nil {
		pc.TracerProvider = g.cfg.TracerProvider
	}
	p, err := proxy.New(pc)
	if err != nil {
		return nil, err
	}
	g.cfg.Metrics.ObserveUpstream(p.Stats)
	return p, nil
}

// forward hands an authorized request to the proxy, with the caller's
// identity (the upstream learns it from the X-MCP-* headers, never from
// the token). authenticate has run: without a verified token the request
// does not get here, and if it did, it is refused (fail closed).
//
// As for the built-in server's streams (limits.go), a forwarded request
// must not outlive the token it came with: it ends when the token expires
// (an event stream may last for hours), or when EndStreams names the
// token. The proxy bounds how many are open; here they are only known.
func (g *Gateway) forward(c echo.Context) error {
	r := c.Request()
	st := stateFrom(r.Context())
	if st == nil || st.ti == nil {
		return echo.ErrInternalServerError
	}
	ctx, end := context.WithCancelCause(r.Context())
	defer end(nil)
	s := openStreamOf(st, end)
	g.streams.open(s) // the proxy's registry has no bounds: never refused
	defer g.streams.close(s)
	defer g.endAtExpiry(st.ti, end)()
	ctx = proxy.WithIdentity(ctx, proxy.IdentityFromTokenInfo(st.ti))
	if st.body != nil {
		ctx = proxy.WithBody(ctx, st.body, st.msgs)
	}
	g.proxy.ServeHTTP(c.Response(), r.WithContext(ctx))
	return nil
}

// toolVisible is the proxy's tools/list filter: the policy's answer, as
// the built-in server's policy middleware gives it (enforcePolicy). A tool
// the policy denies outright is never listed; with ToolsListAllowed only
// the tools the token may call are. ctx is the forwarded request's, which
// carries the request state authenticate filled in.
func (g *Gateway) toolVisible(ctx context.Context, name string) bool {
	if !g.cfg.Policy.Visible(name) {
		return false
	}
	if g.cfg.ToolsList != ToolsListAllowed {
		return true
	}
	st := stateFrom(ctx)
	if st == nil || st.ti == nil {
		return false
	}
	return g.cfg.Policy.Callable(st.ti.Scopes, name)
}

// answerDenied answers a body holding a tools/call the policy denies,
// which is never forwarded. A single call gets what the built-in server
// answers (MCP server/tools "Error Handling": an unknown tool is a
// JSON-RPC protocol error, -32602), so that a denied tool looks exactly
// like a missing one; a notification gets 202 and nothing (JSON-RPC 2.0
// §4.1: no answer). A batch is refused whole: its other members cannot be
// forwarded without the refused one, and a server answers a batch as a
// whole.
func (g *Gateway) answerDenied(c echo.Context, pp *proxyPeek) {
	w := c.Response()
	switch {
	case pp.batch:
		prm.WriteError(w, http.StatusBadRequest, nil, prm.ErrorBody{Error: prm.ErrInvalidRequest, ErrorDescription: "this batch holds a call this server refuses (" + pp.denied.Error() + "); send its requests one by one"})
	case pp.deniedID == nil:
		w.WriteHeader(http.StatusAccepted)
	case !validID(pp.deniedID):
		prm.WriteError(w, http.StatusBadRequest, nil, prm.ErrorBody{Error: prm.ErrInvalidRequest, ErrorDescription: "the request's id is neither a string nor a number"})
	default:
		writeRPC(w, pp.deniedID, nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: pp.denied.Error()})
	}
}

// validID reports whether a raw JSON-RPC id may be echoed: a string or a
// number (MCP: a string or an integer; JSON-RPC 2.0 §4 allows numbers).
func validID(id []byte) bool {
	if len(id) == 0 {
		return false
	}
	switch c := id[0]; {
	case c == '"', c == '-', '0' <= c && c <= '9':
		return true
	}
	return false
}

// rpcResponse is a JSON-RPC 2.0 response (§5) the gateway writes itself.
type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *jsonrpc.Error  `json:"error,omitempty"`
}

// writeRPC writes a JSON-RPC response as a Streamable HTTP server does
// for a single request: 200, application/json.
func writeRPC(w http.ResponseWriter, id []byte, result any, rerr *jsonrpc.Error) {
	b, err := json.Marshal(rpcResponse{JSONRPC: "2.0", ID: id, Result: result, Error: rerr})
	if err != nil {
		prm.WriteError(w, http.StatusInternalServerError, nil, prm.ErrorBody{Error: "server_error"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// toolScopeText is what a tool call without the scopes it needs returns
// in ScopeChallengeTool mode, from the built-in server's policy
// middleware and, in proxy mode, from the gateway.
func toolScopeText(missing []string) string {
	return "this call needs the scope(s) " + strings.Join(missing, " ") + ", which this token was not granted; ask the user to grant them (step-up authorization)"
}

// toolScopeResult is that answer as an MCP CallToolResult.
func toolScopeResult(missing []string) any {
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	return struct {
		Content []text `json:"content"`
		IsError bool   `json:"isError"`
	}{Content: []text{{Type: "text", Text: toolScopeText(missing)}}, IsError: true}
}

// countCalls counts the body's tools/calls with outcome (proxy mode: the
// built-in server's middleware counts its own).
func (g *Gateway) countCalls(pp *proxyPeek, outcome string) {
	for _, c := range pp.calls {
		g.cfg.Metrics.ToolCall(c.tool, c.op, outcome)
	}
}

// Readiness reason codes of the upstream (GET /readyz in proxy mode).
const (
	// ReasonUpstreamUnreachable: the upstream MCP server does not answer,
	// or answers 5xx.
	ReasonUpstreamUnreachable = "upstream_unreachable"
	// ReasonUpstreamCredentials: the upstream refused the gateway's own
	// credential (UPSTREAM_AUTHORIZATION).
	ReasonUpstreamCredentials = "upstream_credentials_rejected"
)

// upstreamReason is the reason code of a proxy.Ready error.
func upstreamReason(err error) string {
	if errors.Is(err, proxy.ErrCredentialsRejected) {
		return ReasonUpstreamCredentials
	}
	return ReasonUpstreamUnreachable
}
