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
// hands the same bytes on to the SDK or the upstream. The tool and
// operation it finds are kept for the request log line. In
// ScopeChallengeTool mode the built-in server's tools check the scope
// themselves, so it does nothing there, and no tool is logged.
//
// In proxy mode it is the only check: nothing behind the gateway knows
// the policy. It runs in both challenge modes, and it refuses more,
// because the upstream's JSON parser is not the SDK's:
//   - a body the SDK would reject (rpcpeek.SyntaxError) is refused (400):
//     another parser may accept it (Python reads NaN, a byte-order mark);
//   - a tools/call the policy denies is answered by the gateway itself as
//     an unknown tool (JSON-RPC -32602 with the request's id) and never
//     forwarded; in a batch, which a server answers as a whole, it refuses
//     the whole batch (400);
//   - in ScopeChallengeTool mode a call whose scopes the token lacks is
//     answered with the isError result the built-in tools give.
func (g *Gateway) stepUp(next echo.HandlerFunc) echo.HandlerFunc {
	proxied := g.proxy != nil
	if g.cfg.ScopeChallenge != ScopeChallengeHTTP && !proxied {
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

		bc, err := checkBody(g.cfg.Policy, body, proxied)
		st := stateFrom(r.Context())
		if st != nil {
			st.tool, st.op = bc.first.tool, bc.first.op
		}
		var syn *rpcpeek.SyntaxError
		switch {
		case err == nil:
		case errors.As(err, &syn) && !proxied:
			// The SDK rejects it: nothing runs.
			return next(c)
		default:
			// Another JSON parser could read this body differently from
			// the SDK (duplicate or case-variant keys, trailing data), or,
			// in front of an upstream, read what the SDK rejects: what the
			// policy checked might not be what runs.
			prm.WriteError(c.Response(), http.StatusBadRequest, nil, prm.ErrorBody{Error: prm.ErrInvalidRequest, ErrorDescription: err.Error()})
			return nil
		}
		if proxied && bc.denied != nil {
			g.countCalls(bc, "protocol_error")
			g.answerDenied(c, bc)
			return nil
		}
		if len(bc.required) > 0 {
			var granted []string
			if st != nil && st.ti != nil { // authenticate put it there
				granted = st.ti.Scopes
			}
			if err := scopes.Check(granted, bc.required); err != nil {
				var insufficient *scopes.InsufficientScopeError
				errors.As(err, &insufficient)
				if st != nil {
					st.auth = AuthInsufficientScope
				}
				if g.cfg.ScopeChallenge == ScopeChallengeTool && !bc.batch && validID(bc.firstID) {
					// Only in proxy mode: the built-in tools answer this
					// themselves.
					g.countCalls(bc, "tool_error")
					writeRPC(c.Response(), bc.firstID, toolScopeResult(insufficient.Missing), nil)
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
		if proxied {
			g.countCalls(bc, "forwarded")
		}
		return next(c)
	}
}

// peekedCall is what the request log and metrics say of a tools/call: its
// tool and the value of the argument the policy read, both as labels.
type peekedCall struct{ tool, op string }

// bodyCheck is what the step-up learns of a POST body.
type bodyCheck struct {
	// required are the scopes its tools/calls need, in order, without
	// duplicates (none for calls the policy denies: no scope would help).
	required []string
	// first is its first tools/call, for the log; firstID that call's
	// raw JSON-RPC id.
	first   peekedCall
	firstID []byte
	// calls are the labels of every tools/call, when asked for (the
	// proxy's metrics; the built-in server counts its own).
	calls []peekedCall
	// denied is the first tools/call the policy refuses whatever the
	// token's scopes, deniedID its raw JSON-RPC id.
	denied   *scopes.DeniedError
	deniedID []byte
	batch    bool
}

// checkBody reads body as the SDK will (rpcpeek) and decides its
// tools/calls under policy. err is an *rpcpeek.SyntaxError when the SDK
// rejects the body, an *rpcpeek.AmbiguityError when another parser could
// read it differently; either way nothing else is filled in. perCall asks
// for bc.calls.
func checkBody(policy *scopes.Policy, body []byte, perCall bool) (bc bodyCheck, err error) {
	b, err := rpcpeek.Peek(body)
	if err != nil {
		return bodyCheck{}, err
	}
	bc.batch = b.Batch
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
			return bodyCheck{}, argErr
		}
		call := peekedCall{tool: policy.Label(m.Tool), op: argumentLabel(policy, m.Tool, r.Value)}
		if bc.first.tool == "" {
			bc.first, bc.firstID = call, m.ID
		}
		if perCall {
			bc.calls = append(bc.calls, call)
		}
		if r.Denied && bc.denied == nil {
			// Check allocates the error only for a denied call.
			var denied *scopes.DeniedError
			if errors.As(r.Check(nil), &denied) {
				bc.denied, bc.deniedID = denied, m.ID
			}
		}
		bc.required = r.AppendScopes(bc.required)
	}
	return bc, nil
}

// requiredScopes is checkBody as the built-in server's step-up reads it:
// every scope the body's tools/calls need, its first tools/call for the
// log, and an error only for an ambiguous body (a body the SDK rejects
// needs nothing: nothing runs; a denied call needs nothing: the server's
// policy middleware answers it as an unknown tool).
func requiredScopes(policy *scopes.Policy, body []byte) (required []string, first peekedCall, err error) {
	bc, err := checkBody(policy, body, false)
	var syn *rpcpeek.SyntaxError
	if errors.As(err, &syn) {
		return nil, peekedCall{}, nil
	}
	return bc.required, bc.first, err
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
