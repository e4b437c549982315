package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
)

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// initialize opens a session on a stateful gateway and returns its id, or
// the recorder when it was refused.
func initialize(t *testing.T, g *Gateway, token string) (string, *httptest.ResponseRecorder) {
	t.Helper()
	rec := serve(g, mcpRequest(token, initializeBody))
	return rec.Header().Get("Mcp-Session-Id"), rec
}

func TestSessionLimit(t *testing.T) {
	tests := []struct {
		name        string
		max         int
		opens       int
		wantRefused int
	}{
		{"under", 3, 2, 0},
		{"at", 2, 2, 0},
		{"over", 2, 4, 2},
		{"one", 1, 3, 2},
		{"unlimited", -1, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := newTestGateway(t, func(c *Config) {
				c.Stateless = false
				c.MaxSessions = tt.max
			})
			var ids []string
			refused := 0
			for range tt.opens {
				id, rec := initialize(t, g, tokAll)
				if rec.Code == http.StatusServiceUnavailable {
					refused++
					checkJSONError(t, rec, 503, "too_many_sessions")
					if rec.Header().Get("Retry-After") != "30" {
						t.Errorf("Retry-After = %q, want 30", rec.Header().Get("Retry-After"))
					}
					continue
				}
				if rec.Code != 200 || id == "" {
					t.Fatalf("initialize = %d %q", rec.Code, rec.Body.String())
				}
				ids = append(ids, id)
			}
			if refused != tt.wantRefused {
				t.Fatalf("refused %d, want %d", refused, tt.wantRefused)
			}
			if len(ids) == 0 {
				return
			}
			// An existing session keeps working at the limit.
			r := mcpRequest(tokAll, rpcCall(2, "add"))
			r.Header.Set("Mcp-Session-Id", ids[0])
			if rec := serve(g, r); rec.Code != 200 {
				t.Errorf("call in an existing session at the limit = %d %q", rec.Code, rec.Body.String())
			}
			if tt.wantRefused == 0 {
				return
			}
			// Ending a session frees its slot.
			del := httptest.NewRequest(http.MethodDelete, "/mcp", nil)
			del.Header.Set("Authorization", "Bearer "+tokAll)
			del.Header.Set("Mcp-Session-Id", ids[0])
			if rec := serve(g, del); rec.Code != http.StatusNoContent {
				t.Fatalf("DELETE = %d %q", rec.Code, rec.Body.String())
			}
			if _, rec := initialize(t, g, tokAll); rec.Code != 200 {
				t.Errorf("initialize after DELETE = %d %q", rec.Code, rec.Body.String())
			}
		})
	}
}

// Unauthenticated requests neither use nor see the session limit.
func TestSessionLimitAfterAuth(t *testing.T) {
	g, _ := newTestGateway(t, func(c *Config) {
		c.Stateless = false
		c.MaxSessions = 1
	})
	if _, rec := initialize(t, g, tokAll); rec.Code != 200 {
		t.Fatalf("initialize = %d", rec.Code)
	}
	if _, rec := initialize(t, g, ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("unauthenticated initialize at the limit = %d, want 401", rec.Code)
	}
}

// Concurrent initializes never open more sessions than the limit.
func TestSessionLimitConcurrent(t *testing.T) {
	const max, n = 5, 40
	g, _ := newTestGateway(t, func(c *Config) {
		c.Stateless = false
		c.MaxSessions = max
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range n {
		wg.Go(func() {
			if _, rec := initialize(t, g, tokAll); rec.Code == 200 {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if rec.Code != 503 {
				t.Errorf("initialize = %d", rec.Code)
			}
		})
	}
	wg.Wait()
	if ok < 1 || ok > max {
		t.Errorf("%d sessions opened, want 1..%d", ok, max)
	}
	live := 0
	for range g.sessions.server.Sessions() {
		live++
	}
	if live > max {
		t.Errorf("%d live sessions, limit %d", live, max)
	}
}

// TestStreamLimitMiddleware drives the limits middleware with a handler
// that holds its stream until told to end.
func TestStreamLimitMiddleware(t *testing.T) {
	g, _ := newTestGateway(t, func(c *Config) {
		c.Stateless = false
		c.MaxStreams = 2
	})
	entered := make(chan struct{})
	release := make(chan struct{})
	held := func(c echo.Context) error {
		entered <- struct{}{}
		<-release
		return c.NoContent(http.StatusOK)
	}
	e := echo.New()
	e.GET("/s", held, g.limits)
	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/s", nil))
		return rec
	}
	results := make(chan int, 2)
	for range 2 {
		go func() { results <- get().Code }()
		<-entered
	}
	// Both slots are held: the third is refused at once.
	rec := get()
	checkJSONError(t, rec, http.StatusServiceUnavailable, "too_many_streams")
	if rec.Header().Get("Retry-After") != "10" {
		t.Errorf("Retry-After = %q, want 10", rec.Header().Get("Retry-After"))
	}
	// Ending one frees its slot.
	release <- struct{}{}
	if code := <-results; code != 200 {
		t.Errorf("held stream = %d", code)
	}
	go func() { results <- get().Code }()
	<-entered
	close(release)
	for range 2 {
		if code := <-results; code != 200 {
			t.Errorf("stream = %d", code)
		}
	}
}

// TestStreamLimitEndToEnd opens real standalone SSE streams through the SDK.
func TestStreamLimitEndToEnd(t *testing.T) {
	g, _ := newTestGateway(t, func(c *Config) {
		c.Stateless = false
		c.MaxStreams = 1
	})
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	id, rec := initialize(t, g, tokAll)
	if rec.Code != 200 || id == "" {
		t.Fatalf("initialize = %d", rec.Code)
	}
	// notifications/initialized completes the handshake.
	r := mcpRequest(tokAll, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	r.Header.Set("Mcp-Session-Id", id)
	if rec := serve(g, r); rec.Code != http.StatusAccepted {
		t.Fatalf("initialized = %d %q", rec.Code, rec.Body.String())
	}
	open := func(ctx context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/mcp", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tokAll)
		req.Header.Set("Mcp-Session-Id", id)
		req.Header.Set("MCP-Protocol-Version", "2025-06-18")
		return srv.Client().Do(req)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	if first.StatusCode != 200 || !strings.HasPrefix(first.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("first stream = %d %q", first.StatusCode, first.Header.Get("Content-Type"))
	}
	second, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	second.Body.Close()
	if second.StatusCode != http.StatusServiceUnavailable || second.Header.Get("Retry-After") == "" {
		t.Errorf("second stream = %d, Retry-After %q; want 503 with Retry-After", second.StatusCode, second.Header.Get("Retry-After"))
	}
}
