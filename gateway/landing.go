package gateway

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

type landingScope struct {
	Scope       string `json:"scope"`
	Description string `json:"description"`
}

// landingInfo is the landing page's content, and its JSON form.
type landingInfo struct {
	Name                      string         `json:"name"`
	MCPURL                    string         `json:"mcp_url"`
	Scopes                    []landingScope `json:"scopes"`
	AuthorizationServers      []string       `json:"authorization_servers"`
	ProtectedResourceMetadata string         `json:"protected_resource_metadata"`
	// DevelopmentMode: the authorization server is the development server
	// embedded in this gateway (see embeddedIssuer).
	DevelopmentMode bool `json:"development_mode,omitempty"`
	// TokenPage is the development server's page that mints a token and
	// shows a ready curl command.
	TokenPage string `json:"token_page,omitempty"`
	// ClientsGuide names the guide with each client's recipe.
	ClientsGuide string `json:"clients_guide"`
	// Proxy: the tools are an upstream MCP server's (UPSTREAM_URL), not
	// the built-in calculator.
	Proxy bool `json:"proxy,omitempty"`

	// HTTPS: Claude's connectors (claude.ai, Claude Desktop) accept only
	// https:// URLs, so the page offers "paste this URL into Claude" only
	// then; an http:// (loopback) URL gets the clients that work instead.
	HTTPS bool `json:"-"`
}

// clientsGuide is where the repository documents each client's recipe.
const clientsGuide = "docs/clients.md"

// embeddedIssuer returns the authorization server this gateway serves
// itself, on the resource's own origin under one of its mounts: that is
// the development server (devauth), which production never embeds. It
// returns "" when every authorization server is elsewhere.
func embeddedIssuer(cfg Config) string {
	res, err := url.Parse(cfg.Resource)
	if err != nil {
		return ""
	}
	for _, as := range cfg.AuthorizationServers {
		u, err := url.Parse(as)
		if err != nil || u.Scheme != res.Scheme || u.Host != res.Host || u.Path == "" {
			continue
		}
		for _, m := range cfg.Mounts {
			if slices.Contains(m.Prefixes, u.Path) {
				return as
			}
		}
	}
	return ""
}

var landingTemplate = template.Must(template.New("landing").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Name}}</title>
<style>
body{font-family:system-ui,-apple-system,sans-serif;max-width:42rem;margin:0 auto;padding:1rem;line-height:1.5;color:#222}
code{background:#f2f2f2;padding:.15rem .35rem;border-radius:4px;word-break:break-all}
.url{display:block;padding:.6rem;font-size:1.05rem;user-select:all}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ddd}
a{word-break:break-all}
.dev{background:#fef3c7;border:1px solid #f59e0b;border-radius:6px;padding:.6rem}
.clients li{margin:.4rem 0}
</style>
</head>
<body>
<h1>{{.Name}}</h1>
{{if .Proxy}}<p>This is a Model Context Protocol (MCP) server that asks you to sign in, and lets each of its tools be allowed separately.</p>
{{else}}<p>This is a Model Context Protocol (MCP) server: a calculator that asks you to sign in, and lets each operation be allowed separately.</p>
{{end}}
{{if .DevelopmentMode}}<p class="dev"><strong>Development mode.</strong> Tokens come from the development authorization server built into this gateway: no passwords, any user name. Never expose it for longer than a test.</p>
{{end}}{{if .HTTPS}}<h2>Add it to Claude</h2>
<p>In Claude, open <strong>Settings &gt; Connectors &gt; Add custom connector</strong> and paste this URL:</p>
<code class="url">{{.MCPURL}}</code>
<p>Claude then sends you to sign in and asks you which of the permissions below to grant.</p>
{{else}}<h2>Connect a client</h2>
<p>The MCP URL is <code>{{.MCPURL}}</code>. Claude's connectors (claude.ai and Claude Desktop) accept only <code>https://</code> URLs, so do not paste this one there. These work on this machine:</p>
{{end}}<ul class="clients" id="clients">
<li><strong>Claude Code</strong>: <code>claude mcp add --transport http {{if .Proxy}}gateway{{else}}calculator{{end}} {{.MCPURL}}</code>, then <code>/mcp</code> in Claude Code to sign in.</li>
<li><strong>MCP Inspector</strong> (Node.js 22.19 or later): <code>npx -y @modelcontextprotocol/inspector@2.12.0</code>, then <em>Add Servers</em>, <em>+ Add manually</em>, transport <code>streamable-http</code>, URL <code>{{.MCPURL}}</code>, and switch it on. On Node.js 20: <code>npx -y node@22 "$(command -v npx)" -y @modelcontextprotocol/inspector@2.12.0</code>, or use mcp-remote.</li>
<li><strong>mcp-remote</strong>, a bridge for clients that run local (stdio) servers, Node.js 20 works: <code>npx -y mcp-remote {{.MCPURL}}</code></li>
{{if .TokenPage}}<li><strong>curl</strong>: mint a token at <a href="{{.TokenPage}}">{{.TokenPage}}</a>; the page shows a ready <code>curl</code> command.</li>
{{if not .HTTPS}}<li><strong>Claude (claude.ai, Desktop)</strong>: put the gateway behind an https tunnel, then restart it with <code>MCP_RESOURCE_URL=https://&lt;tunnel host&gt;/mcp</code> and <code>DEV_AUTH_ALLOW_PUBLIC=true</code> for the length of the test, and paste the https URL into <strong>Settings &gt; Connectors &gt; Add custom connector</strong>.</li>
{{end}}{{end}}</ul>
<p>Each recipe step by step: <code>{{.ClientsGuide}}</code> in the mcp-gateway repository.</p>
<h2>Permissions</h2>
{{if .Scopes}}<table>
<tr><th>Scope</th><th>Allows</th></tr>
{{range .Scopes}}<tr><td><code>{{.Scope}}</code></td><td>{{.Description}}</td></tr>
{{end}}</table>
{{else}}<p>No tool here needs a permission of its own: signing in is enough.</p>
{{end}}
<h2>Sign-in</h2>
<p>Tokens are issued by:</p>
<ul>
{{range .AuthorizationServers}}<li><a href="{{.}}">{{.}}</a></li>
{{end}}</ul>
<p>Protected resource metadata (RFC 9728): <a href="{{.ProtectedResourceMetadata}}">{{.ProtectedResourceMetadata}}</a></p>
</body>
</html>
`))

// landingPage is the pre-rendered landing page, in both forms.
type landingPage struct {
	html []byte
	json []byte
}

func newLandingPage(cfg Config, prmURL string) (*landingPage, error) {
	info := landingInfo{
		Name:                      cfg.ResourceName,
		MCPURL:                    cfg.Resource,
		AuthorizationServers:      cfg.AuthorizationServers,
		ProtectedResourceMetadata: prmURL,
	}
	info.Proxy = cfg.Upstream != nil
	if info.Name == "" {
		info.Name = "MCP calculator"
		if info.Proxy {
			info.Name = "MCP server"
		}
	}
	info.ClientsGuide = clientsGuide
	if res, err := url.Parse(cfg.Resource); err == nil {
		info.HTTPS = res.Scheme == "https"
	}
	if as := embeddedIssuer(cfg); as != "" {
		info.DevelopmentMode = true
		info.TokenPage = strings.TrimSuffix(as, "/") + "/"
	}
	if info.AuthorizationServers == nil {
		info.AuthorizationServers = []string{}
	}
	// The advertised scopes, then those the policy only describes (a
	// parent such as "op"), each with what it allows.
	list := append([]string(nil), cfg.ScopesSupported...)
	for _, s := range cfg.Policy.Described() {
		if !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	info.Scopes = []landingScope{}
	for _, s := range list {
		info.Scopes = append(info.Scopes, landingScope{Scope: s, Description: cfg.Policy.Describe(s)})
	}
	var buf bytes.Buffer
	if err := landingTemplate.Execute(&buf, info); err != nil {
		return nil, err
	}
	js, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	return &landingPage{html: buf.Bytes(), json: js}, nil
}

// wantsHTML reports whether the client is a browser asking for a page.
func wantsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values(echo.HeaderAccept) {
		if strings.Contains(strings.ToLower(v), "text/html") {
			return true
		}
	}
	return false
}

// serve writes the page: HTML to a browser, JSON to anything else.
func (p *landingPage) serve(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Vary", "Accept")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	if wantsHTML(c.Request()) {
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		return c.Blob(http.StatusOK, "text/html; charset=utf-8", p.html)
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, p.json)
}

// landingOnRoot serves the landing page on the MCP route when the
// resource path is "/": only to a browser's GET, leaving everything else
// (including GETs for an MCP event stream) to MCP.
func (g *Gateway) landingOnRoot(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method == http.MethodGet && wantsHTML(c.Request()) {
			return g.landing.serve(c)
		}
		return next(c)
	}
}
