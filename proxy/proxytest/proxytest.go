// Package proxytest is the upstream side of proxy-mode tests: an HTTP
// server, usually a Go MCP SDK handler, that records every request as it
// arrived (method, headers, body), so that a test can assert what the
// gateway forwarded (identity headers, UPSTREAM_AUTHORIZATION) and what it
// must never forward (the client's token, forged X-MCP-* headers, a call
// the policy refused).
package proxytest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
)

// Request is one request as the upstream received it.
type Request struct {
	Method string
	Header http.Header
	Body   string
}

// Upstream is an httptest server that records each request, then hands it
// to its handler with the body intact. Safe for concurrent use.
type Upstream struct {
	*httptest.Server

	mu   sync.Mutex
	reqs []Request
}

// NewUpstream starts an Upstream serving h. It is closed when the test
// ends, client connections first so that open event streams end.
func NewUpstream(t testing.TB, h http.Handler) *Upstream {
	t.Helper()
	u := &Upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, Request{Method: r.Method, Header: r.Header.Clone(), Body: string(body)})
		u.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		u.CloseClientConnections()
		u.Close()
	})
	return u
}

// Requests returns the requests received so far, in order.
func (u *Upstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs)
}
