package gateway

import (
	"context"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// toolsOnly is the built-in server's half of MCP capability negotiation
// (MCP lifecycle, "Capability Negotiation"; 2026-07-28 server/discover): a
// server declares what it serves, and a request for a capability it did
// not declare is answered JSON-RPC -32601, method not found. The Go SDK
// answers prompts/list, resources/list and the rest whether or not it
// declared them (with empty lists), which the MCP conformance suite flags.
//
// The built-in server serves tools (and logging, which the SDK always
// declares and serves). So this middleware answers -32601 for the prompt,
// resource and completion methods, and removes those capabilities from
// what initialize and server/discover declare, so that the two always
// agree whatever is registered. It belongs to the server NewMCPServer
// builds, not to the gateway: a server fronted through a proxy declares
// its own.
func toolsOnly(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if capability := undeclaredCapability(method); capability != "" {
			return nil, &jsonrpc.Error{
				Code:    jsonrpc.CodeMethodNotFound,
				Message: fmt.Sprintf("method %q not found: this server does not offer %s", method, capability),
			}
		}
		res, err := next(ctx, method, req)
		switch r := res.(type) {
		case *mcp.InitializeResult:
			if r != nil {
				declareToolsOnly(r.Capabilities)
			}
		case *mcp.DiscoverResult:
			if r != nil {
				declareToolsOnly(r.Capabilities)
			}
		}
		return res, err
	}
}

// undeclaredCapability names the capability a method belongs to when the
// built-in server does not declare it, else "".
func undeclaredCapability(method string) string {
	switch {
	case strings.HasPrefix(method, "prompts/"):
		return "prompts"
	case strings.HasPrefix(method, "resources/"):
		return "resources"
	case strings.HasPrefix(method, "completion/"):
		return "completions"
	}
	return ""
}

func declareToolsOnly(c *mcp.ServerCapabilities) {
	if c != nil {
		c.Prompts, c.Resources, c.Completions = nil, nil, nil
	}
}
