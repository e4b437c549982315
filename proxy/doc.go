// Package proxy forwards the gateway's authorized MCP requests to an
// upstream MCP server over Streamable HTTP (MCP specification, "Basic /
// Transports"), and streams its answers back: the gateway's proxy mode
// (UPSTREAM_URL). The gateway authenticates the caller and enforces the
// scope policy first; [Proxy.ServeHTTP] then runs with the caller's
// [Identity] in the request context ([WithIdentity]) and refuses a request
// without one.
//
// # What is forwarded
//
// POST (JSON or server-sent-event answers), GET (the event stream) and
// DELETE, to exactly the upstream URL. From the client only an allowlist
// of headers: Accept, Content-Type, Mcp-Session-Id, MCP-Protocol-Version,
// Last-Event-ID, Mcp-Method, Mcp-Name, Mcp-Param-*, traceparent and
// tracestate (with tracing on, Config.TracerProvider, the traceparent is
// the proxy's own span's, continuing the client's trace). Never the client's Authorization (the MCP authorization
// specification forbids token passthrough), cookies, hop-by-hop headers,
// forwarding headers, or any X-MCP-* header the client sent. The gateway
// sets its own:
//
//	X-MCP-Subject    the token's sub (or username), when it has one
//	X-MCP-Client-ID  the OAuth client id, when known
//	X-MCP-Scopes     the granted scopes, space-separated
//	X-MCP-Email      the email, when known
//	Authorization    UPSTREAM_AUTHORIZATION, when set
//
// A subject, client id or scope that cannot be sent as it is (control
// characters, surrounding spaces, too long, a scope that is no RFC 6749
// scope-token) refuses the request with 403 rather than being altered;
// an unsafe email is left out. Back to the client go Content-Type,
// Content-Length, Content-Encoding, Cache-Control, Retry-After, Allow,
// Mcp-Session-Id and MCP-Protocol-Version: not Set-Cookie,
// WWW-Authenticate, Access-Control-* or Location.
//
// Server-sent events pass through as they arrive: ReverseProxy flushes
// each write of an event stream, so a progress notification reaches the
// client while the tool still runs.
//
// # Sessions
//
// A session id the upstream issues is bound to the caller it was issued
// to (the subject; the client id for a token without one). A request
// presenting a session id that is not bound to its caller, or that the
// proxy never saw issued, gets 404 (MCP "Session Management": the client
// starts a new session) and is not forwarded: the binding cannot be
// checked otherwise. Bindings live in the gateway process: after a
// restart every client re-initializes, and a stateful upstream behind
// several gateway machines needs sticky routing. DELETE (answered 2xx) or
// an upstream 404 ends a binding; a session idle for SessionIdleTimeout
// is forgotten and ended at the upstream with DELETE, as are all sessions
// at Close. At most MaxSessions sessions in all (503 past it) and
// MaxSessionsPerUser per caller (429), both with Retry-After: 30; an
// initialize is admitted only when there is room, so a refused one never
// reaches the upstream.
//
// Streaming answers (GET event streams and event-stream answers to POST)
// are bounded likewise by MaxStreams (503) and MaxStreamsPerUser (429),
// Retry-After: 10.
//
// # tools/list filtering
//
// With FilterTool set (the declared policy's "is this tool visible"), the
// answer to a tools/list request is rewritten without the tools it
// refuses: in a JSON answer, or in the event of an event stream that
// carries it, matched by the request's id. Ids must be strings or
// integers within ±(2^53-1), so that every upstream echoes them exactly; a
// tools/list the proxy could not match is refused with 400. On GET
// streams (which may replay an earlier answer on resumption) every tool
// list is filtered, whatever its id. What cannot be read is refused, never
// passed unfiltered: a compressed or oversized (MaxRewriteBytes) answer,
// or one that is neither JSON nor an event stream, is a 502; an oversized
// event ends the stream.
//
// # When the upstream fails
//
//	connection refused, reset, DNS, TLS       502 bad_gateway
//	no status line within Timeout             504 gateway_timeout (streams that started are not cut)
//	upstream 503                              503 temporarily_unavailable, its Retry-After (1 s to 1 h) or 5
//	upstream 504                              504 gateway_timeout
//	upstream other 5xx, or 3xx                502 bad_gateway
//	upstream 401 or 407                       502 (the upstream refused the gateway; logged as an error)
//	upstream other 4xx                        passed on
//
// Every error body is the project's JSON: {"error": ..., "error_description":
// ...}; the upstream's own body of a 5xx is not passed on. Neither
// UPSTREAM_AUTHORIZATION nor a query string in UPSTREAM_URL (where some
// hosted servers take a key) appears in a log line or an error.
//
// When a client goes away in the middle of a stream, ReverseProxy ends
// the handler with panic(http.ErrAbortHandler), which net/http (and Echo's
// Recover middleware) treat as a silent abort.
//
// # Configuration
//
// The gateway builds the proxy from its environment (README.md, "Proxy
// mode"): Upstream is UPSTREAM_URL, AllowHTTP UPSTREAM_ALLOW_HTTP,
// Authorization UPSTREAM_AUTHORIZATION, Timeout UPSTREAM_TIMEOUT; the
// session and stream bounds are the gateway's own MCP_MAX_SESSIONS,
// MCP_MAX_SESSIONS_PER_USER, MCP_MAX_STREAMS and MCP_MAX_STREAMS_PER_USER,
// the session idle timeout MCP_SESSION_TIMEOUT and the request body bound
// MAX_BODY_BYTES, as for the built-in server. The gateway sets FilterTool
// from its policy (gateway/proxymode.go).
//
// # The doctor
//
// [Probe] checks what `check` should report of the upstream: it answers
// HTTP, it speaks MCP (initialize, with the Go SDK's client), and its
// tools (names, following pagination, at most 10000).
package proxy
