package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// teamServer is an MCP server a team wrote for itself: tools the gateway's
// packages know nothing about.
func teamServer() *mcp.Server {
	s := NewMCPServer(&mcp.Implementation{Name: "team", Version: "1"}, nil)
	echo := func(_ context.Context, _ *mcp.CallToolRequest, in struct {
		Text   string `json:"text"`
		Format string `json:"format,omitempty"`
	}) (*mcp.CallToolResult, struct{}, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, struct{}{}, nil
	}
	for _, name := range []string{"echo", "get-sum", "admin-reset", "secret-export", "report"} {
		mcp.AddTool(s, &mcp.Tool{Name: name, Description: name}, echo)
	}
	return s
}

const teamPolicy = `
default: deny
tools:
  echo: []
  get-sum: [math:add]
  "admin-*": [admin]
  secret-export: deny
  report:
    argument: format
    values: {pdf: [report:pdf], csv: []}
`

// teamGateway serves teamServer under teamPolicy on a real listener and
// returns a function that connects the SDK's client with a token granted
// the given scopes.
func teamGateway(t *testing.T, toolsList string) func(granted ...string) *mcp.ClientSession {
	t.Helper()
	policy, err := scopes.ParsePolicy([]byte(teamPolicy))
	if err != nil {
		t.Fatal(err)
	}
	v := newFakeVerifier(map[string]verdict{})
	g, _ := newTestGateway(t, func(c *Config) {
		c.Server = teamServer()
		c.Policy = policy
		c.ToolsList = toolsList
		c.Verifier = v
	})
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return func(granted ...string) *mcp.ClientSession {
		t.Helper()
		tok := "tok-" + strings.NewReplacer(":", "_", " ", "_").Replace(strings.Join(granted, "."))
		v.mu.Lock()
		v.tokens[tok] = verdict{ti: &auth.TokenInfo{UserID: "u", Scopes: granted, Expiration: time.Now().Add(time.Hour)}}
		v.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint:             srv.URL + "/mcp",
			HTTPClient:           bearerClient(tok, srv.Client().Transport),
			DisableStandaloneSSE: true,
			MaxRetries:           -1,
		}, nil)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
}

func listedTools(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return names
}

// One declared policy decides tools/list for any team's tools: a denied
// tool (explicitly, or by default) is invisible, and TOOLS_LIST=allowed
// shows only what the token may call.
func TestPolicyToolsList(t *testing.T) {
	all := teamGateway(t, ToolsListAll)
	if got, want := listedTools(t, all()), []string{"admin-reset", "echo", "get-sum", "report"}; !slices.Equal(got, want) {
		t.Errorf("TOOLS_LIST=all lists %q, want %q (secret-export denied)", got, want)
	}
	allowed := teamGateway(t, ToolsListAllowed)
	for _, tc := range []struct {
		granted []string
		want    []string
	}{
		{nil, []string{"echo", "report"}}, // report: csv needs no scope
		{[]string{"math:add"}, []string{"echo", "get-sum", "report"}},
		{[]string{"math", "admin"}, []string{"admin-reset", "echo", "get-sum", "report"}},
	} {
		if got := listedTools(t, allowed(tc.granted...)); !slices.Equal(got, tc.want) {
			t.Errorf("TOOLS_LIST=allowed with %q lists %q, want %q", tc.granted, got, tc.want)
		}
	}
}

// Every tools/call is decided by the policy before the tool runs: 403
// step-up for a missing scope, an unknown-tool error for a denied one.
func TestPolicyToolCalls(t *testing.T) {
	connect := teamGateway(t, ToolsListAll)
	for _, tc := range []struct {
		name    string
		granted []string
		tool    string
		args    map[string]any
		want    string // "ok", "403", or a substring of the JSON-RPC error
	}{
		{"any token", nil, "echo", map[string]any{"text": "hi"}, "ok"},
		{"missing scope", nil, "get-sum", nil, "403"},
		{"parent scope", []string{"math"}, "get-sum", nil, "ok"},
		{"glob", []string{"admin"}, "admin-reset", nil, "ok"},
		{"glob missing", []string{"math:add"}, "admin-reset", nil, "403"},
		{"denied tool", []string{"admin", "math"}, "secret-export", nil, `unknown tool "secret-export"`},
		{"default deny", []string{"admin"}, "not-declared", nil, `unknown tool "not-declared"`},
		{"argument value free", nil, "report", map[string]any{"format": "csv"}, "ok"},
		{"argument value needs scope", nil, "report", map[string]any{"format": "pdf"}, "403"},
		{"argument value granted", []string{"report:pdf"}, "report", map[string]any{"format": "pdf"}, "ok"},
		{"argument value not listed", []string{"report:pdf"}, "report", map[string]any{"format": "xml"}, `does not accept format "xml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := connect(tc.granted...)
			args := map[string]any{"text": "hi"}
			for k, v := range tc.args {
				args[k] = v
			}
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tc.tool, Arguments: args})
			switch tc.want {
			case "ok":
				if err != nil || res.IsError {
					t.Errorf("call = %+v, %v; want success", res, err)
				}
			case "403":
				if err == nil || !strings.Contains(err.Error(), "Forbidden") {
					t.Errorf("call = %+v, %v; want the 403 step-up", res, err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "Forbidden") {
					t.Errorf("call = %+v, %v; want a JSON-RPC error containing %q", res, err, tc.want)
				}
			}
		})
	}
}

// With SCOPE_CHALLENGE=tool the server middleware is the only check: a
// missing scope is an isError result naming it, for every tool.
func TestPolicyToolMode(t *testing.T) {
	policy, err := scopes.ParsePolicy([]byte(teamPolicy))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := newTestGateway(t, func(c *Config) {
		c.Server = teamServer()
		c.Policy = policy
		c.ScopeChallenge = ScopeChallengeTool
	})
	rec := serve(g, mcpRequest(tokNone, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-sum","arguments":{"text":"x"}}}`))
	res := decodeToolResult(t, rec)
	if rec.Code != http.StatusOK || res.Result == nil || !res.Result.IsError || len(res.Result.Content) == 0 || !strings.Contains(res.Result.Content[0].Text, "math:add") {
		t.Errorf("tool mode, missing scope: %d %s; want an isError result naming math:add", rec.Code, rec.Body.String())
	}
}

// A body another parser could read differently is refused before the SDK
// sees it, and the policy is never consulted on a guess.
func TestPolicyRefusesAmbiguousBodies(t *testing.T) {
	g, v := newTestGateway(t, nil)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","operation":"divide","a":1,"b":2}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","Operation":"divide","a":1,"b":2}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","name":"whoami","arguments":{}}}`,
	} {
		rec := serve(g, mcpRequest(tokAll, body))
		checkJSONError(t, rec, http.StatusBadRequest, "invalid_request")
	}
	if v.totalCalls() != 3 {
		t.Errorf("verifier calls = %d, want 3 (authentication comes first)", v.totalCalls())
	}
}
