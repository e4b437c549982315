package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// rpcAnswer is a JSON-RPC response as the gateway sends it.
type rpcAnswer struct {
	Result json.RawMessage `json:"result"`
	Error  *jsonrpc.Error  `json:"error"`
}

func rpc(t *testing.T, g *Gateway, body, protocol, method string, name ...string) (int, rpcAnswer) {
	t.Helper()
	r := mcpRequest(tokAll, body)
	r.Header.Set("MCP-Protocol-Version", protocol)
	if protocol >= "2026-07-28" { // SEP-2575's standard headers
		r.Header.Set("Mcp-Method", method)
		if len(name) > 0 {
			r.Header.Set("Mcp-Name", name[0])
		}
	}
	rec := serve(g, r)
	var a rpcAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatalf("%s: %d %q is not a JSON-RPC answer: %v", method, rec.Code, rec.Body.String(), err)
	}
	return rec.Code, a
}

// TestOnlyDeclaredCapabilitiesServed: the built-in server declares tools
// (and logging), not prompts, resources or completions, and answers the
// methods of those with -32601, in the handshake protocol and the
// 2026-07-28 one, even when a prompt was registered on it.
func TestOnlyDeclaredCapabilitiesServed(t *testing.T) {
	server := calculatorServer()
	server.AddPrompt(&mcp.Prompt{Name: "sneaky"}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{}, nil
	})
	g, _ := newTestGateway(t, func(c *Config) { c.Server = server })

	const init = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	_, a := rpc(t, g, init, "2025-11-25", "initialize")
	var ir mcp.InitializeResult
	if err := json.Unmarshal(a.Result, &ir); err != nil || ir.Capabilities == nil {
		t.Fatalf("initialize: %s %v", a.Result, err)
	}
	if c := ir.Capabilities; c.Tools == nil || c.Prompts != nil || c.Resources != nil || c.Completions != nil {
		t.Errorf("initialize declares %s, want tools (and logging) only", a.Result)
	}
	const meta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	status, a := rpc(t, g, `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{`+meta+`}}`, "2026-07-28", "server/discover")
	var dr mcp.DiscoverResult
	if err := json.Unmarshal(a.Result, &dr); status != 200 || err != nil || dr.Capabilities == nil {
		t.Fatalf("server/discover: %d %s %v", status, a.Result, err)
	}
	if c := dr.Capabilities; c.Tools == nil || c.Prompts != nil || c.Resources != nil || c.Completions != nil {
		t.Errorf("server/discover declares %s, want tools (and logging) only", a.Result)
	}

	for _, m := range []struct{ method, params, name string }{
		{"prompts/list", ``, ""},
		{"prompts/get", `"name":"sneaky",`, "sneaky"},
		{"resources/list", ``, ""},
		{"resources/read", `"uri":"file:///etc/passwd",`, "file:///etc/passwd"},
		{"resources/templates/list", ``, ""},
		{"completion/complete", `"ref":{"type":"ref/prompt","name":"sneaky"},"argument":{"name":"a","value":"b"},`, ""},
	} {
		method := m.method
		for _, protocol := range []string{"2025-11-25", "2026-07-28"} {
			params := `{` + strings.TrimSuffix(m.params, ",") + `}`
			if protocol >= "2026-07-28" {
				params = `{` + m.params + meta + `}`
			}
			status, a := rpc(t, g, `{"jsonrpc":"2.0","id":7,"method":"`+method+`","params":`+params+`}`, protocol, method, m.name)
			if a.Error == nil || a.Error.Code != jsonrpc.CodeMethodNotFound {
				t.Errorf("%s (%s): %d %s %+v, want -32601", method, protocol, status, a.Result, a.Error)
			}
			if protocol >= "2026-07-28" && status != http.StatusNotFound { // SEP-2575: -32601 is HTTP 404
				t.Errorf("%s (%s): HTTP %d, want 404", method, protocol, status)
			}
		}
	}
	// What is declared is served.
	if _, a := rpc(t, g, `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`, "2025-11-25", "tools/list"); a.Error != nil || !strings.Contains(string(a.Result), "calculator") {
		t.Errorf("tools/list: %s %+v", a.Result, a.Error)
	}
}
