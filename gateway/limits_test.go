package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"
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

// A user's sessions are bounded on their own (429), and another user can
// still open one.
func TestSessionLimitPerUser(t *testing.T) {
	g, _ := newTestGateway(t, func(c *Config) {
		c.Stateless = false
		c.MaxSessions = 10
		c.MaxSessionsPerUser = 2
	})
	var ids []string
	for range 2 {
		id, rec := initialize(t, g, tokAll) // user-a
		if rec.Code != 200 || id == "" {
			t.Fatalf("initialize = %d %q", rec.Code, rec.Body.String())
		}
		ids = append(ids, id)
	}
	_, rec := initialize(t, g, tokParent) // user-a, another token
	checkJSONError(t, rec, http.StatusTooManyRequests, "too_many_sessions_for_user")
	if rec.Header().Get("Retry-After") != "30" {
		t.Errorf("Retry-After = %q, want 30", rec.Header().Get("Retry-After"))
	}
	if _, rec := initialize(t, g, tokUserB); rec.Code != 200 {
		t.Errorf("another user at user-a's bound: %d %q", rec.Code, rec.Body.String())
	}
	// Ending one of user-a's sessions frees one of user-a's places.
	del := httptest.NewRequest(http.MethodDelete, "/mcp", nil)
	del.Header.Set("Authorization", "Bearer "+tokAll)
	del.Header.Set("Mcp-Session-Id", ids[0])
	if rec := serve(g, del); rec.Code != http.StatusNoContent {
		t.Fatalf("DELETE = %d %q", rec.Code, rec.Body.String())
	}
	if _, rec := initialize(t, g, tokAll); rec.Code != 200 {
		t.Errorf("initialize after DELETE = %d %q", rec.Code, rec.Body.String())
	}
}

// streamHarness drives the limits middleware (behind the request state
// observe and authenticate would set up) with a handler that holds each
// stream until it is released or its context ends.
type streamHarness struct {
	e       *echo.Echo
	entered chan struct{}
	release chan struct{}
	ended   chan error // context.Cause of a stream ended by its context
}

func newStreamHarness(g *Gateway, tokens map[string]verdict) *streamHarness {
	h := &streamHarness{e: echo.New(), entered: make(chan struct{}, 10), release: make(chan struct{}), ended: make(chan error, 10)}
	held := func(c echo.Context) error {
		h.entered <- struct{}{}
		select {
		case <-h.release:
		case <-c.Request().Context().Done():
			h.ended <- context.Cause(c.Request().Context())
		}
		return c.NoContent(http.StatusOK)
	}
	withToken := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			st := &reqState{ti: tokens[tok].ti, token: tok, auth: AuthOK} // as authenticate leaves it
			c.SetRequest(r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
			return next(c)
		}
	}
	h.e.GET("/s", held, withToken, g.limits)
	return h
}

// open sends a GET stream request; a stream that is admitted is held, so
// open returns only for a refusal or once the stream has been released.
func (h *streamHarness) open(token string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/s", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	h.e.ServeHTTP(rec, r)
	return rec
}

// refused opens a stream that must be refused, and returns the refusal.
func (h *streamHarness) refused(t *testing.T, token string) *httptest.ResponseRecorder {
	t.Helper()
	got := make(chan *httptest.ResponseRecorder, 1)
	go func() { got <- h.open(token) }()
	select {
	case rec := <-got:
		return rec
	case <-h.entered:
		t.Fatalf("stream for %s was admitted, want it refused", token)
	case <-time.After(5 * time.Second):
		t.Fatalf("no answer for %s", token)
	}
	return nil
}

// hold opens a stream that must be admitted, in the background; done gets
// its status when it ends.
func (h *streamHarness) hold(t *testing.T, token string, done chan<- int) {
	t.Helper()
	go func() { done <- h.open(token).Code }()
	select {
	case <-h.entered:
	case <-time.After(5 * time.Second):
		t.Fatalf("stream for %s was not admitted", token)
	}
}

func TestStreamLimits(t *testing.T) {
	g, _ := newTestGateway(t, func(c *Config) {
		c.Stateless = false
		c.MaxStreams = 3
		c.MaxStreamsPerUser = 2
	})
	h := newStreamHarness(g, defaultTokens())
	done := make(chan int, 10)
	h.hold(t, tokAdd, done) // user-a
	h.hold(t, tokDiv, done) // user-a, another token
	steps := []struct {
		token  string
		status int
		code   string
	}{
		{tokParent, http.StatusTooManyRequests, "too_many_streams_for_user"}, // user-a's third
		{tokUserB, 0, ""},                    // user-b: admitted (total 3)
		{tokUserB, 503, "too_many_streams"},  // the server is full
		{tokParent, 503, "too_many_streams"}, // over both: the server is full
	}
	for i, s := range steps {
		if s.status == 0 {
			h.hold(t, s.token, done)
			continue
		}
		rec := h.refused(t, s.token)
		checkJSONError(t, rec, s.status, s.code)
		if rec.Header().Get("Retry-After") != "10" {
			t.Errorf("step %d: Retry-After = %q, want 10", i, rec.Header().Get("Retry-After"))
		}
	}
	if total, mine := g.streams.count(userOf(defaultTokens()[tokAdd].ti)); total != 3 || mine != 2 {
		t.Errorf("open streams: %d in total, %d of user-a; want 3, 2", total, mine)
	}
	// Ending one frees its places.
	h.release <- struct{}{}
	if code := <-done; code != 200 {
		t.Errorf("released stream = %d", code)
	}
	close(h.release)
	for range 2 {
		<-done
	}
	if total, _ := g.streams.count(userKey{}); total != 0 {
		t.Errorf("%d streams still counted after all ended", total)
	}
	h.release = make(chan struct{})
	h.hold(t, tokParent, done)
	close(h.release)
	<-done
}

// fakeTimers records the timers the gateway starts (Config.AfterFunc), so
// a test can fire them; like time.AfterFunc's, a stopped timer does not
// fire.
type fakeTimers struct {
	mu      sync.Mutex
	d       []time.Duration
	f       []func()
	off     []bool
	stopped int
}

func (ft *fakeTimers) AfterFunc(d time.Duration, f func()) func() bool {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	i := len(ft.f)
	ft.d = append(ft.d, d)
	ft.f = append(ft.f, f)
	ft.off = append(ft.off, false)
	return func() bool {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		ft.stopped++
		was := !ft.off[i]
		ft.off[i] = true
		return was
	}
}

// get returns timer i's delay, a function that fires it (unless it was
// stopped), and how many stops there were.
func (ft *fakeTimers) get(i int) (time.Duration, func(), int) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	fire := func() {
		ft.mu.Lock()
		off := ft.off[i]
		ft.off[i] = true
		ft.mu.Unlock()
		if !off {
			ft.f[i]()
		}
	}
	return ft.d[i], fire, ft.stopped
}

// TestStreamEndsWhenTokenExpires: a stream's timer is set for the token's
// exp plus the tolerated skew, firing it ends the stream (and frees its
// place); a stream that ends first stops its timer.
func TestStreamEndsWhenTokenExpires(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tokens := map[string]verdict{
		"tok-short": {ti: &auth.TokenInfo{UserID: "u", Expiration: now.Add(90 * time.Second)}},
		"tok-none":  {ti: &auth.TokenInfo{UserID: "u"}},
	}
	ft := &fakeTimers{}
	g, _ := newTestGateway(t, func(c *Config) {
		c.Stateless = false
		c.ClockSkew = 30 * time.Second
		c.Now = func() time.Time { return now }
		c.AfterFunc = ft.AfterFunc
	})
	h := newStreamHarness(g, tokens)
	done := make(chan int, 2)
	h.hold(t, "tok-short", done)
	d, fire, _ := ft.get(0)
	if d != 120*time.Second {
		t.Errorf("timer = %v, want exp - now + skew = 120s", d)
	}
	fire()
	select {
	case cause := <-h.ended:
		if !errors.Is(cause, ErrTokenExpired) {
			t.Errorf("stream ended with %v, want ErrTokenExpired", cause)
		}
	case <-time.After(5 * time.Second):
		close(h.release)
		t.Fatal("the stream outlived its token")
	}
	<-done
	if total, _ := g.streams.count(userKey{}); total != 0 {
		t.Errorf("%d streams counted after expiry", total)
	}
	if _, _, stopped := ft.get(0); stopped != 1 {
		t.Errorf("timers stopped = %d, want 1", stopped)
	}
	// A token without exp sets no timer.
	h.hold(t, "tok-none", done)
	h.release <- struct{}{}
	<-done
	ft.mu.Lock()
	n := len(ft.d)
	ft.mu.Unlock()
	if n != 1 {
		t.Errorf("%d timers for two streams, one token without exp; want 1", n)
	}
}

// TestEndStreams is the revocation hook: only the streams of the named
// token end.
func TestEndStreams(t *testing.T) {
	g, _ := newTestGateway(t, func(c *Config) { c.Stateless = false })
	h := newStreamHarness(g, defaultTokens())
	done := make(chan int, 2)
	h.hold(t, tokAdd, done)
	h.hold(t, tokDiv, done)
	if n := g.EndStreams(sha256.Sum256([]byte(tokAdd))); n != 1 {
		t.Fatalf("EndStreams = %d, want 1", n)
	}
	if cause := <-h.ended; !errors.Is(cause, ErrTokenRevoked) {
		t.Errorf("stream ended with %v, want ErrTokenRevoked", cause)
	}
	<-done
	if total, _ := g.streams.count(userKey{}); total != 1 {
		t.Errorf("%d streams open, want 1 (the other token's)", total)
	}
	if n := g.EndStreams(sha256.Sum256([]byte("tok-unknown"))); n != 0 {
		t.Errorf("EndStreams for a token with no stream = %d", n)
	}
	close(h.release)
	<-done
}

// TestEndStreamsWhere is the hook for revocations of a subject or a
// client: the streams whose token information matches end, the others stay.
func TestEndStreamsWhere(t *testing.T) {
	g, _ := newTestGateway(t, func(c *Config) { c.Stateless = false })
	h := newStreamHarness(g, defaultTokens())
	done := make(chan int, 2)
	h.hold(t, tokAdd, done)
	h.hold(t, tokUserB, done)
	user := defaultTokens()[tokUserB].ti.UserID
	n := g.EndStreamsWhere(func(d [32]byte, ti *auth.TokenInfo) bool { return ti != nil && ti.UserID == user })
	if n != 1 {
		t.Fatalf("EndStreamsWhere = %d, want 1", n)
	}
	if cause := <-h.ended; !errors.Is(cause, ErrTokenRevoked) {
		t.Errorf("stream ended with %v, want ErrTokenRevoked", cause)
	}
	<-done
	if total, _ := g.streams.count(userKey{}); total != 1 {
		t.Errorf("%d streams open, want 1 (the other user's)", total)
	}
	if n := g.EndStreamsWhere(func([32]byte, *auth.TokenInfo) bool { return false }); n != 0 {
		t.Errorf("EndStreamsWhere matching nothing = %d", n)
	}
	close(h.release)
	<-done
}
