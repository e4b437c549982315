package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/mcp-gateway/mcp-gateway/proxy/proxytest"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstream is a Go MCP SDK server behind httptest that records the
// requests it receives, with tools for the tests:
//   - echo: returns its text argument;
//   - secret: a tool a filter hides;
//   - slow: sends a progress notification, then waits until release is
//     closed (or its request ends) before returning.
type upstream struct {
	*proxytest.Upstream
	mcp     *mcp.Server
	release chan struct{}
	started chan struct{} // closed when slow has sent its notification
}

type upstreamOpts struct {
	stateless, jsonResponse bool
	pageSize                int // tools/list page size; 0: the SDK's default
}

type echoArgs struct {
	Text string `json:"text"`
}

func newUpstream(t testing.TB, o upstreamOpts) *upstream {
	t.Helper()
	u := &upstream{release: make(chan struct{}), started: make(chan struct{})}
	s := mcp.NewServer(&mcp.Implementation{Name: "test-upstream", Version: "1.2.3"}, &mcp.ServerOptions{PageSize: o.pageSize})
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echo"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "secret", Description: "hidden by filters"}, func(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "secret"}}}, nil, nil
	})
	var once sync.Once
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "progress, then waits"}, func(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2, Message: "halfway"}); err != nil {
				return nil, nil, err
			}
		}
		once.Do(func() { close(u.started) })
		select {
		case <-u.release:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
	})
	u.mcp = s
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		Stateless:    o.stateless,
		JSONResponse: o.jsonResponse,
	})
	u.Upstream = proxytest.NewUpstream(t, h)
	// Registered after the server's: runs first, so that a slow call ends
	// before its connection is cut.
	t.Cleanup(func() {
		select {
		case <-u.release:
		default:
			close(u.release)
		}
	})
	return u
}

// count is the number of requests with the given method and session id
// ("" for any session).
func (u *upstream) count(method, session string) int {
	n := 0
	for _, r := range u.Requests() {
		if r.Method == method && (session == "" || r.Header.Get("Mcp-Session-Id") == session) {
			n++
		}
	}
	return n
}

// Test callers: the front server plays the gateway and maps the client's
// bearer token to one of these.
var testIdentities = map[string]Identity{
	"alice-token": {Subject: "alice", ClientID: "client-a", Email: "alice@example.com", Scopes: []string{"read", "write"}},
	"bob-token":   {Subject: "bob", ClientID: "client-b", Scopes: []string{"read"}},
	"svc-token":   {ClientID: "service-1", Scopes: []string{"read"}}, // client credentials: no subject
}

// front plays the gateway: it authenticates the bearer token (from
// testIdentities; others get 401) and hands the request to the proxy.
func front(t testing.TB, p *Proxy) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := testIdentities[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		if !ok {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		p.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// newProxy builds a proxy to upstreamURL with cfg's other fields, closed
// at the end of the test.
func newProxy(t testing.TB, upstreamURL string, cfg Config) *Proxy {
	t.Helper()
	cfg.Upstream = upstreamURL
	if cfg.Authorization == "" {
		cfg.Authorization = "Bearer upstream-secret"
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// headerTransport adds fixed headers to every request: the client's
// token, and whatever forgeries a test wants the proxy to remove.
type headerTransport struct {
	base   http.RoundTripper
	header http.Header
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.header {
		r.Header[k] = v
	}
	return h.base.RoundTrip(r)
}

func clientFor(token string, extra http.Header) *http.Client {
	h := http.Header{"Authorization": {"Bearer " + token}}
	for k, v := range extra {
		h[k] = v
	}
	return &http.Client{Transport: headerTransport{base: http.DefaultTransport, header: h}}
}

// connect opens an MCP client session through the front server.
func connect(t testing.TB, endpoint, token string, opts *mcp.ClientOptions, extra http.Header) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "proxy-test", Version: "1"}, opts).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: clientFor(token, extra),
		MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// post sends one raw JSON-RPC POST as an MCP client would.
func post(t testing.TB, url, token, session, body string, extra http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// initialize opens a session with raw requests and returns its id.
func initialize(t testing.TB, url, token string) string {
	t.Helper()
	resp := post(t, url, token, "", initializeBody, nil)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("initialize: HTTP %d: %s", resp.StatusCode, b)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	id := resp.Header.Get("Mcp-Session-Id")
	if id == "" {
		t.Fatal("initialize: no Mcp-Session-Id")
	}
	resp2 := post(t, url, token, id, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	_, _ = io.Copy(io.Discard, resp2.Body)
	if resp2.StatusCode != http.StatusAccepted {
		t.Fatalf("initialized: HTTP %d", resp2.StatusCode)
	}
	return id
}

// errorBody decodes the proxy's JSON error body.
func errorBody(t testing.TB, resp *http.Response) (code, desc string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var b struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("error body %q: %v", data, err)
	}
	return b.Error, b.ErrorDescription
}

// failures is an Observer that records what it is told.
type failures struct {
	mu    sync.Mutex
	kinds []Failure
}

func (f *failures) UpstreamFailure(kind Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kinds = append(f.kinds, kind)
}

func (f *failures) all() []Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Failure(nil), f.kinds...)
}
