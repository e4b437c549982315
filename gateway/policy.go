package gateway

import (
	"context"
	"errors"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// Which tools tools/list shows (TOOLS_LIST).
const (
	// ToolsListAll lists every tool the policy does not deny outright, so
	// that a client can discover a tool and step up to call it.
	ToolsListAll = "all"
	// ToolsListAllowed lists only the tools the token may call.
	ToolsListAllowed = "allowed"
)

// enforcePolicy is MCP server middleware that makes the server behave as
// the policy says, for every tool registered on it, whoever wrote it:
//
//   - tools/list leaves out the tools the policy denies outright (they must
//     look exactly like tools that do not exist), and with
//     ToolsListAllowed also those the token may not call;
//   - a tools/call the policy denies is answered as the SDK answers an
//     unknown tool (JSON-RPC -32602, MCP server/tools "Error Handling");
//   - a tools/call whose scopes the token lacks gets an isError result
//     naming them. In ScopeChallengeHTTP mode the HTTP step-up has already
//     answered 403 before the body reached the SDK, so this is the
//     defence in depth, and the only check in ScopeChallengeTool mode.
//
// It reads the caller's scopes from req.Extra.TokenInfo, as tools do.
func enforcePolicy(policy *scopes.Policy, toolsList string) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			switch method {
			case "tools/list":
				res, err := next(ctx, method, req)
				if lr, ok := res.(*mcp.ListToolsResult); ok && lr != nil && err == nil {
					granted := grantedScopes(req)
					kept := lr.Tools[:0:0]
					for _, t := range lr.Tools {
						if !policy.Visible(t.Name) || (toolsList == ToolsListAllowed && !policy.Callable(granted, t.Name)) {
							continue
						}
						kept = append(kept, t)
					}
					copied := *lr
					copied.Tools = kept
					return &copied, nil
				}
				return res, err
			case rpcpeek.MethodToolsCall:
				p, ok := req.GetParams().(*mcp.CallToolParamsRaw)
				if !ok || p == nil {
					return next(ctx, method, req)
				}
				var argErr error
				r := policy.Requirement(p.Name, func(name string) (string, bool) {
					v, present, err := rpcpeek.StringArgument(p.Arguments, name)
					argErr = err
					return v, present
				})
				if argErr != nil {
					return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: argErr.Error()}
				}
				err := r.Check(grantedScopes(req))
				var denied *scopes.DeniedError
				var insufficient *scopes.InsufficientScopeError
				switch {
				case errors.As(err, &denied):
					return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: denied.Error()}
				case errors.As(err, &insufficient):
					return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: toolScopeText(insufficient.Missing)}}}, nil
				}
			}
			return next(ctx, method, req)
		}
	}
}

// grantedScopes are the scopes of the token a request came with.
func grantedScopes(req mcp.Request) []string {
	if e := req.GetExtra(); e != nil && e.TokenInfo != nil {
		return e.TokenInfo.Scopes
	}
	return nil
}
