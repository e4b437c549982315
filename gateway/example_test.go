package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/gateway"
	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// A team puts its own tools behind the gateway as a Go library: it
// registers them on an mcp.Server, declares each tool's scopes in one
// policy, and hands both to gateway.New with a token verifier. Nothing in
// the gateway's packages changes.
func ExampleNew() {
	// The team's MCP server and tools.
	server := gateway.NewMCPServer(&mcp.Implementation{Name: "notes", Version: "1.0.0"}, nil)
	type noteIn struct {
		ID string `json:"id"`
	}
	handler := func(_ context.Context, _ *mcp.CallToolRequest, in noteIn) (*mcp.CallToolResult, struct{}, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done " + in.ID}}}, struct{}{}, nil
	}
	mcp.AddTool(server, &mcp.Tool{Name: "read-note", Description: "Reads a note."}, handler)
	mcp.AddTool(server, &mcp.Tool{Name: "delete-note", Description: "Deletes a note."}, handler)

	// Their scopes, declared in one place.
	policy, err := scopes.ParsePolicy([]byte(`
default: deny
scopes:
  notes:read: Read your notes
  notes:write: Change and delete your notes
tools:
  read-note: [notes:read]
  delete-note: [notes:write]
`))
	if err != nil {
		panic(err)
	}

	// The public URL (here a test server's) and an authorization server
	// (here a fake one) that issued a token granting notes:read only.
	srv := httptest.NewUnstartedServer(nil)
	defer srv.Close()
	resource := "http://" + srv.Listener.Addr().String() + "/mcp"
	asrv := httptest.NewUnstartedServer(nil)
	as := introspecttest.NewHandler("http://" + asrv.Listener.Addr().String())
	asrv.Config.Handler = as
	asrv.Start()
	defer asrv.Close()
	token := as.Issue("alice", []string{"notes:read"}, resource, time.Hour)

	verifier, err := introspect.New(context.Background(), introspect.Config{
		Issuer: as.URL, ClientID: as.ClientID, ClientSecret: as.ClientSecret, Audiences: []string{resource},
	})
	if err != nil {
		panic(err)
	}
	defer verifier.Close()
	gw, err := gateway.New(gateway.Config{
		Resource:             resource,
		AuthorizationServers: []string{as.URL},
		Stateless:            true,
		JSONResponse:         true,
		Verifier:             verifier,
		Server:               server,
		Policy:               policy,
	})
	if err != nil {
		panic(err)
	}
	srv.Config.Handler = gw.Handler()
	srv.Start()

	for _, tool := range []string{"read-note", "delete-note"} {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{"id":"42"}}}`
		req, _ := http.NewRequest(http.MethodPost, resource, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2025-06-18")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		challenge := resp.Header.Get("WWW-Authenticate")
		if i := strings.Index(challenge, "scope="); i >= 0 {
			challenge = challenge[i : strings.Index(challenge[i:], ", error=")+i]
		}
		fmt.Println(strings.TrimSpace(fmt.Sprintln(tool, resp.StatusCode, challenge)))
	}
	// Output:
	// read-note 200
	// delete-note 403 scope="notes:write notes:read"
}
