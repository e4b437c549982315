package gateway

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mcp-gateway/mcp-gateway/scopes"
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
</style>
</head>
<body>
<h1>{{.Name}}</h1>
<p>This is a Model Context Protocol (MCP) server: a calculator that asks you to sign in, and lets each operation be allowed separately.</p>
<h2>Add it to Claude</h2>
<p>In Claude, open <strong>Settings &gt; Connectors &gt; Add custom connector</strong> and paste this URL:</p>
<code class="url">{{.MCPURL}}</code>
<p>Claude then sends you to sign in and asks you which of the permissions below to grant.</p>
<h2>Permissions</h2>
<table>
<tr><th>Scope</th><th>Allows</th></tr>
{{range .Scopes}}<tr><td><code>{{.Scope}}</code></td><td>{{.Description}}</td></tr>
{{end}}</table>
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
	if info.Name == "" {
		info.Name = "MCP calculator"
	}
	if info.AuthorizationServers == nil {
		info.AuthorizationServers = []string{}
	}
	list := append([]string(nil), cfg.ScopesSupported...)
	if !slices.Contains(list, scopes.Parent) {
		list = append(list, scopes.Parent)
	}
	for _, s := range list {
		info.Scopes = append(info.Scopes, landingScope{Scope: s, Description: scopes.Describe(s)})
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
