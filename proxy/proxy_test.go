package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
	"github.com/mcp-gateway/mcp-gateway/internal/syncbuf"
)

// The modes an upstream built on the Go SDK can run in.
var upstreamModes = []struct {
	name string
	opts upstreamOpts
}{
	{"stateful-sse", upstreamOpts{}},
	{"stateful-json", upstreamOpts{jsonResponse: true}},
	{"stateless-sse", upstreamOpts{stateless: true}},
	{"stateless-json", upstreamOpts{stateless: true, jsonResponse: true}},
}

// TestClientThroughProxy drives the Go SDK's client through the proxy in
// every upstream mode: list tools, call one, and the upstream saw the
// gateway's identity and credential on every request, never the client's.
func TestClientThroughProxy(t *testing.T) {
	for _, m := range upstreamModes {
		t.Run(m.name, func(t *testing.T) {
			up := newUpstream(t, m.opts)
			fr := front(t, newProxy(t, up.URL, Config{}))
			forged := http.Header{"X-Mcp-Subject": {"mallory"}, "x-mcp-scopes": {"admin"}, "Cookie": {"session=stolen"}}
			cs := connect(t, fr.URL, "alice-token", nil, forged)
			ctx := context.Background()

			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("ListTools: %v", err)
			}
			var names []string
			for _, tl := range tools.Tools {
				names = append(names, tl.Name)
			}
			slices.Sort(names)
			if want := []string{"echo", "secret", "slow"}; !slices.Equal(names, want) {
				t.Errorf("tools = %v, want %v", names, want)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}})
			if err != nil {
				t.Fatalf("CallTool: %v", err)
			}
			if got := res.Content[0].(*mcp.TextContent).Text; got != "hello" {
				t.Errorf("echo = %q", got)
			}

			reqs := up.Requests()
			if len(reqs) < 3 {
				t.Fatalf("upstream saw %d requests, want at least 3", len(reqs))
			}
			for i, r := range reqs {
				h := r.Header
				for k, want := range map[string]string{
					"Authorization":   "Bearer upstream-secret",
					"X-Mcp-Subject":   "alice",
					"X-Mcp-Client-Id": "client-a",
					"X-Mcp-Scopes":    "read write",
					"X-Mcp-Email":     "alice@example.com",
				} {
					if got := h.Values(k); len(got) != 1 || got[0] != want {
						t.Errorf("request %d (%s): %s = %q, want exactly %q", i, r.Method, k, got, want)
					}
				}
				if h.Get("Cookie") != "" {
					t.Errorf("request %d: Cookie forwarded", i)
				}
			}
			if !m.opts.stateless {
				if up.count(http.MethodGet, "") == 0 {
					t.Error("the client's GET event stream never reached the upstream")
				}
			}
		})
	}
}

// TestRequestHeaders checks, on one raw request, the exact set of headers
// the upstream receives.
func TestRequestHeaders(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	fr := front(t, newProxy(t, up.URL, Config{}))
	resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`, http.Header{
		"X-MCP-Subject":       {"mallory"}, // as sent on the wire: any case
		"X-Mcp-Client-Id":     {"evil"},
		"X-MCP-SCOPES":        {"admin"},
		"X-Mcp-Email":         {"mallory@example.com"},
		"Cookie":              {"a=b"},
		"X-Forwarded-For":     {"10.0.0.1"},
		"Forwarded":           {"for=10.0.0.1"},
		"Origin":              {"https://evil.example"},
		"Accept-Encoding":     {"gzip"},
		"Proxy-Authorization": {"Basic eA=="},
		"Traceparent":         {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"Tracestate":          {"congo=t61rcWkgMzE"},
		"User-Agent":          {"test-agent"},
		"Mcp-Method":          {"tools/list"},
		"Mcp-Param-Region":    {"eu"},
		"X-Custom":            {"dropped"},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	reqs := up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(reqs))
	}
	got := reqs[0].Header
	want := http.Header{
		"Accept":               {"application/json, text/event-stream"},
		"Content-Type":         {"application/json"},
		"Content-Length":       {"46"},
		"Mcp-Protocol-Version": {"2025-06-18"},
		"Mcp-Method":           {"tools/list"},
		"Mcp-Param-Region":     {"eu"},
		"Traceparent":          {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"Tracestate":           {"congo=t61rcWkgMzE"},
		"Authorization":        {"Bearer upstream-secret"},
		"X-Mcp-Subject":        {"alice"},
		"X-Mcp-Client-Id":      {"client-a"},
		"X-Mcp-Scopes":         {"read write"},
		"X-Mcp-Email":          {"alice@example.com"},
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("upstream got %s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("upstream got unexpected header %s: %q", k, got[k])
		}
	}
}

// TestIdentityHeadersWithoutSubject: a client-credentials token binds by
// client id and sends no X-MCP-Subject (and no email it does not have).
func TestIdentityHeadersWithoutSubject(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	fr := front(t, newProxy(t, up.URL, Config{}))
	resp := post(t, fr.URL, "svc-token", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, http.Header{"X-Mcp-Subject": {"forged"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	h := up.Requests()[0].Header
	if v, ok := h["X-Mcp-Subject"]; ok {
		t.Errorf("X-Mcp-Subject = %q, want absent", v)
	}
	if v, ok := h["X-Mcp-Email"]; ok {
		t.Errorf("X-Mcp-Email = %q, want absent", v)
	}
	if got := h.Get("X-Mcp-Client-Id"); got != "service-1" {
		t.Errorf("X-Mcp-Client-Id = %q", got)
	}
}

// TestNoUpstreamAuthorization: without UPSTREAM_AUTHORIZATION the upstream
// gets no Authorization at all (the client's is never a fallback).
func TestNoUpstreamAuthorization(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	p, err := New(Config{Upstream: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fr := front(t, p)
	resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	if v, ok := up.Requests()[0].Header["Authorization"]; ok {
		t.Errorf("Authorization = %q, want absent", v)
	}
}

// TestIdentityRequired: the proxy fails closed without an identity, and
// refuses identities it cannot send faithfully.
func TestIdentityRequired(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	p := newProxy(t, up.URL, Config{})
	for _, tt := range []struct {
		name   string
		ctx    func(context.Context) context.Context
		status int
		code   string
	}{
		{"none", func(c context.Context) context.Context { return c }, 500, codeServerError},
		{"empty", func(c context.Context) context.Context { return WithIdentity(c, Identity{}) }, 403, codeAccessDenied},
		{"subject CRLF", func(c context.Context) context.Context {
			return WithIdentity(c, Identity{Subject: "alice\r\nX-Mcp-Scopes: admin"})
		}, 403, codeAccessDenied},
		{"subject padded", func(c context.Context) context.Context { return WithIdentity(c, Identity{Subject: "alice "}) }, 403, codeAccessDenied},
		{"subject too long", func(c context.Context) context.Context {
			return WithIdentity(c, Identity{Subject: strings.Repeat("a", maxIdentityValue+1)})
		}, 403, codeAccessDenied},
		{"client id NUL", func(c context.Context) context.Context {
			return WithIdentity(c, Identity{Subject: "a", ClientID: "c\x00"})
		}, 403, codeAccessDenied},
		{"scope with space", func(c context.Context) context.Context {
			return WithIdentity(c, Identity{Subject: "a", Scopes: []string{"read admin"}})
		}, 403, codeAccessDenied},
		{"too many scopes", func(c context.Context) context.Context {
			return WithIdentity(c, Identity{Subject: "a", Scopes: slices.Repeat([]string{strings.Repeat("s", 100)}, 100)})
		}, 403, codeAccessDenied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(up.Requests())
			req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req = req.WithContext(tt.ctx(req.Context()))
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			if code, _ := errorBody(t, rec.Result()); code != tt.code {
				t.Errorf("error %q, want %q", code, tt.code)
			}
			if n := len(up.Requests()); n != before {
				t.Errorf("the upstream was called")
			}
		})
	}
}

// TestUnsafeEmailLeftOut: an email that cannot be sent faithfully is not
// sent, and the request goes on.
func TestUnsafeEmailLeftOut(t *testing.T) {
	c := prepare(Identity{Subject: "a", Email: "a@example.com\n"})
	if c.err != "" || c.email != nil {
		t.Fatalf("err %q, email %q", c.err, c.email)
	}
	c = prepare(Identity{Subject: "a", Email: "josé@example.com"})
	if c.err != "" || len(c.email) != 1 {
		t.Fatalf("UTF-8 email (obs-text, RFC 9110 §5.5): err %q, email %q", c.err, c.email)
	}
}

func TestIdentityFromTokenInfo(t *testing.T) {
	if got := IdentityFromTokenInfo(nil); got.Subject != "" || got.ClientID != "" {
		t.Errorf("nil: %+v", got)
	}
}

// TestSessionBinding: a session id issued to alice is alice's; bob
// presenting it gets 404 as if it did not exist, and the upstream never
// sees bob's request. Unknown ids are refused the same way.
func TestSessionBinding(t *testing.T) {
	up := newUpstream(t, upstreamOpts{jsonResponse: true})
	fr := front(t, newProxy(t, up.URL, Config{}))
	sid := initialize(t, fr.URL, "alice-token")

	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	if resp := post(t, fr.URL, "alice-token", sid, list, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice with her session: HTTP %d", resp.StatusCode)
	}
	before := up.count(http.MethodPost, sid)
	for _, tt := range []struct{ name, token, session string }{
		{"another user", "bob-token", sid},
		{"same client id, no subject", "svc-token", sid},
		{"unknown session", "alice-token", "never-issued"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, fr.URL, tt.token, tt.session, list, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("HTTP %d, want 404", resp.StatusCode)
			}
			if code, _ := errorBody(t, resp); code != codeSessionNotFound {
				t.Errorf("error %q", code)
			}
		})
	}
	if got := up.count(http.MethodPost, sid); got != before {
		t.Errorf("the upstream saw %d more requests with alice's session", got-before)
	}
	if got := up.count(http.MethodPost, "never-issued"); got != 0 {
		t.Errorf("an unknown session id was forwarded %d times", got)
	}

	// Two session headers are ambiguous.
	resp := post(t, fr.URL, "alice-token", "", list, http.Header{"Mcp-Session-Id": {sid, "other"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("two session ids: HTTP %d, want 400", resp.StatusCode)
	}
}

// TestDelete: DELETE reaches the upstream and ends the binding; the id is
// then unknown, and not forwarded again. Bob cannot delete alice's.
func TestDelete(t *testing.T) {
	up := newUpstream(t, upstreamOpts{})
	p := newProxy(t, up.URL, Config{})
	fr := front(t, p)
	sid := initialize(t, fr.URL, "alice-token")

	del := func(token string) *http.Response {
		req, _ := http.NewRequest(http.MethodDelete, fr.URL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := del("bob-token"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bob's DELETE: HTTP %d, want 404", resp.StatusCode)
	}
	if n := up.count(http.MethodDelete, sid); n != 0 {
		t.Fatalf("bob's DELETE reached the upstream")
	}
	if resp := del("alice-token"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("alice's DELETE: HTTP %d, want 204", resp.StatusCode)
	}
	if n := up.count(http.MethodDelete, sid); n != 1 {
		t.Fatalf("upstream saw %d DELETEs, want 1", n)
	}
	if n := p.sessions.len(); n != 0 {
		t.Errorf("%d sessions still bound", n)
	}
	resp := post(t, fr.URL, "alice-token", sid, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("after DELETE: HTTP %d, want 404", resp.StatusCode)
	}
	if n := up.count(http.MethodPost, sid); n != 1 { // notifications/initialized only
		t.Errorf("upstream saw %d POSTs with the ended session, want 1", n)
	}
}

// TestUpstreamForgetsSession: when the upstream answers 404 for a session
// (it ended it), the proxy forgets the binding too.
func TestUpstreamForgetsSession(t *testing.T) {
	up := newUpstream(t, upstreamOpts{jsonResponse: true})
	p := newProxy(t, up.URL, Config{})
	fr := front(t, p)
	sid := initialize(t, fr.URL, "alice-token")
	for ss := range up.mcp.Sessions() {
		ss.Close()
	}
	resp := post(t, fr.URL, "alice-token", sid, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HTTP %d, want the upstream's 404", resp.StatusCode)
	}
	if n := p.sessions.len(); n != 0 {
		t.Errorf("%d sessions still bound", n)
	}
}

// TestGetStreamAndLastEventID: a GET event stream carries server
// notifications to the client; Last-Event-ID reaches the upstream.
func TestGetStreamAndLastEventID(t *testing.T) {
	up := newUpstream(t, upstreamOpts{})
	fr := front(t, newProxy(t, up.URL, Config{}))
	changed := make(chan struct{}, 1)
	cs := connect(t, fr.URL, "alice-token", &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	}, nil)
	// The standalone stream is open once the upstream has seen the GET and
	// the session has a stream to send on; adding tools until a
	// notification arrives avoids guessing when that is.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		up.mcp.AddTool(&mcp.Tool{Name: "added-" + string(rune('a'+i%26)), InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{}, nil
		})
		select {
		case <-changed:
		case <-tick.C:
			continue
		case <-deadline:
			t.Fatal("no tools/list_changed notification through the GET stream")
		}
		break
	}
	_ = cs

	// Resumption: the header the client sends on GET arrives upstream.
	sid := cs.ID()
	req, _ := http.NewRequest(http.MethodGet, fr.URL, nil)
	req.Header.Set("Authorization", "Bearer alice-token")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	req.Header.Set("Last-Event-ID", "stream-1_42")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	found := false
	for _, r := range up.Requests() {
		if r.Method == http.MethodGet && r.Header.Get("Last-Event-Id") == "stream-1_42" {
			found = true
		}
	}
	if !found {
		t.Error("Last-Event-ID did not reach the upstream")
	}
}

// TestProgressBeforeResult: a progress notification the tool sends
// reaches the client while the tool still runs: the tool does not return
// until the client has received it.
func TestProgressBeforeResult(t *testing.T) {
	for _, stateless := range []bool{false, true} {
		t.Run(map[bool]string{false: "stateful", true: "stateless"}[stateless], func(t *testing.T) {
			up := newUpstream(t, upstreamOpts{stateless: stateless})
			fr := front(t, newProxy(t, up.URL, Config{}))
			progress := make(chan string, 4)
			cs := connect(t, fr.URL, "alice-token", &mcp.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
					progress <- req.Params.Message
				},
			}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{}}
			params.SetProgressToken("p1")
			result := make(chan error, 1)
			go func() {
				_, err := cs.CallTool(ctx, params)
				result <- err
			}()
			select {
			case msg := <-progress:
				if msg != "halfway" {
					t.Errorf("progress message %q", msg)
				}
			case err := <-result:
				t.Fatalf("the call ended before any progress arrived: %v", err)
			case <-ctx.Done():
				t.Fatal("no progress notification while the tool runs: the proxy holds events back")
			}
			close(up.release)
			if err := <-result; err != nil {
				t.Fatalf("CallTool: %v", err)
			}
		})
	}
}

// TestUpstreamDown: a dead upstream is a quick 502 with a JSON body.
func TestUpstreamDown(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	obs := &failures{}
	p := newProxy(t, up.URL, Config{Timeout: 30 * time.Second, Observer: obs})
	fr := front(t, p)
	up.CloseClientConnections()
	up.Close()
	start := time.Now()
	resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("HTTP %d, want 502", resp.StatusCode)
	}
	if got := obs.all(); !slices.Equal(got, []Failure{FailureUnreachable}) {
		t.Errorf("failures observed %v", got)
	}
	if code, desc := errorBody(t, resp); code != codeBadGateway || strings.Contains(desc, "secret") {
		t.Errorf("error %q %q", code, desc)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestUpstreamResets: an upstream that accepts and drops the connection
// is a 502.
func TestUpstreamResets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST
			}
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()
	fr := front(t, newProxy(t, "http://"+ln.Addr().String()+"/mcp", Config{}))
	resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("HTTP %d, want 502", resp.StatusCode)
	}
	if code, _ := errorBody(t, resp); code != codeBadGateway {
		t.Errorf("error %q", code)
	}
}

// TestUpstreamHangs: no first byte within Timeout is a 504, within about
// Timeout; the upstream's request is cancelled.
func TestUpstreamHangs(t *testing.T) {
	cancelled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
		close(cancelled)
	}))
	defer up.Close()
	const timeout = 200 * time.Millisecond
	obs := &failures{}
	fr := front(t, newProxy(t, up.URL, Config{Timeout: timeout, Observer: obs}))
	start := time.Now()
	resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	elapsed := time.Since(start)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("HTTP %d, want 504", resp.StatusCode)
	}
	if got := obs.all(); !slices.Equal(got, []Failure{FailureTimeout}) {
		t.Errorf("failures observed %v", got)
	}
	if code, _ := errorBody(t, resp); code != codeGatewayTimeout {
		t.Errorf("error %q", code)
	}
	if elapsed < timeout || elapsed > timeout+2*time.Second {
		t.Errorf("504 after %v, want about %v", elapsed, timeout)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Error("the upstream request was not cancelled")
	}
}

// TestStreamNotCutByTimeout: an SSE answer that keeps sending events
// outlives Timeout.
func TestStreamNotCutByTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	tick := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := 0; i < 3; i++ {
			select {
			case <-tick:
			case <-r.Context().Done():
				return
			}
			_, _ = io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n")
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")
	}))
	defer up.Close()
	fr := front(t, newProxy(t, up.URL, Config{Timeout: timeout}))
	resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	buf := make([]byte, 4096)
	wait := func() {
		// Each event is sent only after the previous one arrived, and
		// past the timeout from the start.
		timer := time.NewTimer(2 * timeout)
		<-timer.C
		tick <- struct{}{}
	}
	for i := 0; i < 2; i++ {
		wait()
		n, err := resp.Body.Read(buf)
		if err != nil || !strings.Contains(string(buf[:n]), "notifications/progress") {
			t.Fatalf("event %d: %q, %v", i, buf[:n], err)
		}
	}
	wait()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(rest), "notifications/progress") || !strings.Contains(string(rest), `"result"`) {
		t.Fatalf("end of stream: %q, %v", rest, err)
	}
}

// TestUpstreamStatus: upstream 5xx and credential refusals become the
// proxy's own JSON answers; the upstream's body and headers are not
// passed on.
func TestUpstreamStatus(t *testing.T) {
	for _, tt := range []struct {
		status     int
		retryAfter string
		want       int
		wantRetry  string
		kind       Failure
	}{
		{500, "", 502, "", FailureBadStatus},
		{501, "", 502, "", FailureBadStatus},
		{502, "", 502, "", FailureBadStatus},
		{503, "17", 503, "17", FailureUnavailable},
		{503, "", 503, "5", FailureUnavailable},
		{503, "Wed, 21 Oct 2015 07:28:00 GMT", 503, "5", FailureUnavailable},
		{503, "999999", 503, "5", FailureUnavailable},
		{504, "", 504, "", FailureUpstreamTimeout},
		{401, "", 502, "", FailureCredentials},
		{407, "", 502, "", FailureCredentials},
		{307, "", 502, "", FailureBadStatus},
	} {
		t.Run(http.StatusText(tt.status)+tt.retryAfter, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="upstream"`)
				w.Header().Set("Location", "https://login.example/")
				w.Header().Set("X-Internal", "yes")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, "stack trace: Bearer upstream-secret")
			}))
			defer up.Close()
			obs := &failures{}
			fr := front(t, newProxy(t, up.URL, Config{Observer: obs}))
			resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tt.want)
			}
			if got := obs.all(); len(got) != 1 || got[0] != tt.kind {
				t.Errorf("failures observed %v, want [%s]", got, tt.kind)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After %q, want %q", got, tt.wantRetry)
			}
			for _, h := range []string{"WWW-Authenticate", "X-Internal", "Location"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("%s passed on: %q", h, v)
				}
			}
			data, _ := io.ReadAll(resp.Body)
			if strings.Contains(string(data), "secret") || strings.Contains(string(data), "stack") {
				t.Errorf("upstream body passed on: %s", data)
			}
		})
	}
}

// TestUpstreamClientErrorPassesThrough: a 4xx other than 401/407 is the
// upstream's answer to the client's request, passed on; the headers the
// gateway owns are not.
func TestUpstreamClientErrorPassesThrough(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "up=1")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"bad"}}`)
	}))
	defer up.Close()
	fr := front(t, newProxy(t, up.URL, Config{}))
	resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	for _, h := range []string{"Set-Cookie", "Access-Control-Allow-Origin", "WWW-Authenticate"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("%s passed on: %q", h, v)
		}
	}
	data, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(data), `"code":-32600`) {
		t.Errorf("body %s", data)
	}
}

func TestMethodsAndBodies(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	p := newProxy(t, up.URL, Config{MaxBodyBytes: 64})
	fr := front(t, p)

	req, _ := http.NewRequest(http.MethodPut, fr.URL, nil)
	req.Header.Set("Authorization", "Bearer alice-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, POST, DELETE" {
		t.Errorf("PUT: HTTP %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	big := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"x":"` + strings.Repeat("a", 100) + `"}}`
	if resp := post(t, fr.URL, "alice-token", "", big, nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: HTTP %d, want 413", resp.StatusCode)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}

// TestBodyBoundInSession: a body streamed unread (a session, no filter)
// is bounded too, also without a Content-Length.
func TestBodyBoundInSession(t *testing.T) {
	up := newUpstream(t, upstreamOpts{jsonResponse: true})
	fr := front(t, newProxy(t, up.URL, Config{MaxBodyBytes: 1024}))
	sid := initialize(t, fr.URL, "alice-token")
	big := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("a", 2000) + `"}}}`
	if resp := post(t, fr.URL, "alice-token", sid, big, nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("with Content-Length: HTTP %d, want 413", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, fr.URL, io.MultiReader(strings.NewReader(big))) // no length: chunked
	req.Header.Set("Authorization", "Bearer alice-token")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked: HTTP %d, want 413", resp.StatusCode)
	}
}

func TestClosedProxyRefuses(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	p := newProxy(t, up.URL, Config{})
	fr := front(t, p)
	p.Close()
	resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("HTTP %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error, all of them
	}{
		{"ok loopback http", Config{Upstream: "http://127.0.0.1:3001/mcp"}, nil},
		{"ok localhost", Config{Upstream: "http://localhost:3001/mcp"}, nil},
		{"ok https", Config{Upstream: "https://mcp.internal.example/mcp"}, nil},
		{"ok http private with opt-in", Config{Upstream: "http://app.internal:3001/mcp", AllowHTTP: true}, nil},
		{"missing", Config{}, []string{"UPSTREAM_URL is required"}},
		{"http remote", Config{Upstream: "http://mcp.example.com/mcp"}, []string{"UPSTREAM_ALLOW_HTTP"}},
		{"relative", Config{Upstream: "/mcp"}, []string{"absolute"}},
		{"ftp", Config{Upstream: "ftp://127.0.0.1/mcp"}, []string{"http(s)"}},
		{"userinfo", Config{Upstream: "https://user:pw@mcp.example.com/mcp"}, []string{"user information"}},
		{"fragment", Config{Upstream: "https://mcp.example.com/mcp#x"}, []string{"fragment"}},
		{"everything at once", Config{
			Upstream:      "http://mcp.example.com/mcp",
			Authorization: "Bearer x\r\nEvil: 1",
			Timeout:       -1, MaxSessions: -1, MaxSessionsPerUser: -1, MaxStreams: -1, MaxStreamsPerUser: -1,
			MaxBodyBytes: -1, MaxRewriteBytes: -1, SessionIdleTimeout: -1,
		}, []string{"UPSTREAM_ALLOW_HTTP", "UPSTREAM_AUTHORIZATION", "UPSTREAM_TIMEOUT", "max sessions must", "max sessions per user", "max streams must", "max streams per user", "max body", "max rewrite", "idle timeout"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			verr := tt.cfg.Validate()
			p, err := New(tt.cfg)
			if (verr == nil) != (err == nil) || (err != nil && verr.Error() != err.Error()) {
				t.Errorf("Validate says %v, New says %v", verr, err)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				p.Close()
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) || len(joined.Unwrap()) != len(tt.want) {
				t.Errorf("want %d problems joined: %v", len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "Evil") || strings.Contains(err.Error(), "pw@") {
				t.Errorf("error echoes a secret: %v", err)
			}
		})
	}
}

// TestNoSecretsInLogsOrErrors: neither UPSTREAM_AUTHORIZATION nor a key
// in the upstream URL's query appears in a log line, a Ready error, a
// Probe error or an answer, whatever fails.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	const auth, query = "Bearer authsecret-0123456789", "key=querysecret"
	logs := &syncbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var answers []string
	check := func(where, s string) {
		t.Helper()
		if strings.Contains(s, "authsecret") || strings.Contains(s, "querysecret") {
			t.Errorf("secret in %s: %s", where, s)
		}
	}

	// Unreachable.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	// Refuses the gateway, quoting what it got.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "bad: "+r.Header.Get("Authorization")+" "+r.URL.RawQuery, http.StatusUnauthorized)
	}))
	defer refusing.Close()
	for _, base := range []string{dead.URL, refusing.URL} {
		cfg := Config{Upstream: base + "/mcp?" + query, Authorization: auth, Logger: logger}
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		fr := front(t, p)
		resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
		body, _ := io.ReadAll(resp.Body)
		answers = append(answers, string(body))
		if err := p.Ready(context.Background()); err != nil {
			check("Ready", err.Error())
		} else {
			t.Errorf("%s: Ready: nil", base)
		}
		_, err = Probe(context.Background(), cfg)
		if err == nil {
			t.Errorf("%s: Probe: nil", base)
		} else {
			check("Probe", err.Error())
		}
		p.Close()
	}
	for _, a := range answers {
		check("an answer", a)
	}
	if !strings.Contains(logs.String(), "proxy: upstream unreachable") {
		t.Errorf("no log of the failure: %s", logs.String())
	}
	check("the logs", logs.String())
}

// TestTwoSessionIDs: an answer with two session ids is ambiguous: which
// would the client use? Refused.
func TestTwoSessionIDs(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header()["Mcp-Session-Id"] = []string{"one", "two"}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	defer up.Close()
	fr := front(t, newProxy(t, up.URL, Config{}))
	if resp := post(t, fr.URL, "alice-token", "", initializeBody, nil); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("HTTP %d, want 502", resp.StatusCode)
	}
}

// countingConn counts the writes of a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int32
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestOneWritePerForwardedPOST: the upstream request's headers and body
// leave in one write (one packet on loopback), not the headers first: the
// body handed to the transport is one net/http knows is in memory.
func TestOneWritePerForwardedPOST(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	var writes atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: &writes}, nil
	}}
	t.Cleanup(tr.CloseIdleConnections)
	fr := front(t, newProxy(t, up.URL, Config{Transport: tr}))
	for i := range 3 {
		before := writes.Load()
		resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		if n := writes.Load() - before; n != 1 {
			t.Errorf("request %d: %d writes to the upstream, want 1", i, n)
		}
	}
}

// unreadable is a request body that fails the test if anything reads it.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("the proxy read a body its caller had handed over (WithBody)")
	return 0, io.ErrUnexpectedEOF
}
func (unreadable) Close() error { return nil }

// TestWithBody: a body the caller has read and peeked is forwarded as it
// is, without being read again, and is still bounded by MaxBodyBytes.
func TestWithBody(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	p := newProxy(t, up.URL, Config{MaxBodyBytes: 100})
	serve := func(body string) *httptest.ResponseRecorder {
		msgs, err := rpcpeek.Peek([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/mcp", unreadable{t})
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		ctx := WithBody(WithIdentity(r.Context(), testIdentities["alice-token"]), []byte(body), msgs.Messages)
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r.WithContext(ctx))
		return rec
	}
	list := `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`
	if rec := serve(list); rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body.String())
	}
	if reqs := up.Requests(); len(reqs) != 1 || reqs[0].Body != list {
		t.Fatalf("upstream saw %+v, want the handed-over body once", reqs)
	}
	if rec := serve(`{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{"_meta":{"pad":"` + strings.Repeat("x", 100) + `"}}}`); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("HTTP %d for a body over MaxBodyBytes, want 413", rec.Code)
	}
	if n := len(up.Requests()); n != 1 {
		t.Fatalf("upstream saw %d requests, want 1", n)
	}
}

// TestAnswerSentBeforeBookkeeping: a complete answer of known length
// reaches the client when the proxy's ServeHTTP returns, not when the
// handler around it (the gateway's request log and metrics) returns.
func TestAnswerSentBeforeBookkeeping(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	p := newProxy(t, up.URL, Config{})
	release := make(chan struct{}) // the caller's bookkeeping ends
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), testIdentities["alice-token"])))
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"sent early"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no answer while the handler around the proxy was still running: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("answer cut: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 || !strings.Contains(string(body), "sent early") {
		t.Errorf("HTTP %d, Content-Length %d, body %s; want 200 with a known length and the echo", resp.StatusCode, resp.ContentLength, body)
	}
}
