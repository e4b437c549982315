package gateway

import (
	"bytes"
	"errors"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"

	"github.com/mcp-gateway/mcp-gateway/prm"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// stepUp answers a tools/call whose required scope the token lacks with
// 403 insufficient_scope (RFC 6750 §3.1; MCP authorization "Scope Challenge
// Handling") before the tool runs. It reads the JSON-RPC messages readBody
// found. In ScopeChallengeTool mode it does nothing (the tool checks the
// scope).
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
		required := requiredScopes(g.cfg.Policy, st.msgs)
		if len(required) > 0 {
			var granted []string
			if st.ti != nil { // authenticate put it there
				granted = st.ti.Scopes
			}
			if err := scopes.Check(granted, required); err != nil {
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

// rpcMessage is the part of a JSON-RPC message the gateway reads: the
// method and id (is it a call, a stream?) and a tools/call's tool and
// operation (which scope does it need?).
type rpcMessage struct {
	Method string          `json:"method"`
	ID     json.RawMessage `json:"id"`
	Params struct {
		Name      string `json:"name"`
		Arguments struct {
			Operation string `json:"operation"`
		} `json:"arguments"`
	} `json:"params"`
}

// isCall reports whether m is a request that expects an answer (JSON-RPC
// 2.0 §4: a method and an id; a notification has no id).
func (m *rpcMessage) isCall() bool {
	return m.Method != "" && len(m.ID) > 0 && string(m.ID) != "null"
}

// parseRPC decodes the JSON-RPC message or batch in body as far as the
// gateway needs; nil when it does not parse.
//
// The body is decoded exactly as the Go MCP SDK decodes it (segmentio's
// decoder, struct fields matched case-sensitively, nesting bounded), so the
// operation checked here is the operation the tool will run: a parser
// differential could otherwise let {"operation":"add","Operation":"divide"}
// past the check. The tool re-checks its scope anyway.
func parseRPC(body []byte) []rpcMessage {
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) == 0 || tooDeep(body, maxJSONDepth) {
		return nil
	}
	if body[0] == '[' {
		// Decode members one by one: a legal member of another shape (a
		// notification with array params) must not hide a tools/call
		// beside it.
		var raw []json.RawMessage
		if err := decode(body, &raw); err != nil {
			return nil
		}
		var msgs []rpcMessage
		for _, r := range raw {
			var m rpcMessage
			if decode(r, &m) == nil {
				msgs = append(msgs, m)
			}
		}
		return msgs
	}
	var m rpcMessage
	if err := decode(body, &m); err != nil {
		return nil
	}
	return []rpcMessage{m}
}

// requiredScopes returns the scopes the JSON-RPC messages (one, or a
// batch, from parseRPC) need according to policy. A body that does not
// parse needs none here: the SDK rejects it with a JSON-RPC parse error,
// and nothing runs.
func requiredScopes(policy *scopes.Policy, msgs []rpcMessage) []string {
	var out []string
	for _, m := range msgs {
		if m.Method != "tools/call" {
			continue
		}
		for _, s := range policy.ForToolCall(m.Params.Name, m.Params.Arguments.Operation) {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// maxJSONDepth is the SDK's own nesting bound (internal/json).
const maxJSONDepth = 1000

func decode(b []byte, v any) error {
	// Parse reads the first JSON value and ignores what follows, as the
	// SDK's stream decoder does; unlike json.NewDecoder it allocates no
	// read buffer.
	_, err := json.Parse(b, v, json.DontMatchCaseInsensitiveStructFields)
	return err
}

// tooDeep reports whether the JSON text nests objects and arrays deeper
// than max, skipping over strings. It bounds the work a hostile body can
// make the peek do before the SDK sees it.
func tooDeep(b []byte, max int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}
