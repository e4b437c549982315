package main

// Proxy mode end to end: the whole gateway started by run() with
// UPSTREAM_URL, in front of an upstream MCP server, driven by the Go SDK's
// client. Here the upstream is the SDK's own server, written in the test,
// so that the test can assert exactly what it received; interop with a
// server this project did not write is in proxy_interop_e2e_test.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/proxy/proxytest"
)

// goUpstream is an upstream MCP server of the Go SDK (stateful, answers
// as event streams) that records every request it receives, with its
// headers and body.
type goUpstream struct {
	*proxytest.Upstream
}

func newGoUpstream(t *testing.T) *goUpstream {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "go-upstream", Version: "1.0.0"}, nil)
	type args struct {
		Text string  `json:"text,omitempty"`
		A    float64 `json:"a,omitempty"`
		B    float64 `json:"b,omitempty"`
	}
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, struct{}, error) {
		return text(in.Text), struct{}{}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "sum"}, func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, struct{}, error) {
		return text(fmt.Sprint(in.A + in.B)), struct{}{}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "internal-debug"}, func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, struct{}, error) {
		return text("debug dump"), struct{}{}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	return &goUpstream{proxytest.NewUpstream(t, h)}
}

// forgingTransport adds the bearer token and headers a client forges to
// every request.
type forgingTransport struct {
	token  string
	forged http.Header
}

func (f forgingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range f.forged {
		r.Header[k] = v
	}
	r.Header.Set("Authorization", "Bearer "+f.token)
	return http.DefaultTransport.RoundTrip(r)
}

const goUpstreamPolicy = `
default: deny
tools:
  echo: []
  sum: [math:add]
`

// TestProxyModeGoUpstream: through the whole gateway the upstream receives
// exactly the gateway's identity headers and credential, never the
// client's token or a header the client forged; the policy decides what
// is listed and called; /readyz and /metrics follow the upstream.
func TestProxyModeGoUpstream(t *testing.T) {
	up := newGoUpstream(t)
	const upstreamSecret = "Bearer upstream-secret-4711-abcdef"
	as, g := externalAS(t, map[string]string{
		"UPSTREAM_URL":           up.URL + "/mcp",
		"UPSTREAM_AUTHORIZATION": upstreamSecret,
		"POLICY":                 goUpstreamPolicy,
		"TOOLS_LIST":             "allowed",
	})
	tok := "tok-proxy-" + strings.Repeat("x", 30)
	as.AddToken(tok, map[string]any{
		"sub": "alice", "client_id": "client-42", "email": "alice@example.com",
		"scope": "math:add extra", "aud": g.Resource, "exp": time.Now().Add(time.Hour).Unix(),
	})
	forged := http.Header{
		"X-Mcp-Subject": {"mallory"}, "X-Mcp-Client-Id": {"evil"}, "X-Mcp-Scopes": {"admin"},
		"X-Mcp-Email": {"m@evil.example"}, "Cookie": {"sid=abc"}, "Forwarded": {"for=1.2.3.4"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: g.MCP(), HTTPClient: &http.Client{Transport: forgingTransport{token: tok, forged: forged}}, MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatalf("connect: %v\nlogs:\n%s", err, g.Logs)
	}
	defer cs.Close()
	if got := cs.InitializeResult().ServerInfo.Name; got != "go-upstream" {
		t.Errorf("serverInfo %q: the client must meet the upstream", got)
	}

	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	if slices.Sort(names); !slices.Equal(names, []string{"echo", "sum"}) {
		t.Errorf("tools/list %q, want echo and sum (internal-debug is denied by default)", names)
	}
	if r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "sum", Arguments: map[string]any{"a": 2, "b": 3}}); err != nil || r.Content[0].(*mcp.TextContent).Text != "5" {
		t.Errorf("sum: %v %+v", err, r)
	}
	before := len(up.Requests())
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "internal-debug"}); err == nil || !strings.Contains(err.Error(), `unknown tool "internal-debug"`) {
		t.Errorf("denied tool: %v", err)
	}
	if n := len(up.Requests()); n != before {
		t.Errorf("the denied call reached the upstream (%d requests, %d before)", n, before)
	}

	reqs := up.Requests()
	want := http.Header{
		"X-Mcp-Subject":   {"alice"},
		"X-Mcp-Client-Id": {"client-42"},
		"X-Mcp-Scopes":    {"math:add extra"},
		"X-Mcp-Email":     {"alice@example.com"},
		"Authorization":   {upstreamSecret},
	}
	withIdentity := 0
	for i, r := range reqs {
		if r.Header.Get("X-Mcp-Subject") == "" {
			continue // the readiness check: no user calls
		}
		withIdentity++
		for k, v := range want {
			if got := r.Header.Values(k); !slices.Equal(got, v) {
				t.Errorf("request %d (%s): %s = %q, want %q", i, r.Method, k, got, v)
			}
		}
		for _, h := range []string{"Cookie", "Forwarded", "X-Forwarded-For"} {
			if r.Header.Get(h) != "" {
				t.Errorf("request %d: %s forwarded", i, h)
			}
		}
	}
	if withIdentity < 4 { // initialize, initialized, tools/list, tools/call (and the GET stream)
		t.Errorf("%d requests with an identity reached the upstream", withIdentity)
	}
	for i, r := range reqs {
		all := fmt.Sprint(r.Header) + r.Body
		for _, bad := range []string{tok, "mallory", "evil", "sid=abc"} {
			if strings.Contains(all, bad) {
				t.Errorf("request %d carries %q", i, bad)
			}
		}
	}

	// The client's token never reaches the log, and neither does the
	// gateway's own credential for the upstream.
	metrics := getBody(t, g.BaseURL+"/metrics")
	for _, s := range []string{`mcp_gateway_tool_calls_total{operation="none",outcome="forwarded",tool="sum"} 1`, "mcp_gateway_upstream_sessions 1"} {
		if !strings.Contains(metrics, s) {
			t.Errorf("metrics lack %s", s)
		}
	}

	// The upstream goes away: calls fail fast with 502, /readyz says why.
	up.CloseClientConnections()
	up.Close()
	r := post(t, g.MCP(), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`, bearer(tok))
	if r.Status != http.StatusBadGateway || r.json(t)["error"] != "bad_gateway" {
		t.Errorf("upstream down: %d %s", r.Status, r.Body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(g.BaseURL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			var m map[string]string
			if json.Unmarshal(b, &m) != nil || m["reason"] != "upstream_unreachable" {
				t.Errorf("readyz %s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d with the upstream down", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond) // readiness is cached for 2 s
	}
	// The raw call, and the client's own retries of its event stream.
	if !regexp.MustCompile(`mcp_gateway_upstream_failures_total\{kind="unreachable"\} [1-9]`).MatchString(getBody(t, g.BaseURL+"/metrics")) {
		t.Errorf("the failure was not counted:\n%s", getBody(t, g.BaseURL+"/metrics"))
	}
	for _, secret := range []string{tok, "upstream-secret-4711"} {
		if strings.Contains(g.Logs.String(), secret) || strings.Contains(g.Stdout.String(), secret) {
			t.Errorf("%q appears in the output:\n%s", secret, g.Logs)
		}
	}
	if !strings.Contains(g.Logs.String(), `"msg":"proxy mode"`) {
		t.Errorf("no proxy mode line in the logs:\n%s", g.Logs)
	}
}

// TestProxyModeNoPolicyWarns: without POLICY every tool needs only a
// valid token, the start says so, and the metadata advertises no scope.
func TestProxyModeNoPolicyWarns(t *testing.T) {
	up := newGoUpstream(t)
	_, g := externalAS(t, map[string]string{"UPSTREAM_URL": up.URL + "/mcp"})
	if !strings.Contains(g.Logs.String(), "proxy mode without POLICY or POLICY_FILE") {
		t.Errorf("no warning:\n%s", g.Logs)
	}
	var prm struct {
		Scopes []string `json:"scopes_supported"`
	}
	if err := json.Unmarshal([]byte(getBody(t, g.BaseURL+"/.well-known/oauth-protected-resource/mcp")), &prm); err != nil || len(prm.Scopes) != 0 {
		t.Errorf("scopes_supported %q (%v), want none", prm.Scopes, err)
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
