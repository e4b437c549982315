package main

// A real browser through the whole gateway in development mode: the Go MCP
// SDK's OAuth client opens the authorization URL in headless Chromium, a
// person's clicks are replayed on the consent page (add and sub ticked,
// multiply and divide unticked, a user name typed, Approve), and the
// browser's redirect reaches a local callback server.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/internal/browsertest"
)

var errStepUpRefused = errors.New("test: the user does not come back for a second consent")

func TestBrowserDevModeConsentThroughGateway(t *testing.T) {
	browsertest.Require(t)
	g := startGateway(t, nil)
	waitReady(t, g)

	artifacts := browsertest.ArtifactsDir(t)

	// The client's loopback redirect URI: records the authorization response.
	redirect, got := browsertest.Callback(t)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bctx := browsertest.New(t, ctx)

	want := map[string]bool{"op:add": true, "op:sub": true, "op:mult": false, "op:div": false}
	var rounds atomic.Int32
	var shot string
	// The fetcher runs on the goroutine that called Connect or CallTool:
	// here, always the test's own, so it may use t.
	browse := func(args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		if err := chromedp.Do(bctx,
			chromedp.EmulateViewport(1280, 800),
			chromedp.Navigate(args.URL),
			chromedp.WaitVisible(chromedp.CSS(`button[value="approve"]`)),
		); err != nil {
			return nil, fmt.Errorf("consent page: %w", err)
		}
		for scope, tick := range want {
			sel := `input[name="scope"][value="` + scope + `"]`
			checked, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector('`+sel+`').checked`))
			if err != nil {
				return nil, fmt.Errorf("scope %s on the consent page: %w", scope, err)
			}
			if checked != tick {
				if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
					return nil, fmt.Errorf("clicking %s: %w", scope, err)
				}
			}
		}
		// The field is empty: the SDK sends no login_hint.
		if err := chromedp.Do(bctx, chromedp.SendKeys(chromedp.ID("user"), "browser-alice")); err != nil {
			return nil, fmt.Errorf("typing the user name: %w", err)
		}
		if user, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById('user').value`)); err != nil || user != "browser-alice" {
			return nil, fmt.Errorf("user field = %q (%v), want browser-alice", user, err)
		}
		ticked, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](
			`[...document.querySelectorAll('input[name="scope"]:checked')].map(e => e.value)`))
		if err != nil {
			return nil, err
		}
		if !slices.Equal(ticked, []string{"op:add", "op:sub"}) {
			return nil, fmt.Errorf("ticked scopes %v, want exactly [op:add op:sub]", ticked)
		}
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			return nil, fmt.Errorf("screenshot: %w", err)
		}
		shot = filepath.Join(artifacts, "gateway-consent.png")
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			return nil, err
		}
		if err := chromedp.Do(bctx,
			chromedp.Click(chromedp.CSS(`button[value="approve"]`)),
			chromedp.WaitVisible(chromedp.ID("done")),
		); err != nil {
			return nil, fmt.Errorf("approving: %w", err)
		}
		select {
		case q := <-got:
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		case <-bctx.Done():
			return nil, errors.New("the redirect never reached the client")
		}
	}

	// The SDK hides the error of a failed server/discover attempt (it falls
	// back to initialize), so the fetcher's errors are logged here.
	fetch := func(_ context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		if rounds.Add(1) > 1 {
			return nil, errStepUpRefused
		}
		res, err := browse(args)
		if err != nil {
			t.Errorf("browser authorization: %v", err)
		}
		return res, err
	}

	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: publicClientMetadata(redirect, "browser e2e"),
		},
		RedirectURL:              redirect,
		AuthorizationCodeFetcher: fetch,
		RequestRefreshToken:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "browser-e2e", Version: "1"}, nil)
	start := time.Now()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: g.Resource, OAuthHandler: handler, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect through OAuth in Chromium: %v\nlogs:\n%s", err, g.Logs)
	}
	defer cs.Close()
	t.Logf("browser authorization took %v; consent screenshot: %s", time.Since(start).Round(time.Millisecond), shot)
	if n := rounds.Load(); n != 1 {
		t.Fatalf("consent rounds = %d, want 1", n)
	}

	res, err := calc(cs, "add", 2, 3)
	if err != nil || res.IsError {
		t.Fatalf("add: %v %+v", err, res)
	}
	if r := calcResult(t, res); r != 5 {
		t.Errorf("2 + 3 = %v", r)
	}
	if who := callWhoami(t, cs); who.Sub != "browser-alice" || !slices.Equal(who.Scopes, []string{"op:add", "op:sub"}) {
		t.Errorf("whoami = %+v, want browser-alice with [op:add op:sub]", who)
	}

	// divide: the gateway asks for op:div; the user does not consent again,
	// so the call fails with the fetcher's error.
	res, err = calc(cs, "divide", 6, 3)
	if err == nil && !res.IsError {
		t.Fatalf("divide succeeded with only op:add and op:sub: %+v", res)
	}
	if !errors.Is(err, errStepUpRefused) {
		t.Errorf("divide error = %v, want the step-up's %v", err, errStepUpRefused)
	}
	if n := rounds.Load(); n != 2 {
		t.Errorf("consent rounds after divide = %d, want 2 (a refused step-up)", n)
	}
	// The same token over raw HTTP: 403 insufficient_scope naming op:div
	// and the scopes already granted.
	ts, err := handler.TokenSource(ctx)
	if err != nil || ts == nil {
		t.Fatalf("token source: %v", err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	r := post(t, g.Resource, fmt.Sprintf(callAdd, "divide"), bearer(tok.AccessToken))
	if r.Status != http.StatusForbidden {
		t.Fatalf("divide over HTTP: status %d, want 403; body %s", r.Status, r.Body)
	}
	if ch := challenge(t, r); ch.Params["error"] != "insufficient_scope" || ch.Params["scope"] != "op:div op:add op:sub" {
		t.Errorf("divide challenge %v, want insufficient_scope with scope=\"op:div op:add op:sub\"", ch.Params)
	}
	if r := post(t, g.Resource, fmt.Sprintf(callAdd, "subtract"), bearer(tok.AccessToken)); r.Status != http.StatusOK {
		t.Errorf("subtract over HTTP: status %d; body %s", r.Status, r.Body)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
}
