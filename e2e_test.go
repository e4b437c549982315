package main

// End-to-end tests: the whole gateway started by run(), in-process, driven
// by raw HTTP and by the Go MCP SDK's own client, against the fake
// introspection server in introspect/introspecttest.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/mcp-gateway/mcp-gateway/internal/syncbuf"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

// envOf is an environment holding exactly vars: nothing from the process's
// own environment (the developer's, or CI's) can reach a test's gateway.
func envOf(vars map[string]string) LookupEnv {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

type gatewayUnderTest struct {
	BaseURL  string
	Resource string // MCP_RESOURCE_URL as the gateway resolved it
	Logs     *syncbuf.Buffer
	Stdout   *syncbuf.Buffer
}

func (g *gatewayUnderTest) MCP() string { return g.BaseURL + "/mcp" }

// startGateway runs the gateway with vars (plus PORT=0, HOST=127.0.0.1)
// until the test ends, and checks that it then shut down cleanly.
func startGateway(t *testing.T, vars map[string]string) *gatewayUnderTest {
	t.Helper()
	all := map[string]string{"PORT": "0", "HOST": "127.0.0.1", "LOG_LEVEL": "debug"}
	for k, v := range vars {
		all[k] = v
	}
	g := &gatewayUnderTest{Logs: &syncbuf.Buffer{}, Stdout: &syncbuf.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(all), g.Stdout, g.Logs, func(u string) { started <- u }) }()
	select {
	case g.BaseURL = <-started:
	case err := <-done:
		cancel()
		t.Fatalf("run returned before listening: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("gateway did not start within 10s")
	}
	g.Resource = vars["MCP_RESOURCE_URL"]
	if g.Resource == "" {
		g.Resource = strings.Replace(g.BaseURL, "127.0.0.1", "localhost", 1) + "/mcp"
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("gateway did not shut down within 15s")
		}
	})
	return g
}

// externalAS starts a fake authorization server and a gateway that uses it.
func externalAS(t *testing.T, extra map[string]string) (*introspecttest.Server, *gatewayUnderTest) {
	t.Helper()
	as := introspecttest.New(t)
	vars := map[string]string{
		"AUTH_ISSUER_URL":             as.URL,
		"INTROSPECTION_CLIENT_ID":     as.ClientID,
		"INTROSPECTION_CLIENT_SECRET": as.ClientSecret,
	}
	for k, v := range extra {
		vars[k] = v
	}
	g := startGateway(t, vars)
	waitReady(t, g)
	return as, g
}

func waitReady(t *testing.T, g *gatewayUnderTest) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(g.BaseURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready after 10s (last: %v %v); logs:\n%s", resp, err, g.Logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const callAdd = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"%s","a":6,"b":3}}}`

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not JSON (%v): %q", err, r.Body)
	}
	return m
}

// post sends one MCP JSON-RPC message the way a Streamable HTTP client does.
func post(t *testing.T, url, body string, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func challenge(t *testing.T, r response) oauthex.Challenge {
	t.Helper()
	cs, err := oauthex.ParseWWWAuthenticate(r.Header.Values("WWW-Authenticate"))
	if err != nil || len(cs) != 1 {
		t.Fatalf("WWW-Authenticate %q: %v (%d challenges)", r.Header.Values("WWW-Authenticate"), err, len(cs))
	}
	return cs[0]
}

func TestUnauthenticatedChallengeAndMetadata(t *testing.T) {
	as, g := externalAS(t, nil)
	r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), nil)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401; body %s", r.Status, r.Body)
	}
	ch := challenge(t, r)
	wantPRM := strings.Replace(g.Resource, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1)
	if got := ch.Params["resource_metadata"]; got != wantPRM {
		t.Errorf("resource_metadata = %q, want %q", got, wantPRM)
	}
	if got := ch.Params["scope"]; got != "op:add op:sub op:mult op:div" {
		t.Errorf("scope = %q", got)
	}
	if _, ok := ch.Params["error"]; ok {
		t.Errorf("a request without a token must not get an error code: %v", ch.Params)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
	r.json(t)

	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get(g.BaseURL + path)
		if err != nil {
			t.Fatal(err)
		}
		var md oauthex.ProtectedResourceMetadata
		err = json.NewDecoder(resp.Body).Decode(&md)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		if md.Resource != g.Resource || len(md.AuthorizationServers) != 1 || md.AuthorizationServers[0] != as.URL ||
			strings.Join(md.ScopesSupported, " ") != "op:add op:sub op:mult op:div" ||
			strings.Join(md.BearerMethodsSupported, ",") != "header" || md.ResourceName == "" {
			t.Errorf("GET %s: metadata %+v", path, md)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("GET %s: no open CORS", path)
		}
	}
	// The SDK's own discovery finds the same document from the challenge.
	md, err := oauthex.GetProtectedResourceMetadata(context.Background(), wantPRM, g.Resource, http.DefaultClient)
	if err != nil || md.Resource != g.Resource {
		t.Errorf("SDK discovery: %+v, %v", md, err)
	}
	if n := as.Calls(); n != 0 {
		t.Errorf("introspection calls = %d for unauthenticated requests, want 0", n)
	}
}

func TestMalformedRequestsRefusedWithoutCallingTheAuthorizationServer(t *testing.T) {
	as, g := externalAS(t, nil)
	valid := as.Issue("alice", []string{"op:add"}, g.Resource, time.Hour)
	body := fmt.Sprintf(callAdd, "add")
	cases := []struct {
		name   string
		url    string
		header http.Header
	}{
		{"basic scheme", g.MCP(), http.Header{"Authorization": {"Basic YWxpY2U6c2VjcmV0"}}},
		{"two tokens", g.MCP(), http.Header{"Authorization": {"Bearer abc def"}}},
		{"two headers", g.MCP(), http.Header{"Authorization": {"Bearer abc", "Bearer def"}}},
		{"outside b64token", g.MCP(), http.Header{"Authorization": {"Bearer ab$c"}}},
		{"empty credential", g.MCP(), http.Header{"Authorization": {"Bearer "}}},
		{"too long", g.MCP(), bearer(strings.Repeat("a", 4097))},
		{"query token", g.MCP() + "?access_token=" + valid, nil},
		{"query token with header", g.MCP() + "?access_token=" + valid, bearer(valid)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, tc.url, body, tc.header)
			if r.Status != http.StatusBadRequest && r.Status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 400 or 401; body %s", r.Status, r.Body)
			}
			if e := r.json(t)["error"]; e != "invalid_request" {
				t.Errorf("error = %v, want invalid_request", e)
			}
			if bytes.Contains(r.Body, []byte(valid)) || strings.Contains(r.Header.Get("WWW-Authenticate"), valid) {
				t.Error("the token is echoed back")
			}
		})
	}
	if n := as.Calls(); n != 0 {
		t.Errorf("introspection calls = %d, want 0", n)
	}
}

func TestInvalidTokens(t *testing.T) {
	as, g := externalAS(t, map[string]string{"CLOCK_SKEW": "0s"})
	now := time.Now().Unix()
	tokens := map[string]map[string]any{
		"expired":         {"sub": "u", "aud": g.Resource, "scope": "op:add", "exp": now - 60, "iss": as.URL},
		"wrong audience":  {"sub": "u", "aud": "https://other.example.com/mcp", "scope": "op:add", "exp": now + 600, "iss": as.URL},
		"no audience":     {"sub": "u", "scope": "op:add", "exp": now + 600, "iss": as.URL},
		"wrong issuer":    {"sub": "u", "aud": g.Resource, "scope": "op:add", "exp": now + 600, "iss": "https://evil.example.com"},
		"refresh token":   {"sub": "u", "aud": g.Resource, "scope": "op:add", "exp": now + 600, "token_type": "refresh_token"},
		"inactive":        {"active": false},
		"not yet valid":   {"sub": "u", "aud": g.Resource, "scope": "op:add", "exp": now + 600, "nbf": now + 300},
		"id token (use)":  {"sub": "u", "aud": g.Resource, "scope": "op:add", "exp": now + 600, "token_use": "id"},
		"audience array":  {"sub": "u", "aud": []string{"https://a.example.com", "https://b.example.com"}, "exp": now + 600},
		"unknown (never)": nil,
	}
	i := 0
	for name, claims := range tokens {
		i++
		tok := fmt.Sprintf("tok-%d-%s", i, strings.ReplaceAll(strings.ReplaceAll(name, " ", "-"), "(", ""))
		tok = strings.TrimSuffix(strings.ReplaceAll(tok, ")", ""), "-")
		if claims != nil {
			as.AddToken(tok, claims)
		}
		t.Run(name, func(t *testing.T) {
			r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok))
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401; body %s", r.Status, r.Body)
			}
			ch := challenge(t, r)
			if ch.Params["error"] != "invalid_token" || ch.Params["resource_metadata"] == "" {
				t.Errorf("challenge %v", ch.Params)
			}
			if strings.Contains(string(r.Body), tok) || strings.Contains(r.Header.Get("WWW-Authenticate"), tok) {
				t.Error("the token is echoed back")
			}
			if e := r.json(t)["error"]; e != "invalid_token" {
				t.Errorf("body error = %v", e)
			}
		})
	}
	if strings.Contains(g.Logs.String(), "tok-") {
		t.Errorf("a token appears in the logs:\n%s", g.Logs)
	}
}

// mcpClient connects the Go SDK's own MCP client with a fixed bearer token.
func mcpClient(t *testing.T, g *gatewayUnderTest, token string) *mcp.ClientSession {
	t.Helper()
	httpClient := &http.Client{Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), Base: http.DefaultTransport}}
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: g.MCP(), HTTPClient: httpClient, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func calc(cs *mcp.ClientSession, op string, a, b float64) (*mcp.CallToolResult, error) {
	return cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "calculator", Arguments: map[string]any{"operation": op, "a": a, "b": b}})
}

func TestCalculatorScopesWithSDKClient(t *testing.T) {
	as, g := externalAS(t, nil)
	want := map[string]float64{"add": 9, "subtract": 3, "multiply": 18, "divide": 2}
	scopeOf := map[string]string{"add": "op:add", "subtract": "op:sub", "multiply": "op:mult", "divide": "op:div"}
	cases := []struct {
		name    string
		granted []string
	}{
		{"add only", []string{"op:add"}},
		{"add and sub", []string{"op:add", "op:sub"}},
		{"mult and div", []string{"op:mult", "op:div"}},
		{"parent op", []string{"op"}},
		{"none", []string{"openid"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := as.Issue("user-"+strings.ReplaceAll(tc.name, " ", "-"), tc.granted, g.Resource, time.Hour)
			tools, err := mcpClient(t, g, tok).ListTools(context.Background(), nil)
			if err != nil || len(tools.Tools) != 2 {
				t.Fatalf("tools/list: %v %v", tools, err)
			}
			for op, result := range want {
				// A 403 ends an SDK client session that has no OAuth
				// handler, so every call gets its own.
				cs := mcpClient(t, g, tok)
				allowed := false
				for _, s := range tc.granted {
					if s == scopeOf[op] || s == "op" {
						allowed = true
					}
				}
				res, err := calc(cs, op, 6, 3)
				if allowed {
					if err != nil || res.IsError {
						t.Fatalf("%s: %v %+v", op, err, res)
					}
					var out struct{ Result float64 }
					b, _ := json.Marshal(res.StructuredContent)
					if json.Unmarshal(b, &out); out.Result != result {
						t.Errorf("%s = %v, want %v", op, res.StructuredContent, result)
					}
					continue
				}
				if err == nil && !res.IsError {
					t.Errorf("%s succeeded without %s", op, scopeOf[op])
				}
				// Raw HTTP shows what the SDK client saw: a 403 step-up challenge.
				r := post(t, g.MCP(), fmt.Sprintf(callAdd, op), bearer(tok))
				if r.Status != http.StatusForbidden {
					t.Fatalf("%s without scope: status %d, want 403", op, r.Status)
				}
				ch := challenge(t, r)
				wantScope := strings.Join(append([]string{scopeOf[op]}, tc.granted...), " ")
				if ch.Params["error"] != "insufficient_scope" || ch.Params["scope"] != wantScope || ch.Params["resource_metadata"] == "" {
					t.Errorf("%s challenge = %v, want scope %q", op, ch.Params, wantScope)
				}
			}
		})
	}
}

func TestToolErrorsAndWhoami(t *testing.T) {
	as, g := externalAS(t, nil)
	tok := as.Issue("alice", []string{"op"}, g.Resource, time.Hour)
	cs := mcpClient(t, g, tok)
	for _, tc := range []struct {
		op   string
		a, b float64
		want string
	}{
		{"divide", 1, 0, "division by zero"},
		{"multiply", 1e308, 1e308, "not a finite number"},
	} {
		res, err := calc(cs, tc.op, tc.a, tc.b)
		if err != nil || !res.IsError || !strings.Contains(fmt.Sprint(res.Content[0]), tc.want) {
			t.Errorf("%s(%v,%v): err %v result %+v, want isError %q", tc.op, tc.a, tc.b, err, res, tc.want)
		}
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	if err != nil || res.IsError {
		t.Fatalf("whoami: %v %+v", err, res)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var who struct {
		Sub       string   `json:"sub"`
		ClientID  string   `json:"client_id"`
		Scopes    []string `json:"scopes"`
		ExpiresAt string   `json:"expires_at"`
	}
	if err := json.Unmarshal(b, &who); err != nil || who.Sub != "alice" || who.ClientID == "" || strings.Join(who.Scopes, " ") != "op" || who.ExpiresAt == "" {
		t.Errorf("whoami = %s", b)
	}
	if strings.Contains(string(b), tok) || strings.Contains(fmt.Sprint(res.Content), tok) {
		t.Error("whoami returns the token")
	}
}

func TestScopeChallengeToolMode(t *testing.T) {
	as, g := externalAS(t, map[string]string{"SCOPE_CHALLENGE": "tool"})
	tok := as.Issue("bob", []string{"op:add"}, g.Resource, time.Hour)
	r := post(t, g.MCP(), fmt.Sprintf(callAdd, "divide"), bearer(tok))
	if r.Status != http.StatusOK {
		t.Fatalf("status %d, want 200 with an isError result; body %s", r.Status, r.Body)
	}
	var rpc struct {
		Result mcp.CallToolResult `json:"result"`
	}
	if err := json.Unmarshal(r.Body, &rpc); err != nil || !rpc.Result.IsError || !strings.Contains(string(r.Body), "op:div") {
		t.Errorf("result %s, want isError naming op:div", r.Body)
	}
}

func TestOriginCheck(t *testing.T) {
	as, g := externalAS(t, map[string]string{"ALLOWED_ORIGINS": "https://app.example.com"})
	tok := as.Issue("carol", []string{"op:add"}, g.Resource, time.Hour)
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"https://evil.example.com", http.StatusForbidden},
		{"null", http.StatusForbidden},
		{"https://app.example.com", http.StatusOK},
		{"http://localhost:" + g.Resource[len("http://localhost:"):strings.LastIndex(g.Resource, "/")], http.StatusOK},
	} {
		h := bearer(tok)
		h.Set("Origin", tc.origin)
		r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), h)
		if r.Status != tc.want {
			t.Errorf("Origin %s: status %d, want %d; body %s", tc.origin, r.Status, tc.want, r.Body)
		}
		if r.Status == http.StatusForbidden {
			r.json(t)
		}
	}
}

func TestAuthorizationServerFailures(t *testing.T) {
	as, g := externalAS(t, map[string]string{"INTROSPECTION_TIMEOUT": "300ms", "CACHE_NEGATIVE_TTL": "0s"})
	cases := []struct {
		name       string
		fail       func(w http.ResponseWriter, r *http.Request) bool
		wantStatus int
		notReady   bool
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) bool { w.WriteHeader(500); return true }, 503, false},
		{"non-JSON", func(w http.ResponseWriter, r *http.Request) bool { w.Write([]byte("<html>")); return true }, 503, false},
		{"timeout", func(w http.ResponseWriter, r *http.Request) bool {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return true
		}, 503, false},
		{"400 unsupported_token_type", func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"unsupported_token_type"}`))
			return true
		}, 401, false},
		{"401 to our credentials", func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"invalid_client"}`))
			return true
		}, 503, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := as.Issue(fmt.Sprintf("u%d", i), []string{"op:add"}, g.Resource, time.Hour)
			as.SetFailure(tc.fail)
			start := time.Now()
			r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok))
			if r.Status != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.Status, tc.wantStatus, r.Body)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("request took %v", time.Since(start))
			}
			r.json(t)
			if tc.wantStatus == 503 && r.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			resp, err := http.Get(g.BaseURL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if notReady := resp.StatusCode != 200; notReady != tc.notReady {
				t.Errorf("/readyz status %d, want not-ready=%v", resp.StatusCode, tc.notReady)
			}
			// Recovery: once the server answers again, the same token works.
			as.SetFailure(nil)
			if tc.wantStatus != 401 {
				if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok)); r.Status != 200 {
					t.Errorf("after recovery: status %d; body %s", r.Status, r.Body)
				}
			}
			waitReady(t, g)
		})
	}
	if !strings.Contains(g.Logs.String(), "introspection credentials rejected") {
		t.Error("a rejected client credential was not logged loudly")
	}
}

func TestCoalescing(t *testing.T) {
	as, g := externalAS(t, nil)
	as.SetLatency(100 * time.Millisecond)
	tok := as.Issue("dave", []string{"op:add"}, g.Resource, time.Hour)
	before := as.Calls()
	const n = 200
	var wg sync.WaitGroup
	var ok atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}}
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodPost, g.MCP(), strings.NewReader(fmt.Sprintf(callAdd, "add")))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := client.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != n {
		t.Errorf("%d of %d requests succeeded", ok.Load(), n)
	}
	if calls := as.Calls() - before; calls != 1 {
		t.Errorf("introspection calls = %d for %d concurrent requests with one token, want 1", calls, n)
	}
}

func TestRevokedTokenRefusedWithinCacheMaxTTL(t *testing.T) {
	const ttl = 500 * time.Millisecond
	as, g := externalAS(t, map[string]string{"CACHE_MAX_TTL": ttl.String()})
	tok := as.Issue("erin", []string{"op:add"}, g.Resource, time.Hour)
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok)); r.Status != 200 {
		t.Fatalf("status %d before revocation", r.Status)
	}
	as.Revoke(tok)
	revoked := time.Now()
	for {
		r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok))
		if r.Status == http.StatusUnauthorized {
			break
		}
		if r.Status != 200 {
			t.Fatalf("status %d", r.Status)
		}
		if time.Since(revoked) > ttl+time.Second {
			t.Fatalf("revoked token still accepted %v after revocation (CACHE_MAX_TTL %v)", time.Since(revoked), ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("revoked token refused %v after revocation", time.Since(revoked).Round(time.Millisecond))
}

func TestStatefulSessionBoundToUser(t *testing.T) {
	as, g := externalAS(t, map[string]string{"MCP_STATELESS": "false"})
	alice := as.Issue("alice", []string{"op"}, g.Resource, time.Hour)
	mallory := as.Issue("mallory", []string{"op"}, g.Resource, time.Hour)
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	r := post(t, g.MCP(), init, bearer(alice))
	sid := r.Header.Get("Mcp-Session-Id")
	if r.Status != 200 || sid == "" {
		t.Fatalf("initialize: %d session %q body %s", r.Status, sid, r.Body)
	}
	h := bearer(alice)
	h.Set("Mcp-Session-Id", sid)
	if r := post(t, g.MCP(), `{"jsonrpc":"2.0","method":"notifications/initialized"}`, h); r.Status != http.StatusAccepted {
		t.Fatalf("initialized: %d %s", r.Status, r.Body)
	}
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), h); r.Status != 200 {
		t.Fatalf("alice in her session: %d %s", r.Status, r.Body)
	}
	h = bearer(mallory)
	h.Set("Mcp-Session-Id", sid)
	r = post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), h)
	if r.Status != http.StatusForbidden {
		t.Fatalf("mallory reusing alice's session: status %d, want 403; body %s", r.Status, r.Body)
	}
	r.json(t)

	// The SDK client works in stateful mode too.
	cs := mcpClient(t, g, alice)
	if res, err := calc(cs, "add", 1, 2); err != nil || res.IsError {
		t.Errorf("SDK client, stateful: %v %+v", err, res)
	}
}

func TestHealthAndJSONErrors(t *testing.T) {
	_, g := externalAS(t, nil)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 200},
		{"GET", "/nope", 404},
		{"POST", "/.well-known/oauth-protected-resource/mcp", 405},
	} {
		req, _ := http.NewRequest(tc.method, g.BaseURL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !json.Valid(b) {
			t.Errorf("%s %s: %d %q, want %d with a JSON body", tc.method, tc.path, resp.StatusCode, b, tc.want)
		}
	}
}

func TestConfigurationErrorsListedAtOnce(t *testing.T) {
	env := envOf(map[string]string{
		"AUTH_ISSUER_URL":       "http://idp.example.com",
		"PORT":                  "eighty",
		"CACHE_MAX_TTL":         "forever",
		"MCP_STATELESS":         "perhaps",
		"SCOPE_CHALLENGE":       "sometimes",
		"MCP_RESOURCE_URL":      "ftp://x",
		"INTROSPECTION_TIMEOUT": "1ms",
		"TOKEN_VALIDATION":      "both",
		"JWT_ALGORITHMS":        "RS256 HS256",
		"JWT_INTROSPECT":        "true",
	})
	err := run(context.Background(), nil, env, io.Discard, io.Discard, nil)
	var ce *configError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a configuration error", err)
	}
	for _, want := range []string{"PORT", "CACHE_MAX_TTL", "MCP_STATELESS", "SCOPE_CHALLENGE", "MCP_RESOURCE_URL",
		"INTROSPECTION_TIMEOUT", "AUTH_ISSUER_URL", "TOKEN_VALIDATION", "JWT_ALGORITHMS",
		"INTROSPECTION_CLIENT_ID is required with JWT_INTROSPECT=true", "INTROSPECTION_CLIENT_SECRET"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	as, g := externalAS(t, nil)
	tok := as.Issue("frank", []string{"op:add"}, g.Resource, time.Hour)
	post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), nil)
	post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok))
	post(t, g.MCP(), fmt.Sprintf(callAdd, "divide"), bearer(tok))
	resp, err := http.Get(g.BaseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	for _, want := range []string{
		`mcp_gateway_auth_outcomes_total{reason="missing"} 1`,
		`mcp_gateway_auth_outcomes_total{reason="insufficient_scope"} 1`,
		`mcp_gateway_introspection_calls_total{outcome="active"} 1`,
		`mcp_gateway_cache_lookups_total{result="hit"}`,
		`mcp_gateway_tool_calls_total{operation="add",outcome="ok",tool="calculator"} 1`,
		`mcp_gateway_http_requests_total{code="200",route="/mcp"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, tok) || strings.Contains(text, "frank") {
		t.Error("/metrics contains the token or the subject")
	}
}

func TestMetricsOnTheirOwnPort(t *testing.T) {
	port := freePort(t)
	_, g := externalAS(t, map[string]string{"METRICS_PORT": fmt.Sprint(port)})
	resp, err := http.Get(g.BaseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the public port: %d, want 404", resp.StatusCode)
	}
	resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "mcp_gateway_") {
		t.Errorf("METRICS_PORT: %d %.200s", resp.StatusCode, b)
	}
	// The internal listener serves GET /metrics only.
	for _, tc := range []struct{ method, path string }{{"GET", "/"}, {"GET", "/mcp"}, {"POST", "/metrics"}, {"GET", "/metrics/x"}} {
		req, _ := http.NewRequest(tc.method, fmt.Sprintf("http://127.0.0.1:%d%s", port, tc.path), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(b), "mcp_gateway_") {
			t.Errorf("%s %s on METRICS_PORT: %d %.100s, want no metrics", tc.method, tc.path, resp.StatusCode, b)
		}
	}
}

// A client sending tokens the authorization server refuses is slowed down
// with 429, while a token already in the cache keeps working.
func TestRefusedTokenFloodRateLimited(t *testing.T) {
	as, g := externalAS(t, map[string]string{"CLIENT_REFUSAL_RATE": "1", "CLIENT_REFUSAL_BURST": "3"})
	valid := as.Issue("grace", []string{"op:add"}, g.Resource, time.Hour)
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(valid)); r.Status != 200 {
		t.Fatalf("valid token: %d", r.Status)
	}
	limited := 0
	for i := range 20 {
		r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(fmt.Sprintf("garbage-%d", i)))
		switch r.Status {
		case http.StatusTooManyRequests:
			limited++
			if r.Header.Get("Retry-After") == "" || r.json(t)["error"] != "rate_limited" {
				t.Errorf("429 without Retry-After or error: %v %s", r.Header, r.Body)
			}
		case http.StatusUnauthorized:
		default:
			t.Errorf("garbage token: status %d", r.Status)
		}
	}
	if limited < 10 {
		t.Errorf("%d of 20 refused tokens rate-limited, want most", limited)
	}
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(valid)); r.Status != 200 {
		t.Errorf("cached token during the flood: %d", r.Status)
	}
}

// With STALE_IF_ERROR, a token whose cached answer has aged out keeps
// working while the authorization server is down; a token never seen gets
// 503.
func TestStaleIfError(t *testing.T) {
	as, g := externalAS(t, map[string]string{"CACHE_MAX_TTL": "200ms", "STALE_IF_ERROR": "1m"})
	tok := as.Issue("heidi", []string{"op:add"}, g.Resource, time.Hour)
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok)); r.Status != 200 {
		t.Fatalf("before the outage: %d", r.Status)
	}
	as.SetFailure(func(w http.ResponseWriter, r *http.Request) bool { w.WriteHeader(http.StatusBadGateway); return true })
	calls := as.Calls()
	// Wait until the answer's fresh life is over: the gateway asks again.
	deadline := time.Now().Add(5 * time.Second)
	for as.Calls() == calls {
		if time.Now().After(deadline) {
			t.Fatal("the gateway never re-introspected after CACHE_MAX_TTL")
		}
		if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok)); r.Status != 200 {
			t.Fatalf("during the outage: %d %s", r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok)); r.Status != 200 {
		t.Errorf("stale answer not served: %d %s", r.Status, r.Body)
	}
	fresh := as.Issue("ivan", []string{"op:add"}, g.Resource, time.Hour)
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(fresh)); r.Status != http.StatusServiceUnavailable {
		t.Errorf("new token during the outage: %d, want 503", r.Status)
	}
	if !strings.Contains(g.Logs.String(), "stale") {
		t.Error("stale use not logged")
	}
}

// Bodies crafted so that a scope check and the SDK might read different
// operations: none may divide without op:div, and whenever the SDK would
// run a division the HTTP layer must already have answered 403.
func TestNoParserDifferentialBypass(t *testing.T) {
	as, g := externalAS(t, nil)
	tok := as.Issue("judy", []string{"op:add"}, g.Resource, time.Hour)
	const head = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":`
	bodies := []string{
		head + `{"operation":"add","operation":"divide","a":6,"b":3}}}`,
		head + `{"operation":"divide","operation":"add","a":6,"b":3}}}`,
		head + `{"operation":"add","Operation":"divide","a":6,"b":3}}}`,
		head + `{"Operation":"divide","a":6,"b":3}}}`,
		head + `{"operation":"divide","a":6,"b":3}}}x`,
		head + `{"operation":"divide","a":6,"b":3}}} {"jsonrpc":"2.0","id":2,"method":"tools/call"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","a":6,"b":3}},"params":{"name":"calculator","arguments":{"operation":"divide","a":6,"b":3}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"calculator","arguments":{"operation":"divide","a":6,"b":3}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","name":"calculator","arguments":{"operation":"divide","a":6,"b":3}}}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"calculator\",\"arguments\":{\"operation\":\"div\\u0069de\",\"a\":6,\"b\":3}}}",
	}
	for i, b := range bodies {
		r := post(t, g.MCP(), b, bearer(tok))
		if r.Status == http.StatusForbidden {
			continue
		}
		// Anything that got through must not be a successful division (6/3).
		var rpc struct {
			Result *mcp.CallToolResult `json:"result"`
		}
		_ = json.Unmarshal(r.Body, &rpc)
		if rpc.Result != nil && !rpc.Result.IsError {
			out, _ := json.Marshal(rpc.Result.StructuredContent)
			if strings.Contains(string(out), `"operation":"divide"`) {
				t.Errorf("body %d: division ran without op:div: %s", i, r.Body)
			}
		}
		if rpc.Result != nil && rpc.Result.IsError && strings.Contains(string(r.Body), "op:div") {
			t.Errorf("body %d: the SDK ran a division the HTTP check let through (the tool caught it): %s", i, r.Body)
		}
	}
}

// Limits on what a client controls: header size, body size, token length.
func TestRequestLimits(t *testing.T) {
	as, g := externalAS(t, map[string]string{"MAX_BODY_BYTES": "4096"})
	tok := as.Issue("leo", []string{"op:add"}, g.Resource, time.Hour)

	h := bearer(tok)
	h.Set("X-Padding", strings.Repeat("p", 40<<10))
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), h); r.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("40 KiB of headers: status %d, want 431", r.Status)
	}
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","a":1,"b":2,"pad":"` + strings.Repeat("x", 8<<10) + `"}}}`
	if r := post(t, g.MCP(), big, bearer(tok)); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("8 KiB body with MAX_BODY_BYTES=4096: status %d, want 413", r.Status)
	} else {
		r.json(t)
	}
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	if r := post(t, g.MCP(), deep, bearer(tok)); r.Status == http.StatusOK || r.Status >= 500 {
		t.Errorf("5000-deep JSON: status %d, want a 4xx", r.Status)
	}
}
