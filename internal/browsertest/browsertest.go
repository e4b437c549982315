// Package browsertest runs Debian's headless Chromium for tests, through
// chromedp, the way this machine and CI can: no sandbox (tests run as
// root), no background networking (the network is closed, and Chromium's
// calls home would be refused by the dozen), a fresh profile per test.
package browsertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// Require skips the test when Chromium is not installed, except in CI
// (CI=true), which installs it: there a missing browser is a failure.
func Require(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("Chromium is required in CI: %v", err)
		}
		tb.Skipf("Chromium not installed at %s", ChromiumPath)
	}
}

// New starts a headless Chromium that lives until ctx ends or the test
// does, and returns the context that drives it.
func New(tb testing.TB, ctx context.Context) context.Context {
	tb.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(tb.TempDir()),
	)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(tb.Logf))
	tb.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	return bctx
}

// ArtifactsDir is where a test keeps what a person should look at
// (screenshots): $TEST_ARTIFACTS_DIR, created if needed, else a temporary
// directory.
func ArtifactsDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("TEST_ARTIFACTS_DIR")
	if dir == "" {
		return tb.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// Callback serves an OAuth client's loopback redirect URI for the test: it
// returns the URI and a channel that receives the query of the first
// authorization response the browser is redirected to.
func Callback(tb testing.TB) (redirectURI string, got <-chan url.Values) {
	ch := make(chan url.Values, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		select {
		case ch <- r.URL.Query():
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>done</title><p id="done">You may close this window.</p>`))
	}))
	tb.Cleanup(srv.Close)
	return srv.URL + "/callback", ch
}
