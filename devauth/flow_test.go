package devauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// TestFullFlow drives the server the way an MCP client does, with the Go
// SDK's discovery and registration helpers and golang.org/x/oauth2:
// discovery → registration → authorize (posting the consent form) → token →
// refresh → introspect → revoke → introspect inactive.
func TestFullFlow(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The client's redirect target records the authorization response.
	got := make(chan url.Values, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query()
		_, _ = w.Write([]byte("done"))
	}))
	defer cb.Close()
	redirect := cb.URL + "/callback"

	meta, err := oauthex.GetAuthServerMeta(ctx, h.srv.MetadataURL(), h.issuer, nil)
	if err != nil || meta == nil {
		t.Fatalf("GetAuthServerMeta: %v %v", meta, err)
	}
	if !meta.AuthorizationResponseIssParameterSupported {
		t.Error("iss parameter support not advertised")
	}
	reg, err := oauthex.RegisterClient(ctx, meta.RegistrationEndpoint, &oauthex.ClientRegistrationMetadata{
		RedirectURIs:            []string{redirect},
		TokenEndpointAuthMethod: "none",
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		ClientName:              "Go SDK test client",
	}, nil)
	if err != nil {
		t.Fatalf("RegisterClient: %v", err)
	}

	cfg := &oauth2.Config{
		ClientID:    reg.ClientID,
		RedirectURL: redirect,
		Scopes:      []string{scopeAdd, scopeMultiply},
		Endpoint: oauth2.Endpoint{
			AuthURL:   meta.AuthorizationEndpoint,
			TokenURL:  meta.TokenEndpoint,
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	verifier := oauth2.GenerateVerifier()
	resource := oauth2.SetAuthURLParam("resource", testResource)
	authURL := cfg.AuthCodeURL("state-123", oauth2.S256ChallengeOption(verifier), resource)

	// The "user" reads the consent page and approves with a browser-like
	// client that follows the redirect to the callback.
	resp, body := h.get(authURL)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	}
	f := parseConsent(t, body)
	if len(f.scopes) != 2 {
		t.Fatalf("offered %v, want the two requested scopes", f.scopes)
	}
	browser := &http.Client{}
	resp, err = browser.PostForm(h.url("/consent"), url.Values{
		"id": {f.id}, "csrf": {f.csrf}, "action": {"approve"}, "user": {"alice"}, "scope": f.checked,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var q url.Values
	select {
	case q = <-got:
	case <-ctx.Done():
		t.Fatal("no authorization response")
	}
	if q.Get("state") != "state-123" || q.Get("iss") != meta.Issuer || q.Get("code") == "" {
		t.Fatalf("authorization response %v", q)
	}

	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier), resource)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.Extra("scope") != "op:add op:mult" {
		t.Fatalf("token %+v scope %v", tok, tok.Extra("scope"))
	}
	// The code cannot be exchanged twice.
	if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("second exchange succeeded")
	} else if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" {
		t.Fatalf("second exchange: %v", err)
	}
	// Which revoked the first tokens; run the flow again for a live grant.
	if h.active(tok.AccessToken) {
		t.Fatal("tokens survived code reuse")
	}
	verifier = oauth2.GenerateVerifier()
	_, body = h.get(cfg.AuthCodeURL("state-456", oauth2.S256ChallengeOption(verifier), resource))
	f = parseConsent(t, body)
	resp, err = browser.PostForm(h.url("/consent"), url.Values{
		"id": {f.id}, "csrf": {f.csrf}, "action": {"approve"}, "user": {"alice"}, "scope": f.checked,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q = <-got
	tok, err = cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier), resource)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}

	// Refresh through x/oauth2's token source.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	tok2, err := cfg.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh did not rotate")
	}
	if h.active(tok.RefreshToken) {
		t.Error("old refresh token still active")
	}

	in := h.introspect(tok2.AccessToken)
	if in["active"] != true || in["scope"] != "op:add op:mult" || in["aud"] != testResource ||
		in["iss"] != h.issuer || in["client_id"] != reg.ClientID || in["sub"] != "alice" {
		t.Fatalf("introspection %v", in)
	}

	// Revoke with RFC 7009 and see the token go inactive.
	resp, err = http.PostForm(meta.RevocationEndpoint, url.Values{"token": {tok2.AccessToken}, "token_type_hint": {"access_token"}, "client_id": {reg.ClientID}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if in := h.introspect(tok2.AccessToken); in["active"] != false {
		t.Fatalf("revoked token introspects as %v", in)
	}
}
