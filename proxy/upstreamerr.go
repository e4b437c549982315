package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mcp-gateway/mcp-gateway/prm"
)

// Error codes of the proxy's JSON error bodies ({"error": ...,
// "error_description": ...}, the shape of every error the gateway sends).
const (
	codeBadGateway       = "bad_gateway"
	codeGatewayTimeout   = "gateway_timeout"
	codeUnavailable      = "temporarily_unavailable" // RFC 6749 §4.1.2.1
	codeSessionNotFound  = "session_not_found"
	codeTooManySessions  = "too_many_sessions"
	codeTooManyStreams   = "too_many_streams"
	codeInvalidRequest   = prm.ErrInvalidRequest
	codeAccessDenied     = "access_denied"
	codeServerError      = "server_error"
	codeMethodNotAllowed = "method_not_allowed"
	codeTooLarge         = "request_too_large"
)

// Retry-After for the proxy's own limits: sessions free up by DELETE or
// idleness, streams when a client disconnects.
const (
	sessionsRetryAfter = 30 * time.Second
	streamsRetryAfter  = 10 * time.Second
	// upstreamRetryAfter is sent with 503 when the upstream gave no usable
	// Retry-After of its own; maxUpstreamRetryAfter caps one it gave.
	upstreamRetryAfter    = 5 * time.Second
	maxUpstreamRetryAfter = time.Hour
)

// errUpstreamTimeout is the cause of a request cancelled because the
// upstream's answer did not start within Timeout.
var errUpstreamTimeout = errors.New("proxy: the upstream did not answer in time")

// UpstreamStatusError is an upstream answer the client does not get as
// it is: a 5xx (the client gets 502, 503 or 504 with the proxy's own JSON
// body: the upstream's may hold internals), or 401/407 (the upstream
// refused the gateway's own credential; passed on, it would send the
// client through a login that cannot help).
type UpstreamStatusError struct {
	Status     int
	retryAfter string
}

func (e *UpstreamStatusError) Error() string {
	return "proxy: upstream answered HTTP " + strconv.Itoa(e.Status)
}

// RewriteError says that a tools/list answer could not be filtered; it is
// refused (502, or the stream is cut) rather than passed unfiltered.
type RewriteError struct{ Reason string }

func (e *RewriteError) Error() string { return "proxy: tools/list answer not filtered: " + e.Reason }

// SessionError says that the upstream issued a session id the proxy
// cannot bind: invalid, or already bound to another caller.
type SessionError struct{ Reason string }

func (e *SessionError) Error() string { return "proxy: upstream session id refused: " + e.Reason }

func writeError(w http.ResponseWriter, status int, code, desc string) {
	prm.WriteError(w, status, nil, prm.ErrorBody{Error: code, ErrorDescription: desc})
}

func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}

// writeLimit answers a request a limit refused: 429 when the caller holds
// their share, 503 when the whole gateway is full; Retry-After on both
// (RFC 6585 §4, RFC 9110 §10.2.3).
func (p *Proxy) writeLimit(w http.ResponseWriter, err error) {
	var le *limitError
	if !errors.As(err, &le) {
		writeError(w, http.StatusInternalServerError, codeServerError, "")
		return
	}
	code, retry := codeTooManySessions, sessionsRetryAfter
	if le.what == "streams" {
		code, retry = codeTooManyStreams, streamsRetryAfter
	}
	w.Header().Set("Retry-After", retryAfterSeconds(retry))
	if le.perUser {
		p.log.Info("proxy: per-user limit reached", "limit", le.what)
		writeError(w, http.StatusTooManyRequests, code, "you have too many open "+le.what+"; close some or try again later")
		return
	}
	p.log.Warn("proxy: limit reached", "limit", le.what)
	writeError(w, http.StatusServiceUnavailable, code, "this server has too many open "+le.what+"; try again later")
}

// upstreamRetry keeps an upstream 503's Retry-After when it is a sane
// delay-seconds (RFC 9110 §10.2.3), else the proxy's default.
func upstreamRetry(v string) string {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || time.Duration(n)*time.Second > maxUpstreamRetryAfter {
		return retryAfterSeconds(upstreamRetryAfter)
	}
	return strconv.Itoa(n)
}

// errorHandler answers every failure to get a usable answer from the
// upstream: never a hang (Timeout), never the upstream's or the
// transport's words (which could carry internals), never a credential.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if st != nil && st.newID != "" {
		// The client will not learn the session its answer created.
		p.sessions.end(st.newID)
		p.terminate(&session{id: st.newID, owner: st.caller})
		st.newID = ""
	}
	var (
		le  *limitError
		use *UpstreamStatusError
		rwe *RewriteError
		se  *SessionError
	)
	switch {
	case errors.As(err, &le):
		p.writeLimit(w, err)
	case errors.As(err, &use):
		switch {
		case use.Status == http.StatusUnauthorized || use.Status == http.StatusProxyAuthRequired:
			p.failed(st, FailureCredentials)
			p.log.ErrorContext(r.Context(), "proxy: the upstream refused the gateway's credentials; check UPSTREAM_AUTHORIZATION", "status", use.Status)
			writeError(w, http.StatusBadGateway, codeBadGateway, "the upstream MCP server refused the gateway")
		case use.Status == http.StatusServiceUnavailable:
			p.failed(st, FailureUnavailable)
			p.log.WarnContext(r.Context(), "proxy: upstream unavailable", "status", use.Status)
			w.Header().Set("Retry-After", upstreamRetry(use.retryAfter))
			writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the upstream MCP server is unavailable; try again later")
		case use.Status == http.StatusGatewayTimeout:
			p.failed(st, FailureUpstreamTimeout)
			p.log.WarnContext(r.Context(), "proxy: upstream answered gateway timeout", "status", use.Status)
			writeError(w, http.StatusGatewayTimeout, codeGatewayTimeout, "the upstream MCP server did not answer in time")
		default:
			p.failed(st, FailureBadStatus)
			p.log.WarnContext(r.Context(), "proxy: upstream failed", "status", use.Status)
			writeError(w, http.StatusBadGateway, codeBadGateway, "the upstream MCP server failed")
		}
	case errors.As(err, &rwe):
		p.failed(st, FailureUnfilterable)
		p.log.ErrorContext(r.Context(), "proxy: tools/list answer refused", "reason", rwe.Reason)
		writeError(w, http.StatusBadGateway, codeBadGateway, "the upstream MCP server's tool list could not be filtered")
	case errors.As(err, &se):
		p.failed(st, FailureSession)
		p.log.ErrorContext(r.Context(), "proxy: upstream session refused", "reason", se.Reason)
		writeError(w, http.StatusBadGateway, codeBadGateway, "the upstream MCP server issued an unusable session")
	case errors.As(err, new(*http.MaxBytesError)):
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "the request body is larger than this server accepts")
	case errors.Is(context.Cause(r.Context()), errUpstreamTimeout):
		p.failed(st, FailureTimeout)
		p.log.WarnContext(r.Context(), "proxy: upstream timeout", "timeout", p.timeout.String())
		writeError(w, http.StatusGatewayTimeout, codeGatewayTimeout, "the upstream MCP server did not answer in time")
	case r.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		p.log.DebugContext(r.Context(), "proxy: client gone before the upstream answered")
		writeError(w, http.StatusBadGateway, codeBadGateway, "the request was cancelled")
	default:
		// Connection refused or reset, DNS, TLS, an answer cut short.
		p.failed(st, FailureUnreachable)
		p.log.WarnContext(r.Context(), "proxy: upstream unreachable", "error", p.scrub(err.Error()))
		writeError(w, http.StatusBadGateway, codeBadGateway, "the upstream MCP server could not be reached")
	}
}
