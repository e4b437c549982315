package main

// Development mode end to end: `go run .` with no configuration. The gateway
// runs the embedded authorization server (devauth) on its own listener at
// <origin>/dev-auth and introspects it over HTTP. These tests drive the
// complete local OAuth flow the way an MCP client does: the Go MCP SDK's
// client with its OAuth support (discovery from the 401, RFC 9728 and RFC
// 8414 metadata, RFC 7591 registration, authorization code with PKCE and
// RFC 8707 resource, step-up on 403, refresh), with the "browser" part done
// over plain HTTP by devauthtest.ConsentBot, which reads and submits the consent form.
// browser_e2e_test.go does the same in a real Chromium.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/mcp-gateway/mcp-gateway/devauth/devauthtest"
	"github.com/mcp-gateway/mcp-gateway/internal/htmlform"
	"github.com/mcp-gateway/mcp-gateway/internal/oauthtest"
)

var devScopes = []string{"op:add", "op:sub", "op:mult", "op:div"}

// publicClientMetadata is the RFC 7591 metadata of a native MCP client with
// a loopback redirect URI.
func publicClientMetadata(redirect, name string) *oauthex.ClientRegistrationMetadata {
	return &oauthex.ClientRegistrationMetadata{
		RedirectURIs:            []string{redirect},
		TokenEndpointAuthMethod: "none",
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		ClientName:              name,
	}
}

func loopbackRedirect(t *testing.T) string {
	return fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
}

func calcResult(t *testing.T, res *mcp.CallToolResult) float64 {
	t.Helper()
	var out struct {
		Result float64 `json:"result"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("calculator result %s: %v", b, err)
	}
	return out.Result
}

type whoamiResult struct {
	Sub      string   `json:"sub"`
	Username string   `json:"username"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

func callWhoami(t *testing.T, cs *mcp.ClientSession) whoamiResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	if err != nil || res.IsError {
		t.Fatalf("whoami: %v %+v", err, res)
	}
	var who whoamiResult
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &who); err != nil {
		t.Fatalf("whoami %s: %v", b, err)
	}
	return who
}

// TestDevModeSDKOAuthFlow is the acceptance test: with no
// configuration, the SDK's OAuth client discovers the embedded authorization
// server from the gateway's 401, registers, gets the user's consent for add
// and sub only, exchanges the code and calls the calculator; divide's 403
// step-up is answered by a second consent that grants op:div; whoami names
// the user typed on the consent page; an expired access token is refreshed
// without another consent.
func TestDevModeSDKOAuthFlow(t *testing.T) {
	const ttl = 2 * time.Second
	g := startGateway(t, map[string]string{"DEV_AUTH_TOKEN_TTL": ttl.String()})
	waitReady(t, g)
	issuer := strings.TrimSuffix(g.Resource, "/mcp") + "/dev-auth"

	redirect := loopbackRedirect(t)
	bot := &devauthtest.ConsentBot{
		User:     "dev-alice",
		Redirect: redirect,
		// Round one: only add and sub of the four offered. Round two (the
		// step-up for divide): everything offered, op:div included.
		Decide: devauthtest.GrantRounds([]string{"op:add", "op:sub"}, nil),
	}
	asTraffic := &oauthtest.Recorder{Base: http.DefaultTransport}
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: publicClientMetadata(redirect, "dev mode e2e"),
		},
		RedirectURL:              redirect,
		AuthorizationCodeFetcher: bot.Fetch,
		RequestRefreshToken:      true,
		Client:                   &http.Client{Transport: asTraffic, Timeout: 10 * time.Second},
		// oauth2's default token source treats a token as expired 10s
		// early, so with a 2s token it would refresh before every request.
		// Refresh only in the last 300ms instead, so that the refresh below
		// happens because the token expired, and can be seen to.
		NewTokenSource: func(ctx context.Context, cfg *oauth2.Config, tok *oauth2.Token) (oauth2.TokenSource, error) {
			return oauth2.ReuseTokenSourceWithExpiry(tok, cfg.TokenSource(ctx, tok), 300*time.Millisecond), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mcpTraffic := &oauthtest.Recorder{Base: http.DefaultTransport}
	client := mcp.NewClient(&mcp.Implementation{Name: "devmode-e2e", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:     g.Resource,
		HTTPClient:   &http.Client{Transport: mcpTraffic},
		OAuthHandler: handler,
		MaxRetries:   -1,
	}, nil)
	if err != nil {
		t.Fatalf("connect through OAuth: %v\nlogs:\n%s", err, g.Logs)
	}
	defer cs.Close()

	// Discovery -> registration -> consent -> token exchange.
	if n := bot.Rounds(); n != 1 {
		t.Fatalf("consent rounds after connect = %d, want 1", n)
	}
	if got := bot.OfferedIn(1); !slices.Equal(got, devScopes) {
		t.Errorf("round 1 consent offers %v, want %v (the scopes of the 401 challenge)", got, devScopes)
	}
	if statuses, _ := mcpTraffic.Snapshot(); len(statuses) == 0 || statuses[0] != http.StatusUnauthorized {
		t.Errorf("first MCP response statuses %v, want a 401 first", statuses)
	}
	res, err := calc(cs, "add", 2, 3)
	if err != nil || res.IsError {
		t.Fatalf("add: %v %+v", err, res)
	}
	if r := calcResult(t, res); r != 5 {
		t.Errorf("2 + 3 = %v", r)
	}
	who := callWhoami(t, cs)
	if who.Sub != "dev-alice" || who.ClientID == "" || !slices.Equal(who.Scopes, []string{"op:add", "op:sub"}) {
		t.Errorf("whoami = %+v, want sub dev-alice with scopes [op:add op:sub]", who)
	}
	ts, err := handler.TokenSource(ctx)
	if err != nil || ts == nil {
		t.Fatalf("token source: %v", err)
	}
	first, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if first.RefreshToken == "" {
		t.Error("the token response has no refresh token")
	}
	if s, _ := first.Extra("scope").(string); s != "op:add op:sub" {
		t.Errorf("token response scope = %q, want \"op:add op:sub\"", s)
	}

	// Step-up: divide needs op:div. The gateway answers 403
	// insufficient_scope, the SDK asks for consent again, the bot grants
	// op:div, and the retried call succeeds.
	res, err = calc(cs, "divide", 6, 3)
	if err != nil || res.IsError {
		t.Fatalf("divide after step-up: %v %+v\nlogs:\n%s", err, res, g.Logs)
	}
	if r := calcResult(t, res); r != 2 {
		t.Errorf("6 / 3 = %v", r)
	}
	if n := bot.Rounds(); n != 2 {
		t.Errorf("consent rounds after divide = %d, want 2 (one step-up)", n)
	}
	if got, want := bot.OfferedIn(2), []string{"op:add", "op:sub", "op:div"}; !slices.Equal(got, want) {
		t.Errorf("step-up consent offers %v, want %v", got, want)
	}
	_, forbidden := mcpTraffic.Snapshot()
	if len(forbidden) != 1 {
		t.Fatalf("403 responses = %q, want exactly one", forbidden)
	}
	cs403, err := oauthex.ParseWWWAuthenticate([]string{forbidden[0]})
	if err != nil || len(cs403) != 1 || cs403[0].Params["error"] != "insufficient_scope" || cs403[0].Params["scope"] != "op:div op:add op:sub" {
		t.Errorf("403 challenge %q (%v), want insufficient_scope with scope \"op:div op:add op:sub\"", forbidden[0], err)
	}
	who = callWhoami(t, cs)
	if who.Sub != "dev-alice" || !slices.Equal(who.Scopes, []string{"op:add", "op:sub", "op:div"}) {
		t.Errorf("whoami after step-up = %+v", who)
	}
	if res, err := calc(cs, "subtract", 6, 3); err != nil || res.IsError {
		t.Errorf("subtract after step-up (scope kept): %v %+v", err, res)
	}

	// Refresh: wait until the access token has expired (by its Expiry, as
	// the client sees it), then call again. The token source must refresh,
	// and the gateway must accept the new token, with no consent. Every
	// authorization replaces the handler's token source, so the one read
	// before the step-up would still hold the first token.
	if ts, err = handler.TokenSource(ctx); err != nil || ts == nil {
		t.Fatalf("token source after step-up: %v", err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.Expiry.IsZero() || time.Until(tok.Expiry) > ttl+time.Second {
		t.Fatalf("token expiry %v, want about %v from now (DEV_AUTH_TOKEN_TTL)", tok.Expiry, ttl)
	}
	refreshesBefore := asTraffic.Refreshes()
	deadline := time.Now().Add(10 * time.Second)
	for !time.Now().After(tok.Expiry) {
		if time.Now().After(deadline) {
			t.Fatalf("token expiry %v never passed", tok.Expiry)
		}
		time.Sleep(min(50*time.Millisecond, time.Until(tok.Expiry)+time.Millisecond))
	}
	res, err = calc(cs, "divide", 8, 2)
	if err != nil || res.IsError {
		t.Fatalf("divide after the access token expired: %v %+v\nlogs:\n%s", err, res, g.Logs)
	}
	if r := calcResult(t, res); r != 4 {
		t.Errorf("8 / 2 = %v", r)
	}
	used := mcpTraffic.LastToken()
	if used == "" || used == tok.AccessToken {
		t.Error("the call after expiry did not use a new access token")
	}
	if n := asTraffic.Refreshes() - refreshesBefore; n < 1 {
		t.Errorf("refresh_token grants after expiry = %d, want at least 1", n)
	}
	if n := bot.Rounds(); n != 2 {
		t.Errorf("consent rounds after refresh = %d, want still 2", n)
	}
	if who := callWhoami(t, cs); who.Sub != "dev-alice" || !slices.Contains(who.Scopes, "op:div") {
		t.Errorf("whoami after refresh = %+v", who)
	}
	// The expired token itself is refused.
	r := post(t, g.Resource, fmt.Sprintf(callAdd, "add"), bearer(tok.AccessToken))
	if r.Status != http.StatusUnauthorized || challenge(t, r).Params["error"] != "invalid_token" {
		t.Errorf("expired access token: status %d, challenge %q; want 401 invalid_token", r.Status, r.Header.Values("WWW-Authenticate"))
	}
	t.Logf("issuer %s; %d refresh grant(s); %d consent rounds", issuer, asTraffic.Refreshes(), bot.Rounds())
	if strings.Contains(g.Logs.String(), tok.AccessToken) || strings.Contains(g.Logs.String(), used) {
		t.Error("an access token appears in the logs")
	}
}

// TestDevModeConsentDenied: the user clicks Deny (or approves with nothing
// ticked); the client gets access_denied.
func TestDevModeConsentDenied(t *testing.T) {
	g := startGateway(t, nil)
	waitReady(t, g)
	for _, tc := range []struct {
		name string
		ans  devauthtest.ConsentAnswer
	}{
		{"deny", devauthtest.ConsentAnswer{Grant: devScopes, Deny: true}},
		{"approve nothing", devauthtest.ConsentAnswer{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redirect := loopbackRedirect(t)
			bot := &devauthtest.ConsentBot{User: "dev-bob", Redirect: redirect,
				Decide: func(int, []string, []string) devauthtest.ConsentAnswer { return tc.ans }}
			handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
				DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: publicClientMetadata(redirect, "denied")},
				RedirectURL:                     redirect,
				AuthorizationCodeFetcher:        bot.Fetch,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			client := mcp.NewClient(&mcp.Implementation{Name: "denied", Version: "1"}, nil)
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: g.Resource, OAuthHandler: handler, MaxRetries: -1}, nil)
			if err == nil {
				cs.Close()
				t.Fatal("connect succeeded after the user denied consent")
			}
			var ae *devauthtest.AuthorizationError
			if !errors.As(err, &ae) || ae.Code != "access_denied" {
				t.Fatalf("connect error = %v, want the authorization error access_denied", err)
			}
			if ae.Iss == "" || ae.State == "" {
				t.Errorf("error response without state or iss: %+v", ae)
			}
			// The SDK (v1.8.0) first tries SEP-2575 server/discover and, when
			// that fails for any reason, falls back to initialize, which
			// asks for consent again: the user is asked at most twice.
			if n := bot.Rounds(); n < 1 || n > 2 {
				t.Errorf("consent rounds = %d, want 1 or 2", n)
			}
		})
	}
}

// devASClient is a public client registered at the embedded authorization
// server, found the way a client finds it: from the gateway's metadata.
type devASClient struct {
	meta   *oauthex.AuthServerMeta
	cfg    *oauth2.Config
	bot    *devauthtest.ConsentBot
	issuer string
}

func newDevASClient(t *testing.T, g *gatewayUnderTest, user string, grant []string) *devASClient {
	t.Helper()
	ctx := context.Background()
	prmURL := strings.Replace(g.Resource, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1)
	prm, err := oauthex.GetProtectedResourceMetadata(ctx, prmURL, g.Resource, http.DefaultClient)
	if err != nil || len(prm.AuthorizationServers) != 1 {
		t.Fatalf("protected resource metadata: %+v %v", prm, err)
	}
	issuer := prm.AuthorizationServers[0]
	if want := strings.TrimSuffix(g.Resource, "/mcp") + "/dev-auth"; issuer != want {
		t.Errorf("authorization server %q, want %q", issuer, want)
	}
	meta, err := auth.GetAuthServerMetadata(ctx, issuer, http.DefaultClient)
	if err != nil || meta == nil {
		t.Fatalf("authorization server metadata: %v", err)
	}
	redirect := loopbackRedirect(t)
	reg, err := oauthex.RegisterClient(ctx, meta.RegistrationEndpoint, publicClientMetadata(redirect, "token endpoint e2e"), http.DefaultClient)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	return &devASClient{
		meta:   meta,
		issuer: issuer,
		bot:    &devauthtest.ConsentBot{User: user, Redirect: redirect, Decide: devauthtest.GrantRounds(grant)},
		cfg: &oauth2.Config{
			ClientID:    reg.ClientID,
			Endpoint:    oauth2.Endpoint{AuthURL: meta.AuthorizationEndpoint, TokenURL: meta.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
			RedirectURL: redirect,
			Scopes:      devScopes,
		},
	}
}

// authorize runs the authorization request with the given verifier and
// resource and returns the authorization response (or its error).
func (c *devASClient) authorize(state, verifier, resource string) (*auth.AuthorizationResult, error) {
	u := c.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", resource))
	return c.bot.Fetch(context.Background(), &auth.AuthorizationArgs{URL: u})
}

func (c *devASClient) exchange(code, verifier, resource string) (*oauth2.Token, error) {
	return c.cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", resource))
}

func wantGrantError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want an RFC 6749 error response %s", err, code)
	}
	if re.ErrorCode != code || re.Response.StatusCode != http.StatusBadRequest {
		t.Fatalf("token endpoint answered %d %s (%s), want 400 %s", re.Response.StatusCode, re.ErrorCode, re.ErrorDescription, code)
	}
}

// waitRefused polls the gateway with tok until it answers 401
// invalid_token, for at most within, and returns how long that took.
func waitRefused(t *testing.T, g *gatewayUnderTest, tok string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := post(t, g.Resource, fmt.Sprintf(callAdd, "add"), bearer(tok))
		if r.Status == http.StatusUnauthorized {
			if ch := challenge(t, r); ch.Params["error"] != "invalid_token" {
				t.Errorf("challenge %v, want error=invalid_token", ch.Params)
			}
			return time.Since(start)
		}
		if r.Status != http.StatusOK {
			t.Fatalf("status %d while waiting for refusal; body %s", r.Status, r.Body)
		}
		if time.Since(start) > within {
			t.Fatalf("token still accepted %v later", time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestDevModeAuthorizationServerErrors drives the embedded authorization
// server's endpoints directly and checks each RFC error, and that the
// gateway notices revocation within CACHE_MAX_TTL.
func TestDevModeAuthorizationServerErrors(t *testing.T) {
	const cacheTTL = time.Second
	g := startGateway(t, map[string]string{"CACHE_MAX_TTL": cacheTTL.String()})
	waitReady(t, g)
	c := newDevASClient(t, g, "dev-carol", []string{"op:add"})
	if !c.meta.AuthorizationResponseIssParameterSupported || !slices.Contains(c.meta.CodeChallengeMethodsSupported, "S256") || c.meta.RevocationEndpoint == "" {
		t.Errorf("authorization server metadata %+v", c.meta)
	}

	t.Run("wrong PKCE verifier", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		res, err := c.authorize("pkce", verifier, g.Resource)
		if err != nil {
			t.Fatal(err)
		}
		if res.State != "pkce" || res.Iss != c.issuer {
			t.Errorf("authorization response state %q iss %q", res.State, res.Iss)
		}
		_, err = c.exchange(res.Code, oauth2.GenerateVerifier(), g.Resource)
		wantGrantError(t, err, "invalid_grant")
		// The failed attempt used the code up.
		_, err = c.exchange(res.Code, verifier, g.Resource)
		wantGrantError(t, err, "invalid_grant")
	})

	t.Run("reused code", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		res, err := c.authorize("reuse", verifier, g.Resource)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.exchange(res.Code, verifier, g.Resource)
		if err != nil {
			t.Fatalf("first exchange: %v", err)
		}
		if s, _ := tok.Extra("scope").(string); s != "op:add" {
			t.Errorf("granted scope %q, want op:add", s)
		}
		if r := post(t, g.Resource, fmt.Sprintf(callAdd, "add"), bearer(tok.AccessToken)); r.Status != http.StatusOK {
			t.Fatalf("add with the new token: %d %s", r.Status, r.Body)
		}
		_, err = c.exchange(res.Code, verifier, g.Resource)
		wantGrantError(t, err, "invalid_grant")
		// RFC 6749 §4.1.2: the tokens issued from a replayed code are
		// revoked, so the gateway stops accepting them.
		d := waitRefused(t, g, tok.AccessToken, cacheTTL+2*time.Second)
		t.Logf("token of a replayed code refused after %v", d.Round(time.Millisecond))
	})

	t.Run("foreign resource", func(t *testing.T) {
		_, err := c.authorize("evil", oauth2.GenerateVerifier(), "https://evil.example/mcp")
		var ae *devauthtest.AuthorizationError
		if !errors.As(err, &ae) || ae.Code != "invalid_target" {
			t.Fatalf("err = %v, want a redirect with error=invalid_target", err)
		}
		if ae.State != "evil" || ae.Iss != c.issuer {
			t.Errorf("error response state %q iss %q, want evil and %s", ae.State, ae.Iss, c.issuer)
		}
	})

	t.Run("revoked token", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		res, err := c.authorize("revoke", verifier, g.Resource)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.exchange(res.Code, verifier, g.Resource)
		if err != nil {
			t.Fatal(err)
		}
		// Accepted, and so cached by the gateway.
		for range 2 {
			if r := post(t, g.Resource, fmt.Sprintf(callAdd, "add"), bearer(tok.AccessToken)); r.Status != http.StatusOK {
				t.Fatalf("add before revocation: %d %s", r.Status, r.Body)
			}
		}
		resp, err := http.PostForm(c.meta.RevocationEndpoint, url.Values{
			"token": {tok.AccessToken}, "token_type_hint": {"access_token"}, "client_id": {c.cfg.ClientID},
		})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: status %d", resp.StatusCode)
		}
		d := waitRefused(t, g, tok.AccessToken, cacheTTL+time.Second)
		t.Logf("revoked token refused after %v (CACHE_MAX_TTL %v)", d.Round(time.Millisecond), cacheTTL)
	})
}

// TestDevModeBannerAndTokenPage: the banner tells a newcomer where things
// are, and the token page mints a token the gateway honours scope by scope.
func TestDevModeBannerAndTokenPage(t *testing.T) {
	g := startGateway(t, nil)
	waitReady(t, g)

	out := g.Stdout.String()
	lower := strings.ToLower(out)
	for _, want := range []string{
		g.Resource,
		"npx -y @modelcontextprotocol/inspector@2.12.0", "npx -y mcp-remote " + g.Resource, "docs/clients.md",
		"claude mcp add --transport http calculator " + g.Resource,
		strings.TrimSuffix(g.Resource, "/mcp") + "/dev-auth",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("banner does not contain %q:\n%s", want, out)
		}
	}
	if !strings.Contains(lower, "development mode") || !strings.Contains(lower, "not use this mode in production") {
		t.Errorf("banner does not say development mode, not for production:\n%s", out)
	}
	if strings.Contains(g.Logs.String(), "claude mcp add") {
		t.Error("the banner went to the log stream, not stdout")
	}

	// The token page: GET, fill the mint form for op:add, POST, read the token.
	pageURL := strings.TrimSuffix(g.Resource, "/mcp") + "/dev-auth/"
	resp, err := http.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", pageURL, resp.StatusCode)
	}
	page, _ := url.Parse(pageURL)
	form, err := htmlform.First(body, page, http.MethodPost)
	if err != nil {
		t.Fatal(err)
	}
	var offered []string
	for _, in := range form.OfType("checkbox", "scope") {
		offered = append(offered, in.Value)
	}
	csrf := form.Values()["csrf"]
	if len(csrf) != 1 || csrf[0] == "" || !slices.Equal(offered, devScopes) || len(form.OfType("text", "user")) != 1 {
		t.Fatalf("token page form %+v", form)
	}
	v := url.Values{"csrf": csrf, "scope": {"op:add"}, "user": {"page-user"}}
	resp, err = http.PostForm(form.Action.String(), v)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST token page: %d %s", resp.StatusCode, body)
	}
	tok, ok := htmlform.ElementText(body, "token")
	tok = strings.TrimSpace(tok)
	if !ok || tok == "" {
		t.Fatalf("no token on the page:\n%s", body)
	}
	if curl, _ := htmlform.ElementText(body, "curl"); !strings.Contains(curl, g.Resource) || !strings.Contains(curl, tok) {
		t.Errorf("curl command %q does not call %s with the token", curl, g.Resource)
	}

	r := post(t, g.Resource, fmt.Sprintf(callAdd, "add"), bearer(tok))
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"result":9`) {
		t.Fatalf("add with the page's token: %d %s", r.Status, r.Body)
	}
	r = post(t, g.Resource, fmt.Sprintf(callAdd, "divide"), bearer(tok))
	if r.Status != http.StatusForbidden {
		t.Fatalf("divide with an op:add token: status %d, want 403; body %s", r.Status, r.Body)
	}
	if ch := challenge(t, r); ch.Params["error"] != "insufficient_scope" || ch.Params["scope"] != "op:div op:add" {
		t.Errorf("divide challenge %v, want insufficient_scope with scope \"op:div op:add\"", ch.Params)
	}
	who := callWhoami(t, mcpClient(t, g, tok))
	if who.Sub != "page-user" || who.ClientID != "devauth-token-page" || !slices.Equal(who.Scopes, []string{"op:add"}) {
		t.Errorf("whoami with the page's token = %+v", who)
	}
	// The CSRF token is single-use: replaying the form is refused.
	resp, err = http.PostForm(form.Action.String(), v)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("replayed token page form: status %d, want 403", resp.StatusCode)
	}
}
