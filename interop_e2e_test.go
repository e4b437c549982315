package main

// Interop: the gateway in front of a real authorization server this project
// did not write (panva's oidc-provider, a certified OpenID provider, run by
// package interop), used by the Go MCP SDK's own OAuth client: discovery
// from the 401, RFC 9728 metadata, RFC 8414 metadata, RFC 7591 dynamic
// registration, authorization code with PKCE and RFC 8707 resource, opaque
// tokens, RFC 7662 introspection, step-up on 403 and revocation.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcp-gateway/mcp-gateway/interop"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestInteropOIDCProviderWithSDKOAuthClient(t *testing.T) {
	port := freePort(t)
	resource := fmt.Sprintf("http://localhost:%d/mcp", port)
	p := interop.Start(t, resource)
	g := startGateway(t, map[string]string{
		"PORT":                        strconv.Itoa(port),
		"MCP_RESOURCE_URL":            resource,
		"AUTH_ISSUER_URL":             p.Issuer,
		"INTROSPECTION_CLIENT_ID":     p.IntrospectionClientID,
		"INTROSPECTION_CLIENT_SECRET": p.IntrospectionClientSecret,
		"CACHE_MAX_TTL":               "1s",
	})
	waitReady(t, g)

	// The first authorization asks for add and sub only; the step-up after
	// a 403 then asks for what the challenge names.
	var rounds atomic.Int32
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{
				RedirectURIs:            []string{redirect},
				TokenEndpointAuthMethod: "none",
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ResponseTypes:           []string{"code"},
				ClientName:              "gateway interop test",
			},
		},
		RedirectURL:              redirect,
		AuthorizationCodeFetcher: p.AuthorizationCodeFetcher("alice"),
		ScopeFilter: func(discovered []string) []string {
			if rounds.Add(1) == 1 {
				return []string{"op:add", "op:sub"}
			}
			return discovered
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "interop", Version: "1"}, nil)
	ctx := context.Background()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: resource, OAuthHandler: handler, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect through OAuth: %v\nlogs:\n%s", err, g.Logs)
	}
	defer cs.Close()
	if rounds.Load() != 1 {
		t.Fatalf("authorization rounds = %d, want 1", rounds.Load())
	}

	res, err := calc(cs, "add", 2, 3)
	if err != nil || res.IsError {
		t.Fatalf("add with op:add: %v %+v", err, res)
	}
	who, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil || who.IsError {
		t.Fatalf("whoami: %v %+v", err, who)
	}
	t.Logf("whoami: %v", who.StructuredContent)

	// divide needs op:div: the gateway answers 403 insufficient_scope, the
	// SDK steps up (a second authorization that keeps add and sub), and the
	// retried call succeeds.
	res, err = calc(cs, "divide", 6, 3)
	if err != nil || res.IsError {
		t.Fatalf("divide after step-up: %v %+v", err, res)
	}
	if rounds.Load() != 2 {
		t.Errorf("authorization rounds = %d, want 2 (one step-up)", rounds.Load())
	}
	ts, err := handler.TokenSource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := p.Introspect(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("introspection after step-up: %s", raw)
	if res, err := calc(cs, "subtract", 6, 3); err != nil || res.IsError {
		t.Errorf("subtract after step-up (scope kept): %v %+v", err, res)
	}

	// Revocation at the authorization server: refused within CACHE_MAX_TTL.
	if err := p.Revoke(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := post(t, resource, fmt.Sprintf(callAdd, "add"), bearer(tok.AccessToken))
		if r.Status == http.StatusUnauthorized {
			if ch := challenge(t, r); ch.Params["error"] != "invalid_token" {
				t.Errorf("challenge after revocation: %v", ch.Params)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked token still accepted (status %d)", r.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
