// Package interop runs a real authorization server that this project did not
// write — panva's oidc-provider (Node.js, a certified OpenID provider) — on
// loopback for Go tests, configured for the MCP authorization profile: open
// RFC 7591 dynamic client registration, RFC 7662 introspection, RFC 7009
// revocation, RFC 8707 resource indicators with opaque access tokens whose
// audience is the resource URL, and PKCE S256.
//
// The Node side lives in interop/oidc-provider (server.mjs). It needs `node`
// and `npm` on PATH; the first Start runs
//
//	npm ci --prefix interop/oidc-provider
//
// when the pinned packages are not installed yet (package-lock.json fixes
// every version), so `go test ./...` is the whole test command. Start fails
// the test when Node.js is missing or the install fails, unless
// INTEROP_SKIP=1, in which case it skips.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/internal/htmlform"
	"github.com/mcp-gateway/mcp-gateway/internal/syncbuf"
)

// Defaults of the pre-registered clients in server.mjs.
const (
	// DefaultIntrospectionClientID and DefaultIntrospectionClientSecret are the
	// credentials of the confidential client that may introspect (and revoke)
	// any token.
	DefaultIntrospectionClientID     = "gateway"
	DefaultIntrospectionClientSecret = "gateway-secret"
	// TestClientID is a pre-registered public client (token_endpoint_auth_method
	// none, PKCE required, grant types authorization_code and refresh_token)
	// whose redirect URI is TestClientRedirectURI on any loopback port
	// (native application, RFC 8252 section 7.3).
	TestClientID          = "mcp-test-client"
	TestClientRedirectURI = "http://127.0.0.1/callback"
)

// Provider is a running oidc-provider.
type Provider struct {
	// Issuer is the issuer identifier and base URL, http://127.0.0.1:<port>.
	Issuer string
	// IntrospectionClientID and IntrospectionClientSecret authenticate
	// (client_secret_basic) to the introspection and revocation endpoints.
	IntrospectionClientID, IntrospectionClientSecret string

	// Endpoints, as in the provider's discovery document.
	AuthorizationEndpoint string
	TokenEndpoint         string
	IntrospectionEndpoint string
	RevocationEndpoint    string
	RegistrationEndpoint  string
	// Metadata is the raw discovery document.
	Metadata map[string]any

	issuerURL *url.URL
}

// Dir returns the directory of the Node project (interop/oidc-provider).
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("interop", "oidc-provider")
	}
	return filepath.Join(filepath.Dir(file), "oidc-provider")
}

// install runs npm ci in dir unless the pinned package pkg is already
// there, holding a lock so that parallel test binaries install once.
func install(dir, pkg string) error {
	marker := filepath.Join(dir, "node_modules", filepath.FromSlash(pkg), "package.json")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(marker); err == nil {
		return nil // another test binary installed it while we waited
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("npm is not on PATH")
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("INTEROP_SKIP") == "1" {
		tb.Skipf("interop: %s (INTEROP_SKIP=1)", msg)
	}
	tb.Fatalf("interop: %s; install Node.js >= 20.19 with npm (the npm registry must be reachable the first time), or set INTEROP_SKIP=1 to skip", msg)
}

// Options change how the provider issues tokens.
type Options struct {
	// AccessTokenFormat is "opaque" (default) or "jwt": RFC 9068 JWT access
	// tokens (typ at+jwt, RS256, signed with the current key; see
	// Provider.RotateKeys).
	AccessTokenFormat string
}

// Start runs oidc-provider on a free loopback port for the duration of the
// test, issuing opaque tokens for resourceURLs (at least one; the first is
// the default resource). It installs the pinned npm packages on first use
// (see the package comment). The process group
// is terminated in tb.Cleanup; the server's stderr is logged only when the
// test failed.
func Start(tb testing.TB, resourceURLs ...string) *Provider {
	tb.Helper()
	return StartWith(tb, Options{}, resourceURLs...)
}

// StartWith is Start with options.
func StartWith(tb testing.TB, opts Options, resourceURLs ...string) *Provider {
	tb.Helper()
	if opts.AccessTokenFormat == "" {
		opts.AccessTokenFormat = "opaque"
	}
	if len(resourceURLs) == 0 {
		tb.Fatalf("interop.Start: at least one resource URL is required")
	}
	for _, r := range resourceURLs {
		if strings.Contains(r, ",") {
			tb.Fatalf("interop.Start: resource URL %q contains a comma", r)
		}
		if u, err := url.Parse(r); err != nil || !u.IsAbs() {
			tb.Fatalf("interop.Start: resource URL %q is not absolute", r)
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(tb, "node is not on PATH")
	}
	dir := Dir()
	if err := install(dir, "oidc-provider"); err != nil {
		unavailable(tb, "installing oidc-provider in %s: %v", dir, err)
	}

	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PORT=0",
		"RESOURCE_URLS="+strings.Join(resourceURLs, ","),
		"INTROSPECTION_CLIENT_ID="+DefaultIntrospectionClientID,
		"INTROSPECTION_CLIENT_SECRET="+DefaultIntrospectionClientSecret,
		"ACCESS_TOKEN_FORMAT="+opts.AccessTokenFormat,
		"NODE_ENV=development",
	)
	setProcessGroup(cmd)
	stderr := &syncbuf.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("interop: stdout pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("interop: starting node: %v", err)
	}

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	tb.Cleanup(func() {
		terminate(cmd)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			kill(cmd)
			<-exited
		}
		if tb.Failed() {
			tb.Logf("oidc-provider stderr:\n%s", stderr.String())
		}
	})

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			if first {
				lines <- sc.Text()
				first = false
			}
		}
		if first {
			close(lines)
		}
	}()

	var line string
	select {
	case l, ok := <-lines:
		if !ok {
			<-exited
			tb.Fatalf("interop: oidc-provider exited before listening (%v); stderr:\n%s", waitErr, stderr.String())
		}
		line = l
	case <-time.After(30 * time.Second):
		tb.Fatalf("interop: oidc-provider did not start within 30s; stderr:\n%s", stderr.String())
	}
	var hello struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal([]byte(line), &hello); err != nil || hello.Issuer == "" {
		tb.Fatalf("interop: unexpected first line from oidc-provider %q: %v; stderr:\n%s", line, err, stderr.String())
	}
	issuerURL, err := url.Parse(hello.Issuer)
	if err != nil {
		tb.Fatalf("interop: bad issuer %q: %v", hello.Issuer, err)
	}

	p := &Provider{
		Issuer:                    hello.Issuer,
		IntrospectionClientID:     DefaultIntrospectionClientID,
		IntrospectionClientSecret: DefaultIntrospectionClientSecret,
		issuerURL:                 issuerURL,
	}
	if err := p.loadMetadata(); err != nil {
		tb.Fatalf("interop: %v; stderr:\n%s", err, stderr.String())
	}
	return p
}

func (p *Provider) loadMetadata() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching discovery document: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("discovery document: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&p.Metadata); err != nil {
		return fmt.Errorf("decoding discovery document: %w", err)
	}
	str := func(k string) string { s, _ := p.Metadata[k].(string); return s }
	p.AuthorizationEndpoint = str("authorization_endpoint")
	p.TokenEndpoint = str("token_endpoint")
	p.IntrospectionEndpoint = str("introspection_endpoint")
	p.RevocationEndpoint = str("revocation_endpoint")
	p.RegistrationEndpoint = str("registration_endpoint")
	if p.AuthorizationEndpoint == "" || p.TokenEndpoint == "" || p.IntrospectionEndpoint == "" {
		return fmt.Errorf("discovery document lacks endpoints: %v", p.Metadata)
	}
	return nil
}

// AuthorizationError is returned by [Provider.Login] when the authorization
// server redirected back to the client with an OAuth error response.
type AuthorizationError struct {
	Code        string // the error parameter, e.g. access_denied, invalid_scope
	Description string // error_description
}

func (e *AuthorizationError) Error() string {
	if e.Description == "" {
		return "authorization error: " + e.Code
	}
	return "authorization error: " + e.Code + ": " + e.Description
}

// Login plays the browser in an authorization-code flow, headlessly. Given
// the authorization URL an OAuth client produced, it follows the provider's
// redirects with a fresh cookie jar through oidc-provider's devInteractions
// pages, submitting the login form with login=user (any user and password
// are accepted) and then the consent form (granting everything requested),
// and stops at the redirect to the client's redirect_uri, which it returns
// unfollowed: it holds code, state and iss (RFC 9207).
//
// When that redirect carries an OAuth error (error=...), Login returns the
// URL together with an *AuthorizationError. The forms are parsed from the
// HTML; nothing about them is hard-coded but the field names "login" and
// "password".
func (p *Provider) Login(ctx context.Context, authURL, user string) (*url.URL, error) {
	if user == "" {
		return nil, errors.New("interop.Login: empty user")
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	var final *url.URL
	client := &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !p.isProvider(req.URL) {
				final = req.URL
				return http.ErrUseLastResponse
			}
			if len(via) >= 20 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, fmt.Errorf("interop.Login: %w", err)
	}
	for step := 0; step < 10; step++ {
		final = nil
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("interop.Login: %s %s: %w", req.Method, req.URL.Redacted(), err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("interop.Login: reading %s: %w", req.URL.Redacted(), err)
		}
		if final != nil {
			return redirectResult(final)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("interop.Login: %s %s: HTTP %d: %s", req.Method, resp.Request.URL.Redacted(), resp.StatusCode, htmlform.Text(body))
		}
		form, err := htmlform.First(body, resp.Request.URL, "")
		if err != nil {
			return nil, fmt.Errorf("interop.Login: page %s: %w: %s", resp.Request.URL.Redacted(), err, htmlform.Text(body))
		}
		values := form.Values()
		if _, ok := values["login"]; ok {
			values.Set("login", user)
		}
		if _, ok := values["password"]; ok {
			values.Set("password", "any-password")
		}
		if !p.isProvider(form.Action) {
			// response_mode=form_post: the page posts the response to the
			// client; hand it back as a query URL instead.
			u := *form.Action
			u.RawQuery = values.Encode()
			return redirectResult(&u)
		}
		if form.Method == http.MethodGet {
			u := *form.Action
			u.RawQuery = values.Encode()
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		} else {
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, form.Action.String(), strings.NewReader(values.Encode()))
			if err == nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		}
		if err != nil {
			return nil, fmt.Errorf("interop.Login: %w", err)
		}
	}
	return nil, errors.New("interop.Login: no redirect to the client after 10 pages")
}

func (p *Provider) isProvider(u *url.URL) bool {
	return u.Scheme == p.issuerURL.Scheme && u.Host == p.issuerURL.Host
}

func redirectResult(u *url.URL) (*url.URL, error) {
	q := u.Query()
	if code := q.Get("error"); code != "" {
		return u, &AuthorizationError{Code: code, Description: q.Get("error_description")}
	}
	return u, nil
}

// AuthorizationCodeFetcher returns an [auth.AuthorizationCodeFetcher] for the
// Go MCP SDK's [auth.AuthorizationCodeHandler] that logs in as user with
// [Provider.Login] and returns the code, state and iss from the redirect.
func (p *Provider) AuthorizationCodeFetcher(user string) auth.AuthorizationCodeFetcher {
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		u, err := p.Login(ctx, args.URL, user)
		if err != nil {
			return nil, err
		}
		q := u.Query()
		if q.Get("code") == "" {
			return nil, fmt.Errorf("interop: redirect %s carries no code", u.Redacted())
		}
		return &auth.AuthorizationResult{
			Code:  q.Get("code"),
			State: q.Get("state"),
			Iss:   q.Get("iss"),
		}, nil
	}
}

// Introspect posts token to the introspection endpoint with the introspection
// client's credentials (client_secret_basic) and returns the raw JSON answer.
func (p *Provider) Introspect(ctx context.Context, token string) ([]byte, error) {
	return p.postForm(ctx, p.IntrospectionEndpoint, url.Values{"token": {token}})
}

// Revoke revokes token (access or refresh) at the revocation endpoint with
// the introspection client's credentials, which server.mjs allows for any
// token.
func (p *Provider) Revoke(ctx context.Context, token string) error {
	_, err := p.postForm(ctx, p.RevocationEndpoint, url.Values{"token": {token}})
	return err
}

// RotateKeys makes the provider generate a new signing key, publish it at
// its jwks_uri next to the previous ones, and sign with it from now on,
// without a restart (server.mjs's test-only /__interop/rotate-keys). It
// returns the new key's kid.
func (p *Provider) RotateKeys(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+"/__interop/rotate-keys", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		KID string `json:"kid"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("rotate keys: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.KID == "" {
		return "", fmt.Errorf("rotate keys: bad answer: %v", err)
	}
	return out.KID, nil
}

func (p *Provider) postForm(ctx context.Context, endpoint string, form url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(p.IntrospectionClientID), url.QueryEscape(p.IntrospectionClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("%s: HTTP %d: %s", endpoint, resp.StatusCode, body)
	}
	return body, nil
}
