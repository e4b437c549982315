package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// modifyResponse decides what the client gets of the upstream's answer,
// once its status line and headers have arrived: an error the
// ErrorHandler answers instead, or the answer with its headers filtered,
// its session bound to the caller, and a tools/list in it filtered.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	st := stateFrom(resp.Request.Context())
	st.timer.Stop() // the first byte arrived: a stream is not cut from here on
	st.upstreamStatus = resp.StatusCode

	// 3xx too: the proxy follows no redirect, and a client cannot either
	// (Location is not passed on: it would point past the gateway).
	if s := resp.StatusCode; s >= 500 || s/100 == 3 || s == http.StatusUnauthorized || s == http.StatusProxyAuthRequired {
		return &UpstreamStatusError{Status: s, retryAfter: resp.Header.Get("Retry-After")}
	}
	filterResponseHeaders(resp.Header)
	sse := isEventStream(resp.Header)

	// A streaming answer to POST holds a slot until it ends (ServeHTTP
	// releases it); GET streams took theirs before being forwarded. This
	// comes before the session is bound, so that a refused stream leaves
	// no session behind.
	if sse && st.method == http.MethodPost {
		if err := p.streams.acquire(st.caller.key); err != nil {
			return err
		}
		st.stream = true
	}

	if err := p.bindSession(resp, st); err != nil {
		return err
	}

	if p.filter != nil && resp.StatusCode == http.StatusOK {
		return p.filterAnswer(resp, st, sse)
	}
	return nil
}

// bindSession binds a session id the upstream issued to the caller, and
// forgets one the upstream ended or no longer knows.
func (p *Proxy) bindSession(resp *http.Response, st *request) error {
	ids := resp.Header[headerSessionID]
	if len(ids) > 1 {
		return &SessionError{Reason: "more than one Mcp-Session-Id"}
	}
	if id := resp.Header.Get(headerSessionID); id != "" && id != st.sessionID {
		if !validSessionID(id) {
			return &SessionError{Reason: "not 1 to 256 visible ASCII characters"}
		}
		res, err := p.sessions.bind(id, st.caller, st.reserved)
		st.reserved = false
		switch res {
		case bindTaken:
			// Another caller's session: never rebind it, never end it.
			return &SessionError{Reason: "already bound to another caller"}
		case bindFull:
			// Admitted without a reservation (not recognisably an
			// initialize) and no room: the upstream must not keep it.
			p.terminate(&session{id: id, owner: st.caller})
			return err
		case bound:
			st.newID = id
		}
	}
	if st.sessionID != "" {
		switch {
		case resp.StatusCode == http.StatusNotFound:
			// MCP "Session Management": 404 means the upstream ended the
			// session; the client starts a new one.
			p.sessions.end(st.sessionID)
		case st.method == http.MethodDelete && resp.StatusCode/100 == 2:
			p.sessions.end(st.sessionID)
		}
	}
	return nil
}

// filterAnswer rewrites the tools/list answers in a 200 answer: the
// answer to a POST that carried tools/list requests (matched by id), or
// any response holding a tool list on a GET stream (which a client may
// resume to receive the answer to an earlier POST: MCP "Resumability and
// Redelivery"). What cannot be read is refused, never passed unfiltered.
func (p *Proxy) filterAnswer(resp *http.Response, st *request, sse bool) error {
	var match func(string) bool
	switch {
	case st.method == http.MethodPost && len(st.toolsList) > 0:
		ids := st.toolsList
		match = func(id string) bool { return slices.Contains(ids, id) }
	case st.method == http.MethodGet && sse:
		match = nil // every message
	default:
		return nil
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return &RewriteError{Reason: "the answer is compressed (" + ce + ")"}
	}
	ctx := resp.Request.Context()
	keep := func(name string) bool { return p.filter(ctx, name) }
	if sse {
		resp.Body = newSSERewriter(resp.Body, p.maxRewrite, func(data []byte) ([]byte, bool, error) {
			return filterTools(data, match, keep)
		})
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		return nil
	}
	if !isJSON(resp.Header) {
		return &RewriteError{Reason: "the answer to tools/list is neither JSON nor an event stream"}
	}
	// The body is read whole, bounded, and within the same Timeout as the
	// first byte.
	st.timer.Reset(p.timeout)
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(p.maxRewrite)+1))
	stopped := st.timer.Stop()
	resp.Body.Close()
	switch {
	case err != nil && !stopped:
		return errUpstreamTimeout
	case err != nil:
		return err
	case len(body) > p.maxRewrite:
		return &RewriteError{Reason: "the answer exceeds the rewrite bound"}
	}
	out, _, err := filterTools(body, match, keep)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// hasMediaType reports whether the Content-Type's media type (RFC 9110
// §8.3.1: type/subtype before any parameters, case-insensitive) is mt,
// without the allocations of mime.ParseMediaType on every answer.
func hasMediaType(h http.Header, mt string) bool {
	ct := h.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), mt)
}

func isEventStream(h http.Header) bool { return hasMediaType(h, "text/event-stream") }
func isJSON(h http.Header) bool        { return hasMediaType(h, "application/json") }

// Upstream DELETEs the proxy sends on its own: at most maxTerminating at
// once, each within terminateTimeout.
const (
	maxTerminating   = 8
	terminateTimeout = 5 * time.Second
)

// track counts one more background request (a DELETE, a readiness
// check) that Close waits for; false once Close has stopped counting.
func (p *Proxy) track() bool {
	p.bgMu.Lock()
	defer p.bgMu.Unlock()
	if p.bgClosed {
		return false
	}
	p.background.Add(1)
	return true
}

// terminate ends a session at the upstream (MCP "Session Management":
// DELETE with the session id), best effort, in the background: a session
// the proxy forgot (idle, refused, or at Close) must not live on at the
// upstream. The request carries the owner's identity, as the upstream saw
// it when the session was created.
func (p *Proxy) terminate(s *session) {
	if !p.track() {
		return
	}
	go func() {
		defer p.background.Done()
		p.terminateSem <- struct{}{}
		defer func() { <-p.terminateSem }()
		ctx, cancel := context.WithTimeout(context.Background(), terminateTimeout)
		defer cancel()
		u := *p.upstream
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u.String(), nil)
		if err != nil {
			return
		}
		req.Header[headerSessionID] = []string{s.id}
		p.setIdentity(req.Header, s.owner)
		resp, err := p.transport.RoundTrip(req)
		if err != nil {
			p.log.Debug("proxy: ending an upstream session failed", "error", p.scrub(err.Error()))
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
	}()
}
