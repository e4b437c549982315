// Package oauthtest records what an OAuth client sends and receives, for
// tests that check a client's behaviour on the wire (which token it
// presented, when it refreshed, which challenges it saw).
package oauthtest

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Recorder is an http.RoundTripper that records the requests a client
// sends through Base: the bearer tokens, the responses' statuses and 403
// challenges, and the successful refresh_token grants. Safe for concurrent
// use.
type Recorder struct {
	Base http.RoundTripper

	mu        sync.Mutex
	tokens    []string // Authorization bearer tokens, in order
	statuses  []int
	forbidden []string // WWW-Authenticate of 403 responses
	refreshes int      // successful grant_type=refresh_token requests
}

// RoundTrip implements http.RoundTripper.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	refresh := false
	if req.Method == http.MethodPost && req.Body != nil && strings.HasSuffix(req.URL.Path, "/token") {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		form, _ := url.ParseQuery(string(b))
		refresh = form.Get("grant_type") == "refresh_token"
	}
	resp, err := r.Base.RoundTrip(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		r.tokens = append(r.tokens, tok)
	}
	if refresh && err == nil && resp.StatusCode == http.StatusOK {
		r.refreshes++
	}
	if err == nil {
		r.statuses = append(r.statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusForbidden {
			r.forbidden = append(r.forbidden, strings.Join(resp.Header.Values("WWW-Authenticate"), ", "))
		}
	}
	return resp, err
}

// LastToken is the bearer token of the last request that carried one.
func (r *Recorder) LastToken() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.tokens) == 0 {
		return ""
	}
	return r.tokens[len(r.tokens)-1]
}

// Refreshes is the number of successful refresh_token grants.
func (r *Recorder) Refreshes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refreshes
}

// Snapshot returns the statuses seen so far and the challenges of the 403s.
func (r *Recorder) Snapshot() (statuses []int, forbidden []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.statuses), slices.Clone(r.forbidden)
}
