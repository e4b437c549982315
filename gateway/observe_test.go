package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/metrics"
)

func (v *fakeVerifier) set(token string, d verdict) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.tokens[token] = d
}

// requestLines returns the "request" lines of JSON slog output, decoded.
func requestLines(t *testing.T, logs []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(logs, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

func scrapeMetrics(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape = %d", rec.Code)
	}
	return rec.Body.String()
}

func TestRequestID(t *testing.T) {
	long := strings.Repeat("a", 129)
	max := strings.Repeat("b", 128)
	tests := []struct {
		name     string
		incoming string
		keep     bool
	}{
		{"none", "", false},
		{"valid", "abc.DEF_123-x", true},
		{"128 chars", max, true},
		{"129 chars", long, false},
		{"space", "abc def", false},
		{"slash", "a/b", false},
		{"newline", "a\nb", false},
		{"quote", `a"b`, false},
		{"unicode", "é", false},
	}
	g, _ := newTestGateway(t, nil)
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			if tt.incoming != "" {
				r.Header.Set("X-Request-Id", tt.incoming)
			}
			rec := serve(g, r)
			got := rec.Header().Get("X-Request-Id")
			if tt.keep {
				if got != tt.incoming {
					t.Errorf("X-Request-Id = %q, want the incoming %q", got, tt.incoming)
				}
				return
			}
			if got == "" || got == tt.incoming || !validRequestID(got) {
				t.Errorf("X-Request-Id = %q, want a fresh valid id", got)
			}
			if seen[got] {
				t.Errorf("request id %q reused", got)
			}
			seen[got] = true
		})
	}
}

func TestRequestLogLine(t *testing.T) {
	sum := sha256.Sum256([]byte("user-a"))
	wantHash := hex.EncodeToString(sum[:])[:16]
	tests := []struct {
		name  string
		level slog.Level
		req   func() *http.Request
		want  map[string]any // fields that must be present with these values
		none  []string       // fields that must be absent
		quiet bool           // no line expected at this level
	}{
		{
			name: "tool call", level: slog.LevelInfo,
			req: func() *http.Request {
				r := mcpRequest(tokAdd, rpcCall(1, "add"))
				r.Header.Set("X-Request-Id", "req-1")
				return r
			},
			want: map[string]any{"level": "INFO", "request_id": "req-1", "method": "POST", "route": "/mcp", "status": 200.0, "auth": "ok", "subject_hash": wantHash, "tool": "calculator", "operation": "add"},
		},
		{
			name: "insufficient scope", level: slog.LevelInfo,
			req:  func() *http.Request { return mcpRequest(tokAdd, rpcCall(1, "divide")) },
			want: map[string]any{"status": 403.0, "auth": "insufficient_scope", "subject_hash": wantHash, "tool": "calculator", "operation": "divide"},
		},
		{
			name: "unknown operation is clamped", level: slog.LevelInfo,
			req:  func() *http.Request { return mcpRequest(tokAdd, rpcCall(1, "tok-add-SECRET")) },
			want: map[string]any{"tool": "calculator", "operation": "other"},
		},
		{
			name: "missing token", level: slog.LevelInfo,
			req:  func() *http.Request { return mcpRequest("", rpcCall(1, "add")) },
			want: map[string]any{"status": 401.0, "auth": "missing"},
			none: []string{"subject_hash"},
		},
		{
			name: "invalid token", level: slog.LevelInfo,
			req:  func() *http.Request { return mcpRequest(tokInvalid, rpcCall(1, "add")) },
			want: map[string]any{"status": 401.0, "auth": "expired"},
			none: []string{"subject_hash"},
		},
		{
			name: "unmatched route", level: slog.LevelInfo,
			req:  func() *http.Request { return httptest.NewRequest(http.MethodGet, "/nope?access_token=x", nil) },
			want: map[string]any{"route": "unmatched", "status": 404.0},
			none: []string{"auth", "subject_hash", "tool"},
		},
		{
			name: "healthz at debug", level: slog.LevelDebug,
			req:  func() *http.Request { return httptest.NewRequest(http.MethodGet, "/healthz", nil) },
			want: map[string]any{"level": "DEBUG", "route": "/healthz", "status": 200.0},
		},
		{
			name: "healthz quiet at info", level: slog.LevelInfo,
			req:   func() *http.Request { return httptest.NewRequest(http.MethodGet, "/healthz", nil) },
			quiet: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			g, _ := newTestGateway(t, func(c *Config) {
				c.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tt.level}))
			})
			rec := serve(g, tt.req())
			lines := requestLines(t, buf.Bytes())
			if tt.quiet {
				if len(lines) != 0 {
					t.Fatalf("logged %v, want nothing", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("got %d request lines, want 1: %s", len(lines), buf.String())
			}
			line := lines[0]
			for k, v := range tt.want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v (line %v)", k, line[k], v, line)
				}
			}
			for _, k := range tt.none {
				if _, has := line[k]; has {
					t.Errorf("line has %s: %v", k, line)
				}
			}
			if line["request_id"] != rec.Header().Get("X-Request-Id") {
				t.Errorf("logged request_id %v, response header %q", line["request_id"], rec.Header().Get("X-Request-Id"))
			}
			if _, ok := line["latency_ms"].(float64); !ok {
				t.Errorf("latency_ms missing: %v", line)
			}
		})
	}
}

// TestMetricsRecorded runs one request per row against a fresh gateway
// and checks the series it must have moved.
func TestMetricsRecorded(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		req    func() *http.Request
		want   []string
	}{
		{
			name: "tool call ok",
			req:  func() *http.Request { return mcpRequest(tokAdd, rpcCall(1, "add")) },
			want: []string{
				`mcp_gateway_http_requests_total{code="200",route="/mcp"} 1`,
				`mcp_gateway_auth_outcomes_total{reason="ok"} 1`,
				`mcp_gateway_tool_calls_total{operation="add",outcome="ok",tool="calculator"} 1`,
				`mcp_gateway_http_request_duration_seconds_count{route="/mcp"} 1`,
			},
		},
		{
			name: "tool error (scope checked by the tool)",
			mutate: func(c *Config) {
				c.ScopeChallenge = ScopeChallengeTool
			},
			req: func() *http.Request { return mcpRequest(tokAdd, rpcCall(1, "divide")) },
			want: []string{
				`mcp_gateway_auth_outcomes_total{reason="ok"} 1`,
				`mcp_gateway_tool_calls_total{operation="divide",outcome="tool_error",tool="calculator"} 1`,
			},
		},
		{
			name: "whoami has no operation",
			req: func() *http.Request {
				return mcpRequest(tokAdd, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`)
			},
			want: []string{`mcp_gateway_tool_calls_total{operation="none",outcome="ok",tool="whoami"} 1`},
		},
		{
			name: "unknown tool is a protocol error",
			req: func() *http.Request {
				return mcpRequest(tokAdd, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"tok-add-SECRET","arguments":{}}}`)
			},
			want: []string{`mcp_gateway_tool_calls_total{operation="none",outcome="protocol_error",tool="other"} 1`},
		},
		{
			name: "insufficient scope",
			req:  func() *http.Request { return mcpRequest(tokAdd, rpcCall(1, "divide")) },
			want: []string{
				`mcp_gateway_http_requests_total{code="403",route="/mcp"} 1`,
				`mcp_gateway_auth_outcomes_total{reason="insufficient_scope"} 1`,
				`mcp_gateway_auth_outcomes_total{reason="ok"} 0`,
			},
		},
		{
			name: "missing",
			req:  func() *http.Request { return mcpRequest("", rpcCall(1, "add")) },
			want: []string{`mcp_gateway_auth_outcomes_total{reason="missing"} 1`},
		},
		{
			name: "malformed",
			req: func() *http.Request {
				r := mcpRequest("", rpcCall(1, "add"))
				r.Header.Set("Authorization", "Bearer a b")
				return r
			},
			want: []string{`mcp_gateway_auth_outcomes_total{reason="malformed"} 1`},
		},
		{
			name: "inactive",
			req:  func() *http.Request { return mcpRequest("never-issued", rpcCall(1, "add")) },
			want: []string{`mcp_gateway_auth_outcomes_total{reason="inactive"} 1`},
		},
		{
			name: "unavailable",
			req:  func() *http.Request { return mcpRequest(tokUnavailable, rpcCall(1, "add")) },
			want: []string{`mcp_gateway_auth_outcomes_total{reason="unavailable"} 1`, `mcp_gateway_http_requests_total{code="503",route="/mcp"} 1`},
		},
		{
			name: "forbidden origin",
			req: func() *http.Request {
				r := mcpRequest(tokAdd, rpcCall(1, "add"))
				r.Header.Set("Origin", "https://evil.example")
				return r
			},
			want: []string{`mcp_gateway_auth_outcomes_total{reason="forbidden_origin"} 1`},
		},
		{
			name: "unmatched",
			req:  func() *http.Request { return httptest.NewRequest(http.MethodGet, "/secret-path", nil) },
			want: []string{`mcp_gateway_http_requests_total{code="404",route="unmatched"} 1`},
		},
		{
			name: "method not allowed keeps the route",
			req:  func() *http.Request { return httptest.NewRequest(http.MethodPost, "/healthz", nil) },
			want: []string{`mcp_gateway_http_requests_total{code="405",route="/healthz"} 1`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMetrics()
			g, _ := newTestGateway(t, func(c *Config) {
				c.Metrics = m
				if tt.mutate != nil {
					tt.mutate(c)
				}
			})
			serve(g, tt.req())
			out := scrapeMetrics(t, m)
			for _, w := range tt.want {
				if !containsLine(out, w) {
					t.Errorf("missing %s in\n%s", w, grepLines(out, "mcp_gateway_"))
				}
			}
			if strings.Contains(out, "SECRET") || strings.Contains(out, "secret-path") {
				t.Errorf("metrics leak a client-supplied string:\n%s", out)
			}
		})
	}
}

func containsLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestServeMetrics(t *testing.T) {
	tests := []struct {
		name    string
		metrics bool
		serve   bool
		status  int
	}{
		{"served", true, true, 200},
		{"own listener", true, false, 404},
		{"no metrics", false, true, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m *metrics.Metrics
			if tt.metrics {
				m = newMetrics()
			}
			g, _ := newTestGateway(t, func(c *Config) {
				c.Metrics = m
				c.ServeMetrics = tt.serve
			})
			rec := serve(g, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if rec.Code != tt.status {
				t.Fatalf("GET /metrics = %d, want %d", rec.Code, tt.status)
			}
			if tt.status == 200 && !strings.Contains(rec.Body.String(), "mcp_gateway_auth_outcomes_total") {
				t.Errorf("body is not the exposition: %.300s", rec.Body.String())
			}
		})
	}
}

func TestClientAddr(t *testing.T) {
	tests := []struct {
		name   string
		header string // Config.ClientIPHeader
		set    map[string]string
		remote string
		want   string
	}{
		{"remote addr", "", nil, "192.0.2.1:1234", "192.0.2.1"},
		{"remote ipv6 by /64", "", nil, "[2001:db8::1]:443", "2001:db8::/64"},
		{"remote ipv6, same /64", "", nil, "[2001:db8::ffff:1]:443", "2001:db8::/64"},
		{"remote ipv4-mapped", "", nil, "[::ffff:192.0.2.1]:443", "192.0.2.1"},
		{"remote without port", "", nil, "192.0.2.9", "192.0.2.9"},
		{"header not configured is ignored", "", map[string]string{"Fly-Client-IP": "198.51.100.7"}, "192.0.2.1:1", "192.0.2.1"},
		{"X-Forwarded-For never trusted", "", map[string]string{"X-Forwarded-For": "198.51.100.7"}, "192.0.2.1:1", "192.0.2.1"},
		{"configured header", "Fly-Client-IP", map[string]string{"Fly-Client-IP": "198.51.100.7"}, "192.0.2.1:1", "198.51.100.7"},
		{"configured header ipv6", "Fly-Client-IP", map[string]string{"Fly-Client-IP": " 2001:db8:0:7::7 "}, "192.0.2.1:1", "2001:db8:0:7::/64"},
		{"configured header invalid", "Fly-Client-IP", map[string]string{"Fly-Client-IP": "not-an-ip"}, "192.0.2.1:1", "192.0.2.1"},
		{"configured header list is invalid", "Fly-Client-IP", map[string]string{"Fly-Client-IP": "198.51.100.7, 10.0.0.1"}, "192.0.2.1:1", "192.0.2.1"},
		{"configured header absent", "Fly-Client-IP", nil, "192.0.2.1:1", "192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := newTestGateway(t, func(c *Config) { c.ClientIPHeader = tt.header })
			r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			r.RemoteAddr = tt.remote
			for k, v := range tt.set {
				r.Header.Set(k, v)
			}
			if got := g.clientAddr(r); got != tt.want {
				t.Errorf("clientAddr = %q, want %q", got, tt.want)
			}
		})
	}
}

// ctxVerifier is a Verifier that remembers the contexts Verify got.
type ctxVerifier struct {
	fakeVerifier
	ctxs []context.Context
}

func (v *ctxVerifier) Verify(ctx context.Context, token string) (*auth.TokenInfo, error) {
	v.mu.Lock()
	v.ctxs = append(v.ctxs, ctx)
	v.mu.Unlock()
	return v.fakeVerifier.Verify(ctx, token)
}

// TestVerifyGetsClient: the context handed to Verify is the request's,
// extended (introspect.WithClient), not a fresh one.
func TestVerifyGetsClient(t *testing.T) {
	v := &ctxVerifier{fakeVerifier: *newFakeVerifier(defaultTokens())}
	cfg := testConfig(v)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	type marker struct{}
	r := mcpRequest(tokAdd, rpcCall(1, "add"))
	r = r.WithContext(context.WithValue(r.Context(), marker{}, "m"))
	if rec := serve(g, r); rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	if len(v.ctxs) != 1 || v.ctxs[0].Value(marker{}) != "m" {
		t.Fatalf("Verify got %d contexts, not derived from the request's", len(v.ctxs))
	}
}

func TestLoadSheddingResponses(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		status    int
		code      string
		retry     string
		wantAuth  string
		challenge bool
	}{
		{"rate limited", &introspect.RateLimitError{RetryAfter: 3 * time.Second}, 429, "rate_limited", "3", "rate_limited", false},
		{"rate limited fraction rounds up", &introspect.RateLimitError{RetryAfter: 1500 * time.Millisecond}, 429, "rate_limited", "2", "rate_limited", false},
		{"rate limited zero is 1", &introspect.RateLimitError{}, 429, "rate_limited", "1", "rate_limited", false},
		{"rate limited sub-second is 1", &introspect.RateLimitError{RetryAfter: 200 * time.Millisecond}, 429, "rate_limited", "1", "rate_limited", false},
		{"rate limited wrapped", errors.Join(errors.New("x"), &introspect.RateLimitError{RetryAfter: 4 * time.Second}), 429, "rate_limited", "4", "rate_limited", false},
		{"overloaded", &introspect.UnavailableError{RetryAfter: 2 * time.Second, Err: introspect.ErrOverloaded}, 503, "temporarily_unavailable", "2", "unavailable", false},
		{"overloaded no retry", &introspect.UnavailableError{Err: introspect.ErrOverloaded}, 503, "temporarily_unavailable", "5", "unavailable", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMetrics()
			g, v := newTestGateway(t, func(c *Config) { c.Metrics = m })
			v.set("tok-shed-SECRET", verdict{err: tt.err})
			rec := serve(g, mcpRequest("tok-shed-SECRET", rpcCall(1, "add")))
			checkJSONError(t, rec, tt.status, tt.code)
			if got := rec.Header().Get("Retry-After"); got != tt.retry {
				t.Errorf("Retry-After = %q, want %q", got, tt.retry)
			}
			if www := rec.Header().Get("WWW-Authenticate"); (www != "") != tt.challenge {
				t.Errorf("WWW-Authenticate = %q", www)
			}
			if !containsLine(scrapeMetrics(t, m), `mcp_gateway_auth_outcomes_total{reason="`+tt.wantAuth+`"} 1`) {
				t.Errorf("auth outcome %s not counted", tt.wantAuth)
			}
		})
	}
}

// The landing page and the JSON form for non-browsers.
func TestLandingPage(t *testing.T) {
	tests := []struct {
		name     string
		resource string
		method   string
		path     string
		accept   string
		token    string
		status   int
		kind     string // "html", "json", or "mcp" (the MCP endpoint answered)
	}{
		{"browser", testResource, "GET", "/", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "", 200, "html"},
		{"json client", testResource, "GET", "/", "application/json", "", 200, "json"},
		{"no accept", testResource, "GET", "/", "", "", 200, "json"},
		{"root resource browser", "https://calc.example.com/", "GET", "/", "text/html", "", 200, "html"},
		{"root resource SSE GET is MCP", "https://calc.example.com/", "GET", "/", "text/event-stream", "", 401, "mcp"},
		{"root resource POST is MCP", "https://calc.example.com/", "POST", "/", "application/json, text/event-stream", "", 401, "mcp"},
		{"root resource POST with token", "https://calc.example.com/", "POST", "/", "application/json, text/event-stream", tokAdd, 200, "mcp"},
		{"root resource PRM still served", "https://calc.example.com/", "GET", "/.well-known/oauth-protected-resource", "text/html", "", 200, "prm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := newTestGateway(t, func(c *Config) {
				c.Resource = tt.resource
				c.ResourceName = `Calc <b>"demo"</b>`
			})
			var body io.Reader
			if tt.method == "POST" {
				body = strings.NewReader(rpcCall(1, "add"))
			}
			r := httptest.NewRequest(tt.method, tt.path, body)
			if tt.method == "POST" {
				r.Header.Set("Content-Type", "application/json")
			}
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec := serve(g, r)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tt.status, rec.Body.String())
			}
			h := rec.Header()
			switch tt.kind {
			case "html":
				if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
					t.Errorf("Content-Type = %q", ct)
				}
				for k, want := range map[string]string{
					"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
					"X-Frame-Options":         "DENY",
					"X-Content-Type-Options":  "nosniff",
				} {
					if got := h.Get(k); !strings.HasPrefix(got, want) {
						t.Errorf("%s = %q, want %q", k, got, want)
					}
				}
				page := rec.Body.String()
				for _, want := range []string{
					`<meta name="viewport" content="width=device-width, initial-scale=1">`,
					tt.resource,
					"Settings &gt; Connectors &gt; Add custom connector",
					"op:add", "Add numbers", "op:sub", "Subtract numbers", "op:mult", "Multiply numbers",
					"op:div", "Divide numbers", "All calculator operations",
					`<a href="` + testIssuer + `">`,
					"/.well-known/oauth-protected-resource",
					"Calc &lt;b&gt;&#34;demo&#34;&lt;/b&gt;",
				} {
					if !strings.Contains(page, want) {
						t.Errorf("page lacks %q", want)
					}
				}
				if strings.Contains(page, "<b>") || strings.Contains(page, "<script") {
					t.Errorf("page is not escaped or has script:\n%s", page)
				}
			case "json":
				var info struct {
					Name   string `json:"name"`
					MCPURL string `json:"mcp_url"`
					Scopes []struct {
						Scope       string `json:"scope"`
						Description string `json:"description"`
					} `json:"scopes"`
					AuthorizationServers []string `json:"authorization_servers"`
					PRM                  string   `json:"protected_resource_metadata"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil {
					t.Fatalf("body %q: %v", rec.Body.String(), err)
				}
				if info.MCPURL != tt.resource || info.Name != `Calc <b>"demo"</b>` || len(info.AuthorizationServers) != 1 || info.AuthorizationServers[0] != testIssuer || info.PRM != testPRMURL {
					t.Errorf("info = %+v", info)
				}
				if len(info.Scopes) != 5 || info.Scopes[0].Scope != "op:add" || info.Scopes[0].Description != "Add numbers" || info.Scopes[4].Scope != "op" {
					t.Errorf("scopes = %+v", info.Scopes)
				}
			case "mcp":
				if strings.Contains(rec.Body.String(), "<html") || strings.Contains(rec.Body.String(), "mcp_url") {
					t.Errorf("the landing page shadowed MCP: %s", rec.Body.String())
				}
			}
		})
	}
}

func TestLandingDoesNotShadowMounts(t *testing.T) {
	mounted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "mounted") })
	for _, resource := range []string{testResource, "https://calc.example.com/"} {
		g, _ := newTestGateway(t, func(c *Config) {
			c.Resource = resource
			c.Mounts = []Mount{{Prefixes: []string{"/oauth"}, Handler: mounted}}
		})
		for _, p := range []string{"/oauth", "/oauth/authorize"} {
			r := httptest.NewRequest(http.MethodGet, p, nil)
			r.Header.Set("Accept", "text/html")
			if rec := serve(g, r); rec.Code != 200 || rec.Body.String() != "mounted" {
				t.Errorf("resource %s: GET %s = %d %q, want the mount", resource, p, rec.Code, rec.Body.String())
			}
		}
	}
}
