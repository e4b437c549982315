package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mcp-gateway/mcp-gateway/prm"
)

// readBody reads an MCP POST body once, bounded by MaxBodyBytes, and reads
// what it asks for exactly as the SDK will (rpcpeek), keeping the messages
// in the request state: stepUp reads the scopes they need, limits whether
// the answer is a stream, the log line the tool and operation. The SDK is
// handed the same bytes. It runs in every SCOPE_CHALLENGE mode, so a body
// over the bound gets the same 413 request_too_large whichever mode decides
// scopes (the SDK's own bound, MaxRequestBodyBytes, stays as a backstop),
// and a body another JSON parser could read differently (duplicate or
// case-variant keys, data after the message) is refused with 400 before
// anything reads it: what the policy checks must be what runs. It runs
// after authentication: nobody without a valid token makes the gateway
// read a body. In proxy mode a body the SDK would reject is refused too:
// the upstream's parser may accept it, and the policy would not have
// checked what it runs.
func (g *Gateway) readBody(next echo.HandlerFunc) echo.HandlerFunc {
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

		st := stateFrom(r.Context())
		if st == nil {
			return next(c)
		}
		p, err := peekBody(g.cfg.Policy, body, g.proxy != nil)
		if err != nil {
			prm.WriteError(c.Response(), http.StatusBadRequest, nil, prm.ErrorBody{Error: prm.ErrInvalidRequest, ErrorDescription: err.Error()})
			return nil
		}
		st.msgs, st.required, st.tool, st.op = p.msgs, p.required, p.first.tool, p.first.op
		if g.proxy != nil {
			pp := p.proxied // a copy: only proxy mode pays for it
			st.proxied, st.body = &pp, body
		}
		return next(c)
	}
}
