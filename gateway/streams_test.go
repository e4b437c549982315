package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/tools"
)

// listenBody is a 2026-07-28 subscriptions/listen request (SEP-2575): the
// SDK answers it with an event stream that stays open, in JSON mode too.
const listenBody = `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"notifications":{"toolsListChanged":true}}}`

// postStream posts body with token to srv and, when the answer is a
// subscriptions/listen event stream, reads its first event (the
// acknowledgement), so that the stream is known to be open on the server.
// The caller closes the response body.
func postStream(t *testing.T, srv *httptest.Server, token, body, protocol string) *http.Response {
	t.Helper()
	// A request that is held by mistake must not hang the test.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", protocol)
	req.Header.Set("Authorization", "Bearer "+token)
	listen := body == listenBody
	if listen {
		req.Header.Set("Mcp-Method", methodSubscriptionsListen) // 2026-07-28 standard header
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if listen && resp.StatusCode == 200 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "event:") && !strings.HasPrefix(line, "data:") && !strings.HasPrefix(line, "id:") {
			t.Fatalf("first line of the stream: %q %v", line, err)
		}
	}
	return resp
}

func statusAndCode(t *testing.T, resp *http.Response) (int, string) {
	t.Helper()
	if resp.StatusCode == 200 {
		return 200, ""
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%d body %q: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, e.Error
}

// waitStreams waits until the gateway counts n open streams: the server
// notices a client's disconnect on its own goroutine.
func waitStreams(t *testing.T, g *Gateway, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		total, _ := g.streams.count(userKey{})
		if total == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d streams open, want %d", total, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestListenStreamsBoundedStateless: in stateless mode (the default) a
// subscriptions/listen stream counts against its user and the total, on
// real HTTP through the SDK.
func TestListenStreamsBoundedStateless(t *testing.T) {
	g, _ := newTestGateway(t, func(c *Config) {
		c.Stateless = true
		c.MaxStreams = 3
		c.MaxStreamsPerUser = 2
	})
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()

	var open []*http.Response
	defer func() {
		for _, r := range open {
			r.Body.Close()
		}
	}()
	for i, step := range []struct {
		token  string
		status int
		code   string
	}{
		{tokAll, 200, ""},
		{tokParent, 200, ""}, // user-a again, another token
		{tokAdd, 429, "too_many_streams_for_user"},
		{tokUserB, 200, ""},
		{tokUserB, 503, "too_many_streams"},
	} {
		resp := postStream(t, srv, step.token, listenBody, "2026-07-28")
		if resp.StatusCode == 200 {
			open = append(open, resp)
		}
		if status, code := statusAndCode(t, resp); status != step.status || code != step.code {
			t.Fatalf("step %d: %d %q, want %d %q", i, status, code, step.status, step.code)
		}
		if step.status != 200 {
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("step %d: no Retry-After", i)
			}
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("step %d: Content-Type %q, want an event stream", i, ct)
		}
	}
	// A short call is not a stream (JSON responses): user-a still calls.
	if rec := serve(g, mcpRequest(tokAll, rpcCall(2, "add"))); rec.Code != 200 {
		t.Errorf("tools/call while user-a holds its streams: %d %q", rec.Code, rec.Body.String())
	}
	// The client leaving frees the place.
	open[0].Body.Close()
	open = open[1:]
	waitStreams(t, g, 2)
	resp := postStream(t, srv, tokAdd, listenBody, "2026-07-28")
	if status, code := statusAndCode(t, resp); status != 200 {
		t.Fatalf("after one stream closed: %d %q", status, code)
	}
	open = append(open, resp)
}

// TestListenStreamEndsAtTokenExpiry: on real HTTP, a listen stream's event
// stream ends when its token's exp passes (the timer fired by hand).
func TestListenStreamEndsAtTokenExpiry(t *testing.T) {
	now := time.Now()
	tokens := defaultTokens()
	tokens["tok-soon"] = verdict{ti: &auth.TokenInfo{UserID: "soon", Scopes: tools.Policy().Scopes(), Expiration: now.Add(time.Minute)}}
	ft := &fakeTimers{}
	cfg := testConfig(newFakeVerifier(tokens))
	cfg.Now = func() time.Time { return now }
	cfg.AfterFunc = ft.AfterFunc
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()

	resp := postStream(t, srv, "tok-soon", listenBody, "2026-07-28")
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); ended <- err }()
	select {
	case err := <-ended:
		t.Fatalf("stream ended before its token expired: %v", err)
	case <-time.After(50 * time.Millisecond): // it stays open on its own
	}
	d, fire, _ := ft.get(0)
	if d != time.Minute {
		t.Errorf("timer %v, want 1m (exp - now, no skew)", d)
	}
	fire()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream stayed open after its token expired")
	}
	waitStreams(t, g, 0)
}

// TestSSEAnswersAreStreams: without JSON responses, a POST answered with
// SSE holds a stream place while it is open.
func TestSSEAnswersAreStreams(t *testing.T) {
	release := make(chan struct{})
	server := NewMCPServer(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	if err := tools.Register(server, tools.Policy()); err != nil {
		t.Fatal(err)
	}
	mcp.AddTool(server, &mcp.Tool{Name: "hold"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
	})
	g, _ := newTestGateway(t, func(c *Config) {
		c.Server = server
		c.JSONResponse = false
		c.MaxStreamsPerUser = 1
	})
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before srv.Close, which waits for the held call
	const hold = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hold","arguments":{}}}`

	// The held call's headers come with its first event, when the tool
	// returns: it runs in the background.
	heldDone := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(hold))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tokAll)
		resp, err := srv.Client().Do(req)
		if err != nil {
			heldDone <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		heldDone <- resp.Header.Get("Content-Type") + " " + string(b)
	}()
	waitStreams(t, g, 1)
	second := make(chan *http.Response, 1)
	go func() { second <- postStream(t, srv, tokAll, hold, "2025-11-25") }()
	select {
	case resp := <-second:
		if status, code := statusAndCode(t, resp); status != 429 || code != "too_many_streams_for_user" {
			t.Errorf("second SSE call of user-a: %d %q, want 429", status, code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second SSE call of user-a was admitted (held), want 429") // release ends it
	}
	// A notification is answered 202 at once: not a stream.
	note := postStream(t, srv, tokAll, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "2025-11-25")
	note.Body.Close()
	if note.StatusCode != http.StatusAccepted {
		t.Errorf("notification while user-a holds its stream: %d, want 202", note.StatusCode)
	}
	letGo()
	if got := <-heldDone; !strings.HasPrefix(got, "text/event-stream") || !strings.Contains(got, "done") {
		t.Errorf("held call answered %q, want an event stream with its result", got)
	}
	waitStreams(t, g, 0)
}
