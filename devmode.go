package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// devIssuer is the embedded authorization server's issuer: the resource's
// origin plus /dev-auth, so one URL serves everything.
func devIssuer(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", err
	}
	return u.Scheme + "://" + u.Host + "/dev-auth", nil
}

func printBanner(w io.Writer, cfg *config) {
	line := strings.Repeat("─", 72)
	fmt.Fprintf(w, `%s
 mcp-gateway — DEVELOPMENT MODE (no AUTH_ISSUER_URL set)
 An embedded authorization server with a consent page and no passwords
 issues the tokens. Do not use this mode in production.

 MCP server:            %s
 Authorization server:  %s
 Mint a token by hand:  %s/

 Connect a client (docs/clients.md has every recipe step by step):
   claude mcp add --transport http %s %s
   npx -y mcp-remote %s
   npx -y @modelcontextprotocol/inspector@2.12.0   (Node 22.19+: Add Servers,
     + Add manually, streamable-http, the URL above, then the switch)
 Claude's connectors accept only https:// URLs: see docs/clients.md for a
 tunnel with DEV_AUTH_ALLOW_PUBLIC=true.
%s
`, line, cfg.ResourceURL, cfg.IssuerURL, cfg.IssuerURL, claudeName(cfg), cfg.ResourceURL, cfg.ResourceURL, line)
}

// warnPublicDevMode repeats, every interval until ctx ends, that a
// development server with no real login may be reached beyond loopback
// (DEV_AUTH_ALLOW_PUBLIC=true: a public HOST, or a tunnel to a loopback
// one): once is easy to miss in a scrolling log.
func warnPublicDevMode(ctx context.Context, logger *slog.Logger, host string, interval time.Duration) {
	warn := func() {
		logger.Warn("DEVELOPMENT MODE IS OPEN BEYOND LOOPBACK: anyone who can reach this server (directly or through a tunnel) can get a token for any user name with every scope; never expose it for longer than a test",
			"host", host, "setting", "DEV_AUTH_ALLOW_PUBLIC=true")
	}
	warn()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			warn()
		}
	}
}

// claudeName is the server name suggested for `claude mcp add`.
func claudeName(cfg *config) string {
	if cfg.UpstreamURL != "" {
		return "gateway"
	}
	return "calculator"
}
