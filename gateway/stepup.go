package gateway

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/prm"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// stepUp answers a tools/call whose required scopes the token lacks with
// 403 insufficient_scope (RFC 6750 §3.1; MCP authorization "Scope Challenge
// Handling") before the tool runs, from what readBody found. In
// ScopeChallengeTool mode it does nothing (the server's policy middleware
// answers with an isError result instead).
func (g *Gateway) stepUp(next echo.HandlerFunc) echo.HandlerFunc {
	if g.cfg.ScopeChallenge != ScopeChallengeHTTP {
		return next
	}
	return func(c echo.Context) error {
		st := stateFrom(c.Request().Context())
		if st == nil {
			// observe, the outermost middleware, always sets it: without
			// it the messages are unknown, and the check fails closed.
			return echo.ErrInternalServerError
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
				ch := g.challenge
				ch.Error = prm.ErrInsufficientScope
				ch.Scope = insufficient.ChallengeScopes()
				ch.ErrorDescription = err.Error()
				prm.WriteError(c.Response(), http.StatusForbidden, &ch, prm.ErrorBody{Error: prm.ErrInsufficientScope, ErrorDescription: err.Error()})
				return nil
			}
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
	// no 403 may invite a step-up; the server's policy middleware answers
	// it as an unknown tool.
	required []string
	first    peekedCall // the first tools/call, for the log
}

// peekBody reads body exactly as the SDK will (rpcpeek) and decides its
// tools/calls under policy. A body the SDK rejects (*rpcpeek.SyntaxError)
// needs nothing here: nothing runs. Any other error is an
// *rpcpeek.AmbiguityError: another parser could read the body differently,
// and the gateway refuses it.
func peekBody(policy *scopes.Policy, body []byte) (peeked, error) {
	b, err := rpcpeek.Peek(body)
	var syn *rpcpeek.SyntaxError
	if errors.As(err, &syn) {
		return peeked{}, nil
	}
	if err != nil {
		return peeked{}, err
	}
	p := peeked{msgs: b.Messages}
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
		if p.first.tool == "" {
			p.first = peekedCall{tool: policy.Label(m.Tool), op: argumentLabel(policy, m.Tool, r.Value)}
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
	for _, v := range policy.ArgumentValues(tool) {
		if v == value {
			return v
		}
	}
	return metrics.Other
}
