package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLandingAdvice: the landing page recommends only what works for the
// gateway it describes. Claude's connectors take only https:// URLs, so an
// http:// (loopback, development) gateway gets the clients that work
// instead: Claude Code, the Inspector, mcp-remote, and in development mode
// the token page and the tunnel recipe.
func TestLandingAdvice(t *testing.T) {
	devMount := []Mount{{Prefixes: []string{"/dev-auth", "/dev-auth/"}, Handler: http.NotFoundHandler()}}
	tests := []struct {
		name     string
		resource string
		issuer   string
		mounts   []Mount
		dev      bool
		want     []string
		wantNot  []string
	}{
		{
			name: "development mode on loopback", resource: "http://localhost:8080/mcp",
			issuer: "http://localhost:8080/dev-auth", mounts: devMount, dev: true,
			want: []string{
				"Development mode.",
				"accept only <code>https://</code> URLs, so do not paste this one there",
				"claude mcp add --transport http calculator http://localhost:8080/mcp",
				"npx -y @modelcontextprotocol/inspector@2.12.0",
				"<code>streamable-http</code>",
				"npx -y mcp-remote http://localhost:8080/mcp",
				`<a href="http://localhost:8080/dev-auth/">http://localhost:8080/dev-auth/</a>`,
				"DEV_AUTH_ALLOW_PUBLIC=true",
				"docs/clients.md",
			},
			wantNot: []string{`<code class="url">`, "and paste this URL"},
		},
		{
			name: "production", resource: "https://calc.example.com/mcp", issuer: "https://auth.example.com",
			want: []string{
				"Settings &gt; Connectors &gt; Add custom connector</strong> and paste this URL",
				`<code class="url">https://calc.example.com/mcp</code>`,
				"claude mcp add --transport http calculator https://calc.example.com/mcp",
				"docs/clients.md",
			},
			wantNot: []string{"Development mode", "DEV_AUTH_ALLOW_PUBLIC", "/dev-auth/", "do not paste"},
		},
		{
			name: "external authorization server, gateway on loopback", resource: "http://127.0.0.1:8080/mcp",
			issuer:  "http://127.0.0.1:9000/realms/dev",
			want:    []string{"do not paste this one there", "npx -y mcp-remote http://127.0.0.1:8080/mcp"},
			wantNot: []string{"Development mode", "DEV_AUTH_ALLOW_PUBLIC", "mint a token", `<code class="url">`},
		},
		{
			name: "development mode through an https tunnel", resource: "https://abc.tunnel.example/mcp",
			issuer: "https://abc.tunnel.example/dev-auth", mounts: devMount, dev: true,
			want: []string{
				"Development mode.",
				`<code class="url">https://abc.tunnel.example/mcp</code>`,
				`<a href="https://abc.tunnel.example/dev-auth/">`,
			},
			wantNot: []string{"do not paste", "DEV_AUTH_ALLOW_PUBLIC"},
		},
		{
			name: "a mount that is not the issuer is not development mode", resource: "http://localhost:8080/mcp",
			issuer: "http://localhost:9000/dev-auth", mounts: devMount,
			wantNot: []string{"Development mode", "mint a token"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := newTestGateway(t, func(c *Config) {
				c.Resource = tt.resource
				c.AuthorizationServers = []string{tt.issuer}
				c.Mounts = tt.mounts
			})
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Accept", "text/html")
			rec := serve(g, r)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			page := rec.Body.String()
			for _, w := range tt.want {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(page, w) {
					t.Errorf("page has %q", w)
				}
			}

			r = httptest.NewRequest(http.MethodGet, "/", nil)
			rec = serve(g, r)
			var info struct {
				Dev       bool   `json:"development_mode"`
				TokenPage string `json:"token_page"`
				Guide     string `json:"clients_guide"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil {
				t.Fatal(err)
			}
			wantPage := ""
			if tt.dev {
				wantPage = tt.issuer + "/"
			}
			if info.Dev != tt.dev || info.TokenPage != wantPage || info.Guide != "docs/clients.md" {
				t.Errorf("JSON %+v, want development_mode=%v token_page=%q", info, tt.dev, wantPage)
			}
		})
	}
}
