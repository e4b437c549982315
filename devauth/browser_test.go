package devauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

const chromiumPath = "/usr/bin/chromium"

// TestBrowserConsent drives the consent page in a real headless Chromium:
// it unticks two of the four scopes, types a user name, approves, and checks
// that the token carries exactly the two scopes left ticked. It saves
// screenshots of the consent page on a desktop and a phone viewport.
func TestBrowserConsent(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium is required in CI: %v", err)
		}
		t.Skipf("Chromium not installed at %s", chromiumPath)
	}
	// The browser runs in real time, so this test uses the real clock.
	h := newHarness(t, func(c *Config) { c.Now = time.Now })

	got := make(chan url.Values, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		select {
		case got <- r.URL.Query():
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>done</title><p id="done">You may close this window.</p>`))
	}))
	defer cb.Close()
	redirect := cb.URL + "/callback"
	clientID := h.register(redirect)

	artifacts := os.Getenv("TEST_ARTIFACTS_DIR")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

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
	for scope, want := range map[string]bool{scopes.Add: true, scopes.Subtract: true, scopes.Multiply: false, scopes.Divide: false} {
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
