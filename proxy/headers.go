package proxy

import (
	"net/http"
	"strings"
)

// Identity headers the gateway sets on every forwarded request (canonical
// form). Any header of these names the client sent is removed first,
// because only the allowlist below is forwarded.
const (
	HeaderSubject  = "X-Mcp-Subject"
	HeaderClientID = "X-Mcp-Client-Id"
	HeaderScopes   = "X-Mcp-Scopes"
	HeaderEmail    = "X-Mcp-Email"
)

// MCP Streamable HTTP header names (canonical form).
const (
	headerSessionID       = "Mcp-Session-Id"
	headerProtocolVersion = "Mcp-Protocol-Version"
	headerLastEventID     = "Last-Event-Id"
	headerParamPrefix     = "Mcp-Param-"
)

// forwardRequest lists the request headers the upstream receives from the
// client; every other header is dropped. That removes, whatever their
// case: Authorization (the MCP authorization specification forbids
// passing the client's token through, "Token Passthrough"), Cookie,
// forged X-MCP-* identity headers, Forwarded and X-Forwarded-*, Origin
// (the gateway checked it), Accept-Encoding (the proxy must be able to
// read the answers it rewrites), and the hop-by-hop headers of RFC 9110
// §7.6.1 (which ReverseProxy removes as well).
//
// What is kept is what Streamable HTTP needs: Accept and Content-Type
// (MCP transports, "Sending Messages to the Server"), Mcp-Session-Id
// ("Session Management"), MCP-Protocol-Version ("Protocol Version
// Header"), Last-Event-ID ("Resumability and Redelivery"), Mcp-Method,
// Mcp-Name and Mcp-Param-* (the 2026-07-28 standard request headers,
// which an upstream checks against the body), and W3C Trace Context
// (traceparent, tracestate) so that traces continue through the upstream;
// with tracing on, rewrite replaces them with the proxy's own span's
// context (trace.go).
var forwardRequest = map[string]bool{
	"Accept":              true,
	"Content-Type":        true,
	headerSessionID:       true,
	headerProtocolVersion: true,
	headerLastEventID:     true,
	"Mcp-Method":          true,
	"Mcp-Name":            true,
	"Traceparent":         true,
	"Tracestate":          true,
}

// filterRequestHeaders deletes from h (the outbound request's copy of the
// client's headers) every header that is not allowlisted.
func filterRequestHeaders(h http.Header) {
	for k := range h {
		if !forwardRequest[k] && !strings.HasPrefix(k, headerParamPrefix) {
			delete(h, k)
		}
	}
}

// setIdentity sets the gateway's own headers: who is calling, and the
// gateway's credential for the upstream (UPSTREAM_AUTHORIZATION), so that
// the upstream can refuse anyone but the gateway.
func (p *Proxy) setIdentity(h http.Header, c *caller) {
	if c.subject != nil {
		h[HeaderSubject] = c.subject
	}
	if c.clientID != nil {
		h[HeaderClientID] = c.clientID
	}
	h[HeaderScopes] = c.scopes
	if c.email != nil {
		h[HeaderEmail] = c.email
	}
	if p.authorization != nil {
		h["Authorization"] = p.authorization
	}
}

// forwardResponse lists the upstream's response headers the client
// receives. Dropped, among others: Set-Cookie (the upstream must not set
// cookies on the gateway's origin), WWW-Authenticate (the gateway owns
// the client's authorization; an upstream challenge would send a client
// through login for the wrong server), Access-Control-* (the gateway owns
// CORS), and Strict-Transport-Security and Alt-Svc (the gateway's origin
// policy is not the upstream's to set).
var forwardResponse = map[string]bool{
	"Content-Type":        true,
	"Content-Length":      true,
	"Content-Encoding":    true,
	"Cache-Control":       true,
	"Retry-After":         true,
	"Allow":               true,
	headerSessionID:       true,
	headerProtocolVersion: true,
}

func filterResponseHeaders(h http.Header) {
	for k := range h {
		if !forwardResponse[k] {
			delete(h, k)
		}
	}
}
