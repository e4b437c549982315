package proxy

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ProbeResult is what Probe learned of the upstream.
type ProbeResult struct {
	// ServerName, ServerVersion and ServerTitle are the upstream's
	// serverInfo.
	ServerName, ServerVersion, ServerTitle string
	// ProtocolVersion is the MCP version negotiated.
	ProtocolVersion string
	// Capabilities are the upstream's declared capabilities.
	Capabilities *mcp.ServerCapabilities
	// Tools are the names of the upstream's tools, in its order.
	Tools []string
	// ToolsTruncated says that the upstream listed more than Probe reads
	// (maxProbeTools tools or maxProbePages pages).
	ToolsTruncated bool
}

// ProbeError says which stage of Probe failed: "config", "reach" (no HTTP
// answer, or 5xx, or the gateway's credential refused), "initialize"
// (answers, but not as an MCP server), or "tools/list".
//
// Its text never holds UPSTREAM_AUTHORIZATION, even when the upstream
// quoted it back (the SDK's client puts a JSON-RPC error's message in its
// error). The cause stays reachable for errors.Is (ErrUnavailable).
type ProbeError struct {
	Stage string
	cause error
	msg   string // cause's text with the upstream credential removed
}

func (e *ProbeError) Error() string { return "proxy: probe " + e.Stage + ": " + e.msg }
func (e *ProbeError) Unwrap() error { return e.cause }

// Bounds on what Probe reads.
const (
	maxProbeTools   = 10000
	maxProbePages   = 100
	probeTimeout    = 30 * time.Second
	probeClientName = "mcp-gateway-check"
)

// Probe checks the upstream for the configuration doctor: it answers HTTP
// (Ready's check), speaks MCP (the Go SDK's client connects: initialize,
// or server/discover for 2026-07-28 servers), and lists its tools
// (following nextCursor, bounded). It sends UPSTREAM_AUTHORIZATION as the
// gateway would, and no X-MCP-* identity (no user is calling). Without a
// deadline on ctx it gives up after 30 seconds. The session it opens is
// closed (DELETE) before it returns.
func Probe(ctx context.Context, cfg Config) (*ProbeResult, error) {
	p, err := New(cfg)
	if err != nil {
		return nil, &ProbeError{Stage: "config", cause: err, msg: err.Error()}
	}
	defer p.Close()
	fail := func(stage string, err error) (*ProbeResult, error) {
		// An upstream may echo what it was sent; the doctor prints this.
		return nil, &ProbeError{Stage: stage, cause: err, msg: p.scrub(err.Error())}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, probeTimeout)
		defer cancel()
	}
	if err := p.checkReachable(ctx); err != nil {
		return fail("reach", err)
	}

	transport := &mcp.StreamableClientTransport{
		Endpoint:             p.upstream.String(),
		HTTPClient:           &http.Client{Transport: credentialed{base: p.transport, authorization: p.authorization}},
		MaxRetries:           -1,
		DisableStandaloneSSE: true,
	}
	client := mcp.NewClient(&mcp.Implementation{Name: probeClientName, Version: "1"}, nil)
	cs, err := client.Connect(ctx, transport, nil)
	if err != nil {
		return fail("initialize", err)
	}
	defer cs.Close()
	init := cs.InitializeResult()
	if init == nil {
		return fail("initialize", errors.New("no initialize result"))
	}
	res := &ProbeResult{ProtocolVersion: init.ProtocolVersion, Capabilities: init.Capabilities}
	if init.ServerInfo != nil {
		res.ServerName, res.ServerVersion, res.ServerTitle = init.ServerInfo.Name, init.ServerInfo.Version, init.ServerInfo.Title
	}
	if init.Capabilities == nil || init.Capabilities.Tools == nil {
		return res, nil // no tools to list
	}
	params := &mcp.ListToolsParams{}
	for page := 0; ; page++ {
		if page == maxProbePages {
			res.ToolsTruncated = true
			break
		}
		lt, err := cs.ListTools(ctx, params)
		if err != nil {
			return fail("tools/list", err)
		}
		for _, t := range lt.Tools {
			if len(res.Tools) == maxProbeTools {
				res.ToolsTruncated = true
				return res, nil
			}
			res.Tools = append(res.Tools, t.Name)
		}
		if lt.NextCursor == "" {
			break
		}
		params = &mcp.ListToolsParams{Cursor: lt.NextCursor}
	}
	return res, nil
}

// credentialed adds the gateway's upstream credential to each request.
type credentialed struct {
	base          http.RoundTripper
	authorization []string
}

func (c credentialed) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.authorization == nil {
		return c.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header["Authorization"] = c.authorization
	return c.base.RoundTrip(r)
}
