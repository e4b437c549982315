package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/internal/flushjson"
	"github.com/mcp-gateway/mcp-gateway/tools"
)

// BenchmarkHandlerBaseline is the SDK's Streamable HTTP handler with the
// same tools and options and no authentication beyond handing the tools a
// TokenInfo (the SDK's own RequireBearerToken with an accept-all verifier),
// answers sent as the gateway sends them (flushjson.Wrap): the floor BenchmarkHandlerCachedToken and ...Observed are compared with.
func BenchmarkHandlerBaseline(b *testing.B) {
	ti := &auth.TokenInfo{UserID: "bench", Scopes: []string{"op"}, Expiration: time.Now().Add(time.Hour)}
	server := mcp.NewServer(&mcp.Implementation{Name: "baseline", Version: "1"}, nil)
	if err := tools.Register(server, tools.Policy()); err != nil {
		b.Fatal(err)
	}
	h := auth.RequireBearerToken(func(context.Context, string, *http.Request) (*auth.TokenInfo, error) { return ti, nil }, nil)(
		flushjson.Wrap(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})))
	body := rpcCall(1, "add")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, mcpRequest("bench-token", body))
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
}
