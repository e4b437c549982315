package main

// Interop, proxy mode: the gateway in front of the reference "everything"
// MCP server (TypeScript SDK; a server this project did not write), with
// a real authorization server (panva's oidc-provider), driven by the Go
// SDK's client and its OAuth handler: discovery from the 401, dynamic
// registration, authorization code with PKCE, introspection, step-up on
// 403, and everything the proxy forwards.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcp-gateway/mcp-gateway/interop"
)

// everythingPolicy uses the scopes oidc-provider offers (op:*).
const everythingPolicy = `
default: deny
tools:
  echo: []
  get-sum: [op:add]
  trigger-long-running-operation: [op:mult]
  get-tiny-image: [op:div]
  get-env: deny
`

// oauthUser is a user of the Go SDK's OAuth client: its handler (which
// registers, logs in as user and consents, then steps up when told), and
// how many authorizations it ran.
type oauthUser struct {
	handler *auth.AuthorizationCodeHandler
	rounds  atomic.Int32
}

// newOAuthUser asks for first at its first authorization and for what the
// server names (the challenge's scope) at later ones.
func newOAuthUser(t *testing.T, p *interop.Provider, user string, first []string) *oauthUser {
	t.Helper()
	u := &oauthUser{}
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{
				RedirectURIs:            []string{redirect},
				TokenEndpointAuthMethod: "none",
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ResponseTypes:           []string{"code"},
				ClientName:              "proxy interop " + user,
			},
		},
		RedirectURL:              redirect,
		AuthorizationCodeFetcher: p.AuthorizationCodeFetcher(user),
		ScopeFilter: func(discovered []string) []string {
			if u.rounds.Add(1) == 1 {
				return first
			}
			return discovered
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	u.handler = h
	return u
}

func (u *oauthUser) token(t *testing.T) string {
	t.Helper()
	ts, err := u.handler.TokenSource(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// connect opens an MCP session through the gateway with u's OAuth handler;
// every request also carries forged identity headers.
func (u *oauthUser) connect(t *testing.T, resource string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	forged := http.Header{"X-Mcp-Subject": {"mallory"}, "X-Mcp-Scopes": {"op"}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "proxy-interop", Version: "1"}, opts).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:     resource,
		OAuthHandler: u.handler,
		HTTPClient:   &http.Client{Transport: headerAdding{http.DefaultTransport, forged}},
		MaxRetries:   -1,
	}, nil)
	if err != nil {
		t.Fatalf("connect through OAuth: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

type headerAdding struct {
	base http.RoundTripper
	h    http.Header
}

func (a headerAdding) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range a.h {
		r.Header[k] = v
	}
	return a.base.RoundTrip(r)
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return names
}

func textOf(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// posts counts the POSTs the everything server received.
func posts(ev *interop.Everything) int {
	n := 0
	for _, r := range ev.Requests() {
		if r.Method == http.MethodPost {
			n++
		}
	}
	return n
}

func TestProxyInteropEverythingWithOIDCProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node twice")
	}
	ev := interop.StartEverything(t)
	portAll, portAllowed := freePort(t), freePort(t)
	resAll := fmt.Sprintf("http://localhost:%d/mcp", portAll)
	resAllowed := fmt.Sprintf("http://localhost:%d/mcp", portAllowed)
	p := interop.Start(t, resAll, resAllowed)
	const upstreamSecret = "Bearer everything-upstream-secret-0123456789"
	gateway := func(port int, resource, toolsList string) *gatewayUnderTest {
		g := startGateway(t, map[string]string{
			"PORT":                        strconv.Itoa(port),
			"MCP_RESOURCE_URL":            resource,
			"AUTH_ISSUER_URL":             p.Issuer,
			"INTROSPECTION_CLIENT_ID":     p.IntrospectionClientID,
			"INTROSPECTION_CLIENT_SECRET": p.IntrospectionClientSecret,
			"UPSTREAM_URL":                ev.URL,
			"UPSTREAM_AUTHORIZATION":      upstreamSecret,
			"UPSTREAM_TIMEOUT":            "10s",
			"POLICY":                      everythingPolicy,
			"TOOLS_LIST":                  toolsList,
		})
		waitReady(t, g)
		return g
	}
	gAll := gateway(portAll, resAll, "all")
	gAllowed := gateway(portAllowed, resAllowed, "allowed")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// alice consents to op:add and op:mult at first.
	alice := newOAuthUser(t, p, "alice", []string{"op:add", "op:mult"})
	var mu sync.Mutex
	var progressAt []time.Time
	cs := alice.connect(t, resAll, &mcp.ClientOptions{ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
		mu.Lock()
		progressAt = append(progressAt, time.Now())
		mu.Unlock()
	}})
	if cs.InitializeResult().ServerInfo.Name != "mcp-servers/everything" {
		t.Errorf("serverInfo %+v: the client must meet the upstream", cs.InitializeResult().ServerInfo)
	}

	t.Run("tools/list, TOOLS_LIST=all", func(t *testing.T) {
		// Every tool the policy does not deny, whatever alice holds.
		want := []string{"echo", "get-sum", "get-tiny-image", "trigger-long-running-operation"}
		if got := toolNames(t, cs); !slices.Equal(got, want) {
			t.Errorf("tools %q, want %q", got, want)
		}
	})

	t.Run("allowed call", func(t *testing.T) {
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-sum", Arguments: map[string]any{"a": 2, "b": 3}})
		if err != nil || r.IsError || !strings.Contains(textOf(r), "5") {
			t.Fatalf("get-sum: %v %+v", err, r)
		}
	})

	t.Run("default-deny tool invisible and refused before the upstream", func(t *testing.T) {
		for _, tool := range []string{"get-env", "get-annotated-message"} {
			before := posts(ev)
			_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool})
			if err == nil || !strings.Contains(err.Error(), "unknown tool") {
				t.Errorf("%s: %v", tool, err)
			}
			if n := posts(ev); n != before {
				t.Errorf("%s reached the upstream (%d POSTs, %d before)", tool, n, before)
			}
		}
	})

	t.Run("progress before the result", func(t *testing.T) {
		mu.Lock()
		progressAt = nil
		mu.Unlock()
		params := &mcp.CallToolParams{Name: "trigger-long-running-operation", Arguments: map[string]any{"duration": 2, "steps": 4}}
		params.SetProgressToken("long-1")
		r, err := cs.CallTool(ctx, params)
		done := time.Now()
		if err != nil || !strings.Contains(textOf(r), "completed") {
			t.Fatalf("long-running: %v %+v", err, r)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(progressAt) < 3 {
			t.Fatalf("%d progress notifications by the result, want at least 3", len(progressAt))
		}
		// 4 steps over 2 s: the first is sent 1.5 s before the result.
		if lead := done.Sub(progressAt[0]); lead < time.Second {
			t.Errorf("the first progress notification arrived only %v before the result", lead)
		}
	})

	t.Run("resource read", func(t *testing.T) {
		r, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "demo://resource/dynamic/text/1"})
		if err != nil || len(r.Contents) != 1 || !strings.HasPrefix(r.Contents[0].Text, "Resource 1:") {
			t.Fatalf("resource: %v %+v", err, r)
		}
	})

	t.Run("step-up, then success after consent", func(t *testing.T) {
		// get-tiny-image needs op:div: 403, the handler authorizes again
		// with the scope the challenge names, and the call is retried.
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-tiny-image"})
		if err != nil || r.IsError {
			t.Fatalf("get-tiny-image after step-up: %v %+v", err, r)
		}
		if n := alice.rounds.Load(); n != 2 {
			t.Errorf("authorization rounds %d, want 2 (one step-up)", n)
		}
		raw, err := p.Introspect(ctx, alice.token(t))
		if err != nil || !strings.Contains(string(raw), "op:div") {
			t.Errorf("introspection after step-up: %s %v", raw, err)
		}
	})

	bob := newOAuthUser(t, p, "bob", []string{"op:add"})

	t.Run("tools/list, TOOLS_LIST=allowed", func(t *testing.T) {
		bcs := bob.connect(t, resAllowed, nil)
		if got, want := toolNames(t, bcs), []string{"echo", "get-sum"}; !slices.Equal(got, want) {
			t.Errorf("bob (op:add) sees %q, want %q", got, want)
		}
	})

	t.Run("another user's session refused and never forwarded", func(t *testing.T) {
		bobAll := newOAuthUser(t, p, "bob", []string{"op:add"})
		bobAll.connect(t, resAll, nil) // bob's token for this gateway
		before := len(ev.Requests())
		h := bearer(bobAll.token(t))
		h.Set("Mcp-Session-Id", cs.ID())
		r := post(t, resAll, `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hijack"}}}`, h)
		if r.Status != http.StatusNotFound || r.json(t)["error"] != "session_not_found" {
			t.Errorf("bob with alice's session: %d %s", r.Status, r.Body)
		}
		if n := len(ev.Requests()); n != before {
			t.Errorf("the hijack reached the upstream (%d requests, %d before)", n, before)
		}
	})

	t.Run("the upstream sees the gateway's identity, never a token or a forgery", func(t *testing.T) {
		tokens := []string{alice.token(t)}
		subjects := map[string]bool{}
		for i, r := range ev.Requests() {
			all := fmt.Sprint(r.Header)
			for _, tok := range tokens {
				if strings.Contains(all, tok) {
					t.Errorf("request %d carries the client's token", i)
				}
			}
			if strings.Contains(all, "mallory") {
				t.Errorf("request %d carries the forged subject: %v", i, r.Header)
			}
			if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != upstreamSecret {
				t.Errorf("request %d: Authorization %q, want only the gateway's", i, got)
			}
			if s := r.Header.Values("X-Mcp-Subject"); len(s) > 0 {
				if len(s) != 1 || r.Header.Get("X-Mcp-Client-Id") == "" || r.Header.Get("X-Mcp-Scopes") == "" {
					t.Errorf("request %d: identity headers %v", i, r.Header)
				}
				subjects[s[0]] = true
			}
		}
		if !subjects["alice"] || !subjects["bob"] || len(subjects) != 2 {
			t.Errorf("subjects the upstream saw: %v", subjects)
		}
	})

	t.Run("upstream killed and restarted", func(t *testing.T) {
		ev.Stop()
		start := time.Now()
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "x"}}); err == nil {
			t.Fatal("a call to a dead upstream succeeded")
		}
		r := post(t, resAll, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, bearer(alice.token(t)))
		if r.Status != http.StatusBadGateway || r.json(t)["error"] != "bad_gateway" {
			t.Errorf("initialize with the upstream dead: %d %s", r.Status, r.Body)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("failing took %v", d)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			body := getBody(t, gAll.BaseURL+"/readyz")
			if strings.Contains(body, "upstream_unreachable") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("readyz with the upstream dead: %s", body)
			}
			time.Sleep(100 * time.Millisecond) // readiness is cached for 2 s
		}

		ev.Restart()
		// The old session died with the upstream; a new one works.
		cs2 := alice.connect(t, resAll, nil)
		r2, err := cs2.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "again"}})
		if err != nil || textOf(r2) != "Echo: again" {
			t.Fatalf("after restart: %v %+v", err, r2)
		}
		waitReady(t, gAll)
	})
	if t.Failed() {
		t.Logf("gateway (all) logs:\n%s\ngateway (allowed) logs:\n%s", gAll.Logs, gAllowed.Logs)
	}
}
