package interop_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/mcp-gateway/mcp-gateway/interop"
)

const resource = "http://127.0.0.1:9/mcp"

// introspection is the subset of an RFC 7662 answer the tests look at; Aud
// is kept raw because its shape (string or array) is what we want to learn.
type introspection struct {
	Active    bool            `json:"active"`
	Aud       json.RawMessage `json:"aud"`
	Scope     string          `json:"scope"`
	Sub       string          `json:"sub"`
	ClientID  string          `json:"client_id"`
	Exp       int64           `json:"exp"`
	Iat       int64           `json:"iat"`
	Iss       string          `json:"iss"`
	TokenType string          `json:"token_type"`
}

func (i introspection) audiences(t *testing.T) []string {
	t.Helper()
	if len(i.Aud) == 0 {
		return nil
	}
	var one string
	if err := json.Unmarshal(i.Aud, &one); err == nil {
		return []string{one}
	}
	var many []string
	if err := json.Unmarshal(i.Aud, &many); err != nil {
		t.Fatalf("aud is neither string nor array: %s", i.Aud)
	}
	return many
}

func introspect(t *testing.T, p *interop.Provider, token, label string) introspection {
	t.Helper()
	raw, err := p.Introspect(t.Context(), token)
	if err != nil {
		t.Fatalf("introspect %s: %v", label, err)
	}
	t.Logf("introspection of %s: %s", label, raw)
	var got introspection
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("decode introspection: %v", err)
	}
	return got
}

// freeRedirectURI returns a loopback callback URL on a port nobody listens on.
func freeRedirectURI(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("http://%s/callback", l.Addr())
}

func register(t *testing.T, p *interop.Provider, redirectURI string) *oauthex.ClientRegistrationResponse {
	t.Helper()
	reg, err := oauthex.RegisterClient(t.Context(), p.RegistrationEndpoint, &oauthex.ClientRegistrationMetadata{
		RedirectURIs:            []string{redirectURI},
		TokenEndpointAuthMethod: "none",
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		ClientName:              "interop test client",
		ApplicationType:         "native",
	}, nil)
	if err != nil {
		t.Fatalf("dynamic client registration: %v", err)
	}
	if reg.ClientID == "" {
		t.Fatal("registration returned no client_id")
	}
	return reg
}

func TestDiscovery(t *testing.T) {
	p := interop.Start(t, resource)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		resp, err := http.Get(p.Issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
			continue
		}
		var md map[string]any
		if err := json.Unmarshal(body, &md); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if md["issuer"] != p.Issuer {
			t.Errorf("%s: issuer %v, want %s", path, md["issuer"], p.Issuer)
		}
		for _, k := range []string{"introspection_endpoint", "registration_endpoint", "revocation_endpoint", "token_endpoint", "authorization_endpoint"} {
			if s, _ := md[k].(string); !strings.HasPrefix(s, p.Issuer+"/") {
				t.Errorf("%s: %s = %v", path, k, md[k])
			}
		}
		if got := fmt.Sprint(md["code_challenge_methods_supported"]); got != "[S256]" {
			t.Errorf("%s: code_challenge_methods_supported = %s", path, got)
		}
		if md["authorization_response_iss_parameter_supported"] != true {
			t.Errorf("%s: authorization_response_iss_parameter_supported = %v", path, md["authorization_response_iss_parameter_supported"])
		}
	}
	// The Go MCP SDK's own discovery (RFC 8414 first, then OpenID) accepts it.
	asm, err := auth.GetAuthServerMetadata(t.Context(), p.Issuer, nil)
	if err != nil || asm == nil {
		t.Fatalf("auth.GetAuthServerMetadata: %v, %v", asm, err)
	}
	if asm.IntrospectionEndpoint != p.IntrospectionEndpoint || !asm.AuthorizationResponseIssParameterSupported {
		t.Errorf("SDK metadata: %+v", asm)
	}
	if !slices.Contains(asm.ScopesSupported, "offline_access") || !slices.Contains(asm.ScopesSupported, "op:div") {
		t.Errorf("scopes_supported = %v", asm.ScopesSupported)
	}
}

func TestAuthorizationCodeFlowIntrospectRefreshRevoke(t *testing.T) {
	p := interop.Start(t, resource)
	ctx := t.Context()

	redirectURI := freeRedirectURI(t)
	reg := register(t, p, redirectURI)
	t.Logf("registered client %s (auth method %q)", reg.ClientID, reg.TokenEndpointAuthMethod)

	cfg := &oauth2.Config{
		ClientID: reg.ClientID,
		Endpoint: oauth2.Endpoint{
			AuthURL:   p.AuthorizationEndpoint,
			TokenURL:  p.TokenEndpoint,
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: redirectURI,
		Scopes:      []string{"op:add", "op:sub"},
	}
	verifier := oauth2.GenerateVerifier()
	state := "state-" + oauth2.GenerateVerifier()[:8]
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", resource))

	back, err := p.Login(ctx, authURL, "alice")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if !strings.HasPrefix(back.String(), redirectURI+"?") {
		t.Fatalf("Login stopped at %s, want the redirect URI %s", back, redirectURI)
	}
	q := back.Query()
	if q.Get("state") != state || q.Get("code") == "" || q.Get("iss") != p.Issuer {
		t.Fatalf("redirect query = %v", q)
	}

	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", resource))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	t.Logf("token response: token_type=%s scope=%v expires_in=%v refresh=%t", tok.TokenType, tok.Extra("scope"), tok.ExpiresIn, tok.RefreshToken != "")

	got := introspect(t, p, tok.AccessToken, "access token")
	checkAccess(t, p, got, reg.ClientID, "alice", []string{"op:add", "op:sub"}, []string{"op:div", "op:mult", "op"})

	if tok.RefreshToken == "" {
		t.Fatal("no refresh token issued")
	}
	rt := introspect(t, p, tok.RefreshToken, "refresh token")
	if !rt.Active {
		t.Errorf("refresh token introspects inactive")
	}
	if rt.TokenType != "" {
		t.Logf("note: refresh token introspection has token_type %q", rt.TokenType)
	}

	// Refresh (no resource parameter: useGrantedResource gives the same audience).
	old := *tok
	old.Expiry = time.Now().Add(-time.Minute)
	tok2, err := cfg.TokenSource(ctx, &old).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.AccessToken == tok.AccessToken {
		t.Fatal("refresh returned the same access token")
	}
	got2 := introspect(t, p, tok2.AccessToken, "refreshed access token")
	checkAccess(t, p, got2, reg.ClientID, "alice", []string{"op:add", "op:sub"}, []string{"op:div"})

	// The introspection client may revoke any token (the helper other
	// packages' tests use to revoke "at the IdP"). oidc-provider then revokes
	// every token of the grant, the refresh token included.
	if err := p.Revoke(ctx, tok2.AccessToken); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if got := introspect(t, p, tok2.AccessToken, "revoked access token"); got.Active {
		t.Errorf("revoked token still active")
	}
	if got := introspect(t, p, tok2.RefreshToken, "refresh token of the revoked grant"); got.Active {
		t.Errorf("refresh token still active after its access token was revoked")
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token(); err == nil {
		t.Errorf("refresh succeeded after revocation")
	} else {
		t.Logf("refresh after revocation: %v", err)
	}

	// Garbage and wrong credentials.
	if got := introspect(t, p, "not-a-token", "garbage"); got.Active {
		t.Error("garbage token active")
	}
	req, _ := http.NewRequest(http.MethodPost, p.IntrospectionEndpoint, strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(p.IntrospectionClientID, "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("introspection with a wrong secret: HTTP %d %s", resp.StatusCode, body)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong secret: HTTP %d, want 401", resp.StatusCode)
	}
}

func checkAccess(t *testing.T, p *interop.Provider, got introspection, clientID, sub string, want, notWant []string) {
	t.Helper()
	if !got.Active {
		t.Fatalf("access token inactive")
	}
	if auds := got.audiences(t); !slices.Contains(auds, resource) {
		t.Errorf("aud = %s, want %s", got.Aud, resource)
	}
	scopes := strings.Fields(got.Scope)
	for _, s := range want {
		if !slices.Contains(scopes, s) {
			t.Errorf("scope %q lacks %s", got.Scope, s)
		}
	}
	for _, s := range notWant {
		if slices.Contains(scopes, s) {
			t.Errorf("scope %q has %s", got.Scope, s)
		}
	}
	if got.Sub != sub {
		t.Errorf("sub = %q, want %q", got.Sub, sub)
	}
	if got.ClientID != clientID {
		t.Errorf("client_id = %q, want %q", got.ClientID, clientID)
	}
	if got.Iss != p.Issuer {
		t.Errorf("iss = %q, want %q", got.Iss, p.Issuer)
	}
	if got.TokenType == "" {
		t.Errorf("token_type missing")
	}
	now := time.Now().Unix()
	if got.Exp <= now || got.Exp > now+301 || got.Iat > now+5 {
		t.Errorf("exp %d iat %d (now %d)", got.Exp, got.Iat, now)
	}
}

func TestDefaultResourceAndPreregisteredClient(t *testing.T) {
	second := "http://127.0.0.1:10/mcp"
	p := interop.Start(t, resource, second)
	ctx := t.Context()

	// mcp-test-client accepts http://127.0.0.1/callback on any port.
	redirectURI := freeRedirectURI(t)
	cfg := &oauth2.Config{
		ClientID:    interop.TestClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: p.AuthorizationEndpoint, TokenURL: p.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: redirectURI,
		Scopes:      []string{"op:div"},
	}
	for _, tc := range []struct {
		name     string
		resource string // "" sends none: the first configured resource applies
		wantAud  string
	}{
		{"default resource", "", resource},
		{"second resource", second, second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			var opts []oauth2.AuthCodeOption
			if tc.resource != "" {
				opts = append(opts, oauth2.SetAuthURLParam("resource", tc.resource))
			}
			authURL := cfg.AuthCodeURL("s1", append(opts, oauth2.S256ChallengeOption(verifier))...)
			back, err := p.Login(ctx, authURL, "bob")
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			tok, err := cfg.Exchange(ctx, back.Query().Get("code"), append(opts, oauth2.VerifierOption(verifier))...)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			got := introspect(t, p, tok.AccessToken, tc.name)
			if !got.Active || !slices.Contains(got.audiences(t), tc.wantAud) || got.Scope != "op:div" || got.Sub != "bob" || got.ClientID != interop.TestClientID {
				t.Errorf("introspection = %+v (aud %s)", got, got.Aud)
			}
		})
	}

	t.Run("unknown resource", func(t *testing.T) {
		authURL := cfg.AuthCodeURL("s2", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("resource", "http://127.0.0.1:11/mcp"))
		back, err := p.Login(ctx, authURL, "bob")
		var aerr *interop.AuthorizationError
		if !errors.As(err, &aerr) || aerr.Code != "invalid_target" {
			t.Fatalf("Login = %v, %v; want invalid_target", back, err)
		}
	})

	t.Run("no PKCE", func(t *testing.T) {
		back, err := p.Login(ctx, cfg.AuthCodeURL("s3", oauth2.SetAuthURLParam("resource", resource)), "bob")
		var aerr *interop.AuthorizationError
		if !errors.As(err, &aerr) || aerr.Code != "invalid_request" {
			t.Fatalf("Login = %v, %v; want invalid_request", back, err)
		}
	})
}

func TestAuthorizationCodeFetcher(t *testing.T) {
	p := interop.Start(t, resource)
	ctx := t.Context()
	redirectURI := freeRedirectURI(t)
	cfg := &oauth2.Config{
		ClientID:    interop.TestClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: p.AuthorizationEndpoint, TokenURL: p.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: redirectURI,
		Scopes:      []string{"op:add", "op:mult"},
	}
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("fetch-state", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", resource))
	res, err := p.AuthorizationCodeFetcher("carol")(ctx, &auth.AuthorizationArgs{URL: authURL})
	if err != nil {
		t.Fatal(err)
	}
	if res.State != "fetch-state" || res.Iss != p.Issuer || res.Code == "" {
		t.Fatalf("result = %+v", res)
	}
	tok, err := cfg.Exchange(ctx, res.Code, oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", resource))
	if err != nil {
		t.Fatal(err)
	}
	got := introspect(t, p, tok.AccessToken, "fetched")
	checkAccess(t, p, got, interop.TestClientID, "carol", []string{"op:add", "op:mult"}, []string{"op:sub", "op:div"})

	// The public client revokes its own access token (RFC 7009).
	form := url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}, "client_id": {interop.TestClientID}}
	resp, err := http.PostForm(p.RevocationEndpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation: HTTP %d", resp.StatusCode)
	}
	if got := introspect(t, p, tok.AccessToken, "self-revoked access token"); got.Active {
		t.Errorf("revoked token still active")
	}

	// An error redirect is an error from the fetcher.
	bad := cfg.AuthCodeURL("x", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", "http://127.0.0.1:12/other"))
	if _, err := p.AuthorizationCodeFetcher("carol")(ctx, &auth.AuthorizationArgs{URL: bad}); err == nil {
		t.Fatal("fetcher accepted an error redirect")
	}
}

// TestSDKAuthorizationCodeHandler drives the Go MCP SDK's whole OAuth client
// (PRM discovery, AS discovery, dynamic client registration, PKCE, RFC 9207
// iss check, code exchange with the resource indicator) against
// oidc-provider, with a stand-in resource that only serves its RFC 9728
// metadata.
func TestSDKAuthorizationCodeHandler(t *testing.T) {
	rs := httptest.NewUnstartedServer(nil)
	resourceURL := "http://" + rs.Listener.Addr().String() + "/mcp"
	p := interop.Start(t, resourceURL)
	prm := &oauthex.ProtectedResourceMetadata{
		Resource:             resourceURL,
		AuthorizationServers: []string{p.Issuer},
		ScopesSupported:      []string{"op:add", "op:sub", "op:mult", "op:div"},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(prm)
	})
	rs.Config.Handler = mux
	rs.Start()
	t.Cleanup(rs.Close)

	redirectURI := freeRedirectURI(t)
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{
				RedirectURIs:            []string{redirectURI},
				TokenEndpointAuthMethod: "none",
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ResponseTypes:           []string{"code"},
				ClientName:              "go-sdk interop",
			},
		},
		AuthorizationCodeFetcher: p.AuthorizationCodeFetcher("dave"),
		RequestRefreshToken:      true,
	})
	if err != nil {
		t.Fatal(err)
	}

	// The 401 an MCP server would answer, with a scope challenge.
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, resourceURL, nil)
	resp := &http.Response{
		StatusCode: http.StatusUnauthorized,
		Header: http.Header{"Www-Authenticate": {
			`Bearer resource_metadata="http://` + rs.Listener.Addr().String() + `/.well-known/oauth-protected-resource/mcp", scope="op:add op:sub"`,
		}},
		Body:    io.NopCloser(strings.NewReader("")),
		Request: req,
	}
	if err := h.Authorize(t.Context(), req, resp); err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	ts, err := h.TokenSource(t.Context())
	if err != nil || ts == nil {
		t.Fatalf("TokenSource: %v, %v", ts, err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	got := introspect(t, p, tok.AccessToken, "SDK-obtained access token")
	if !got.Active || !slices.Contains(got.audiences(t), resourceURL) || got.Sub != "dave" {
		t.Fatalf("introspection = %+v (aud %s)", got, got.Aud)
	}
	scopes := strings.Fields(got.Scope)
	if !slices.Contains(scopes, "op:add") || !slices.Contains(scopes, "op:sub") || slices.Contains(scopes, "op:div") {
		t.Errorf("scope = %q", got.Scope)
	}
	if tok.RefreshToken == "" {
		t.Error("SDK flow got no refresh token")
	}
}
