package prm

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func validConfig() Config {
	return Config{
		Resource:              "https://calc.example.com/mcp",
		AuthorizationServers:  []string{"https://auth.example.com"},
		ScopesSupported:       []string{"op:add", "op:sub", "op:mult", "op:div"},
		ResourceName:          "Calculator",
		ResourceDocumentation: "https://docs.example.com/calc",
	}
}

func TestNewMetadata(t *testing.T) {
	cfg := validConfig()
	md, err := NewMetadata(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if md.Resource != cfg.Resource {
		t.Errorf("Resource = %q", md.Resource)
	}
	if !reflect.DeepEqual(md.AuthorizationServers, cfg.AuthorizationServers) {
		t.Errorf("AuthorizationServers = %q", md.AuthorizationServers)
	}
	if !reflect.DeepEqual(md.ScopesSupported, cfg.ScopesSupported) {
		t.Errorf("ScopesSupported = %q", md.ScopesSupported)
	}
	if !reflect.DeepEqual(md.BearerMethodsSupported, []string{"header"}) {
		t.Errorf("BearerMethodsSupported = %q", md.BearerMethodsSupported)
	}
	if md.ResourceName != "Calculator" || md.ResourceDocumentation != cfg.ResourceDocumentation {
		t.Errorf("ResourceName, ResourceDocumentation = %q, %q", md.ResourceName, md.ResourceDocumentation)
	}
	// No aliasing of the caller's slices.
	cfg.AuthorizationServers[0] = "https://evil.example"
	cfg.ScopesSupported[0] = "x"
	if md.AuthorizationServers[0] != "https://auth.example.com" || md.ScopesSupported[0] != "op:add" {
		t.Error("metadata shares slices with Config")
	}
}

func TestNewMetadataResourceVerbatim(t *testing.T) {
	// RFC 9728 §3.3: the client compares "resource" with what it used, exactly.
	for _, r := range []string{
		"https://calc.example.com/mcp",
		"https://calc.example.com/mcp/",
		"https://calc.example.com",
		"https://calc.example.com/",
		"https://Calc.Example.com:443/MCP",
		"HTTPS://calc.example.com/mcp",
		"https://calc.example.com/a%2Fb",
		"http://localhost:8080/mcp",
		"http://LOCALHOST:8080/mcp",
		"http://127.0.0.1:8080/mcp",
		"http://127.1.2.3/mcp",
		"http://[::1]:8080/mcp",
	} {
		cfg := validConfig()
		cfg.Resource = r
		md, err := NewMetadata(cfg)
		if err != nil {
			t.Errorf("NewMetadata(resource %q): %v", r, err)
			continue
		}
		if md.Resource != r {
			t.Errorf("resource %q became %q", r, md.Resource)
		}
	}
}

func TestNewMetadataErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string // substrings, all must appear
	}{
		{"empty resource", func(c *Config) { c.Resource = "" }, []string{"resource: empty URL"}},
		{"relative resource", func(c *Config) { c.Resource = "/mcp" }, []string{"resource:", "not an absolute URL"}},
		{"no host", func(c *Config) { c.Resource = "https:///mcp" }, []string{"resource:", "not an absolute URL"}},
		{"opaque", func(c *Config) { c.Resource = "https:calc.example.com" }, []string{"resource:", "not an absolute URL"}},
		{"http non-loopback", func(c *Config) { c.Resource = "http://calc.example.com/mcp" }, []string{"resource:", "https is required"}},
		{"http private IP", func(c *Config) { c.Resource = "http://10.0.0.1/mcp" }, []string{"resource:", "https is required"}},
		{"http localhost lookalike", func(c *Config) { c.Resource = "http://localhost.evil.com/mcp" }, []string{"resource:", "https is required"}},
		{"ftp", func(c *Config) { c.Resource = "ftp://calc.example.com/mcp" }, []string{"resource:", `scheme "ftp"`}},
		{"fragment", func(c *Config) { c.Resource = "https://calc.example.com/mcp#x" }, []string{"resource:", "fragment"}},
		{"empty fragment", func(c *Config) { c.Resource = "https://calc.example.com/mcp#" }, []string{"resource:", "fragment"}},
		{"query", func(c *Config) { c.Resource = "https://calc.example.com/mcp?a=b" }, []string{"resource:", "query"}},
		{"empty query", func(c *Config) { c.Resource = "https://calc.example.com/mcp?" }, []string{"resource:", "query"}},
		{"userinfo", func(c *Config) { c.Resource = "https://u:p@calc.example.com/mcp" }, []string{"resource:", "user information"}},
		{"bad URL", func(c *Config) { c.Resource = "https://calc.example.com/%zz" }, []string{"resource: invalid URL"}},
		{"no auth servers", func(c *Config) { c.AuthorizationServers = nil }, []string{"authorization_servers: at least one"}},
		{"relative auth server", func(c *Config) { c.AuthorizationServers = []string{"https://ok.example", "auth"} }, []string{"authorization_servers[1]:", "not an absolute URL"}},
		{"http auth server", func(c *Config) { c.AuthorizationServers = []string{"http://auth.example.com"} }, []string{"authorization_servers[0]:", "https is required"}},
		{"javascript auth server", func(c *Config) { c.AuthorizationServers = []string{"javascript://x/%0aalert(1)"} }, []string{"authorization_servers[0]:", `scheme "javascript"`}},
		{"auth server query", func(c *Config) { c.AuthorizationServers = []string{"https://auth.example.com?x=1"} }, []string{"authorization_servers[0]:", "query"}},
		{"bad scope", func(c *Config) { c.ScopesSupported = []string{"op:add", "a b"} }, []string{`scopes_supported[1]: "a b" is not an RFC 6749 scope-token`}},
		{"empty scope", func(c *Config) { c.ScopesSupported = []string{""} }, []string{`scopes_supported[0]: ""`}},
		{"quote scope", func(c *Config) { c.ScopesSupported = []string{`a"b`} }, []string{"scopes_supported[0]:"}},
		{"bad documentation", func(c *Config) { c.ResourceDocumentation = "docs" }, []string{"resource_documentation:", "not an absolute URL"}},
		{"mailto documentation", func(c *Config) { c.ResourceDocumentation = "mailto:x@example.com" }, []string{"resource_documentation:"}},
		{"all at once", func(c *Config) {
			c.Resource = "http://calc.example.com/mcp?x"
			c.AuthorizationServers = []string{"auth"}
			c.ScopesSupported = []string{"a b"}
			c.ResourceDocumentation = "docs"
		}, []string{"resource:", "authorization_servers[0]:", "scopes_supported[0]:", "resource_documentation:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.edit(&cfg)
			md, err := NewMetadata(cfg)
			if err == nil {
				t.Fatalf("NewMetadata succeeded: %+v", md)
			}
			if md != nil {
				t.Errorf("metadata %+v returned with error", md)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewMetadataJoinsAllErrors(t *testing.T) {
	cfg := Config{Resource: "x", AuthorizationServers: []string{"a", "b"}, ScopesSupported: []string{" "}}
	_, err := NewMetadata(cfg)
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("error %v is not joined", err)
	}
	if n := len(joined.Unwrap()); n != 4 {
		t.Errorf("got %d errors, want 4: %v", n, err)
	}
}

func TestNewMetadataOptional(t *testing.T) {
	md, err := NewMetadata(Config{
		Resource:             "https://calc.example.com/mcp",
		AuthorizationServers: []string{"https://auth.example.com/realms/x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resource":"https://calc.example.com/mcp","authorization_servers":["https://auth.example.com/realms/x"],"bearer_methods_supported":["header"]}`
	if string(data) != want {
		t.Errorf("JSON = %s\nwant   %s", data, want)
	}
}

func TestMetadataURL(t *testing.T) {
	tests := []struct{ resource, want string }{
		{"https://h/mcp", "https://h/.well-known/oauth-protected-resource/mcp"},
		{"https://h", "https://h/.well-known/oauth-protected-resource"},
		{"https://h/", "https://h/.well-known/oauth-protected-resource"},
		{"https://h:8443/mcp", "https://h:8443/.well-known/oauth-protected-resource/mcp"},
		{"https://h/a/b/", "https://h/.well-known/oauth-protected-resource/a/b/"},
		{"https://h/a%2Fb", "https://h/.well-known/oauth-protected-resource/a%2Fb"},
		{"https://Calc.Example.COM/MCP", "https://Calc.Example.COM/.well-known/oauth-protected-resource/MCP"},
		{"http://localhost:8080/mcp", "http://localhost:8080/.well-known/oauth-protected-resource/mcp"},
		{"http://[::1]:8080/mcp", "http://[::1]:8080/.well-known/oauth-protected-resource/mcp"},
		// RFC 9728 §3.1: the query stays after the path; a slash right after the host goes.
		{"https://h/mcp?t=1", "https://h/.well-known/oauth-protected-resource/mcp?t=1"},
		{"https://h/?t=1", "https://h/.well-known/oauth-protected-resource?t=1"},
		{"https://h?t=1", "https://h/.well-known/oauth-protected-resource?t=1"},
	}
	for _, tt := range tests {
		got, err := MetadataURL(tt.resource)
		if err != nil || got != tt.want {
			t.Errorf("MetadataURL(%q) = %q, %v; want %q", tt.resource, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "/mcp", "mcp", "https:///mcp", "https://h/mcp#f", "https://h/%zz", "mailto:a@b"} {
		if got, err := MetadataURL(bad); err == nil {
			t.Errorf("MetadataURL(%q) = %q, want error", bad, got)
		}
	}
}

func TestMetadataPaths(t *testing.T) {
	tests := []struct {
		resource string
		want     []string
	}{
		{"https://h/mcp", []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"}},
		{"https://h", []string{"/.well-known/oauth-protected-resource"}},
		{"https://h/", []string{"/.well-known/oauth-protected-resource"}},
		{"https://h/?q", []string{"/.well-known/oauth-protected-resource"}},
		{"https://h/a/b/", []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/a/b/"}},
		{"https://h/a%2Fb", []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/a%2Fb"}},
		{"http://localhost:8080/mcp?x=1", []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"}},
	}
	for _, tt := range tests {
		got, err := MetadataPaths(tt.resource)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("MetadataPaths(%q) = %q, %v; want %q", tt.resource, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "/mcp", "https://h/mcp#f"} {
		if got, err := MetadataPaths(bad); err == nil {
			t.Errorf("MetadataPaths(%q) = %q, want error", bad, got)
		}
	}
}

// The path-inserted URL's path is one of the paths to serve.
func TestMetadataURLMatchesPaths(t *testing.T) {
	for _, r := range []string{"https://h/mcp", "https://h", "https://h/", "https://h/a/b"} {
		u, err := MetadataURL(r)
		if err != nil {
			t.Fatal(err)
		}
		paths, err := MetadataPaths(r)
		if err != nil {
			t.Fatal(err)
		}
		p := strings.TrimPrefix(u, "https://h")
		if p != paths[len(paths)-1] {
			t.Errorf("%q: URL path %q is not the last path in %q", r, p, paths)
		}
	}
}

func TestHandler(t *testing.T) {
	md, err := NewMetadata(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(md))
	defer srv.Close()

	do := func(method string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+"/.well-known/oauth-protected-resource/mcp", nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	checkCORS := func(resp *http.Response) {
		t.Helper()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("Access-Control-Allow-Origin = %q", got)
		}
	}

	t.Run("GET", func(t *testing.T) {
		resp, body := do(http.MethodGet, map[string]string{"MCP-Protocol-Version": "2025-06-18"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
			t.Errorf("Cache-Control = %q", cc)
		}
		checkCORS(resp)
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		want := map[string]any{
			"resource":                 "https://calc.example.com/mcp",
			"authorization_servers":    []any{"https://auth.example.com"},
			"scopes_supported":         []any{"op:add", "op:sub", "op:mult", "op:div"},
			"bearer_methods_supported": []any{"header"},
			"resource_name":            "Calculator",
			"resource_documentation":   "https://docs.example.com/calc",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("body = %v\nwant   %v", got, want)
		}
	})

	t.Run("OPTIONS", func(t *testing.T) {
		resp, body := do(http.MethodOptions, map[string]string{
			"Origin":                         "http://localhost:6274",
			"Access-Control-Request-Method":  "GET",
			"Access-Control-Request-Headers": "mcp-protocol-version",
		})
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if len(body) != 0 {
			t.Errorf("body %q", body)
		}
		checkCORS(resp)
		if got := resp.Header.Get("Access-Control-Allow-Methods"); got != "GET, OPTIONS" {
			t.Errorf("Access-Control-Allow-Methods = %q", got)
		}
		if got := resp.Header.Get("Access-Control-Allow-Headers"); got != "Content-Type, MCP-Protocol-Version" {
			t.Errorf("Access-Control-Allow-Headers = %q", got)
		}
	})

	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodHead} {
		t.Run(m, func(t *testing.T) {
			resp, body := do(m, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Allow"); got != "GET, OPTIONS" {
				t.Errorf("Allow = %q", got)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			checkCORS(resp)
			if m != http.MethodHead && string(body) != `{"error":"method_not_allowed"}` {
				t.Errorf("body = %s", body)
			}
		})
	}
}

// The document is encoded once: later changes to md are not served.
func TestHandlerEncodesOnce(t *testing.T) {
	md, err := NewMetadata(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	h := Handler(md)
	md.Resource = "https://changed.example"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource", nil))
	if strings.Contains(rec.Body.String(), "changed") {
		t.Errorf("served %s", rec.Body)
	}
}

func TestHandlerNil(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource", nil))
	if rec.Code != http.StatusInternalServerError || rec.Body.String() != `{"error":"server_error"}` {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
}
