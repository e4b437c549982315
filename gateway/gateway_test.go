package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/tools"
)

const (
	testResource = "https://calc.example.com/mcp"
	testIssuer   = "https://as.example.com"
	testPRMURL   = "https://calc.example.com/.well-known/oauth-protected-resource/mcp"
)

// verdict is what the fake verifier answers for one token.
type verdict struct {
	ti  *auth.TokenInfo
	err error
}

// fakeVerifier implements Verifier from a fixed table and counts calls.
type fakeVerifier struct {
	mu       sync.Mutex
	tokens   map[string]verdict
	total    int
	readyErr error
}

func newFakeVerifier(tokens map[string]verdict) *fakeVerifier {
	return &fakeVerifier{tokens: tokens}
}

func (v *fakeVerifier) Verify(_ context.Context, token string) (*auth.TokenInfo, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.total++
	d, ok := v.tokens[token]
	if !ok {
		return nil, &accesstoken.InvalidError{Reason: accesstoken.ReasonInactive}
	}
	return d.ti, d.err
}

func (v *fakeVerifier) Ready(context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.readyErr
}

func (v *fakeVerifier) setReady(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.readyErr = err
}

func (v *fakeVerifier) totalCalls() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.total
}

// Tokens the default fake verifier knows. The values are chosen so that a
// leak into a header or body is easy to spot.
const (
	tokAdd         = "tok-add-SECRET"
	tokDiv         = "tok-div-SECRET"
	tokParent      = "tok-parent-SECRET"
	tokNone        = "tok-none-SECRET"
	tokAll         = "tok-all-SECRET"
	tokUserB       = "tok-userb-SECRET"
	tokInvalid     = "tok-invalid-SECRET"
	tokUnavailable = "tok-unavailable-SECRET"
	tokUnavailNoRA = "tok-unavail-noretry-SECRET"
	tokUnavailFrac = "tok-unavail-fraction-SECRET"
	tokUnavailWrap = "tok-unavail-wrapped-SECRET"
	tokClientAuth  = "tok-clientauth-SECRET"
	tokPlainErr    = "tok-plainerr-SECRET"
	tokExpired     = "tok-expired-SECRET"
)

func defaultTokens() map[string]verdict {
	future := time.Now().Add(time.Hour)
	return map[string]verdict{
		tokAdd:         {ti: &auth.TokenInfo{UserID: "user-a", Scopes: []string{"op:add"}, Expiration: future}},
		tokDiv:         {ti: &auth.TokenInfo{UserID: "user-a", Scopes: []string{"op:div"}, Expiration: future}},
		tokParent:      {ti: &auth.TokenInfo{UserID: "user-a", Scopes: []string{"op"}, Expiration: future}},
		tokNone:        {ti: &auth.TokenInfo{UserID: "user-a", Expiration: future}},
		tokAll:         {ti: &auth.TokenInfo{UserID: "user-a", Scopes: tools.Policy().Scopes()}},
		tokUserB:       {ti: &auth.TokenInfo{UserID: "user-b", Scopes: tools.Policy().Scopes(), Expiration: future}},
		tokInvalid:     {err: &accesstoken.InvalidError{Reason: accesstoken.ReasonExpired, Detail: "exp is in the past"}},
		tokUnavailable: {err: &introspect.UnavailableError{RetryAfter: 7 * time.Second, Err: errors.New("dial tcp: connection refused")}},
		tokUnavailNoRA: {err: &introspect.UnavailableError{}},
		tokUnavailFrac: {err: &introspect.UnavailableError{RetryAfter: 1500 * time.Millisecond}},
		tokUnavailWrap: {err: fmt.Errorf("verify: %w", &introspect.UnavailableError{RetryAfter: 9 * time.Second})},
		tokClientAuth:  {err: &introspect.ClientAuthError{StatusCode: 401}},
		tokPlainErr:    {err: errors.New("something unexpected")},
		tokExpired:     {ti: &auth.TokenInfo{UserID: "user-a", Scopes: tools.Policy().Scopes(), Expiration: time.Now().Add(-time.Hour)}},
	}
}

func testConfig(v Verifier) Config {
	return Config{
		Resource:             testResource,
		AuthorizationServers: []string{testIssuer},
		AllowedOrigins:       []string{"https://app.example.org"},
		Stateless:            true,
		JSONResponse:         true,
		Verifier:             v,
		Server:               calculatorServer(),
		Policy:               tools.Policy(),
	}
}

// calculatorServer is an MCP server with the built-in tools, as main.go
// builds it.
func calculatorServer() *mcp.Server {
	s := NewMCPServer(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	if err := tools.Register(s, tools.Policy()); err != nil {
		panic(err)
	}
	return s
}

func newTestGateway(t testing.TB, mutate func(*Config)) (*Gateway, *fakeVerifier) {
	t.Helper()
	v := newFakeVerifier(defaultTokens())
	cfg := testConfig(v)
	if mutate != nil {
		mutate(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(g.Close)
	return g, v
}

func rpcCall(id int, op string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":%q,"a":6,"b":3}}}`, id, op)
}

// mcpRequest builds a POST to the MCP endpoint as a Streamable HTTP client
// would send it; token "" sends no Authorization header.
func mcpRequest(token, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("MCP-Protocol-Version", "2025-06-18")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

func serve(g *Gateway, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	g.Handler().ServeHTTP(rec, r)
	return rec
}

// checkJSONError asserts an error response: its status, a JSON body with
// an "error" member equal to code (when code is not ""), and the JSON
// Content-Type.
func checkJSONError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) map[string]any {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; headers %v body %q", rec.Code, status, rec.Header(), rec.Body.String())
	}
	body := rec.Body.Bytes()
	if !json.Valid(body) {
		t.Fatalf("body is not JSON: %q", body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if code != "" && m["error"] != code {
		t.Errorf("error = %v, want %q (body %s)", m["error"], code, body)
	}
	return m
}

// authParams parses a single Bearer challenge of the form the gateway
// writes: Bearer k="v", k="v".
func authParams(t *testing.T, h string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(h, "Bearer")
	if !ok {
		t.Fatalf("WWW-Authenticate = %q, want a Bearer challenge", h)
	}
	out := map[string]string{}
	rest = strings.TrimSpace(rest)
	for rest != "" {
		k, v, ok := strings.Cut(rest, `="`)
		if !ok {
			t.Fatalf("cannot parse challenge %q at %q", h, rest)
		}
		end := strings.IndexByte(v, '"')
		if end < 0 {
			t.Fatalf("unterminated value in %q", h)
		}
		out[strings.TrimSpace(k)] = v[:end]
		rest = strings.TrimPrefix(strings.TrimSpace(v[end+1:]), ",")
		rest = strings.TrimSpace(rest)
	}
	return out
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"ok", func(*Config) {}, ""},
		{"no verifier", func(c *Config) { c.Verifier = nil }, "no token verifier"},
		{"bad challenge mode", func(c *Config) { c.ScopeChallenge = "header" }, "scope challenge mode"},
		{"bad resource", func(c *Config) { c.Resource = "not a url" }, ""},
		{"http non-loopback resource", func(c *Config) { c.Resource = "http://calc.example.com/mcp" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(newFakeVerifier(nil))
			tt.mutate(&cfg)
			g, err := New(cfg)
			if tt.name == "ok" {
				if err != nil || g == nil {
					t.Fatalf("New = %v, %v", g, err)
				}
				if g.mcpPath != "/mcp" {
					t.Errorf("mcpPath = %q, want /mcp", g.mcpPath)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want error")
			}
			if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestAuthMatrix is the status and header matrix of the MCP endpoint's
// authentication.
func TestAuthMatrix(t *testing.T) {
	tests := []struct {
		name       string
		req        func() *http.Request
		wantStatus int
		wantCode   string // JSON "error"; "" for a success
		wantErr    string // WWW-Authenticate error param; "-" for no header at all
		wantRetry  string
		wantCalls  int
	}{
		{
			name:       "no token",
			req:        func() *http.Request { return mcpRequest("", rpcCall(1, "add")) },
			wantStatus: 401, wantCode: "unauthorized", wantErr: "", wantCalls: 0,
		},
		{
			name: "basic scheme",
			req: func() *http.Request {
				r := mcpRequest("", rpcCall(1, "add"))
				r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
				return r
			},
			wantStatus: 400, wantCode: "invalid_request", wantErr: "invalid_request", wantCalls: 0,
		},
		{
			name: "two tokens",
			req: func() *http.Request {
				r := mcpRequest("", rpcCall(1, "add"))
				r.Header.Set("Authorization", "Bearer "+tokAdd+" "+tokDiv)
				return r
			},
			wantStatus: 400, wantCode: "invalid_request", wantErr: "invalid_request", wantCalls: 0,
		},
		{
			name: "two Authorization fields",
			req: func() *http.Request {
				r := mcpRequest(tokAdd, rpcCall(1, "add"))
				r.Header.Add("Authorization", "Bearer "+tokDiv)
				return r
			},
			wantStatus: 400, wantCode: "invalid_request", wantErr: "invalid_request", wantCalls: 0,
		},
		{
			name: "empty bearer",
			req: func() *http.Request {
				r := mcpRequest("", rpcCall(1, "add"))
				r.Header.Set("Authorization", "Bearer ")
				return r
			},
			wantStatus: 400, wantCode: "invalid_request", wantErr: "invalid_request", wantCalls: 0,
		},
		{
			name: "token in query",
			req: func() *http.Request {
				r := mcpRequest("", rpcCall(1, "add"))
				r.URL.RawQuery = "access_token=" + tokAdd
				return r
			},
			wantStatus: 400, wantCode: "invalid_request", wantErr: "invalid_request", wantCalls: 0,
		},
		{
			name: "token in query and header",
			req: func() *http.Request {
				r := mcpRequest(tokAdd, rpcCall(1, "add"))
				r.URL.RawQuery = "access_token=" + tokAdd
				return r
			},
			wantStatus: 400, wantCode: "invalid_request", wantErr: "invalid_request", wantCalls: 0,
		},
		{
			name: "form body",
			req: func() *http.Request {
				r := mcpRequest(tokAdd, "access_token="+tokAdd)
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return r
			},
			wantStatus: 400, wantCode: "invalid_request", wantErr: "invalid_request", wantCalls: 0,
		},
		{
			name:       "invalid token",
			req:        func() *http.Request { return mcpRequest(tokInvalid, rpcCall(1, "add")) },
			wantStatus: 401, wantCode: "invalid_token", wantErr: "invalid_token", wantCalls: 1,
		},
		{
			name:       "unknown token",
			req:        func() *http.Request { return mcpRequest("never-issued", rpcCall(1, "add")) },
			wantStatus: 401, wantCode: "invalid_token", wantErr: "invalid_token", wantCalls: 1,
		},
		{
			name:       "AS unavailable with Retry-After",
			req:        func() *http.Request { return mcpRequest(tokUnavailable, rpcCall(1, "add")) },
			wantStatus: 503, wantCode: "temporarily_unavailable", wantErr: "-", wantRetry: "7", wantCalls: 1,
		},
		{
			name:       "AS unavailable without Retry-After",
			req:        func() *http.Request { return mcpRequest(tokUnavailNoRA, rpcCall(1, "add")) },
			wantStatus: 503, wantCode: "temporarily_unavailable", wantErr: "-", wantRetry: "5", wantCalls: 1,
		},
		{
			name:       "AS unavailable fractional Retry-After rounds up",
			req:        func() *http.Request { return mcpRequest(tokUnavailFrac, rpcCall(1, "add")) },
			wantStatus: 503, wantCode: "temporarily_unavailable", wantErr: "-", wantRetry: "2", wantCalls: 1,
		},
		{
			name:       "wrapped UnavailableError",
			req:        func() *http.Request { return mcpRequest(tokUnavailWrap, rpcCall(1, "add")) },
			wantStatus: 503, wantCode: "temporarily_unavailable", wantErr: "-", wantRetry: "9", wantCalls: 1,
		},
		{
			name:       "gateway credentials rejected",
			req:        func() *http.Request { return mcpRequest(tokClientAuth, rpcCall(1, "add")) },
			wantStatus: 503, wantCode: "temporarily_unavailable", wantErr: "-", wantRetry: "5", wantCalls: 1,
		},
		{
			name:       "unexpected error fails closed",
			req:        func() *http.Request { return mcpRequest(tokPlainErr, rpcCall(1, "add")) },
			wantStatus: 503, wantCode: "temporarily_unavailable", wantErr: "-", wantRetry: "5", wantCalls: 1,
		},
		{
			name:       "valid token with its scope",
			req:        func() *http.Request { return mcpRequest(tokAdd, rpcCall(1, "add")) },
			wantStatus: 200, wantCalls: 1,
		},
		{
			name: "scheme is case-insensitive",
			req: func() *http.Request {
				r := mcpRequest("", rpcCall(1, "add"))
				r.Header.Set("Authorization", "bEaReR "+tokAdd)
				return r
			},
			wantStatus: 200, wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, v := newTestGateway(t, nil)
			rec := serve(g, tt.req())
			if got := v.totalCalls(); got != tt.wantCalls {
				t.Errorf("verifier called %d times, want %d", got, tt.wantCalls)
			}
			// The token never comes back, whatever the outcome.
			for tok := range defaultTokens() {
				for k, vals := range rec.Header() {
					for _, val := range vals {
						if strings.Contains(val, tok) {
							t.Errorf("header %s leaks the token: %q", k, val)
						}
					}
				}
				if strings.Contains(rec.Body.String(), tok) {
					t.Errorf("body leaks the token: %q", rec.Body.String())
				}
			}
			if tt.wantStatus == 200 {
				if rec.Code != 200 {
					t.Fatalf("status = %d, want 200; body %q", rec.Code, rec.Body.String())
				}
				var resp struct {
					Result struct {
						IsError           bool            `json:"isError"`
						StructuredContent json.RawMessage `json:"structuredContent"`
					} `json:"result"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Result.IsError || len(resp.Result.StructuredContent) == 0 {
					t.Errorf("body %q is not a successful tool result (%v)", rec.Body.String(), err)
				}
				return
			}
			m := checkJSONError(t, rec, tt.wantStatus, tt.wantCode)
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			www := rec.Header().Values("WWW-Authenticate")
			if tt.wantErr == "-" {
				if len(www) != 0 {
					t.Errorf("WWW-Authenticate = %q, want none (a 503 is not a challenge)", www)
				}
				return
			}
			if len(www) != 1 {
				t.Fatalf("WWW-Authenticate = %q, want exactly one challenge", www)
			}
			p := authParams(t, www[0])
			if p["resource_metadata"] != testPRMURL {
				t.Errorf("resource_metadata = %q, want %q", p["resource_metadata"], testPRMURL)
			}
			if p["scope"] != "op:add op:sub op:mult op:div" {
				t.Errorf("scope = %q, want the supported scopes", p["scope"])
			}
			if p["error"] != tt.wantErr {
				t.Errorf("error param = %q, want %q (challenge %q)", p["error"], tt.wantErr, www[0])
			}
			if tt.wantErr == "" {
				if _, has := p["error_description"]; has {
					t.Errorf("challenge without error has error_description: %q", www[0])
				}
			} else {
				if p["error_description"] == "" {
					t.Errorf("no error_description in %q", www[0])
				}
				if m["error_description"] == nil {
					t.Errorf("no error_description in body %s", rec.Body.String())
				}
			}
		})
	}
}

// The verifier alone decides expiry, with its own clock (issue 11): a
// TokenInfo it accepts is not refused again by the wall clock, neither by
// the gateway nor by the SDK's bearer middleware, whose own check would
// answer a plain 401 without the challenge. tokExpired carries an
// Expiration an hour in the past by time.Now, as a verifier with an
// injected clock may legitimately return.
func TestVerifierDecidesExpiry(t *testing.T) {
	g, v := newTestGateway(t, nil)
	rec := serve(g, mcpRequest(tokExpired, rpcCall(1, "add")))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200 (the verifier accepted the token); body %q", rec.Code, rec.Body.String())
	}
	if v.totalCalls() != 1 {
		t.Errorf("verifier calls = %d, want 1", v.totalCalls())
	}
	var resp struct {
		Result struct {
			StructuredContent struct {
				Result float64 `json:"result"`
			} `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Result.StructuredContent.Result != 9 {
		t.Errorf("body %q is not the result 6+3=9 (%v)", rec.Body.String(), err)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	g, v := newTestGateway(t, nil)

	rec := serve(g, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 200 || !json.Valid(rec.Body.Bytes()) || !strings.Contains(rec.Body.String(), `"ok"`) {
		t.Errorf("/healthz = %d %q", rec.Code, rec.Body.String())
	}
	if v.totalCalls() != 0 {
		t.Errorf("/healthz called the verifier")
	}

	steps := []struct {
		err    error
		status int
		want   string
	}{
		{nil, 200, "ready"},
		{errors.New("introspection credentials rejected"), 503, "unavailable"},
		{nil, 200, "ready"},
	}
	for i, s := range steps {
		v.setReady(s.err)
		rec := serve(g, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code != s.status {
			t.Errorf("step %d: /readyz = %d, want %d", i, rec.Code, s.status)
		}
		var m map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["status"] != s.want {
			t.Errorf("step %d: /readyz body %q, want status %q (%v)", i, rec.Body.String(), s.want, err)
		}
	}
}

func TestEchoErrorsAreJSON(t *testing.T) {
	g, _ := newTestGateway(t, nil)
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/nope", 404, "not_found"},
		{http.MethodPost, "/mcp/extra", 404, "not_found"},
		{http.MethodGet, "/index.html", 404, "not_found"},
		{http.MethodPost, "/healthz", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := serve(g, httptest.NewRequest(tt.method, tt.path, nil))
			checkJSONError(t, rec, tt.status, tt.code)
		})
	}
	t.Run("HEAD has no body", func(t *testing.T) {
		rec := serve(g, httptest.NewRequest(http.MethodHead, "/nope", nil))
		if rec.Code != 404 || rec.Body.Len() != 0 {
			t.Errorf("HEAD /nope = %d with %d body bytes, want 404 and none", rec.Code, rec.Body.Len())
		}
	})
}

func TestProtectedResourceMetadata(t *testing.T) {
	g, v := newTestGateway(t, nil)
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		t.Run(path, func(t *testing.T) {
			rec := serve(g, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != 200 {
				t.Fatalf("GET %s = %d %q", path, rec.Code, rec.Body.String())
			}
			var md struct {
				Resource             string   `json:"resource"`
				AuthorizationServers []string `json:"authorization_servers"`
				ScopesSupported      []string `json:"scopes_supported"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &md); err != nil {
				t.Fatal(err)
			}
			if md.Resource != testResource || !slices.Equal(md.AuthorizationServers, []string{testIssuer}) || !slices.Equal(md.ScopesSupported, tools.Policy().Scopes()) {
				t.Errorf("metadata = %+v", md)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
			rec = serve(g, httptest.NewRequest(http.MethodPost, path, nil))
			checkJSONError(t, rec, 405, "method_not_allowed")
		})
	}
	if v.totalCalls() != 0 {
		t.Errorf("metadata called the verifier %d times", v.totalCalls())
	}
}

func TestMounts(t *testing.T) {
	mounted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Mounted", "yes")
		_, _ = io.WriteString(w, r.URL.Path)
	})
	g, _ := newTestGateway(t, func(c *Config) {
		c.Mounts = []Mount{{Prefixes: []string{"/oauth", "/dev/"}, Handler: mounted}}
	})
	for _, p := range []string{"/oauth", "/oauth/token", "/dev/", "/dev/authorize"} {
		rec := serve(g, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != 200 || rec.Header().Get("X-Mounted") != "yes" || rec.Body.String() != p {
			t.Errorf("GET %s = %d %q, want the mounted handler", p, rec.Code, rec.Body.String())
		}
	}
	rec := serve(g, httptest.NewRequest(http.MethodGet, "/oauthx", nil))
	checkJSONError(t, rec, 404, "not_found")
}

// TestEndToEndSDKClient runs the whole gateway over a real listener with
// the SDK's Streamable HTTP client, stateful, so the session binding and
// checkHost on a loopback address are exercised too.
func TestEndToEndSDKClient(t *testing.T) {
	g, v := newTestGateway(t, func(c *Config) {
		c.Stateless = false
		c.JSONResponse = false
	})
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)

	connect := func(token string) (*mcp.ClientSession, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint:             srv.URL + "/mcp",
			HTTPClient:           bearerClient(token, srv.Client().Transport),
			DisableStandaloneSSE: true,
			MaxRetries:           -1,
		}, nil)
	}
	call := func(cs *mcp.ClientSession, op string) (*mcp.CallToolResult, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cs.CallTool(ctx, &mcp.CallToolParams{Name: "calculator", Arguments: map[string]any{"operation": op, "a": 6, "b": 3}})
	}

	cs, err := connect(tokAdd)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	res, err := call(cs, "add")
	if err != nil || res.IsError {
		t.Fatalf("add with op:add = %v, %v", res, err)
	}
	if _, err := call(cs, "divide"); err == nil {
		t.Errorf("divide with only op:add succeeded, want the 403 step-up to surface as an error")
	}
	if n := v.totalCalls(); n < 3 {
		t.Errorf("verifier called %d times, want one per request (>= 3)", n)
	}

	if _, err := connect(tokInvalid); err == nil {
		t.Error("connect with an invalid token succeeded")
	}
}

// bearerClient sends every request with a fixed bearer token (RFC 6750 §2.1).
func bearerClient(token string, base http.RoundTripper) *http.Client {
	return &http.Client{Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), Base: base}}
}

// benchHandler measures one tools/call of the calculator's add, with the
// cached token "bench-token", through the handler New builds from cfg.
func benchHandler(b *testing.B, cfg Config) {
	b.Helper()
	g, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	h := g.Handler()
	body := rpcCall(1, "add")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, mcpRequest("bench-token", body))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
}

func BenchmarkHandlerCachedToken(b *testing.B) {
	ti := &auth.TokenInfo{UserID: "bench", Scopes: []string{"op"}, Expiration: time.Now().Add(time.Hour)}
	v := newFakeVerifier(map[string]verdict{"bench-token": {ti: ti}})
	benchHandler(b, testConfig(v))
}

func BenchmarkRequiredScopes(b *testing.B) {
	p := tools.Policy()
	bodies := map[string][]byte{
		"single": []byte(rpcCall(1, "divide")),
		"batch":  []byte("[" + rpcCall(1, "add") + "," + rpcCall(2, "divide") + "," + rpcCall(3, "add") + "]"),
		"other":  []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`),
	}
	for _, name := range []string{"single", "batch", "other"} {
		body := bodies[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_, _, _ = requiredScopes(p, body)
			}
		})
	}
}

// BenchmarkHandlerCachedTokenObserved is BenchmarkHandlerCachedToken with
// what production runs: metrics, and a JSON request log line at Info.
func BenchmarkHandlerCachedTokenObserved(b *testing.B) {
	ti := &auth.TokenInfo{UserID: "bench", Scopes: []string{"op"}, Expiration: time.Now().Add(time.Hour)}
	v := newFakeVerifier(map[string]verdict{"bench-token": {ti: ti}})
	cfg := testConfig(v)
	cfg.Metrics = newMetrics()
	cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	benchHandler(b, cfg)
}
