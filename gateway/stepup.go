package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/prm"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// stepUp answers a tools/call whose required scope the token lacks with
// 403 insufficient_scope (RFC 6750 §3.1; MCP authorization "Scope Challenge
// Handling") before the tool runs. It reads the body once, bounded, and
// hands the same bytes on to the SDK. The tool and operation it finds are
// kept for the request log line. In ScopeChallengeTool mode it does
// nothing (the tool checks the scope), so no tool is logged.
func (g *Gateway) stepUp(next echo.HandlerFunc) echo.HandlerFunc {
	if g.cfg.ScopeChallenge != ScopeChallengeHTTP {
		return next
	}
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method != http.MethodPost || r.Body == nil {
			return next(c)
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, g.cfg.MaxBodyBytes))
		_ = r.Body.Close()
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				prm.WriteError(c.Response(), http.StatusRequestEntityTooLarge, nil, prm.ErrorBody{Error: "request_too_large", ErrorDescription: "the request body is larger than this server accepts"})
				return nil
			}
			prm.WriteError(c.Response(), http.StatusBadRequest, nil, prm.ErrorBody{Error: prm.ErrInvalidRequest, ErrorDescription: "the request body could not be read"})
			return nil
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))

		required, first, err := requiredScopes(g.cfg.Policy, body)
		st := stateFrom(r.Context())
		if st != nil {
			st.tool, st.op = first.tool, first.op
		}
		if err != nil {
			// Another JSON parser could read this body differently from
			// the SDK (duplicate or case-variant keys, trailing data): what
			// the policy checked might not be what runs.
			prm.WriteError(c.Response(), http.StatusBadRequest, nil, prm.ErrorBody{Error: prm.ErrInvalidRequest, ErrorDescription: err.Error()})
			return nil
		}
		if len(required) > 0 {
			var granted []string
			if st != nil && st.ti != nil { // authenticate put it there
				granted = st.ti.Scopes
			}
			if err := scopes.Check(granted, required); err != nil {
				var insufficient *scopes.InsufficientScopeError
				errors.As(err, &insufficient)
				if st != nil {
					st.auth = AuthInsufficientScope
				}
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

// requiredScopes reads body as the SDK will (rpcpeek) and returns every
// scope its tools/calls need under policy (one call, or each member of a
// batch, in order, without duplicates), and its first tools/call for the
// log. A body the SDK rejects needs nothing here: nothing runs. A call the
// policy denies outright needs nothing here either: no scope would help,
// so no 403 may invite a step-up; the server's policy middleware answers it
// as an unknown tool. err is an *rpcpeek.AmbiguityError when another
// parser could read the body differently: the gateway refuses it.
func requiredScopes(policy *scopes.Policy, body []byte) (required []string, first peekedCall, err error) {
	b, err := rpcpeek.Peek(body)
	var syn *rpcpeek.SyntaxError
	if errors.As(err, &syn) {
		return nil, first, nil
	}
	if err != nil {
		return nil, first, err
	}
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
			return nil, first, argErr
		}
		if first.tool == "" {
			first = peekedCall{tool: policy.Label(m.Tool), op: argumentLabel(policy, m.Tool, r.Value)}
		}
		required = r.AppendScopes(required)
	}
	return required, first, nil
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
