package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sdkUpstream is an upstream MCP server of the Go SDK with the given
// tools (each echoes its text), behind an optional check of the
// Authorization header the gateway sends.
func sdkUpstream(t *testing.T, wantAuth string, tools ...string) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "team-upstream", Version: "2.0.0"}, nil)
	for _, name := range tools {
		mcp.AddTool(s, &mcp.Tool{Name: name}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
			Text string `json:"text"`
		}) (*mcp.CallToolResult, struct{}, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, struct{}{}, nil
		})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wantAuth != "" && r.Header.Get("Authorization") != wantAuth {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

const upstreamPolicy = `
default: deny
tools:
  echo: []
  get-sum: [math:add]
  "admin-*": [admin]
  legacy-export: deny
  not-upstream: []
`

// TestDoctorUpstream: in proxy mode the doctor reports the upstream (it
// answers, speaks MCP, its tools) and what the policy says of each tool,
// pointing out tools only the default decides and rules for tools the
// upstream lacks; without a policy it warns.
func TestDoctorUpstream(t *testing.T) {
	up := sdkUpstream(t, "Bearer up-secret-123456789", "echo", "get-sum", "admin-reset", "legacy-export", "surprise")
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(upstreamPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"UPSTREAM_URL": up, "UPSTREAM_AUTHORIZATION": "Bearer up-secret-123456789", "POLICY_FILE": policyFile}
	code, out := runDoctor(t, vars)
	if code != checkReady {
		t.Errorf("exit %d, want %d", code, checkReady)
	}
	wantLines(t, out,
		`ok   upstream speaks MCP: "team-upstream 2.0.0"`,
		"upstream lists 5 tool(s)",
		`- "echo": any valid token`,
		`- "get-sum": needs math:add`,
		`- "admin-reset": needs admin`,
		`- "legacy-export": denied: hidden from tools/list`,
		`- "surprise": denied: hidden from tools/list, a call is refused as an unknown tool (no rule names it: the default decides)`,
		`warn 1 upstream tool(s) no rule of the policy names, decided by its default alone: "surprise"`,
		`warn the policy names tool(s) the upstream does not list: "not-upstream"`,
	)
	notIn(t, out, "up-secret-123456789")

	// No policy: every tool needs a valid token, and the doctor says so.
	delete(vars, "POLICY_FILE")
	_, out = runDoctor(t, vars)
	wantLines(t, out, "warn proxy mode without POLICY or POLICY_FILE", `- "surprise": any valid token (no rule names it: the default decides)`)
}

func TestDoctorUpstreamFailures(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/mcp"
	down.Close()
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>hello</html>"))
	}))
	t.Cleanup(page.Close)
	guarded := sdkUpstream(t, "Bearer right-secret-0123456789", "echo")
	for _, tt := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"down", map[string]string{"UPSTREAM_URL": downURL}, []string{"FAIL upstream:", "fix: start the upstream MCP server"}},
		{"not MCP", map[string]string{"UPSTREAM_URL": page.URL + "/mcp"}, []string{"FAIL upstream:", "answers HTTP but not as an MCP server"}},
		{"credential refused", map[string]string{"UPSTREAM_URL": guarded, "UPSTREAM_AUTHORIZATION": "Bearer wrong-secret-0123456789"},
			[]string{"refused the gateway's credential (UPSTREAM_AUTHORIZATION is set)", "fix: set UPSTREAM_AUTHORIZATION"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runDoctor(t, tt.vars)
			if code != checkFailed {
				t.Errorf("exit %d, want %d", code, checkFailed)
			}
			wantLines(t, out, tt.want...)
			notIn(t, out, "wrong-secret-0123456789", "right-secret-0123456789")
		})
	}
}
