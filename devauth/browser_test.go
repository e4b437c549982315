package devauth

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/mcp-gateway/mcp-gateway/internal/browsertest"
)

// TestBrowserConsent drives the consent page in a real headless Chromium:
// it unticks two of the four scopes, types a user name, approves, and checks
// that the token carries exactly the two scopes left ticked; then a step-up
// consent for the same client is approved without retyping the name. It
// saves screenshots of the consent page on a desktop and a phone viewport.
func TestBrowserConsent(t *testing.T) {
	browsertest.Require(t)
	// The browser runs in real time, so this test uses the real clock.
	h := newHarness(t, func(c *Config) { c.Now = time.Now })

	redirect, got := browsertest.Callback(t)
	clientID := h.register(redirect)

	artifacts := browsertest.ArtifactsDir(t)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bctx := browsertest.New(t, ctx)

	authURL := func(verifier, state string) string {
		return authzRequest{clientID: clientID, redirectURI: redirect, verifier: verifier, state: state}.url(h)
	}
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(artifacts, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}

	// Phone first: only look.
	if err := chromedp.Do(bctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(authURL(oauth2.GenerateVerifier(), "mobile")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="approve"]`)),
	); err != nil {
		t.Fatalf("mobile consent page: %v", err)
	}
	screenshot("consent-mobile.png")

	// Desktop: approve two of the four scopes.
	verifier := oauth2.GenerateVerifier()
	if err := chromedp.Do(bctx,
		chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(authURL(verifier, "desktop")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="approve"]`)),
	); err != nil {
		t.Fatalf("consent page: %v", err)
	}
	screenshot("consent.png")

	if err := chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`input[name="scope"][value="op:mult"]`)),
		chromedp.Click(chromedp.CSS(`input[name="scope"][value="op:div"]`)),
		chromedp.SendKeys(chromedp.ID("user"), "browser-user"),
	); err != nil {
		t.Fatalf("filling the form: %v", err)
	}
	for scope, want := range map[string]bool{scopeAdd: true, scopeSubtract: true, scopeMultiply: false, scopeDivide: false} {
		checked, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector('input[name="scope"][value="`+scope+`"]').checked`))
		if err != nil {
			t.Fatal(err)
		}
		if checked != want {
			t.Fatalf("%s checked = %v, want %v", scope, checked, want)
		}
	}
	if err := chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`button[value="approve"]`)),
		chromedp.WaitVisible(chromedp.ID("done")),
	); err != nil {
		t.Fatalf("approving: %v", err)
	}

	var q url.Values
	select {
	case q = <-got:
	case <-ctx.Done():
		t.Fatal("the redirect never reached the client")
	}
	if q.Get("state") != "desktop" || q.Get("iss") != h.issuer || q.Get("code") == "" {
		t.Fatalf("authorization response %v", q)
	}
	status, tok := h.exchange(clientID, redirect, q.Get("code"), verifier)
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %v", status, tok)
	}
	in := h.introspect(tok["access_token"].(string))
	if in["active"] != true || in["scope"] != "op:add op:sub" || in["username"] != "browser-user" {
		t.Fatalf("introspection %v, want scope exactly \"op:add op:sub\"", in)
	}

	// A step-up consent for the same client: the user name approved a
	// moment ago is already filled in, so approving is one click.
	stepVerifier := oauth2.GenerateVerifier()
	if err := chromedp.Do(bctx,
		chromedp.Navigate(authzRequest{clientID: clientID, redirectURI: redirect, verifier: stepVerifier, state: "stepup", scope: scopeDivide}.url(h)),
		chromedp.WaitVisible(chromedp.CSS(`button[value="approve"]`)),
	); err != nil {
		t.Fatalf("step-up consent page: %v", err)
	}
	value, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById('user').value`))
	if err != nil {
		t.Fatal(err)
	}
	placeholder, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById('user').placeholder`))
	if err != nil {
		t.Fatal(err)
	}
	if value != "browser-user" || ValidUser(placeholder) {
		t.Fatalf("step-up consent: user field %q, placeholder %q; want the remembered name and a placeholder that is not a name", value, placeholder)
	}
	screenshot("consent-stepup.png")
	if err := chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`button[value="approve"]`)),
		chromedp.WaitVisible(chromedp.ID("done")),
	); err != nil {
		t.Fatalf("approving the step-up: %v", err)
	}
	select {
	case q = <-got:
	case <-ctx.Done():
		t.Fatal("the step-up redirect never reached the client")
	}
	status, tok = h.exchange(clientID, redirect, q.Get("code"), stepVerifier)
	if status != http.StatusOK {
		t.Fatalf("step-up exchange: %d %v", status, tok)
	}
	if in := h.introspect(tok["access_token"].(string)); in["scope"] != scopeDivide || in["username"] != "browser-user" {
		t.Fatalf("step-up introspection %v", in)
	}

	// The token page mints a token in the browser too.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(h.url("/")),
		chromedp.Click(chromedp.CSS(`input[name="scope"][value="op:div"]`)),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("curl")),
	); err != nil {
		t.Fatalf("token page: %v", err)
	}
	minted, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("token")))
	if err != nil {
		t.Fatal(err)
	}
	if in := h.introspect(minted); in["active"] != true || in["scope"] != "op:add op:sub op:mult" || in["username"] != "developer" {
		t.Fatalf("minted token introspection %v", in)
	}
	screenshot("token-page.png")
}
