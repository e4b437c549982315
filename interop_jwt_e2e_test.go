package main

// Interop with JWT access tokens (RFC 9068): panva's oidc-provider issuing
// JWTs (ACCESS_TOKEN_FORMAT=jwt) and the gateway configured as a newcomer
// would, with AUTH_ISSUER_URL and MCP_RESOURCE_URL only: no introspection
// credentials. The Go SDK's own OAuth client connects; a key rotation at
// the provider is picked up without restarting the gateway; a flood of
// tokens with unknown kids costs at most one JWKS fetch per
// JWKS_MIN_REFRESH.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcp-gateway/mcp-gateway/interop"
)

// jwtHeader decodes the protected header of a JWS compact serialization.
func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	h, _, ok := strings.Cut(tok, ".")
	if !ok || strings.Count(tok, ".") != 2 {
		t.Fatalf("not a JWS compact serialization (%d dots)", strings.Count(tok, "."))
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sdkConnect connects the Go SDK's MCP client through its OAuth handler
// (dynamic registration, PKCE, resource indicator), logging in as user.
func sdkConnect(t *testing.T, p *interop.Provider, resource, user string) (*mcp.ClientSession, *auth.AuthorizationCodeHandler) {
	t.Helper()
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{
				RedirectURIs:            []string{redirect},
				TokenEndpointAuthMethod: "none",
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ResponseTypes:           []string{"code"},
				ClientName:              "gateway JWT interop test",
			},
		},
		RedirectURL:              redirect,
		AuthorizationCodeFetcher: p.AuthorizationCodeFetcher(user),
	})
	if err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "interop-jwt", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: resource, OAuthHandler: handler, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect through OAuth: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs, handler
}

func accessToken(t *testing.T, h *auth.AuthorizationCodeHandler) string {
	t.Helper()
	ts, err := h.TokenSource(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func TestInteropOIDCProviderJWTWithoutIntrospection(t *testing.T) {
	port := freePort(t)
	resource := fmt.Sprintf("http://localhost:%d/mcp", port)
	p := interop.StartWith(t, interop.Options{AccessTokenFormat: "jwt"}, resource)
	env := map[string]string{"MCP_RESOURCE_URL": resource, "AUTH_ISSUER_URL": p.Issuer}

	// The newcomer runs the doctor first.
	code, out := runDoctor(t, env)
	if code != checkReady {
		t.Fatalf("doctor exit %d, want 0", code)
	}
	wantLines(t, out, "ok   token validation: TOKEN_VALIDATION=auto without introspection credentials: every token must be a JWT",
		"ok   JWKS: "+p.Issuer+"/jwks")

	started := time.Now()
	g := startGateway(t, map[string]string{
		"PORT":             strconv.Itoa(port),
		"MCP_RESOURCE_URL": resource,
		"AUTH_ISSUER_URL":  p.Issuer,
		"JWKS_MIN_REFRESH": "1s",
	})
	waitReady(t, g)

	cs, handler := sdkConnect(t, p, resource, "alice")
	if res, err := calc(cs, "add", 2, 3); err != nil || res.IsError {
		t.Fatalf("add: %v %+v\nlogs:\n%s", err, res, g.Logs)
	}
	first := accessToken(t, handler)
	h := jwtHeader(t, first)
	if h["typ"] != "at+jwt" {
		t.Errorf("oidc-provider's access token header %v: want typ at+jwt", h)
	}
	firstKID, _ := h["kid"].(string)
	// The doctor with CHECK_TOKEN says the gateway would accept it.
	env[checkTokenEnv] = first
	if code, out := runDoctor(t, env); code != checkReady || !strings.Contains(out, "ok   CHECK_TOKEN: the gateway would accept this token (verified locally as a JWT") {
		t.Errorf("doctor with the token: exit %d\n%s", code, out)
	} else {
		notIn(t, out, first)
	}

	// The provider rotates its signing key; a new login gets a token
	// signed with it, which the running gateway accepts. The gateway
	// fetched the JWKS when it started and refetches for an unknown kid
	// once JWKS_MIN_REFRESH (1s) has passed since: wait that long, as an
	// identity provider's rotation would be (they publish a new key long
	// before signing with it).
	time.Sleep(time.Until(started.Add(1100 * time.Millisecond)))
	newKID, err := p.RotateKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fetchesBefore := metric(t, g, `mcp_gateway_jwks_fetches_total{outcome="ok"}`)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway logs:\n%s", g.Logs)
		}
	})
	cs2, handler2 := sdkConnect(t, p, resource, "bob")
	if res, err := calc(cs2, "add", 2, 3); err != nil || res.IsError {
		t.Fatalf("add with a token signed by the rotated key: %v %+v\nlogs:\n%s", err, res, g.Logs)
	}
	if kid := jwtHeader(t, accessToken(t, handler2))["kid"]; kid != newKID || kid == firstKID {
		t.Errorf("token after rotation has kid %v, want the new %s (old %s)", kid, newKID, firstKID)
	}
	if n := metric(t, g, `mcp_gateway_jwks_fetches_total{outcome="ok"}`) - fetchesBefore; n < 1 {
		t.Errorf("no JWKS fetch picked up the rotation")
	}
	// The old key stays published: the first session still works.
	if res, err := calc(cs, "add", 1, 1); err != nil || res.IsError {
		t.Errorf("the token signed before the rotation: %v %+v", err, res)
	}

	// 1,000 tokens with unknown kids: at most one JWKS fetch per
	// JWKS_MIN_REFRESH (1s here).
	before, start := metric(t, g, `mcp_gateway_jwks_fetches_total{outcome="ok"}`), time.Now()
	floodUnknownKIDs(t, g, p.Issuer, 1000)
	fetches := metric(t, g, `mcp_gateway_jwks_fetches_total{outcome="ok"}`) - before
	allowed := 1 + float64(time.Since(start)/time.Second)
	t.Logf("1000 unknown kids in %v: %v JWKS fetches (at most %v allowed)", time.Since(start).Round(time.Millisecond), fetches, allowed)
	if fetches > allowed {
		t.Errorf("1000 unknown kids caused %v JWKS fetches, want at most %v", fetches, allowed)
	}
	if v := metric(t, g, `mcp_gateway_introspection_calls_total{outcome="active"}`); v != 0 {
		t.Errorf("%v introspection calls without credentials", v)
	}
}
