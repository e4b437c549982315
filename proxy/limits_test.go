package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injected clock the tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestSessionLimits: past the per-user bound a caller gets 429, past the
// total bound everyone gets 503, both with Retry-After and a JSON body,
// and the refused initialize never reaches the upstream. Ending a session
// makes room again.
func TestSessionLimits(t *testing.T) {
	up := newUpstream(t, upstreamOpts{jsonResponse: true})
	p := newProxy(t, up.URL, Config{MaxSessions: 3, MaxSessionsPerUser: 2})
	fr := front(t, p)

	a1 := initialize(t, fr.URL, "alice-token")
	initialize(t, fr.URL, "alice-token")
	inits := func() int {
		n := 0
		for _, r := range up.Requests() {
			if strings.Contains(r.Body, `"initialize"`) {
				n++
			}
		}
		return n
	}
	before := inits()
	resp := post(t, fr.URL, "alice-token", "", initializeBody, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "30" {
		t.Fatalf("alice's third session: HTTP %d, Retry-After %q; want 429, 30", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code, _ := errorBody(t, resp); code != codeTooManySessions {
		t.Errorf("error %q", code)
	}
	if inits() != before {
		t.Error("the refused initialize reached the upstream")
	}

	initialize(t, fr.URL, "bob-token") // the third and last
	if got := p.Stats(); got != (Stats{Sessions: 3}) {
		t.Errorf("Stats with three sessions: %+v", got)
	}
	resp = post(t, fr.URL, "svc-token", "", initializeBody, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "30" {
		t.Fatalf("over the total: HTTP %d, Retry-After %q; want 503, 30", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code, _ := errorBody(t, resp); code != codeTooManySessions {
		t.Errorf("error %q", code)
	}

	// Requests in a session, and stateless requests, are not initialize:
	// they are not limited.
	if resp := post(t, fr.URL, "alice-token", a1, `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("in a session: HTTP %d", resp.StatusCode)
	}

	req, _ := http.NewRequest(http.MethodDelete, fr.URL, nil)
	req.Header.Set("Authorization", "Bearer alice-token")
	req.Header.Set("Mcp-Session-Id", a1)
	dresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dresp.Body.Close()
	if got := p.Stats(); got != (Stats{Sessions: 2}) {
		t.Errorf("Stats after a DELETE: %+v", got)
	}
	initialize(t, fr.URL, "alice-token")
}

// TestUnreservedSessionOverLimit: a session the upstream creates for a
// request the proxy did not take for an initialize is still bounded:
// refused, and ended at the upstream.
func TestUnreservedSessionOverLimit(t *testing.T) {
	var mu sync.Mutex
	var deletes []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodDelete {
			mu.Lock()
			deletes = append(deletes, r.Header.Get("Mcp-Session-Id")+" "+r.Header.Get("X-Mcp-Subject"))
			mu.Unlock()
			return
		}
		w.Header().Set("Mcp-Session-Id", "s-"+r.Header.Get("X-Mcp-Subject"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	defer up.Close()
	p := newProxy(t, up.URL, Config{MaxSessions: 1})
	fr := front(t, p)
	if resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("first: HTTP %d", resp.StatusCode)
	}
	resp := post(t, fr.URL, "bob-token", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second: HTTP %d, want 503", resp.StatusCode)
	}
	if resp.Header.Get("Mcp-Session-Id") != "" {
		t.Error("the refused session's id reached the client")
	}
	// A session id already bound to alice, issued again to bob, is not
	// his (nor ended: it is alice's).
	p.Close() // waits for the DELETE; alice's session is ended too
	mu.Lock()
	defer mu.Unlock()
	want := map[string]bool{"s-bob bob": true, "s-alice alice": true}
	if len(deletes) != 2 || !want[deletes[0]] || !want[deletes[1]] {
		t.Errorf("upstream DELETEs %q, want bob's refused session and alice's at Close", deletes)
	}
}

// TestSessionIDTakenOrInvalid: an upstream that issues an id bound to
// another caller, or an invalid one, gets a 502, and the binding stays
// with its owner.
func TestSessionIDTakenOrInvalid(t *testing.T) {
	id := "fixed-id"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodDelete {
			t.Errorf("DELETE of %q sent", r.Header.Get("Mcp-Session-Id"))
			return
		}
		w.Header().Set("Mcp-Session-Id", id)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	defer up.Close()
	p := newProxy(t, up.URL, Config{})
	fr := front(t, p)
	if resp := post(t, fr.URL, "alice-token", "", initializeBody, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice: HTTP %d", resp.StatusCode)
	}
	resp := post(t, fr.URL, "bob-token", "", initializeBody, nil)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Mcp-Session-Id") != "" {
		t.Fatalf("bob given alice's id: HTTP %d, Mcp-Session-Id %q", resp.StatusCode, resp.Header.Get("Mcp-Session-Id"))
	}
	if resp := post(t, fr.URL, "alice-token", id, `{"jsonrpc":"2.0","id":2,"method":"ping"}`, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("alice's session after bob's attempt: HTTP %d", resp.StatusCode)
	}
	id = "bad id"
	if resp := post(t, fr.URL, "bob-token", "", initializeBody, nil); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("invalid id: HTTP %d", resp.StatusCode)
	}
	id = "fixed-id"
	p.sessions.end(id) // Close must not DELETE (the handler fails the test if it does)
}

// holdingUpstream answers every request with an event stream that stays
// open until the request ends.
func holdingUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return srv
}

// served is a front server that reports each finished request, so that a
// test knows when a stream's slot is free.
func served(t *testing.T, p *Proxy) (*httptest.Server, chan struct{}) {
	t.Helper()
	done := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := testIdentities[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		// Deferred: ReverseProxy ends a stream the client left with
		// panic(http.ErrAbortHandler).
		defer func() { done <- struct{}{} }()
		p.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return srv, done
}

func openStream(t *testing.T, method, url, token string) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow"}}`)
	}
	req, _ := http.NewRequestWithContext(ctx, method, url, body)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp, cancel
}

// TestStreamLimits: GET streams and SSE answers to POST count against the
// same bounds: 429 per user, 503 in total, with Retry-After; a closed
// stream frees its slot.
func TestStreamLimits(t *testing.T) {
	up := holdingUpstream(t)
	p := newProxy(t, up.URL, Config{MaxStreams: 2, MaxStreamsPerUser: 1})
	fr, done := served(t, p)

	a, closeA := openStream(t, http.MethodGet, fr.URL, "alice-token")
	if a.StatusCode != http.StatusOK {
		t.Fatalf("alice's stream: HTTP %d", a.StatusCode)
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		resp, _ := openStream(t, method, fr.URL, "alice-token")
		<-done
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "10" {
			t.Fatalf("alice's second stream (%s): HTTP %d, Retry-After %q", method, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if code, _ := errorBody(t, resp); code != codeTooManyStreams {
			t.Errorf("error %q", code)
		}
	}
	b, _ := openStream(t, http.MethodPost, fr.URL, "bob-token")
	if b.StatusCode != http.StatusOK {
		t.Fatalf("bob's stream: HTTP %d", b.StatusCode)
	}
	c, _ := openStream(t, http.MethodGet, fr.URL, "svc-token")
	<-done
	if c.StatusCode != http.StatusServiceUnavailable || c.Header.Get("Retry-After") != "10" {
		t.Fatalf("third stream in all: HTTP %d, Retry-After %q", c.StatusCode, c.Header.Get("Retry-After"))
	}
	if got := p.Stats(); got.Streams != 2 {
		t.Errorf("Stats with two streams open: %+v", got)
	}
	closeA()
	<-done
	if got := p.Stats(); got.Streams != 1 {
		t.Errorf("Stats after one closed: %+v", got)
	}
	again, _ := openStream(t, http.MethodGet, fr.URL, "alice-token")
	if again.StatusCode != http.StatusOK {
		t.Fatalf("alice after closing hers: HTTP %d", again.StatusCode)
	}
}

// TestIdleSessions: a session unused for SessionIdleTimeout is forgotten
// (404, so the client starts anew) and ended at the upstream with the
// owner's identity; one with an open stream is in use, not idle.
func TestIdleSessions(t *testing.T) {
	up := newUpstream(t, upstreamOpts{})
	clock := newClock()
	p := newProxy(t, up.URL, Config{Now: clock.Now, SessionIdleTimeout: time.Minute, MaxSessionsPerUser: 2})
	fr, done := served(t, p)

	idle := initialize(t, fr.URL, "alice-token")
	busy := initialize(t, fr.URL, "alice-token")
	for range 4 {
		<-done
	}
	// An open GET stream on busy.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fr.URL, nil)
	req.Header.Set("Authorization", "Bearer alice-token")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", busy)
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %v %v", err, stream)
	}
	defer stream.Body.Close()

	clock.Advance(2 * time.Minute)
	if resp := post(t, fr.URL, "alice-token", idle, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("idle session: HTTP %d, want 404", resp.StatusCode)
	}
	if resp := post(t, fr.URL, "alice-token", busy, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("session with an open stream: HTTP %d, want 200", resp.StatusCode)
	}
	// The idle session's slot is free again.
	initialize(t, fr.URL, "alice-token")

	cancel()
	p.Close() // waits for the DELETEs
	var ended []string
	for _, r := range up.Requests() {
		if r.Method == http.MethodDelete {
			if r.Header.Get("X-Mcp-Subject") != "alice" || r.Header.Get("Authorization") != "Bearer upstream-secret" {
				t.Errorf("DELETE with subject %q, authorization %q", r.Header.Get("X-Mcp-Subject"), r.Header.Get("Authorization"))
			}
			ended = append(ended, r.Header.Get("Mcp-Session-Id"))
		}
	}
	if len(ended) != 3 || ended[0] != idle {
		t.Errorf("ended %q; want %q first (idle), then the two left at Close", ended, idle)
	}
}

// TestSessionsTable checks the table's counting directly: reservations
// count against the bounds until released or turned into bindings, and
// ids are never rebound to another caller.
func TestSessionsTable(t *testing.T) {
	clock := newClock()
	var evicted []string
	s := newSessions(3, 2, time.Minute, clock.Now, func(sess *session) { evicted = append(evicted, sess.id) })
	alice, bob := prepare(Identity{Subject: "alice"}), prepare(Identity{Subject: "bob"})
	aliceApp := prepare(Identity{ClientID: "alice"}) // a client id equal to a subject is someone else

	steps := []struct {
		name string
		do   func() error
		want string // "" or the error's text
	}{
		{"alice reserves", func() error { return s.reserve(alice) }, ""},
		{"alice reserves again", func() error { return s.reserve(alice) }, ""},
		{"alice's third reservation: per user", func() error { return s.reserve(alice) }, "proxy: too many sessions for this user"},
		{"a client named alice is not alice", func() error { return s.reserve(aliceApp) }, ""},
		{"bob: the table is full", func() error { return s.reserve(bob) }, "proxy: too many sessions"},
		{"alice binds one reservation", func() error { return bindErr(s.bind("a1", alice, true)) }, ""},
		{"alice releases the other", func() error { s.release(alice); return nil }, ""},
		{"bob now fits", func() error { return bindErr(s.bind("b1", bob, false)) }, ""},
		{"bob cannot take alice's id", func() error { return bindErr(s.bind("a1", bob, false)) }, "taken"},
		{"alice binding hers again is a no-op", func() error { return bindErr(s.bind("a1", alice, false)) }, "same"},
		{"no room for another", func() error { return bindErr(s.bind("x", alice, false)) }, "proxy: too many sessions"},
	}
	for _, st := range steps {
		err := st.do()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != st.want {
			t.Fatalf("%s: %q, want %q", st.name, got, st.want)
		}
	}
	if _, ok := s.use("a1", bob); ok {
		t.Error("bob may use alice's session")
	}
	done, ok := s.use("a1", alice)
	if !ok {
		t.Fatal("alice may not use her session")
	}
	clock.Advance(2 * time.Minute)
	s.release(aliceApp)
	if n := s.len(); n != 2 {
		t.Fatalf("%d sessions before eviction", n)
	}
	if err := s.reserve(bob); err != nil { // evicts b1 (idle); a1 is in use
		t.Fatal(err)
	}
	if len(evicted) != 1 || evicted[0] != "b1" {
		t.Errorf("evicted %v, want [b1]", evicted)
	}
	done()
	s.end("a1")
	if n := s.len(); n != 0 {
		t.Errorf("%d sessions after end", n)
	}
}

// bindErr turns bind's result into an error text for the table above.
func bindErr(res bindResult, err error) error {
	switch {
	case err != nil:
		return err
	case res == bindTaken:
		return errors.New("taken")
	case res == boundSame:
		return errors.New("same")
	}
	return nil
}
