package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mcp-gateway/mcp-gateway/prm"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// readBody reads an MCP POST body once, bounded by MaxBodyBytes, and keeps
// the JSON-RPC messages it holds in the request state: stepUp reads the
// scopes they need, limits whether the answer is a stream, the log line
// the tool and operation. The SDK is handed the same bytes. It runs in
// every SCOPE_CHALLENGE mode, so a body over the bound gets the same 413
// request_too_large whichever mode decides scopes (the SDK's own bound,
// MaxRequestBodyBytes, stays as a backstop). It runs after authentication:
// nobody without a valid token makes the gateway read a body.
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

		if st := stateFrom(r.Context()); st != nil {
			st.msgs = parseRPC(body)
			for _, m := range st.msgs {
				if m.Method == "tools/call" {
					st.tool = clampTool(m.Params.Name)
					if st.tool == scopes.CalculatorTool {
						st.op = clampOperation(m.Params.Arguments.Operation)
					}
					break
				}
			}
		}
		return next(c)
	}
}
