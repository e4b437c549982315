package devauth

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/time/rate"

	"github.com/mcp-gateway/mcp-gateway/internal/syncbuf"
)

const testResource = "https://gateway.example/mcp"

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	clock  *fakeClock
	logs   *syncbuf.Buffer
	client *http.Client // does not follow redirects
	issuer string
}

// newHarness starts a Server on an httptest server with a fake clock and a
// debug logger writing JSON lines into a buffer. mutate may adjust the config.
func newHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String() + "/dev-auth"
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	logs := &syncbuf.Buffer{}
	cfg := Config{
		Issuer:           issuer,
		Resource:         testResource,
		Scopes:           testScopes(),
		Describe:         testDescribe,
		Logger:           slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:              clock.Now,
		RegistrationRate: rate.Inf,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return &harness{
		t: t, srv: srv, ts: ts, clock: clock, logs: logs, issuer: issuer,
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

func (h *harness) url(path string) string { return h.issuer + path }

// do sends a request and returns the response with its body read.
func (h *harness) do(req *http.Request) (*http.Response, string) {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, string(b)
}

func (h *harness) get(u string) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(req)
}

func (h *harness) postForm(path string, form url.Values, setup func(*http.Request)) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url(path), strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if setup != nil {
		setup(req)
	}
	return h.do(req)
}

func (h *harness) postJSON(path string, body any) (*http.Response, map[string]any) {
	h.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		h.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, h.url(path), bytes.NewReader(b))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, s := h.do(req)
	return resp, decode(h.t, s)
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return m
}

// register registers a public client and returns its client_id.
func (h *harness) register(redirectURIs ...string) string {
	h.t.Helper()
	resp, m := h.postJSON("/register", map[string]any{
		"redirect_uris": redirectURIs, "client_name": "Test Client", "token_endpoint_auth_method": "none",
	})
	if resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("register: %d %v", resp.StatusCode, m)
	}
	return m["client_id"].(string)
}

type authzRequest struct {
	clientID, redirectURI, verifier, scope, state string
	extra                                         url.Values
}

func (a authzRequest) url(h *harness) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {a.clientID},
		"redirect_uri":          {a.redirectURI},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(a.verifier)},
		"code_challenge_method": {"S256"},
		"state":                 {a.state},
		"resource":              {testResource},
	}
	if a.scope != "" {
		q.Set("scope", a.scope)
	}
	for k, v := range a.extra {
		q[k] = v
	}
	return h.url("/authorize?" + q.Encode())
}

var (
	hiddenRE = regexp.MustCompile(`name="(id|csrf)" value="([^"]*)"`)
	scopeRE  = regexp.MustCompile(`name="scope" value="([^"]*)"( checked)?`)
)

// consentForm is what the consent page offers.
type consentForm struct {
	id, csrf string
	scopes   []string // offered
	checked  []string
}

func parseConsent(t *testing.T, page string) consentForm {
	t.Helper()
	var f consentForm
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		switch m[1] {
		case "id":
			f.id = html.UnescapeString(m[2])
		case "csrf":
			f.csrf = html.UnescapeString(m[2])
		}
	}
	for _, m := range scopeRE.FindAllStringSubmatch(page, -1) {
		f.scopes = append(f.scopes, html.UnescapeString(m[1]))
		if m[2] != "" {
			f.checked = append(f.checked, html.UnescapeString(m[1]))
		}
	}
	if f.id == "" || f.csrf == "" {
		t.Fatalf("no consent form in page:\n%s", page)
	}
	return f
}

// openConsent requests authorization and returns the consent form.
func (h *harness) openConsent(a authzRequest) consentForm {
	h.t.Helper()
	resp, body := h.get(a.url(h))
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("authorize: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return parseConsent(h.t, body)
}

// answer posts the consent form and returns the redirect's query.
func (h *harness) answer(f consentForm, action, user string, ticked []string) (*http.Response, url.Values) {
	h.t.Helper()
	form := url.Values{"id": {f.id}, "csrf": {f.csrf}, "action": {action}, "user": {user}, "scope": ticked}
	resp, body := h.postForm("/consent", form, nil)
	loc := resp.Header.Get("Location")
	if loc == "" {
		return resp, nil
	}
	if resp.StatusCode != http.StatusSeeOther {
		h.t.Fatalf("consent answer status %d, want 303 (%s)", resp.StatusCode, body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, u.Query()
}

// authorize runs authorize + approve and returns the code.
func (h *harness) authorize(a authzRequest, user string, ticked []string) string {
	h.t.Helper()
	f := h.openConsent(a)
	if ticked == nil {
		ticked = f.checked
	}
	_, q := h.answer(f, "approve", user, ticked)
	if q.Get("code") == "" {
		h.t.Fatalf("no code in redirect: %v", q)
	}
	return q.Get("code")
}

func (h *harness) token(form url.Values) (int, map[string]any) {
	h.t.Helper()
	resp, body := h.postForm("/token", form, nil)
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		h.t.Errorf("token response Cache-Control = %q, want no-store", cc)
	}
	return resp.StatusCode, decode(h.t, body)
}

func (h *harness) exchange(clientID, redirectURI, code, verifier string) (int, map[string]any) {
	h.t.Helper()
	return h.token(url.Values{
		"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {code},
		"redirect_uri": {redirectURI}, "code_verifier": {verifier}, "resource": {testResource},
	})
}

func (h *harness) introspect(token string) map[string]any {
	h.t.Helper()
	id, secret := h.srv.IntrospectionCredentials()
	resp, body := h.postForm("/introspect", url.Values{"token": {token}}, func(r *http.Request) {
		r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	})
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("introspect: %d %s", resp.StatusCode, body)
	}
	return decode(h.t, body)
}

func (h *harness) active(token string) bool {
	h.t.Helper()
	return h.introspect(token)["active"] == true
}

// grant registers a client and runs the code flow to tokens.
func (h *harness) grant(user string, ticked []string) (clientID string, tokens map[string]any) {
	h.t.Helper()
	redirect := "http://127.0.0.1:9999/callback"
	clientID = h.register(redirect)
	verifier := oauth2.GenerateVerifier()
	code := h.authorize(authzRequest{clientID: clientID, redirectURI: redirect, verifier: verifier, state: "s1"}, user, ticked)
	status, tok := h.exchange(clientID, redirect, code, verifier)
	if status != http.StatusOK {
		h.t.Fatalf("exchange: %d %v", status, tok)
	}
	return clientID, tok
}

// logLines decodes the JSON log lines written so far.
func (h *harness) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// lastRefusal returns the last "request refused" log line.
func (h *harness) lastRefusal(t *testing.T) map[string]any {
	t.Helper()
	lines := h.logLines(t)
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i]["msg"] == "devauth: request refused" {
			return lines[i]
		}
	}
	t.Fatalf("no refusal logged:\n%s", h.logs.String())
	return nil
}
