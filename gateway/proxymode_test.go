package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/internal/syncbuf"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/proxy"
	"github.com/mcp-gateway/mcp-gateway/proxy/proxytest"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// teamUpstream is teamServer (tools the gateway knows nothing about)
// served by the SDK's own Streamable HTTP handler, as an upstream MCP
// server the gateway proxies to. It records every request it receives.
type teamUpstream struct {
	*proxytest.Upstream
}

func newTeamUpstream(t *testing.T, stateless bool) *teamUpstream {
	t.Helper()
	s := teamServer()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		Stateless: stateless, JSONResponse: stateless,
	})
	return &teamUpstream{proxytest.NewUpstream(t, h)}
}

// Tokens of the proxy-mode tests: a user with every team scope, one with
// none, and one with math:add only.
const (
	tokTeamAll  = "tok-team-all-SECRET"
	tokTeamNone = "tok-team-none-SECRET"
	tokTeamAdd  = "tok-team-add-SECRET"
)

func teamTokens() map[string]verdict {
	future := time.Now().Add(time.Hour)
	return map[string]verdict{
		tokTeamAll: {ti: &auth.TokenInfo{UserID: "alice", Scopes: []string{"math:add", "admin", "report:pdf"}, Expiration: future,
			Extra: map[string]any{"client_id": "client-1", "email": "alice@example.com"}}},
		tokTeamNone: {ti: &auth.TokenInfo{UserID: "bob", Expiration: future, Extra: map[string]any{"client_id": "client-2"}}},
		tokTeamAdd:  {ti: &auth.TokenInfo{UserID: "carol", Scopes: []string{"math:add"}, Expiration: future}},
	}
}

// proxyGateway is a gateway in proxy mode in front of up, under
// teamPolicy.
func proxyGateway(t *testing.T, up string, mutate func(*Config)) *Gateway {
	t.Helper()
	policy, err := scopes.ParsePolicy([]byte(teamPolicy))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := newTestGateway(t, func(c *Config) {
		c.Server = nil
		c.Upstream = &proxy.Config{Upstream: up, Authorization: "Bearer upstream-secret", Timeout: 5 * time.Second}
		c.Policy = policy
		c.Verifier = newFakeVerifier(teamTokens())
		if mutate != nil {
			mutate(c)
		}
	})
	return g
}

func TestProxyModeNeedsServerOrUpstream(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"neither": func(c *Config) { c.Server = nil },
		"both":    func(c *Config) { c.Upstream = &proxy.Config{Upstream: "http://127.0.0.1:1/mcp"} },
		"bad URL": func(c *Config) {
			c.Server, c.Upstream = nil, &proxy.Config{Upstream: "http://upstream.example.com/mcp"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(newFakeVerifier(nil))
			mutate(&cfg)
			if g, err := New(cfg); err == nil {
				g.Close()
				t.Fatal("New accepted it")
			}
		})
	}
}

// gatewayAnswer decodes a JSON-RPC response the gateway wrote itself.
func gatewayAnswer(t *testing.T, rec *httptest.ResponseRecorder) (id json.RawMessage, code int, msg string, result map[string]any) {
	t.Helper()
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("HTTP %d %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var r struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Result map[string]any `json:"result"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || r.JSONRPC != "2.0" {
		t.Fatalf("not a JSON-RPC response (%v): %s", err, rec.Body)
	}
	if r.Error != nil {
		return r.ID, r.Error.Code, r.Error.Message, nil
	}
	return r.ID, 0, "", r.Result
}

func teamCall(id, tool, args string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `}}`
}

// TestProxyModeStepUp: in proxy mode the gateway alone applies the policy,
// before anything is forwarded: a denied call is answered as an unknown
// tool with the request's id, a batch holding one is refused, a body the
// SDK would reject or another parser could read differently is refused,
// a missing scope is a 403 step-up; none of them reaches the upstream.
func TestProxyModeStepUp(t *testing.T) {
	up := newTeamUpstream(t, true)
	g := proxyGateway(t, up.URL, nil)
	toolMode := proxyGateway(t, up.URL, func(c *Config) { c.ScopeChallenge = ScopeChallengeTool })
	echoCall := teamCall("1", "echo", `{"text":"hi"}`)

	for _, tt := range []struct {
		name, token, body string
		tool              bool // the SCOPE_CHALLENGE=tool gateway
		status            int
		rpcCode           int    // a JSON-RPC error the gateway answers
		rpcID             string // and its id
		msg               string // a substring of its message, or of error_description
		forwarded         bool
	}{
		{name: "allowed", token: tokTeamNone, body: echoCall, status: 200, forwarded: true},
		{name: "denied by its rule", token: tokTeamAll, body: teamCall("7", "secret-export", `{}`), status: 200, rpcCode: -32602, rpcID: "7", msg: `unknown tool "secret-export"`},
		{name: "denied by default", token: tokTeamAll, body: teamCall(`"abc"`, "not-in-policy", `{}`), status: 200, rpcCode: -32602, rpcID: `"abc"`, msg: `unknown tool "not-in-policy"`},
		{name: "argument value denied", token: tokTeamAll, body: teamCall("8", "report", `{"text":"x","format":"xml"}`), status: 200, rpcCode: -32602, rpcID: "8", msg: `does not accept format "xml"`},
		{name: "argument value allowed", token: tokTeamNone, body: teamCall("9", "report", `{"text":"x","format":"csv"}`), status: 200, forwarded: true},
		{name: "denied even in tool mode", tool: true, token: tokTeamAll, body: teamCall("3", "secret-export", `{}`), status: 200, rpcCode: -32602, rpcID: "3", msg: "unknown tool"},
		{name: "denied notification", token: tokTeamAll, body: `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"secret-export"}}`, status: 202},
		{name: "denied with an object id", token: tokTeamAll, body: teamCall(`{"a":1}`, "secret-export", `{}`), status: 400, msg: "id"},
		{name: "batch with a denied call", token: tokTeamAll, body: "[" + echoCall + "," + teamCall("2", "secret-export", "{}") + "]", status: 400, msg: "batch"},
		// Forwarded; the SDK upstream then refuses batches in 2025-06-18.
		{name: "batch of allowed calls", token: tokTeamAll, body: "[" + echoCall + "," + teamCall("2", "get-sum", `{"text":"1"}`) + "]", status: 400, forwarded: true},
		{name: "not JSON", token: tokTeamAll, body: `{"jsonrpc":"2.0","id":1,"method":"tools/call"`, status: 400, msg: "malformed"},
		{name: "NaN the SDK rejects", token: tokTeamAll, body: `{"jsonrpc":"2.0","id":NaN,"method":"tools/call","params":{"name":"secret-export"}}`, status: 400, msg: "malformed"},
		{name: "byte-order mark", token: tokTeamAll, body: "\ufeff" + teamCall("1", "secret-export", "{}"), status: 400, msg: "malformed"},
		{name: "empty body", token: tokTeamAll, body: "", status: 400, msg: "malformed"},
		{name: "duplicate name", token: tokTeamAll, body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"secret-export","name":"echo"}}`, status: 400, msg: "ambiguous"},
		{name: "duplicate argument the rule reads", token: tokTeamAll, body: teamCall("1", "report", `{"format":"xml","format":"csv"}`), status: 400, msg: "ambiguous"},
		{name: "missing scope", token: tokTeamNone, body: teamCall("1", "get-sum", `{"text":"1"}`), status: 403, msg: "math:add"},
		{name: "missing scope in tool mode", tool: true, token: tokTeamNone, body: teamCall("4", "get-sum", `{"text":"1"}`), status: 200, rpcID: "4", msg: "math:add"},
		{name: "parent scope grants", token: tokTeamAll, body: teamCall("1", "admin-reset", `{"text":"x"}`), status: 200, forwarded: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gw := g
			if tt.tool {
				gw = toolMode
			}
			before := len(up.Requests())
			rec := serve(gw, mcpRequest(tt.token, tt.body))
			if rec.Code != tt.status {
				t.Fatalf("HTTP %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if forwarded := len(up.Requests()) > before; forwarded != tt.forwarded {
				t.Fatalf("forwarded = %v, want %v", forwarded, tt.forwarded)
			}
			switch {
			case tt.forwarded || tt.status == 202:
				if tt.status == 202 && rec.Body.Len() != 0 {
					t.Errorf("a notification got a body: %s", rec.Body)
				}
			case tt.rpcID != "":
				id, code, msg, result := gatewayAnswer(t, rec)
				if string(id) != tt.rpcID || code != tt.rpcCode {
					t.Errorf("id %s code %d, want %s %d", id, code, tt.rpcID, tt.rpcCode)
				}
				if code == 0 {
					text, _ := json.Marshal(result)
					if result["isError"] != true || !strings.Contains(string(text), tt.msg) {
						t.Errorf("result %s, want an isError naming %s", text, tt.msg)
					}
				} else if !strings.Contains(msg, tt.msg) {
					t.Errorf("message %q lacks %q", msg, tt.msg)
				}
			case tt.status == 403:
				m := checkJSONError(t, rec, 403, "insufficient_scope")
				if p := authParams(t, rec.Header().Get("WWW-Authenticate")); !strings.Contains(p["scope"], tt.msg) {
					t.Errorf("challenge %v, desc %v", p, m)
				}
			default:
				m := checkJSONError(t, rec, tt.status, "invalid_request")
				if d, _ := m["error_description"].(string); !strings.Contains(d, tt.msg) {
					t.Errorf("error_description %q lacks %q", d, tt.msg)
				}
			}
		})
	}
}

// TestProxyModeToolsList: tools/list through the proxy shows what the
// policy lets the caller see, for a client of the SDK over a stateful
// upstream's event streams.
func TestProxyModeToolsList(t *testing.T) {
	up := newTeamUpstream(t, false)
	for _, tt := range []struct {
		mode, token string
		want        []string
	}{
		{ToolsListAll, tokTeamNone, []string{"admin-reset", "echo", "get-sum", "report"}},
		{ToolsListAllowed, tokTeamNone, []string{"echo", "report"}},
		{ToolsListAllowed, tokTeamAdd, []string{"echo", "get-sum", "report"}},
		{ToolsListAllowed, tokTeamAll, []string{"admin-reset", "echo", "get-sum", "report"}},
	} {
		t.Run(tt.mode+"/"+tt.token, func(t *testing.T) {
			g := proxyGateway(t, up.URL, func(c *Config) { c.ToolsList = tt.mode })
			srv := httptest.NewServer(g.Handler())
			t.Cleanup(srv.Close)
			cs := connectSDK(t, srv, tt.token)
			if got := listedTools(t, cs); !slices.Equal(got, tt.want) {
				t.Errorf("tools %q, want %q", got, tt.want)
			}
		})
	}
}

func connectSDK(t *testing.T, srv *httptest.Server, token string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             srv.URL + "/mcp",
		HTTPClient:           bearerClient(token, srv.Client().Transport),
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// TestProxyModeIdentity: the upstream learns the caller from the gateway's
// headers only: never the client's token, never a header the client
// forged; its own credential is UPSTREAM_AUTHORIZATION.
func TestProxyModeIdentity(t *testing.T) {
	up := newTeamUpstream(t, false)
	g := proxyGateway(t, up.URL, nil)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	forged := http.Header{"X-Mcp-Subject": {"mallory"}, "X-MCP-Scopes": {"admin"}, "x-mcp-email": {"m@example.com"}, "Cookie": {"session=SECRET"}}
	hc := bearerClient(tokTeamAll, srv.Client().Transport)
	hc.Transport = headerAdder{base: hc.Transport, h: forged}
	ctx := t.Context()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: srv.URL + "/mcp", HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}})
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "hello" {
		t.Fatalf("echo: %v %+v", err, res)
	}
	reqs := up.Requests()
	if len(reqs) < 3 { // initialize, initialized, tools/call
		t.Fatalf("%d requests reached the upstream", len(reqs))
	}
	want := http.Header{
		"X-Mcp-Subject":   {"alice"},
		"X-Mcp-Client-Id": {"client-1"},
		"X-Mcp-Scopes":    {"math:add admin report:pdf"},
		"X-Mcp-Email":     {"alice@example.com"},
		"Authorization":   {"Bearer upstream-secret"},
	}
	for i, r := range reqs {
		for k, v := range want {
			if got := r.Header.Values(k); !slices.Equal(got, v) {
				t.Errorf("request %d (%s): %s = %q, want %q", i, r.Method, k, got, v)
			}
		}
		if r.Header.Get("Cookie") != "" {
			t.Errorf("request %d: the client's cookie was forwarded", i)
		}
		all := fmt.Sprint(r.Header) + r.Body
		for _, secret := range []string{tokTeamAll, "mallory", "m@example.com"} {
			if strings.Contains(all, secret) {
				t.Errorf("request %d carries %q: %v", i, secret, r.Header)
			}
		}
	}
}

type headerAdder struct {
	base http.RoundTripper
	h    http.Header
}

func (a headerAdder) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range a.h {
		r.Header[k] = v
	}
	return a.base.RoundTrip(r)
}

// TestProxyModeReadiness: /readyz reports an upstream that cannot be used
// with a reason code, never the upstream's address or credential.
func TestProxyModeReadiness(t *testing.T) {
	var status atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(up.Close)
	for _, tt := range []struct {
		upstream int // 0: the upstream is down
		status   int
		reason   string
	}{
		{http.StatusMethodNotAllowed, 200, ""},
		{http.StatusUnauthorized, 503, ReasonUpstreamCredentials},
		{http.StatusBadGateway, 503, ReasonUpstreamUnreachable},
		{0, 503, ReasonUpstreamUnreachable},
	} {
		t.Run(fmt.Sprint(tt.upstream), func(t *testing.T) {
			url := up.URL
			if tt.upstream == 0 {
				down := httptest.NewServer(http.NotFoundHandler())
				url = down.URL
				down.Close()
			} else {
				status.Store(int32(tt.upstream))
			}
			g := proxyGateway(t, url+"/mcp?key=SECRET", nil)
			rec := serve(g, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tt.status {
				t.Fatalf("HTTP %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.reason != "" {
				var m map[string]string
				if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["reason"] != tt.reason {
					t.Errorf("body %s, want reason %s", rec.Body, tt.reason)
				}
			}
			if b := rec.Body.String(); strings.Contains(b, "SECRET") || strings.Contains(b, "127.0.0.1") {
				t.Errorf("readyz says too much: %s", b)
			}
		})
	}
}

// TestProxyModeMetrics: upstream failures by kind, the session and stream
// gauges, and tool calls by outcome, with the policy's tool names.
func TestProxyModeMetrics(t *testing.T) {
	up := newTeamUpstream(t, true)
	policy, err := scopes.ParsePolicy([]byte(teamPolicy))
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Labels{AuthOutcomes: labelValues(AllAuthOutcomes()), Tools: policy.Tools()})
	g := proxyGateway(t, up.URL, func(c *Config) { c.Metrics = m })
	serve(g, mcpRequest(tokTeamNone, teamCall("1", "echo", `{"text":"x"}`)))
	serve(g, mcpRequest(tokTeamNone, teamCall("2", "not-in-policy", `{}`)))
	up.CloseClientConnections()
	up.Close()
	if rec := serve(g, mcpRequest(tokTeamNone, teamCall("3", "echo", `{"text":"x"}`))); rec.Code != http.StatusBadGateway {
		t.Fatalf("upstream down: HTTP %d", rec.Code)
	}
	text := scrapeMetrics(t, m)
	for _, line := range []string{
		`mcp_gateway_upstream_failures_total{kind="unreachable"} 1`,
		`mcp_gateway_upstream_failures_total{kind="timeout"} 0`,
		`mcp_gateway_upstream_sessions 0`,
		`mcp_gateway_upstream_streams 0`,
		`mcp_gateway_tool_calls_total{operation="none",outcome="forwarded",tool="echo"} 2`,
		`mcp_gateway_tool_calls_total{operation="none",outcome="protocol_error",tool="other"} 1`,
	} {
		if !containsLine(text, line) {
			t.Errorf("metrics lack %s:\n%s", line, grepLines(text, "upstream_")+grepLines(text, "tool_calls"))
		}
	}
}

// TestProxyModeClientGoneMidStream: a client that goes away while an
// upstream stream flows ends the handler with http.ErrAbortHandler; the
// request is still logged and counted, with no stack trace.
func TestProxyModeClientGoneMidStream(t *testing.T) {
	upstreamDone := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(upstreamDone)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":%d}}\n\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(up.Close)
	logs := &syncbuf.Buffer{}
	m := newMetrics()
	g := proxyGateway(t, up.URL, func(c *Config) {
		c.Metrics = m
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	handlerDone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone) // also when the handler panics
		g.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	srvLog := &syncbuf.Buffer{}
	srv.Config.ErrorLog = slog.NewLogLogger(slog.NewTextHandler(srvLog, nil), slog.LevelError)

	req := mcpRequest(tokTeamNone, teamCall("1", "echo", `{"text":"x"}`))
	req.RequestURI = ""
	req.URL.Scheme, req.URL.Host = "http", strings.TrimPrefix(srv.URL, "http://")
	req.Host = ""
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("HTTP %d: %s", resp.StatusCode, b)
	}
	buf := make([]byte, 64)
	if _, err := io.ReadAtLeast(resp.Body, buf, 16); err != nil {
		t.Fatalf("first event: %v", err)
	}
	resp.Body.Close() // the client goes away mid-stream
	<-handlerDone
	<-upstreamDone

	lines := requestLines(t, []byte(logs.String()))
	if len(lines) != 1 || lines[0]["client_gone"] != true || lines[0]["tool"] != "echo" {
		t.Errorf("request log lines %v", lines)
	}
	for _, s := range []string{logs.String(), srvLog.String()} {
		if strings.Contains(strings.ToLower(s), "panic") || strings.Contains(s, "goroutine ") {
			t.Errorf("a stack trace or panic was logged:\n%s", s)
		}
	}
	if text := scrapeMetrics(t, m); !containsLine(text, `mcp_gateway_http_requests_total{code="200",route="/mcp"} 1`) {
		t.Errorf("the request was not counted:\n%s", grepLines(text, "http_requests_total"))
	}
}

// TestProxyModeLanding: the landing page names no calculator in proxy
// mode, and a policy without scopes says signing in is enough.
func TestProxyModeLanding(t *testing.T) {
	g := proxyGateway(t, "http://127.0.0.1:1/mcp", func(c *Config) {
		c.Policy = scopes.AnyValidToken()
		c.ScopesSupported = nil
	})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept", "text/html")
	page := serve(g, r).Body.String()
	if strings.Contains(strings.ToLower(page), "calculator") || !strings.Contains(page, "signing in is enough") {
		t.Errorf("landing page:\n%s", page)
	}
}

// BenchmarkProxyModeCachedToken is one tools/call through the gateway in
// proxy mode, cached token, to an upstream that answers at once with a
// canned JSON result: what the gateway and the proxy add to a call,
// including the loopback round trip to the upstream.
func BenchmarkProxyModeCachedToken(b *testing.B) {
	answer := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"9"}],"structuredContent":{"result":9}}}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	b.Cleanup(up.Close)
	ti := &auth.TokenInfo{UserID: "bench", Scopes: []string{"op"}, Expiration: time.Now().Add(time.Hour), Extra: map[string]any{"client_id": "bench-client"}}
	cfg := testConfig(newFakeVerifier(map[string]verdict{"bench-token": {ti: ti}}))
	cfg.Server = nil
	cfg.Upstream = &proxy.Config{Upstream: up.URL + "/mcp", Authorization: "Bearer upstream"}
	benchHandler(b, cfg)
}

// TestProxyModeStreamEnds: a forwarded event stream ends when the token it
// came with expires (the timer fired by hand), and when EndStreams names
// that token (revocation), as the built-in server's streams do.
func TestProxyModeStreamEnds(t *testing.T) {
	up := newTeamUpstream(t, false)
	now := time.Now()
	ft := &fakeTimers{}
	g := proxyGateway(t, up.URL, func(c *Config) {
		c.Now = func() time.Time { return now }
		c.AfterFunc = ft.AfterFunc
		v := c.Verifier.(*fakeVerifier)
		v.tokens["tok-soon"] = verdict{ti: &auth.TokenInfo{UserID: "soon", Expiration: now.Add(time.Minute)}}
	})
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections() // a stream left open must not hang Close
		srv.Close()
	})
	do := func(method, token, session, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("MCP-Protocol-Version", "2025-06-18")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	init := do(http.MethodPost, "tok-soon", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	_, _ = io.Copy(io.Discard, init.Body)
	init.Body.Close()
	session := init.Header.Get("Mcp-Session-Id")
	if init.StatusCode != 200 || session == "" {
		t.Fatalf("initialize: %d, session %q", init.StatusCode, session)
	}
	done := do(http.MethodPost, "tok-soon", session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	done.Body.Close()

	openStream := func() (*http.Response, chan struct{}) {
		t.Helper()
		resp := do(http.MethodGet, "tok-soon", session, "")
		// The upstream SDK answers 409 while it still holds the session's
		// previous stream: the proxy ended it, and the upstream's handler
		// returns a moment later. Ask again until it has.
		for deadline := time.Now().Add(5 * time.Second); resp.StatusCode == http.StatusConflict && time.Now().Before(deadline); {
			resp.Body.Close()
			time.Sleep(5 * time.Millisecond)
			resp = do(http.MethodGet, "tok-soon", session, "")
		}
		if resp.StatusCode != 200 {
			t.Fatalf("GET stream: %d", resp.StatusCode)
		}
		ended := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, resp.Body); resp.Body.Close(); close(ended) }()
		return resp, ended
	}
	_, ended := openStream()
	ft.mu.Lock()
	last := len(ft.f) - 1
	ft.mu.Unlock()
	d, fire, _ := ft.get(last)
	if d != time.Minute { // exp - now, with no clock skew configured
		t.Errorf("the stream's timer is %v", d)
	}
	select {
	case <-ended:
		t.Fatal("the stream ended before its token expired")
	default:
	}
	fire()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived its token")
	}

	_, ended = openStream()
	if n := g.EndStreams(sha256.Sum256([]byte("tok-soon"))); n != 1 {
		t.Errorf("EndStreams ended %d, want the open stream", n)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived its revoked token")
	}

	// A revocation that names the subject (the shared tier's, or SSF's).
	_, ended = openStream()
	if n := g.EndStreamsWhere(func(_ [32]byte, ti *auth.TokenInfo) bool { return ti != nil && ti.UserID == "soon" }); n != 1 {
		t.Errorf("EndStreamsWhere ended %d, want the open stream", n)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived its revoked subject")
	}
}
