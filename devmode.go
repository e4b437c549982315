package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
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

 Connect the MCP Inspector:
   npx @modelcontextprotocol/inspector
   (Transport: Streamable HTTP, URL: %s)
 Connect Claude Code:
   claude mcp add --transport http calculator %s
%s
`, line, cfg.ResourceURL, cfg.IssuerURL, cfg.IssuerURL, cfg.ResourceURL, cfg.ResourceURL, line)
}
