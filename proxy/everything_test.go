package proxy

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/interop"
)

// TestEverythingInterop puts the proxy in front of the reference
// "everything" MCP server (TypeScript SDK, a server this project did not
// write) and drives it with the Go SDK's client: tools/list (filtered),
// a call, a long-running call whose progress arrives while it runs, a
// resource read, a session refused to another user, and the upstream
// killed and restarted mid-run.
func TestEverythingInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node")
	}
	ev := interop.StartEverything(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The upstream as it is: get-env is one of its tools.
	probe, err := Probe(ctx, Config{Upstream: ev.URL})
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if probe.ServerName != "mcp-servers/everything" || !slices.Contains(probe.Tools, "get-env") || !slices.Contains(probe.Tools, "echo") {
		t.Fatalf("probe: %s %s, tools %v", probe.ServerName, probe.ServerVersion, probe.Tools)
	}
	t.Logf("upstream %s %s, protocol %s, %d tools", probe.ServerName, probe.ServerVersion, probe.ProtocolVersion, len(probe.Tools))

	p := newProxy(t, ev.URL, Config{
		Timeout:    10 * time.Second,
		FilterTool: func(_ context.Context, name string) bool { return name != "get-env" },
	})
	fr := front(t, p)
	if err := p.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}

	var mu sync.Mutex
	var progressAt []time.Time
	opts := &mcp.ClientOptions{ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
		mu.Lock()
		progressAt = append(progressAt, time.Now())
		mu.Unlock()
	}}
	cs := connect(t, fr.URL, "alice-token", opts, http.Header{"X-Mcp-Subject": {"mallory"}})

	t.Run("tools/list filtered", func(t *testing.T) {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tl := range res.Tools {
			names = append(names, tl.Name)
		}
		if slices.Contains(names, "get-env") || !slices.Contains(names, "echo") || !slices.Contains(names, "trigger-long-running-operation") {
			t.Errorf("tools %v", names)
		}
	})

	t.Run("call", func(t *testing.T) {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "through the gateway"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Content[0].(*mcp.TextContent).Text; got != "Echo: through the gateway" {
			t.Errorf("echo: %q", got)
		}
	})

	t.Run("progress before the result", func(t *testing.T) {
		// 4 steps over 2 s: a progress notification every 0.5 s, the
		// result with the last. Buffered, they would all arrive with
		// the result.
		params := &mcp.CallToolParams{Name: "trigger-long-running-operation", Arguments: map[string]any{"duration": 2, "steps": 4}}
		params.SetProgressToken("long-1")
		mu.Lock()
		progressAt = nil
		mu.Unlock()
		res, err := cs.CallTool(ctx, params)
		done := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "completed") {
			t.Errorf("result %q", res.Content[0].(*mcp.TextContent).Text)
		}
		mu.Lock()
		defer mu.Unlock()
		// The last one comes with the result, and the client may hand it
		// to the handler after CallTool has returned.
		if len(progressAt) < 3 {
			t.Fatalf("%d progress notifications by the result, want at least 3", len(progressAt))
		}
		if lead := done.Sub(progressAt[0]); lead < time.Second {
			t.Errorf("the first progress notification arrived only %v before the result (sent 1.5 s before it)", lead)
		}
	})

	t.Run("resource", func(t *testing.T) {
		res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "demo://resource/dynamic/text/1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Contents) != 1 || !strings.HasPrefix(res.Contents[0].Text, "Resource 1:") {
			t.Errorf("contents %+v", res.Contents)
		}
	})

	t.Run("headers the upstream received", func(t *testing.T) {
		reqs := ev.Requests()
		if len(reqs) == 0 {
			t.Fatal("no requests recorded")
		}
		proxied := 0
		for _, r := range reqs {
			if r.Header.Get("X-Mcp-Client-Id") == "" {
				continue // the probe's, which carries no identity
			}
			proxied++
			if got := r.Header.Values("X-Mcp-Subject"); len(got) != 1 || got[0] != "alice" {
				t.Errorf("%s: X-Mcp-Subject %q, want exactly alice", r.Method, got)
			}
			if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer upstream-secret" {
				t.Errorf("%s: Authorization %q, want only the gateway's", r.Method, got)
			}
		}
		if proxied < 4 {
			t.Errorf("%d requests through the proxy recorded", proxied)
		}
	})

	t.Run("session of another user", func(t *testing.T) {
		resp := post(t, fr.URL, "bob-token", cs.ID(), `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("HTTP %d, want 404", resp.StatusCode)
		}
		if code, _ := errorBody(t, resp); code != codeSessionNotFound {
			t.Errorf("error %q", code)
		}
	})

	t.Run("upstream killed and restarted", func(t *testing.T) {
		ev.Stop()
		start := time.Now()
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "x"}})
		if err == nil {
			t.Fatal("a call to a dead upstream succeeded")
		}
		resp := post(t, fr.URL, "alice-token", "", initializeBody, nil)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("raw initialize to a dead upstream: HTTP %d, want 502", resp.StatusCode)
		}
		if code, _ := errorBody(t, resp); code != codeBadGateway {
			t.Errorf("error %q", code)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("failing took %v", d)
		}
		var readyErr error
		deadline := time.Now().Add(5 * time.Second)
		for readyErr = p.Ready(ctx); readyErr == nil && time.Now().Before(deadline); readyErr = p.Ready(ctx) {
			time.Sleep(100 * time.Millisecond) // Ready's cache expiring (real clock)
		}
		if !errors.Is(readyErr, ErrUnavailable) {
			t.Errorf("Ready with the upstream down: %v", readyErr)
		}

		ev.Restart()
		// The old session died with the upstream; a new one works.
		cs2 := connect(t, fr.URL, "alice-token", nil, nil)
		res, err := cs2.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "again"}})
		if err != nil {
			t.Fatalf("after restart: %v", err)
		}
		if got := res.Content[0].(*mcp.TextContent).Text; got != "Echo: again" {
			t.Errorf("echo: %q", got)
		}
	})
}
