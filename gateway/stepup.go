package gateway

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/prm"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// stepUp answers a tools/call whose required scopes the token lacks with
// 403 insufficient_scope (RFC 6750 §3.1; MCP authorization "Scope Challenge
// Handling") before the tool runs, from what readBody found. In
// ScopeChallengeTool mode it does nothing for the built-in server (whose
// policy middleware answers with an isError result instead).
//
// In proxy mode it is the only check: nothing behind the gateway knows
// the policy. It runs in both challenge modes:
//   - a tools/call the policy denies is answered by the gateway itself as
//     an unknown tool (JSON-RPC -32602 with the request's id) and never
//     forwarded; in a batch, which a server answers as a whole, the whole
//     batch is refused (400);
//   - in ScopeChallengeTool mode a call whose scopes the token lacks is
//     answered with the isError result the built-in server gives.
//
// (readBody has already refused, in proxy mode, a body the SDK would
// reject: the upstream's parser may accept it.)
func (g *Gateway) stepUp(next echo.HandlerFunc) echo.HandlerFunc {
	proxied := g.proxy != nil
	if g.cfg.ScopeChallenge != ScopeChallengeHTTP && !proxied {
		return next
	}
	return func(c echo.Context) error {
		st := stateFrom(c.Request().Context())
		if st == nil {
			// observe, the outermost middleware, always sets it: without
			// it the messages are unknown, and the check fails closed.
			return echo.ErrInternalServerError
		}
		pp := st.proxied // nil but for a POST in proxy mode
		if pp != nil && pp.denied != nil {
			g.countCalls(pp, "protocol_error")
			g.answerDenied(c, pp)
			return nil
		}
		if len(st.required) > 0 {
			var granted []string
			if st.ti != nil { // authenticate put it there
				granted = st.ti.Scopes
			}
			if err := scopes.Check(granted, st.required); err != nil {
				var insufficient *scopes.InsufficientScopeError
				errors.As(err, &insufficient)
				st.auth = AuthInsufficientScope
				if g.cfg.ScopeChallenge == ScopeChallengeTool && pp != nil && !pp.batch && validID(pp.firstID) {
					// Only in proxy mode: the built-in server's policy
					// middleware answers this itself.
					g.countCalls(pp, "tool_error")
					writeRPC(c.Response(), pp.firstID, toolScopeResult(insufficient.Missing), nil)
					return nil
				}
				ch := g.challenge
				ch.Error = prm.ErrInsufficientScope
				ch.Scope = insufficient.ChallengeScopes()
				ch.ErrorDescription = err.Error()
				prm.WriteError(c.Response(), http.StatusForbidden, &ch, prm.ErrorBody{Error: prm.ErrInsufficientScope, ErrorDescription: err.Error()})
				return nil
			}
		}
		if pp != nil {
			g.countCalls(pp, "forwarded")
		}
		return next(c)
	}
}

// peekedCall is what the request log says of a body: its first tools/call's
// tool and the value of the argument the policy read, both as labels.
type peekedCall struct{ tool, op string }

// peeked is what a request body asks for, decided under the policy.
type peeked struct {
	msgs []rpcpeek.Message
	// required is every scope the body's tools/calls need (one call, or
	// each member of a batch, in order, without duplicates). A call the
	// policy denies outright needs nothing here: no scope would help, so
	// no 403 may invite a step-up; the server's policy middleware (or, in
	// proxy mode, the step-up) answers it as an unknown tool.
	required []string
	first    peekedCall // the first tools/call, for the log
	proxied  proxyPeek  // only in proxy mode
}

// proxyPeek is what proxy mode also needs of a body: what to answer in
// the gateway's own name, and the labels of every call for the metrics
// (the built-in server's middleware counts its own).
type proxyPeek struct {
	denied   *scopes.DeniedError // the first tools/call the policy refuses whatever the scopes
	deniedID []byte              // its raw JSON-RPC id
	firstID  []byte              // the first tools/call's raw id
	batch    bool
	calls    []peekedCall
}

// peekBody reads body exactly as the SDK will (rpcpeek) and decides its
// tools/calls under policy. A body the SDK rejects (*rpcpeek.SyntaxError)
// needs nothing here: nothing runs, unless proxied, where it is returned
// as an error (the upstream's parser may read what the SDK rejects). Any
// other error is an *rpcpeek.AmbiguityError: another parser could read
// the body differently, and the gateway refuses it.
func peekBody(policy *scopes.Policy, body []byte, proxied bool) (peeked, error) {
	b, err := rpcpeek.Peek(body)
	var syn *rpcpeek.SyntaxError
	if errors.As(err, &syn) && !proxied {
		return peeked{}, nil
	}
	if err != nil {
		return peeked{}, err
	}
	p := peeked{msgs: b.Messages}
	p.proxied.batch = b.Batch
	for i := range b.Messages {
		m := &b.Messages[i]
		if m.Method != rpcpeek.MethodToolsCall {
			continue
		}
		var argErr error
		r := policy.Requirement(m.Tool, func(name string) (string, bool) {
			v, ok, err := m.StringArgument(name)
			argErr = err
			return v, ok
		})
		if argErr != nil {
			return peeked{}, argErr
		}
		var call peekedCall // the labels: of the first call, and of each one in proxy mode
		if proxied || p.first.tool == "" {
			call = peekedCall{tool: policy.Label(m.Tool), op: argumentLabel(policy, m.Tool, r.Value)}
		}
		if p.first.tool == "" {
			p.first, p.proxied.firstID = call, m.ID
		}
		if proxied {
			p.proxied.calls = append(p.proxied.calls, call)
			if r.Denied && p.proxied.denied == nil {
				// Check allocates the error only for a denied call.
				var denied *scopes.DeniedError
				if errors.As(r.Check(nil), &denied) {
					p.proxied.denied, p.proxied.deniedID = denied, m.ID
				}
			}
		}
		p.required = r.AppendScopes(p.required)
	}
	return p, nil
}

// argumentLabel is the log and metric label of the value of the argument
// tool's rule reads: the value when the rule lists it, "" when the rule
// reads none, else "other" (the value comes from the client).
func argumentLabel(policy *scopes.Policy, tool, value string) string {
	if value == "" {
		return ""
	}
	if policy.Lists(tool, value) {
		return value
	}
	return metrics.Other
}

// callLabels are the tool and argument labels of a tools/call request as
// the SDK decoded it; tool is noTool when it has no parameters.
func callLabels(policy *scopes.Policy, req mcp.Request, noTool string) (tool, op string) {
	p, ok := req.GetParams().(*mcp.CallToolParamsRaw)
	if !ok || p == nil {
		return noTool, ""
	}
	tool = policy.Label(p.Name)
	if name := policy.Argument(p.Name); name != "" {
		v, _, err := rpcpeek.StringArgument(p.Arguments, name)
		if err != nil {
			v = metrics.Other
		}
		op = argumentLabel(policy, p.Name, v)
	}
	return tool, op
}
