package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestOriginRules(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		origin  string
		host    string // request Host; "" keeps httptest's example.com
		want    bool
	}{
		{name: "no Origin (non-browser client)", origin: "", want: true},
		{name: "own origin", origin: "https://calc.example.com", want: true},
		{name: "own origin, other case", origin: "HTTPS://Calc.Example.COM", want: true},
		{name: "allowed origin", allowed: []string{"https://app.example.org"}, origin: "https://app.example.org", want: true},
		{name: "allowed origin, other case", allowed: []string{"https://app.example.org"}, origin: "https://APP.example.org", want: true},
		{name: "wildcard", allowed: []string{"*"}, origin: "https://evil.example", want: true},
		{name: "same origin as request host", origin: "http://gw.internal:8080", host: "gw.internal:8080", want: true},
		{name: "same host over https behind proxy", origin: "https://gw.internal:8080", host: "gw.internal:8080", want: true},
		{name: "evil", allowed: []string{"https://app.example.org"}, origin: "https://evil.example", want: false},
		{name: "null", origin: "null", want: false},
		{name: "null with wildcard host match impossible", origin: "null", host: "null", want: false},
		{name: "suffix trick", origin: "https://calc.example.com.evil.example", want: false},
		{name: "prefix trick", origin: "https://evilcalc.example.com", want: false},
		{name: "own host other port", origin: "https://calc.example.com:8443", want: false},
		{name: "non-http scheme on request host", origin: "file://gw.internal", host: "gw.internal", want: false},
		{name: "allowed list is exact", allowed: []string{"https://app.example.org"}, origin: "https://app.example.org.evil", want: false},
		{name: "same host different port", origin: "http://gw.internal:9090", host: "gw.internal:8080", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, v := newTestGateway(t, func(c *Config) { c.AllowedOrigins = tt.allowed })
			r := mcpRequest("", rpcCall(1, "add"))
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.host != "" {
				r.Host = tt.host
			}
			rec := serve(g, r)
			if tt.want {
				// Passed the Origin check; stopped at authentication.
				checkJSONError(t, rec, http.StatusUnauthorized, "unauthorized")
				if tt.origin != "" {
					if got := rec.Header().Get("Access-Control-Allow-Origin"); got != tt.origin {
						t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.origin)
					}
					if exp := rec.Header().Get("Access-Control-Expose-Headers"); !strings.Contains(strings.ToLower(exp), "www-authenticate") {
						t.Errorf("Access-Control-Expose-Headers = %q, want WWW-Authenticate exposed", exp)
					}
				}
				return
			}
			checkJSONError(t, rec, http.StatusForbidden, "forbidden_origin")
			if rec.Header().Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("refused origin got CORS headers: %v", rec.Header())
			}
			if rec.Header().Get("WWW-Authenticate") != "" {
				t.Error("refused origin got a challenge")
			}
			if v.totalCalls() != 0 {
				t.Error("verifier called for a refused origin")
			}
		})
	}
}

// A refused Origin is refused before the token is even looked at.
func TestOriginCheckedBeforeToken(t *testing.T) {
	g, v := newTestGateway(t, nil)
	r := mcpRequest(tokParent, rpcCall(1, "add"))
	r.Header.Set("Origin", "https://evil.example")
	checkJSONError(t, serve(g, r), http.StatusForbidden, "forbidden_origin")
	if v.totalCalls() != 0 {
		t.Errorf("verifier called %d times", v.totalCalls())
	}
}

func TestCORSPreflight(t *testing.T) {
	tests := []struct {
		name   string
		origin string
		want   int
	}{
		{"allowed origin", "https://app.example.org", http.StatusNoContent},
		{"own origin", "https://calc.example.com", http.StatusNoContent},
		{"evil origin", "https://evil.example", http.StatusForbidden},
		{"null origin", "null", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, v := newTestGateway(t, nil)
			r := httptest.NewRequest(http.MethodOptions, "/mcp", nil)
			r.Header.Set("Origin", tt.origin)
			r.Header.Set("Access-Control-Request-Method", "POST")
			r.Header.Set("Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version")
			rec := serve(g, r)
			if v.totalCalls() != 0 {
				t.Error("preflight called the verifier")
			}
			if tt.want != http.StatusNoContent {
				checkJSONError(t, rec, tt.want, "forbidden_origin")
				return
			}
			if rec.Code < 200 || rec.Code > 299 {
				t.Fatalf("preflight status = %d, want 2xx; %q", rec.Code, rec.Body.String())
			}
			h := rec.Header()
			if got := h.Get("Access-Control-Allow-Origin"); got != tt.origin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.origin)
			}
			methods := strings.ToUpper(h.Get("Access-Control-Allow-Methods"))
			for _, m := range []string{"POST", "GET", "DELETE"} {
				if !strings.Contains(methods, m) {
					t.Errorf("Access-Control-Allow-Methods = %q, missing %s", methods, m)
				}
			}
			allowHeaders := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
			for _, hd := range []string{"authorization", "content-type", "mcp-protocol-version", "mcp-session-id"} {
				if !strings.Contains(allowHeaders, hd) {
					t.Errorf("Access-Control-Allow-Headers = %q, missing %s", allowHeaders, hd)
				}
			}
			if h.Get("WWW-Authenticate") != "" {
				t.Error("preflight got a challenge")
			}
		})
	}
}

// CORS exposes the headers a browser client must read on real responses,
// including the 403 step-up challenge and the 503 Retry-After.
func TestCORSExposesHeaders(t *testing.T) {
	g, _ := newTestGateway(t, nil)
	for _, tc := range []struct {
		token  string
		body   string
		status int
	}{
		{"", rpcCall(1, "add"), 401},
		{tokAdd, rpcCall(1, "divide"), 403},
		{tokUnavailable, rpcCall(1, "add"), 503},
		{tokAdd, rpcCall(1, "add"), 200},
	} {
		r := mcpRequest(tc.token, tc.body)
		r.Header.Set("Origin", "https://app.example.org")
		rec := serve(g, r)
		if rec.Code != tc.status {
			t.Errorf("status = %d, want %d", rec.Code, tc.status)
			continue
		}
		exp := strings.ToLower(rec.Header().Get("Access-Control-Expose-Headers"))
		for _, h := range []string{"www-authenticate", "mcp-session-id", "retry-after"} {
			if !strings.Contains(exp, h) {
				t.Errorf("%d: Access-Control-Expose-Headers = %q, missing %s", tc.status, exp, h)
			}
		}
		if rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example.org" {
			t.Errorf("%d: Access-Control-Allow-Origin = %q", tc.status, rec.Header().Get("Access-Control-Allow-Origin"))
		}
	}
}

// checkHost: a loopback listener only serves loopback Hosts and the
// resource's own host (DNS rebinding).
func TestCheckHostDNSRebinding(t *testing.T) {
	g, v := newTestGateway(t, nil)
	srv := httptest.NewServer(g.Handler()) // listens on 127.0.0.1
	defer srv.Close()
	tests := []struct {
		host string
		want int
		code string
	}{
		{"evil.example", 403, "forbidden_host"},
		{"evil.example:80", 403, "forbidden_host"},
		{"calc.example.com.evil.example", 403, "forbidden_host"},
		{"calc.example.com", 401, "unauthorized"}, // the resource host
		{"CALC.example.com", 401, "unauthorized"},
		{"localhost", 401, "unauthorized"},
		{"localhost:1234", 401, "unauthorized"},
		{"127.0.0.1", 401, "unauthorized"},
		{"[::1]:8080", 401, "unauthorized"},
		{"", 401, "unauthorized"}, // Go fills in the listener address
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(rpcCall(1, "add")))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Accept", "application/json, text/event-stream")
			if tt.host != "" {
				r.Host = tt.host
			}
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("Host %q: status = %d, want %d; %q", tt.host, resp.StatusCode, tt.want, body)
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil || m["error"] != tt.code {
				t.Errorf("Host %q: body %q, want error %q", tt.host, body, tt.code)
			}
		})
	}
	if v.totalCalls() != 0 {
		t.Errorf("verifier called %d times", v.totalCalls())
	}

	// Other routes are not Host-checked (health checks by IP, PRM).
	r, _ := http.NewRequest(http.MethodGet, srv.URL+"/healthz", nil)
	r.Host = "evil.example"
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz with foreign Host = %d, want 200", resp.StatusCode)
	}
}

// A mounted server (the development authorization server) has the same
// DNS-rebinding check as the MCP endpoint.
func TestCheckHostOnMounts(t *testing.T) {
	mounted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	g, _ := newTestGateway(t, func(c *Config) {
		c.Mounts = []Mount{{Prefixes: []string{"/dev-auth"}, Handler: mounted}}
	})
	srv := httptest.NewServer(g.Handler()) // listens on 127.0.0.1
	defer srv.Close()
	for _, tt := range []struct {
		host, path string
		want       int
	}{
		{"evil.example", "/dev-auth/token", 403},
		{"evil.example", "/dev-auth", 403},
		{"localhost:8080", "/dev-auth/token", http.StatusTeapot},
		{"calc.example.com", "/dev-auth/authorize", http.StatusTeapot}, // the resource's host (a tunnel)
	} {
		r, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
		r.Host = tt.host
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("Host %q %s: %d, want %d", tt.host, tt.path, resp.StatusCode, tt.want)
		}
	}
}

// LoopbackOnly (development mode without DEV_AUTH_ALLOW_PUBLIC) answers
// only requests addressed to a loopback host, on every route, whatever
// the listener: a tunnel on this machine keeps its public Host.
func TestLoopbackOnly(t *testing.T) {
	mounted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, on := range []bool{true, false} {
		g, _ := newTestGateway(t, func(c *Config) {
			c.Resource = "http://localhost:8080/mcp"
			c.LoopbackOnly = on
			c.Mounts = []Mount{{Prefixes: []string{"/dev-auth"}, Handler: mounted}}
		})
		for _, path := range []string{"/healthz", "/readyz", "/", "/.well-known/oauth-protected-resource/mcp", "/mcp", "/dev-auth/register", "/nope"} {
			for _, host := range []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "tunnel.example.com", "tunnel.example.com:443", "localhost.evil.example"} {
				r := httptest.NewRequest(http.MethodGet, path, nil)
				r.Host = host
				rec := serve(g, r)
				refused := rec.Code == http.StatusForbidden && strings.Contains(rec.Body.String(), "forbidden_host")
				wantRefused := on && !strings.HasPrefix(host, "localhost:") && !strings.HasPrefix(host, "127.") && !strings.HasPrefix(host, "[::1]")
				if refused != wantRefused {
					t.Errorf("LoopbackOnly=%v GET %s Host %s: %d %q, want refused=%v", on, path, host, rec.Code, rec.Body.String(), wantRefused)
				}
			}
		}
	}
}
