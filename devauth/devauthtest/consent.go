// Package devauthtest drives the development authorization server's pages
// over plain HTTP, for tests of clients and of the gateway: a ConsentBot is
// the "browser" of an OAuth client's authorization-code flow, as go-oidc's
// oidctest is the provider side of one.
package devauthtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/internal/htmlform"
	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
)

// ConsentAnswer is what the user does on the consent page.
type ConsentAnswer struct {
	Grant []string // the scopes left ticked
	Deny  bool     // click Deny instead of Approve
}

// ConsentBot opens the authorization URL, reads the consent form (action,
// hidden id and CSRF fields, scope checkboxes, the user field), ticks the
// scopes Decide chooses, types User, submits, and reads code, state and iss
// from the redirect to Redirect without following it. Its Fetch is an
// auth.AuthorizationCodeFetcher for the Go MCP SDK's OAuth handler. It
// never calls t.Fatal: the SDK may call it from any goroutine.
type ConsentBot struct {
	User     string
	Redirect string // the client's redirect URI
	// Decide answers round n (from 1) given the scopes offered and those
	// ticked when the page loads.
	Decide func(round int, offered, checked []string) ConsentAnswer

	rounds  atomic.Int32
	mu      sync.Mutex
	offered [][]string // the scopes offered in each round
}

// noRedirects hands redirects back: the authorization response is read
// from the Location header.
var noRedirects = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: urlrule.NoRedirects,
}

// Rounds is the number of consent pages the bot has opened.
func (b *ConsentBot) Rounds() int { return int(b.rounds.Load()) }

// OfferedIn returns the scopes the consent page offered in round n (from
// 1), or nil.
func (b *ConsentBot) OfferedIn(round int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if round < 1 || round > len(b.offered) {
		return nil
	}
	return b.offered[round-1]
}

// Fetch implements auth.AuthorizationCodeFetcher.
func (b *ConsentBot) Fetch(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	round := int(b.rounds.Add(1))
	page, err := url.Parse(args.URL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b.mu.Lock()
	b.offered = append(b.offered, nil)
	b.mu.Unlock()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
		// The authorization server refused the request without asking.
		return ParseAuthorizationResponse(b.Redirect, loc)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET authorization URL: status %d: %s", resp.StatusCode, body)
	}
	form, err := htmlform.First(body, page, http.MethodPost)
	if err != nil {
		return nil, fmt.Errorf("%w:\n%s", err, body)
	}
	hidden := url.Values{}
	for _, in := range form.OfType("hidden", "") {
		hidden.Add(in.Name, in.Value)
	}
	var offered, checked []string
	for _, in := range form.OfType("checkbox", "scope") {
		offered = append(offered, in.Value)
		if in.Checked {
			checked = append(checked, in.Value)
		}
	}
	if hidden.Get("id") == "" || hidden.Get("csrf") == "" {
		return nil, fmt.Errorf("consent form without hidden id and csrf fields: %v", hidden)
	}
	if len(form.OfType("text", "user")) == 0 || !slices.Contains(form.Buttons["action"], "approve") || !slices.Contains(form.Buttons["action"], "deny") {
		return nil, fmt.Errorf("consent form without a user field and Approve/Deny buttons: %+v", form)
	}
	if form.Action.Host != page.Host {
		return nil, fmt.Errorf("consent form posts to %s, another origin than the page %s", form.Action, page.Host)
	}
	b.mu.Lock()
	b.offered[round-1] = slices.Clone(offered)
	b.mu.Unlock()

	ans := b.Decide(round, offered, checked)
	v := url.Values{}
	for k, vs := range hidden {
		v[k] = vs
	}
	for _, sc := range ans.Grant {
		if !slices.Contains(offered, sc) {
			return nil, fmt.Errorf("round %d: the consent page does not offer %s (offered %v)", round, sc, offered)
		}
		v.Add("scope", sc)
	}
	v.Set("user", b.User)
	v.Set("action", "approve")
	if ans.Deny {
		v.Set("action", "deny")
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, form.Action.String(), strings.NewReader(v.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = noRedirects.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("POST consent: status %d, want 303; body %s", resp.StatusCode, body)
	}
	return ParseAuthorizationResponse(b.Redirect, resp.Header.Get("Location"))
}

// GrantRounds answers round n with grants[n-1] (the last entry for later
// rounds); a nil entry leaves the page's defaults ticked.
func GrantRounds(grants ...[]string) func(int, []string, []string) ConsentAnswer {
	return func(round int, offered, checked []string) ConsentAnswer {
		g := grants[min(round, len(grants))-1]
		if g == nil {
			g = checked
		}
		return ConsentAnswer{Grant: g}
	}
}

// AuthorizationError is an error authorization response (RFC 6749
// §4.1.2.1) delivered to the redirect URI.
type AuthorizationError struct {
	Code, Description, State, Iss string
}

func (e *AuthorizationError) Error() string {
	return fmt.Sprintf("authorization response: %s (%s)", e.Code, e.Description)
}

// ParseAuthorizationResponse reads the authorization response from the
// redirect a browser would follow, checking that it goes to the client's
// redirect URI.
func ParseAuthorizationResponse(redirect, location string) (*auth.AuthorizationResult, error) {
	loc, err := url.Parse(location)
	if err != nil {
		return nil, fmt.Errorf("redirect Location %q: %v", location, err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect {
		return nil, fmt.Errorf("redirected to %s, not to the redirect URI %s", got, redirect)
	}
	q := loc.Query()
	if code := q.Get("error"); code != "" {
		return nil, &AuthorizationError{Code: code, Description: q.Get("error_description"), State: q.Get("state"), Iss: q.Get("iss")}
	}
	if q.Get("code") == "" {
		return nil, fmt.Errorf("authorization response without code or error: %s", location)
	}
	return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
}
