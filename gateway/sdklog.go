package gateway

import (
	"context"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sdkLogger is the logger handed to the Go MCP SDK. The SDK logs every
// session's connect and disconnect at Info: in stateless mode that is two
// lines for every request, beside the gateway's own request line, and a
// measurable share of the hot path. The SDK's warnings and errors still
// come through.
func sdkLogger(l *slog.Logger) *slog.Logger {
	return slog.New(minLevel{Handler: l.Handler(), min: slog.LevelWarn})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}

// NewMCPServer returns an MCP server of tools for the gateway to front,
// with the SDK's per-session logging quieted (see sdkLogger). Register its
// tools (tools.Register, or your own) and pass it as Config.Server. It
// serves tools only: it declares neither prompts, resources nor
// completions, and answers their methods with JSON-RPC -32601 (see
// toolsOnly); prompts or resources added to it are not served.
func NewMCPServer(impl *mcp.Implementation, logger *slog.Logger) *mcp.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := mcp.NewServer(impl, &mcp.ServerOptions{Logger: sdkLogger(logger)})
	s.AddReceivingMiddleware(toolsOnly)
	return s
}
